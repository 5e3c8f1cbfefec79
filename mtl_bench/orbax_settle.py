"""A restore that fails leaves no pages of asyncio tracebacks behind its one-line error.

orbax restores a checkpoint in a fresh event loop and closes it as soon as one array fails, while
the other arrays' reads are still in flight: ``settling_loops`` lets those reads end first.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from functools import partial

_PATCH_LOCK = threading.Lock()
# How long a failed restore's other reads may go on (a restore's own reading at most) before
# they are cancelled.
SETTLE_S = 60.0


@contextlib.contextmanager
def settling_loops() -> Iterator[None]:
    """Event loops this thread makes meanwhile let their tasks end before they close.

    orbax runs a restore in a fresh loop (``asyncio.new_event_loop``) over ``asyncio.gather``
    of one task per array, and closes that loop as soon as one array fails (a damaged
    checkpoint) while the other arrays' tensorstore reads are in flight. Each of those, when
    it ends, schedules its result on the closed loop from a tensorstore thread, which prints a
    "RuntimeError: Event loop is closed" traceback, and their tasks log "Task exception was
    never retrieved" tracebacks: pages of them after the one-line error.
    """
    with _PATCH_LOCK:  # restores side by side would put back each other's patch
        plain, thread = asyncio.new_event_loop, threading.get_ident()

        def new_event_loop() -> asyncio.AbstractEventLoop:
            loop = plain()
            if threading.get_ident() == thread:  # orbax's other threads keep their loops
                made: list[asyncio.Task] = []

                def track(loop: asyncio.AbstractEventLoop, coro, **kwargs) -> asyncio.Task:
                    made.append(asyncio.Task(coro, loop=loop, **kwargs))
                    return made[-1]

                loop.set_task_factory(track)
                loop.close = partial(_settle_and_close, loop, loop.close, made)  # type: ignore[method-assign]
            return loop

        asyncio.new_event_loop = new_event_loop
        try:
            yield
        finally:
            asyncio.new_event_loop = plain


def _settle_and_close(loop: asyncio.AbstractEventLoop, close, made: list[asyncio.Task]) -> None:
    """Run the tasks ``made`` on ``loop`` to their end, take their errors, then close it."""
    deadline = time.monotonic() + SETTLE_S
    # Waited for, not cancelled: a task ends only once its read's result has reached this
    # loop, whereas a cancel cannot recall a result tensorstore is already delivering. Tasks
    # may start others, so until none is left.
    while not loop.is_running() and (left := [t for t in made if not t.done()]):
        if time.monotonic() > deadline:  # stuck: cancelled, as asyncio.run would
            for task in left:
                task.cancel()
            loop.run_until_complete(asyncio.wait(left, timeout=1.0))
            break
        loop.run_until_complete(asyncio.wait(left, timeout=deadline - time.monotonic()))
    for task in made:  # their errors follow from the first, which the restore raises
        if task.done() and not task.cancelled():
            task.exception()
    made.clear()  # nor keep the restored arrays alive with the loop
    close()
