"""Ctrl-C during training stops at the next step boundary, not wherever the signal lands.

A KeyboardInterrupt raised at an arbitrary bytecode may land in a garbage-collector callback of
JAX's (Python prints "Exception ignored" and the run goes on to finish) or in orbax's save
thread (a traceback before the "interrupted" line). Inside ``deferred_interrupts`` the first
Ctrl-C only sets a flag that the loop checks after each step (``stop_if_requested``); a second
one interrupts at once. Outside training (reading data, compiling) Ctrl-C acts as usual, but
inside ``remembered_interrupts`` (the CLI's whole run) it is also remembered: one swallowed by a
callback there is raised at the next ``deferred_interrupts`` or ``stop_if_requested``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mtl_bench.progress import log

_requested = False
_raised = False  # a Ctrl-C raised outside training: one a callback swallowed is raised again


def _remembering_handler(signum, frame) -> None:
    global _raised
    _raised = True
    raise KeyboardInterrupt


def _main_thread_handles_sigint() -> bool:
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # e.g. a background job
    )


@contextmanager
def remembered_interrupts() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as usual while the block runs, and is remembered: one
    that lands in a garbage-collector callback (Python prints "Exception ignored" and goes on)
    still stops the run at the next training block or step."""
    global _raised
    if not _main_thread_handles_sigint():
        yield
        return
    previous = signal.signal(signal.SIGINT, _remembering_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _raised = False


def _handler(signum, frame) -> None:
    global _requested
    if _requested:  # the second Ctrl-C: no waiting
        raise KeyboardInterrupt
    _requested = True
    log("mtl-bench: stopping after this step (Ctrl-C again to stop at once)")


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Defer Ctrl-C to the next ``stop_if_requested`` while the block runs (main thread only:
    Python delivers signals there; elsewhere this does nothing)."""
    global _requested
    stop_if_requested()  # a Ctrl-C swallowed before training began
    if not _main_thread_handles_sigint():
        yield
        return
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested = False


def stop_if_requested() -> None:
    """Raise KeyboardInterrupt here if Ctrl-C was pressed since the block began."""
    if _requested or _raised:
        raise KeyboardInterrupt
