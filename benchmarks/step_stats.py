"""Step-time statistics shared by the JAX side (``step_clock.py``) and the PyTorch peer
(``torch_peer_child.py``): both must summarise their steps the same way, or a ratio of the two
compares a median with a mean. Pure Python: the peer imports it without JAX, the bench without
torch.

Conventions (both sides):

- blocked steps: each step timed to completion; reported is the **median**, and the spread as the
  interquartile range in % of the median (``*_iqr_pct``; blank with fewer than 2 steps);
- pipelined steps: ``steps`` calls dispatched back to back and synchronised once, repeated
  ``PIPELINED_REPEATS`` times; reported is the **median** of the repeats' per-step times, so one
  stall (a recompile, another process on the cores) moves one repeat, not the figure;
- a measurement is *noisy* (``noise_reasons``) when its blocked and pipelined rates differ by more
  than ``RATE_DISAGREE`` × or a spread exceeds ``SPREAD_LIMIT_PCT``: a clean measurement cannot
  do that, since pipelining only hides host time, which at most halves the blocked step.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

PIPELINED_REPEATS = 3
RATE_DISAGREE = 2.0  # blocked vs pipelined rate, either way
SPREAD_LIMIT_PCT = 50.0  # IQR (blocked) or range (pipelined repeats), % of the median


def iqr_pct(times: list[float]) -> float | None:
    """Interquartile range of ``times`` in % of their median (None for fewer than 2)."""
    if len(times) < 2:
        return None
    q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return 100.0 * (q3 - q1) / statistics.median(times)


def range_pct(times: list[float]) -> float | None:
    """(max − min) of ``times`` in % of their median (None for fewer than 2)."""
    if len(times) < 2:
        return None
    return 100.0 * (max(times) - min(times)) / statistics.median(times)


def blocked_times(
    fn: Callable[[], object], warmup: int, steps: int, block: Callable[[object], object]
) -> list[float]:
    """Seconds of each of ``steps`` calls of ``fn``, each finished with ``block(result)``, after
    ``warmup`` untimed ones."""
    for _ in range(warmup):
        block(fn())
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - t)
    return times


def pipelined_times(
    fn: Callable[[], object], steps: int, block: Callable[[object], object]
) -> list[float]:
    """Seconds per call of ``steps`` calls dispatched back to back and blocked once at the end,
    for each of ``PIPELINED_REPEATS`` repeats (report their median: ``statistics.median``)."""
    out = []
    for _ in range(PIPELINED_REPEATS):
        t = time.perf_counter()
        for _ in range(steps):
            last = fn()
        block(last)
        out.append((time.perf_counter() - t) / steps)
    return out


def noise_reasons(label: str, m: dict[str, Any]) -> list[str]:
    """Why the measurement ``m`` of ``label`` (e.g. "jax", "torch compile") is not to be trusted,
    one short text per reason ([] when it is clean). ``m`` has either side's keys:
    ``train_img_per_s`` (blocked), ``train_pipelined_img_per_s`` and the spreads ``train_iqr_pct``,
    ``infer_iqr_pct``, ``train_pipelined_spread_pct`` (missing or None: not judged)."""
    reasons = []
    blocked, pipelined = m.get("train_img_per_s"), m.get("train_pipelined_img_per_s")
    if blocked and pipelined:
        ratio = pipelined / blocked
        if ratio > RATE_DISAGREE or ratio < 1 / RATE_DISAGREE:
            reasons.append(
                f"{label} train: pipelined {pipelined:.3g} vs blocked {blocked:.3g} img/s"
            )
    spreads = {"train": "train_iqr_pct", "infer": "infer_iqr_pct",
               "pipelined": "train_pipelined_spread_pct"}  # fmt: skip
    for what, key in spreads.items():
        pct = m.get(key)
        if pct is not None and pct > SPREAD_LIMIT_PCT:
            reasons.append(f"{label} {what} spread {pct:.0f} %")
    return reasons
