"""The bench's own deadline, ``--time-box``: parsed to seconds and spent by ``TimeBox``, which
decides what may still start (``bench_model.py`` for JAX configurations, ``torch_peer.py`` for
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
    # A box that could start nothing would write only skipped rows. The box counts from the
    # bench's start, and its set-up (imports, devices) comes before the first configuration.
    least = TimeBox.MARGIN_S + TimeBox.MIN_START_S + TimeBox.SETUP_S
    if seconds < least:
        raise ValueError(
            f"--time-box {text}: at least {least:.0f} s ({TimeBox.MARGIN_S:.0f} s are kept for the "
            f"CSV and the table, {TimeBox.SETUP_S:.0f} s for the set-up, and nothing starts with "
            f"under {TimeBox.MIN_START_S:.0f} s left)"
        )
    return seconds


class TimeBox:
    """The bench's own deadline (``--time-box``), counted from when this object is made.

    An outer ``timeout`` kills the whole process: the configuration or PyTorch peer run in flight
    is lost, and with it the rows the CSV rewrite after it would have kept. So the bench spends
    its box itself: ``MARGIN_S`` is kept back for the last CSV write and the printed table, a
    peer run's time box is cut to what is left, and nothing is started with less than
    ``MIN_START_S`` left (a JAX compile or torch's import alone takes longer) — nor a JAX
    configuration with less than its estimate left: what this model's earlier configurations
    took, else ``estimate``. ``TimeBox(None)`` never runs out.
    """

    MARGIN_S = 15.0
    MIN_START_S = 20.0
    SETUP_S = 10.0  # the bench's own start before the first configuration (a GPU's init)

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.longest_s = 0.0  # the longest JAX configuration so far
        self.last_s = 0.0  # the one just timed
        # The highest seconds per parameter array of a configuration so far: another model's
        # estimate (compilation, most of a configuration's time, grows with its layers).
        self.per_array_s = 0.0

    def remaining(self) -> float:
        """Seconds to the deadline (``inf`` without a box)."""
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def left(self) -> float:
        """Seconds left for work: ``remaining()`` less ``MARGIN_S``."""
        return self.remaining() - self.MARGIN_S

    def can_start(self, needs: float = 0.0) -> bool:
        """Whether something expected to take ``needs`` seconds may start now."""
        return self.left() >= max(self.MIN_START_S, needs)

    def estimate(self, arrays: int | None) -> float:
        """Seconds a configuration of a model with ``arrays`` parameter arrays should take, at the
        slowest rate per array so far; the longest configuration so far when either is unknown
        (one slow model, densenet201's 199 s on a CPU, must not refuse every smaller one)."""
        if arrays is None or not self.per_array_s:
            return self.longest_s
        return self.per_array_s * arrays

    def spent(self, what: str, needs: float | None = None) -> str:
        """Why ``what`` was not started (``needs``: its estimate), for a row's status or note."""
        left = self.remaining()
        why = f"{max(left, 0):.0f} s of the {self.seconds:.0f} s --time-box left"
        if left < 0:  # a configuration ran past its estimate
            why += f", overrun by {-left:.0f} s"
        if what == "configuration" and needs:
            why += f", this configuration needs about {needs:.0f} s"
        return f"time box spent ({why})"

    @contextmanager
    def timed(self, row: dict | None = None) -> Iterator[None]:
        """Time one JAX configuration (its compile included) into ``last_s`` and ``longest_s``,
        and into ``per_array_s`` once ``row`` has its ``param_arrays`` (``timing.measure``)."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.last_s = time.monotonic() - start
            self.longest_s = max(self.longest_s, self.last_s)
            arrays = (row or {}).get("param_arrays")
            if arrays:
                self.per_array_s = max(self.per_array_s, self.last_s / arrays)


def param_arrays(name: str, kwargs: dict, image_size: int) -> int:
    """How many parameter arrays ``name`` has with ``kwargs`` at ``image_size`` (built
    abstractly: no arrays); 0 for a model with nothing to compile (a feature method) or one that
    cannot be built (its configurations are skipped at once)."""
    import jax
    from flax import nnx

    from benchmarks.bench_checks import bench_builder_kwargs
    from mtl_bench.registry import create_model, model_info

    if model_info(name).fit is not None:
        return 0
    full = bench_builder_kwargs(name, kwargs, image_size)
    try:
        model = nnx.eval_shape(lambda: create_model(name, **full))
    except Exception:  # measure() says why, in the row
        return 0
    return len(jax.tree.leaves(nnx.state(model, nnx.Param)))
