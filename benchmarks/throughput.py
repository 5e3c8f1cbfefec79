"""Throughput suite: ``python -m benchmarks.throughput`` (or ``mtl-bench bench``).

For each selected model × precision × parallel strategy and device count × batch size:
training and inference images/s, ms/step, cold and warm compile time, trainable parameters,
GFLOPs per image (``benchmarks.flops``), MFU against ``benchmarks.peaks``, compiled and peak
device memory, the input stall and out-of-memory back-off — one CSV row each (``timing.py``
measures, with ``step_clock.py``'s clock; ``bench_model.py`` makes one model's rows; this file
drives, records and prints). With ``--peer torch`` each model's PyTorch twin is timed in a
subprocess (``benchmarks.torch_peer``) at the same settings and the JAX / PyTorch ratios join
the row.

Rows go to ``OUT/throughput/<device-kind>-<YYYYMMDD-HHMMSS>.csv`` (or ``--csv FILE``, whose
existing rows are kept); the whole file is rewritten atomically after every configuration, so an
interrupted run keeps what it measured. With ``--time-box S`` the bench keeps to its own
deadline (``time_box.TimeBox``): the proposed model first, what would not fit is not started
(its row says why), a peer's time box is cut to what is left, and ``[bench]`` lines say what was
cut. Untrustworthy step times are flagged (``noisy`` column, ``step_stats.py``). Strategies
are the Engine's (``none``, ``jit``, ``pmap``; ``--devices`` counts) and ``fold`` (``--folds``
folds trained side by side in one program, ``timing_folds.py``; its ``x_sequential`` is its
images/s over the ``none`` row's); input gather and inference are timed on one device.

Nothing heavy is imported at import time; the options live in ``bench_args.py`` (model options:
``bench_kwargs.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.bench_args import add_bench_arguments, check_config, check_options
from benchmarks.bench_checks import check_model_values, select_models
from benchmarks.bench_env import environment, setup_compile_cache
from benchmarks.bench_kwargs import check_model_options, kwargs_for, parse_model_kwargs
from benchmarks.bench_model import measure_model
from benchmarks.csv_claim import claimed, new_csv_path
from benchmarks.throughput_io import (
    format_table,
    read_csv,
    table_notes,
    write_csv,
)
from benchmarks.throughput_summary import fold_speedups
from benchmarks.time_box import TimeBox, parse_time_box


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks.throughput``."""
    parser = argparse.ArgumentParser(prog="benchmarks.throughput", description=__doc__)
    add_bench_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except (ValueError, KeyError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"benchmarks.throughput: error: {msg}", file=sys.stderr)
        return 2


NOTHING_MEASURED = 3  # the exit status of a run whose every configuration was skipped or failed


def run_from_args(args: argparse.Namespace) -> int:
    """Run the suite for parsed ``args``; prints the table and the CSV path. Returns 0, or
    ``NOTHING_MEASURED`` (3) when every row of this run was skipped or failed (the rows are
    written: their status says why); 1 stays an uncaught error's."""
    check_options(args)
    from mtl_bench.provenance import git_commit

    git_commit()  # read once, at the start: the rows record the code this process imported
    # Counted from here: the outer timeout's few seconds more cover the interpreter's start.
    box = TimeBox(parse_time_box(getattr(args, "time_box", None)))
    if args.peer == "torch":
        # The peer shares the accelerator: JAX must not grab 75 % of its memory up front.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    from mtl_bench.registry import model_info

    models = select_models(args.models)
    kwargs = parse_model_kwargs(args.model_kwargs)
    check_model_options(models, kwargs)
    from mtl_bench.fold_conv import check_mode

    for mode in args.fold_conv or [""]:
        check_mode(mode)  # one-line error naming the mode
    check_config(args.config)
    every = args.models.strip() == "all"
    unbuilt = check_model_values(models, kwargs, args.image_size, args.precision, every=every)
    if unbuilt:  # --models all only: each row says why
        print(f"[bench] not buildable at {args.image_size}²: {', '.join(unbuilt)}", flush=True)
    if box.deadline is not None:
        # What the box holds is measured in order: the proposed model first, whatever its name.
        models.sort(key=lambda m: model_info(m).family != "proposed")
    cache = setup_compile_cache(args.compile_cache)
    env = environment(cache, args.steps, args.warmup)
    from benchmarks.peaks import device_slug

    if args.csv:
        path = Path(args.csv)
    else:  # a name of its own, even for two benches started in the same second
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = new_csv_path(
            Path(args.out) / "throughput", f"{device_slug(env['device_kind'])}-{stamp}"
        )
    # Each run rewrites its whole file: a second bench on the same CSV at once is refused, since
    # one of the two would lose its rows.
    try:
        with claimed(path):
            return _run_models(args, path, models, kwargs, env, box, unbuilt)
    finally:  # a new CSV that got no row (the run failed first) is not left behind, header only
        if not args.csv and path.exists() and not read_csv(path):
            path.unlink()


def _run_models(
    args: argparse.Namespace,
    path: Path,
    models: list[str],
    kwargs: dict,
    env: dict[str, Any],
    box: TimeBox,
    unbuilt: dict[str, str],
) -> int:
    rows = read_csv(path) if args.csv and path.exists() else []
    others = sorted({r.get("device_kind") or "?" for r in rows} - {env["device_kind"]})
    if others:  # allowed (a comparison file), but a CSV named for one card should stay so
        print(
            f"[bench] note: {path} already holds rows measured on {', '.join(others)}; "
            f"this run's are on {env['device_kind']}",
            file=sys.stderr,
        )
    measured: list[dict[str, Any]] = []  # this run's rows (not those already in --csv)
    left_out = []  # models whose every configuration the time box refused
    for name in models:
        t = time.perf_counter()
        done = list(rows)
        keep = partial(lambda d, r: write_csv(path, fold_speedups(d + r)), done)
        new = measure_model(name, args, env, kwargs, keep, box, unbuilt.get(name))
        rows = fold_speedups(rows + new)
        measured += new
        write_csv(path, rows)
        if args.peer == "torch":
            from benchmarks.torch_peer import attach_peer

            # attach_peer fills the dicts of ``new``, which ``rows`` holds: rewrite them.
            attach_peer(new, kwargs_for(kwargs, name), args, box)
            write_csv(path, rows)
        statuses = [r["status"] for r in new]
        if all(x.startswith("skipped: ") for x in statuses):  # nothing of it was started
            if any(x.startswith("skipped: time box spent") for x in statuses):
                left_out.append(name)  # for want of time: the summary line names it
            elif len(set(statuses)) == 1:  # a feature method, bf16 without dtype, unbuildable
                print(f"[bench] {name}: {statuses[0]}", flush=True)  # not "1 rows in 0 s"
            else:
                print(f"[bench] {name}: {len(new)} rows skipped (see their status)", flush=True)
            continue
        rows_said = f"{len(new)} row{'s' * (len(new) != 1)}"
        print(f"[bench] {name}: {rows_said} in {time.perf_counter() - t:.0f} s", flush=True)
    if left_out:  # one line, not one per model: each row's status has the time left then
        now = f"{max(box.remaining(), 0):.0f} s of the {box.seconds:.0f} s left now"
        models_s = f"{len(left_out)} model{'s' if len(left_out) > 1 else ''}"
        whose = "their turns" if len(left_out) > 1 else "its turn"
        print(f"[bench] time box: {models_s} not started, too little time left when {whose} "
              f"came (see their rows): {', '.join(left_out)} ({now})",
              flush=True)  # fmt: skip
    print(format_table(rows))
    for line in table_notes(rows):
        print(line)
    print(f"wrote {path}")
    if not any(r.get("status") == "ok" for r in measured):
        # Rows that only say "skipped"/"error" are kept (they say why), but a script or CI
        # step must not read a run that measured nothing as a success.
        print(
            f"[bench] no configuration was measured ({len(measured)} skipped or failed; "
            f"see the status column of {path})",
            file=sys.stderr,
        )
        return NOTHING_MEASURED
    return 0


if __name__ == "__main__":
    sys.exit(main())
