"""Ctrl-C during training stops at the next step boundary, not wherever the signal lands.

A KeyboardInterrupt raised at an arbitrary bytecode may land in a garbage-collector callback of
JAX's (Python prints "Exception ignored" and the run goes on to finish) or in orbax's save
thread (a traceback before the "interrupted" line). Inside ``deferred_interrupts`` the first
Ctrl-C only sets a flag that the loop checks after each step (``stop_if_requested``); a second
one interrupts at once. Outside training (reading data, compiling) Ctrl-C acts as usual, but
inside ``remembered_interrupts`` (the CLI's whole run) it is also remembered: one swallowed by a
callback there is raised at the next ``deferred_interrupts`` or ``stop_if_requested``.

SIGTERM — what a batch scheduler (SLURM, Kubernetes) sends before it kills a job — is handled as
Ctrl-C: the run stops at a step boundary, its background save finished, and can ``--resume``.
Killed at once, it left a half-written checkpoint folder and a curve ahead of the last save. Not
in a multi-process run (``leave_sigterm_to_jax``): ``jax.distributed`` installs its own SIGTERM
handler (its preemption notice), and processes stopping each at its own next step would leave
the others waiting in a collective.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mtl_bench.progress import log

_requested = False
_raised = False  # a Ctrl-C raised outside training: one a callback swallowed is raised again
_sigterm = True  # False once jax.distributed owns SIGTERM (leave_sigterm_to_jax)


def _remembering_handler(signum, frame) -> None:
    global _raised
    _raised = True
    raise KeyboardInterrupt


# The signals a run stops on, and the handler each must have for us to take it over: Ctrl-C's
# usual one (not SIG_IGN, as in a background job), SIGTERM's default (not a wrapper's own).
_SIGNALS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


def _ours() -> list[signal.Signals]:
    """The signals whose handlers this process may take over now (main thread only: Python
    delivers signals there). SIGINT under another handler than Python's (a test runner's) is
    still taken, as before; only an ignored one is left alone."""
    if threading.current_thread() is not threading.main_thread():
        return []
    ours = []
    for sig, usual in _SIGNALS.items():
        now = signal.getsignal(sig)
        # Ours already (remembered_interrupts around the whole run): training takes it over.
        mine = now in (usual, _remembering_handler, _handler)
        if sig == signal.SIGTERM and not _sigterm:
            continue
        if now is not signal.SIG_IGN and (sig == signal.SIGINT or mine):
            ours.append(sig)
    return ours


def leave_sigterm_to_jax() -> None:
    """From now on SIGTERM is not ours (``jax.distributed.initialize`` installed its handler,
    which Python's ``signal.getsignal`` cannot see): a multi-process run must stop together."""
    global _sigterm
    _sigterm = False


@contextmanager
def _handling(handler) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in _ours()}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def remembered_interrupts() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as usual while the block runs, and is remembered: one
    that lands in a garbage-collector callback (Python prints "Exception ignored" and goes on)
    still stops the run at the next training block or step."""
    global _raised
    try:
        with _handling(_remembering_handler):
            yield
    finally:
        _raised = False


def _handler(signum, frame) -> None:
    global _requested
    if _requested:  # the second Ctrl-C: no waiting
        raise KeyboardInterrupt
    _requested = True
    what = "SIGTERM: " if signum == signal.SIGTERM else ""
    log(f"mtl-bench: {what}stopping after this step (Ctrl-C again to stop at once)")


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Defer Ctrl-C to the next ``stop_if_requested`` while the block runs (main thread only:
    Python delivers signals there; elsewhere this does nothing)."""
    global _requested
    stop_if_requested()  # a Ctrl-C swallowed before training began
    try:
        with _handling(_handler):
            yield
    finally:
        _requested = False


def stop_if_requested() -> None:
    """Raise KeyboardInterrupt here if Ctrl-C was pressed since the block began."""
    if _requested or _raised:
        raise KeyboardInterrupt
