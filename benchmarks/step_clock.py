"""How a compiled step is timed: the clock, compile cold and warm, and memory figures.

Shared by ``benchmarks/timing.py`` (one configuration) and ``benchmarks/timing_folds.py`` (k folds
side by side), so both report the same columns measured the same way: medians of steps each
blocked with ``jax.block_until_ready`` after warm-up and their spread, the pipelined rate of steps
dispatched back to back, the host's dispatch time, and XLA's memory analysis of the executable.
The statistics are ``step_stats.py``'s, which the PyTorch peer uses too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from benchmarks.step_stats import blocked_times, iqr_pct, pipelined_times, range_pct


def median_ms(fn: Callable[[], Any], warmup: int, steps: int) -> float:
    """Median ms of ``steps`` calls of ``fn``, each blocked, after ``warmup`` calls."""
    return median_iqr_ms(fn, warmup, steps)[0]


def median_iqr_ms(fn: Callable[[], Any], warmup: int, steps: int) -> tuple[float, float | None]:
    """(median ms, interquartile range in % of the median) of ``steps`` blocked calls of ``fn``
    after ``warmup`` calls (the IQR is None for one step)."""
    times = blocked_times(fn, warmup, steps, jax.block_until_ready)
    return 1e3 * statistics.median(times), iqr_pct(times)


def compiled_gb(compiled: Any) -> float | None:
    """Device memory one executable needs (arguments + outputs − donated + temporaries)."""
    try:
        m = compiled.memory_analysis()
    except (NotImplementedError, AttributeError, RuntimeError):
        return None
    if m is None:
        return None
    total = m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
    return (total + m.temp_size_in_bytes) / 1e9


def peak_memory_gb() -> float | None:
    """The first device's allocator peak so far in this process (None on CPU)."""
    stats = jax.devices()[0].memory_stats()  # None on CPU
    return stats["peak_bytes_in_use"] / 1e9 if stats and "peak_bytes_in_use" in stats else None


def cache_dir() -> str | None:
    """JAX's persistent compilation cache folder (None: the cache is off)."""
    return jax.config.jax_compilation_cache_dir or None


def compile_cold_warm(lower: Callable[[], Any], warm: bool) -> tuple[Any, dict[str, Any]]:
    """Compile ``lower()`` ahead of time: (executable, {compile_s, mem_compiled_gb,
    compile_warm_s}); the warm figure is a second compile with the in-memory caches cleared, so
    only the persistent cache (when on) can spare it."""
    t = time.perf_counter()
    compiled = lower().compile()
    row = {"compile_s": time.perf_counter() - t, "mem_compiled_gb": compiled_gb(compiled)}
    row["compile_warm_s"] = None
    if warm and cache_dir():
        jax.clear_caches()
        t = time.perf_counter()
        lower().compile()
        row["compile_warm_s"] = time.perf_counter() - t
    return compiled, row


def time_train(
    train_once: Callable[[], tuple[Any, Any]], warmup: int, steps: int, profile: Path | None = None
) -> dict:
    """{train_ms (median, blocked), train_iqr_pct, train_pipelined_ms, train_pipelined_spread_pct,
    loss_finite, host_ms (dispatch only)} of a training step; ``train_once()`` runs one step and
    returns (something to block on, the loss). With ``profile``, three more steps are traced there
    afterwards (``profile_trace`` column).

    ``train_ms`` blocks on every step, so the host's preparation of the next call shows as device
    idle time (3 ms per step on an H100, results/profiles/); ``train_pipelined_ms`` is the wall
    time of ``steps`` calls dispatched back to back, blocked once at the end, per step — what the
    training loop, which never blocks on a step, sees — the median of ``PIPELINED_REPEATS`` such
    runs (a mean over one run let a single stall set it)."""
    row: dict[str, Any] = {}
    row["train_ms"], row["train_iqr_pct"] = median_iqr_ms(train_once, warmup, steps)
    loss = np.asarray(jax.device_get(train_once()[1]))  # one value per device/fold when stacked
    row["loss_finite"] = bool(np.all(np.isfinite(loss)))
    # Dispatch-only time: calls return before the device finishes; each run blocks at its end.
    dispatch: list[float] = []

    def dispatched():
        t = time.perf_counter()
        out = train_once()
        dispatch.append(time.perf_counter() - t)
        return out

    runs = pipelined_times(dispatched, steps, jax.block_until_ready)
    row["train_pipelined_ms"] = 1e3 * statistics.median(runs)
    row["train_pipelined_spread_pct"] = range_pct(runs)
    row["host_ms"] = 1e3 * statistics.median(dispatch)
    if profile is not None:
        from benchmarks.profile_trace import capture

        row["profile_trace"] = str(capture(train_once, profile) or "")
    return row
