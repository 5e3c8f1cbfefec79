"""``python -m benchmarks.protocol_time --measure OUT``: a short cold start of the paper protocol's
real training loop, whose files ``benchmarks/protocol_time.py`` then extrapolates from.

It runs ``mtl-bench cv`` (paper preset, bf16) on fold 0 and then on another fold of fold 0's size,
6 epochs each with a checkpoint every 2, from a fresh compilation cache and a fresh prepared-data
cache, as a first run on a new machine would (``tiny=True``: 32², narrow widths, 60 images, for a
CPU). The checkpoints stay in a temporary folder (~170 MB at full width); OUT gets the fold files,
their learning curves, the fold manifest, ``measure.json`` (the run's time outside the folds:
start-up, data preparation — added once to the estimate) and the printed lines
(``estimate.txt``). ``gpu_check.sh``'s ``protocol`` group runs it on a GPU and packs OUT.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.protocol_time import MEASURE_NAME, ProtocolError, report

__all__ = ["measure"]


def measure(
    out: Path,
    epochs: int = 500,
    every: int = 10,
    folds: int = 5,
    *,
    epochs_run: int = 6,
    tiny: bool = False,
) -> list[str]:
    """Run ``mtl-bench cv`` (paper preset, bf16, a checkpoint every 2 epochs, a fresh compilation
    cache) on fold 0 and then on another fold of its size, in a temporary folder; copy the fold
    files to ``out`` and return (and save) :func:`report`'s lines."""
    from mtl_bench.atomic import check_out_folder
    from mtl_bench.cli import main as cli_main

    # Before the run (minutes of a lent GPU), not after it: a file, an unwritable folder, or one
    # holding an earlier measurement, whose fold files the report would mix with these.
    try:
        check_out_folder(out, "--measure")
    except ValueError as e:
        raise ProtocolError(str(e)) from None
    if out.is_dir() and (earlier := sorted(p.name for p in out.glob("fold_*.json"))):
        raise ProtocolError(
            f"--measure {out}: holds an earlier measurement ({', '.join(earlier)}): give a new or "
            "empty folder"
        )
    sets = [f"epochs={epochs_run}", "checkpoint_every=2"]
    if tiny:
        sets += ["image_size=32", "synthetic_n=60", "model_kwargs={'widths': (4, 8, 16, 32, 64)}"]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        argv = ["cv", "--model", "mtl_resunet", "--preset", "paper", "--precision", "bf16"]
        argv += ["--out", str(run), "--quiet", *(a for kv in sets for a in ("--set", kv))]
        # Prepared data and compiled programs start empty, as on a first run: temporary too.
        env = {"MTL_BENCH_CACHE": "cache", "MTL_BENCH_COMPILE_CACHE_DIR": "compile"}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update({k: str(Path(tmp) / v) for k, v in env.items()})
        try:
            t0 = time.perf_counter()
            _cv(cli_main, [*argv, "--folds", "0"])
            first_call_s = time.perf_counter() - t0
            sizes = [len(ids) for ids in json.loads((run / "folds.json").read_text())["fold_ids"]]
            same = [f for f in range(1, len(sizes)) if sizes[f] == sizes[0]]
            _cv(cli_main, [*argv, "--folds", str(same[0] if same else 1)])
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        mdir = run / "mtl_resunet"
        fold0_wall = json.loads((mdir / "fold_0.json").read_text())["wall_time_s"]
        out.mkdir(parents=True, exist_ok=True)
        for path in [run / "folds.json", *mdir.glob("fold_*.json"), *mdir.glob("fold_*_curve.csv")]:
            shutil.copy(path, out / path.name)
        print(f"fold files, learning curves and folds.json: {out}", flush=True)
    record = {"outside_folds_s": round(first_call_s - fold0_wall, 3), "first_call_s": first_call_s}
    (out / MEASURE_NAME).write_text(json.dumps(record, indent=1) + "\n")
    lines = report(out, None, epochs, every, folds)  # what `protocol_time OUT` prints again
    (out / "estimate.txt").write_text("\n".join(lines) + "\n")
    return lines


def _cv(cli_main, argv: list[str]) -> None:
    # cv prints "fold K: PATH" of the temporary folder, gone at the end: the files are copied to
    # OUT, which the caller names.
    with contextlib.redirect_stdout(io.StringIO()):
        rc = cli_main(argv)
    if rc:
        raise ProtocolError(f"mtl-bench {' '.join(argv)} exited with {rc}")
