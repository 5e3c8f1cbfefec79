"""One model's bench rows: precision × strategy/devices × batch, each measured, skipped or
failed into a row (``benchmarks.throughput`` drives the models and writes the CSV).

Kept apart from the driver so that each file reads on its own: this one decides, per
configuration, whether it is skipped whatever the time (``known_skip``, an unbuildable size),
left out for want of time (``time_box.TimeBox``) or measured (``timing.measure_with_backoff``,
or ``timing_folds.measure_folds`` for ``--parallel fold``).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from benchmarks.bench_kwargs import kwargs_cell, kwargs_for
from benchmarks.step_stats import noise_reasons
from benchmarks.time_box import TimeBox, param_arrays


def _finish(row: dict[str, Any], peak: float | None, label: str) -> dict[str, Any]:
    """Add one device's peak (``peak_tflops``, ``peak_label``) and the MFU to a finished row."""
    from benchmarks.peaks import mfu_percent

    row["peak_tflops"], row["peak_label"] = peak, label
    if row.get("achieved_tflops") is not None:
        # achieved_tflops is the whole step's rate, over all the row's devices (jit/pmap): the
        # peak it is a fraction of is theirs together. ``devices`` is the count measured
        # (timing.measure), not the requested one (0 = all).
        total = None if peak is None else peak * row["devices"]
        row["mfu_pct"] = mfu_percent(row["achieved_tflops"] * 1e12, total)
    return row


def measure_model(
    name: str,
    args: argparse.Namespace,
    env: dict,
    kwargs: dict,
    on_row: Callable[[list[dict]], None] | None = None,
    box: TimeBox | None = None,
    unbuilt: str | None = None,
) -> list[dict]:
    """Rows of one model: precision × strategy/devices × batch (errors become rows, never raise).

    ``on_row(rows so far)`` runs after every configuration: on a GPU one configuration's compile
    alone takes about a minute, so a time-boxed run must keep each finished row. A configuration
    skipped whatever the time (``unbuilt``: why the model cannot be built at this size; a
    feature method; bf16 without dtype) says so at once, without consulting ``box``; one that
    ``box`` has no room for is not started: its row is "skipped: time box spent ..."."""
    from benchmarks.bench_checks import known_skip
    from benchmarks.peaks import peak_tflops
    from benchmarks.timing import BenchSpec
    from benchmarks.timing_folds import measure_folds

    rows, box, cut = [], box or TimeBox(None), 0
    own_s, arrays = 0.0, None
    # "none" and "fold" run on one device; jit/pmap at each requested device count; fold once
    # per convolution mode.
    layouts = [
        (s, n, mode)
        for s in args.parallel
        for n in ([1] if s in ("none", "fold") else args.devices)
        for mode in (args.fold_conv if s == "fold" else [None])
    ]
    grid = list(itertools.product(args.precision, layouts, args.batch_sizes))
    for i, (precision, (strategy, n_dev, fold_conv), batch) in enumerate(grid, 1):
        peak, label = peak_tflops(env["device_kind"], precision)
        row = {
            "model": name, "batch_size": batch, "requested_batch_size": batch,
            "precision": precision, "image_size": args.image_size, "strategy": strategy,
            "devices": n_dev, "fold_conv": fold_conv,
            "model_kwargs": kwargs_cell(kwargs_for(kwargs, name)),
            "config_overrides": " ".join(args.config),
            "timestamp_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            **env,
        }  # fmt: skip
        spec = BenchSpec(
            name, batch, precision, args.image_size, kwargs_for(kwargs, name), args.steps,
            args.warmup, warm_compile=env["compile_cache"] != "off", parallel=strategy,
            devices=n_dev, profile_dir=args.profile, config=tuple(args.config),
        )  # fmt: skip
        fn = None
        if strategy == "fold":
            fn = partial(measure_folds, folds=args.folds, fold_conv=fold_conv)
        known = (
            f"cannot build at {args.image_size}²: {unbuilt}"
            if unbuilt
            else known_skip(name, precision)
        )
        needs = own_s  # this model's slowest configuration so far: the guess for the next
        if not known and not own_s and not box.can_start(box.longest_s):
            # The slowest configuration so far would not fit: estimate this model's own.
            arrays = arrays if arrays is not None else param_arrays(name, spec.model_kwargs,
                                                                    args.image_size)  # fmt: skip
            needs = box.estimate(arrays)
        if known:  # skipped whatever the time: not a time-box matter, nor counted as one
            row["status"] = f"skipped: {known}"
        elif not box.can_start(needs):
            # Started, it would most likely be killed half-way by the outer timeout, and the
            # peer run after it with it; left out, its row says why.
            row["status"] = f"skipped: {box.spent('configuration', needs)}"
            cut += 1
        else:
            with box.timed(row):
                _measure_into(row, spec, fn)
            own_s = max(own_s, box.last_s)
            _said(row, i, len(grid), box.last_s)
        rows.append(_finish(row, peak, label))
        if on_row is not None:
            on_row(rows)
    if 0 < cut < len(rows):  # a model left out whole is in run_from_args's one line
        why = box.spent("configuration", own_s)
        print(f"[bench] {why}: {cut} of {len(rows)} {name} configurations not started", flush=True)
    return rows


def _said(row: dict, i: int, n: int, seconds: float) -> None:
    """One progress line on stderr per configuration measured: a model's grid can take minutes
    on a GPU (a compile each) before its summary line."""
    dev = row["devices"]  # 0 = all, until a measurement says how many
    where = row["strategy"] + ("" if dev == 1 else f" ×{dev}" if dev else " (all devices)")
    if row["strategy"] == "fold" and row.get("fold_conv"):
        where += f" ({row['fold_conv']})"
    rate = row.get("train_img_per_s")
    got = f"{float(rate):.0f} img/s" if row.get("status") == "ok" and rate else row.get("status")
    print(
        f"[bench] {row['model']} {i}/{n}: {where}, batch {row['requested_batch_size']}, "
        f"{row['precision']}: {str(got)[:100]} ({seconds:.0f} s)",
        file=sys.stderr,
        flush=True,
    )


def _measure_into(row: dict, spec: Any, fn: Callable | None) -> None:
    """Measure one configuration into ``row``: its numbers and "ok", or why not."""
    from benchmarks.timing import Skip, measure_with_backoff

    try:
        measured, note = measure_with_backoff(spec, fn)
        row.update(measured, status="ok", note=note)
        row["noisy"] = "; ".join(noise_reasons("jax", row))
    except Skip as e:
        row["status"] = f"skipped: {e}"
    except Exception as e:  # one failing model must not end the suite: record it
        msg = " ".join(str(e).split())[:300] or type(e).__name__
        row["status"] = f"error: {type(e).__name__}: {msg}"
