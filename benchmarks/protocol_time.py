"""The paper protocol's training time extrapolated from a short run of the real training loop.

``bench`` times the jitted step alone; this reads what ``mtl-bench cv`` itself spent on a few
epochs — set-up (model, data placement), the first epoch (compile included), the later epochs
(from the learning curve's per-epoch rate), checkpoint saves and evaluation (recorded per fold in
``fold_K.json`` since the fit loop times them) — and scales the per-epoch and per-checkpoint parts
to the protocol::

    mtl-bench cv --model mtl_resunet --preset paper --precision bf16 --folds 0,2 \\
        --set epochs=6 --set checkpoint_every=2 --out /tmp/protocol   # fold 2: fold 0's size
    python -m benchmarks.protocol_time /tmp/protocol --epochs 500 --checkpoint-every 10 --folds 5
    python -m benchmarks.protocol_time --measure OUT     # a cold run, then OUT gets its files

Per fold: setup + first epoch + (epochs − 1) × median later epoch + saves × save + (saves − 1) ×
the slowdown of the epoch after a save + the first save's one-time cost + the wait for the last
save's background write + eval, where saves = ceil(epochs / checkpoint_every) (the last epoch
always saves), the median later epoch leaves out the epochs after a save, whose mean excess over
it is the slowdown (the save's background write), save is the mean of the saves after the first,
and the one-time cost is what the first took beyond that (``checkpoint_first_s``; for older
files, a compiling fold's saves beyond the cached folds' rate, else none). Evaluation is
counted as run (the test set once; validation passes, when the run had them, as many times as it
did).

Only the first fold of each shape compiles: later folds of a run load the step from JAX's
persistent compilation cache (on by default), and a fold's shape is its training and test row
counts, each padded to a multiple of 32 (so the paper's folds of 129 and 130 test images share
one). So, by the fold manifest (``folds.json`` beside the results), the
measured folds that were the first of their size stand for every such fold, and the others for
the folds the cache serves; with one fold measured (or the manifest missing, or an inner
validation split, whose sizes the manifest does not give), every fold counts as the mean measured
one.

``--measure OUT`` runs a short cold start of the real loop first and reports on it
(``benchmarks/protocol_measure.py``); ``gpu_check.sh``'s ``protocol`` group runs it on a GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from benchmarks.protocol_fold import (
    ProtocolError,
    extrapolate,
    fold_plan,
    fold_timing,
    split_first_saves,
)

MEASURE_NAME = "measure.json"  # --measure's record of the run's time outside the folds


def method_dir_of(results: Path, method: str | None) -> Path:
    """``results/method``, or the only method folder there when ``method`` is None."""
    if not results.is_dir():
        raise ProtocolError(f"{results}: no such results folder")
    if method is None and any(results.glob("fold_*.json")):
        return results  # a --measure output: the fold files sit in the folder itself
    if method is not None:
        path = results / method
        if not any(path.glob("fold_*.json")):
            raise ProtocolError(f"{path}: no fold_K.json result files")
        return path
    found = sorted(p for p in results.iterdir() if any(p.glob("fold_*.json")))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ProtocolError(f"{results}: name the method with --method (found: {names})")
    return found[0]


def report(
    results: Path,
    method: str | None,
    epochs: int,
    every: int,
    folds: int,
    *,
    overhead_s: float | None = None,
) -> list[str]:
    """The printed lines: each measured fold's components and the protocol estimate;
    ``overhead_s`` (default: ``measure.json``'s, which ``--measure`` writes) is added once."""
    mdir = method_dir_of(results, method)
    if overhead_s is None and (results / MEASURE_NAME).exists():
        overhead_s = float(json.loads((results / MEASURE_NAME).read_text())["outside_folds_s"])
    paths = sorted(mdir.glob("fold_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    rows = [fold_timing(mdir, p) for p in paths]
    lines = [
        f"{mdir}: {len(rows)} fold(s) measured on {rows[0]['device_kind'] or 'unknown device'}"
        f" (git {rows[0]['git_commit'][:12] or '?'})"
    ]
    val_fraction = max(t["val_fraction"] for t in rows)
    plan = fold_plan(results, folds, val_fraction)
    cold = [t for t in rows if plan is not None and t["fold"] < folds and plan[t["fold"]]]
    warm = [t for t in rows if t not in cold]
    split_from_warm = split_first_saves(cold, warm)
    for t in rows:
        lines.append(
            f"  fold {t['fold']}: {t['epochs_run']} epochs × {t['train_images']} images: setup "
            f"{t['setup_s']:.1f} s, first epoch {t['first_epoch_s']:.1f} s, later epochs "
            f"{t['epoch_s']:.3f} s ({t['train_images'] / t['epoch_s']:.0f} img/s), checkpoint "
            f"{t['save_s']:.2f} s (+ {t['save_next_s']:.2f} s in the epoch after it, + "
            f"{t['save_once_s']:.2f} s once, + {t['close_s']:.2f} s for the last write), eval "
            f"{t['eval_s']:.1f} s (wall {t['wall_s']:.1f} s)"
        )
    if split_from_warm:
        lines.append(
            f"  first-save cost of fold(s) {', '.join(str(t['fold']) for t in split_from_warm)}: "
            "its saves beyond the cached folds' rate (a file without checkpoint_first_s)"
        )
    if plan is not None and cold and warm:
        n_cold = sum(plan)
        per_cold = statistics.mean(extrapolate(t, epochs, every) for t in cold)
        per_warm = statistics.mean(extrapolate(t, epochs, every) for t in warm)
        total = n_cold * per_cold + (folds - n_cold) * per_warm
        how = (
            f"{n_cold} fold(s) compiling × {per_cold / 60:.2f} min + {folds - n_cold} from the "
            f"compilation cache × {per_warm / 60:.2f} min"
        )
    else:
        total = folds * statistics.mean(extrapolate(t, epochs, every) for t in rows)
        how = f"{folds} folds × {total / folds / 60:.2f} min"
        if len(rows) == 1:
            how += " (every fold as the one measured)"
        elif plan is None and val_fraction > 0:
            how += " (an inner validation split: every fold as the mean measured one)"
        elif plan is None:
            how += " (no fold manifest of that many folds: every fold as the mean measured one)"
        else:
            how += " (the measured folds all compiling, or none: every fold as their mean)"
    if overhead_s is not None:
        total += overhead_s
        how += f" + {overhead_s:.0f} s outside the folds (start-up, data preparation)"
    lines.append(
        f"paper protocol from the training loop: {total / 60:.1f} min = {how} ({epochs} epochs, "
        f"a checkpoint every {every}, folds one after another; from the measured fold(s) above)"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, nargs="?", help="the folder `mtl-bench cv --out` wrote")
    p.add_argument(
        "--measure", type=Path, default=None, help="run the short cv first; files to DIR"
    )
    p.add_argument(
        "--tiny", action="store_true", help="with --measure: CPU-sized run (32², narrow widths)"
    )
    p.add_argument("--method", default=None, help="method folder (default: the only one)")
    p.add_argument(
        "--epochs",
        type=int,
        default=500,
        help="epochs of the protocol to extrapolate to (default 500; --measure runs 6 per fold)",
    )
    p.add_argument(
        "--checkpoint-every", type=int, default=10, help="the protocol's (default 10 epochs)"
    )
    p.add_argument("--folds", type=int, default=5, help="the protocol's folds (default 5)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.folds < 1:
        p.error("--epochs and --folds must be at least 1")
    if args.checkpoint_every < 0:
        p.error(
            f"--checkpoint-every {args.checkpoint_every}: must be >= 0 (0: one save, at the end)"
        )
    if (args.results is None) == (args.measure is None):
        p.error("give a results folder or --measure OUT (not both)")
    try:
        if args.measure is not None:
            from benchmarks.protocol_measure import measure

            lines = measure(
                args.measure, args.epochs, args.checkpoint_every, args.folds, tiny=args.tiny
            )
        else:
            lines = report(
                args.results, args.method, args.epochs, args.checkpoint_every, args.folds
            )
    except ProtocolError as e:
        print(f"protocol_time: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
