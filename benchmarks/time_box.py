"""The bench's own deadline, ``--time-box``: parsed to seconds and spent by ``TimeBox``, which
decides what may still start (``throughput.py`` for JAX configurations, ``torch_peer.py`` for
the PyTorch twin)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager


def parse_time_box(text: str | float | None) -> float | None:
    """``--time-box`` in seconds (None: no limit); anything but a positive finite number is a
    one-line ValueError naming the value."""
    if text is None:
        return None
    try:
        seconds = float(text)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"--time-box must be a positive number of seconds, got {text!r}")
    return seconds


class TimeBox:
    """The bench's own deadline (``--time-box``), counted from when this object is made.

    An outer ``timeout`` kills the whole process: the configuration or PyTorch peer run in flight
    is lost, and with it the rows the CSV rewrite after it would have kept. So the bench spends
    its box itself: ``MARGIN_S`` is kept back for the last CSV write and the printed table, a
    peer run's time box is cut to what is left, and nothing is started with less than
    ``MIN_START_S`` left (a JAX compile or torch's import alone takes longer) — nor a JAX
    configuration with less than the longest one so far took. ``TimeBox(None)`` never runs out.
    """

    MARGIN_S = 15.0
    MIN_START_S = 20.0

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.longest_s = 0.0  # the longest JAX configuration so far: the guess for the next

    def remaining(self) -> float:
        """Seconds to the deadline (``inf`` without a box)."""
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def left(self) -> float:
        """Seconds left for work: ``remaining()`` less ``MARGIN_S``."""
        return self.remaining() - self.MARGIN_S

    def can_start(self, needs: float = 0.0) -> bool:
        """Whether something expected to take ``needs`` seconds may start now."""
        return self.left() >= max(self.MIN_START_S, needs)

    def spent(self, what: str) -> str:
        """Why ``what`` was not started, for a row's status or note."""
        why = f"{self.remaining():.0f} s of the {self.seconds:.0f} s --time-box left"
        if what == "configuration" and self.longest_s:
            why += f", a configuration took up to {self.longest_s:.0f} s"
        return f"time box spent ({why})"

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Time one JAX configuration (its compile included) into ``longest_s``."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.longest_s = max(self.longest_s, time.monotonic() - start)
