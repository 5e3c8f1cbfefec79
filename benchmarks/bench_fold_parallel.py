"""Fold-parallel vs sequential folds: images/s of the whole k-fold protocol (issue #4's measure).

    python -m benchmarks.bench_fold_parallel --image-size 256 --batch-size 16 --epochs 3
    python -m benchmarks.bench_fold_parallel --image-size 32 --widths 4,8,16,32,64 --n 80  # CPU

Times ``--epochs`` epochs of every fold trained one after another (``fit_fold`` per fold) and of
all folds side by side (``fit_folds_parallel``) on the phantom, excluding the first (compiling)
epoch, and prints images/s of the protocol (all folds' training images per second) for both.
Set ``--precision bf16`` for bf16 compute. A figure only counts on the machine it was measured on.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tabulate import tabulate

from mtl_bench.data.types import DataError


def _rate(curves: list[list[dict]], sizes: list[int]) -> float:
    # Steady-state epochs only (the first one compiles): sum of per-fold epoch times.
    seconds = sum(
        sum(n / r["img_per_s"] for r in c[1:]) for c, n in zip(curves, sizes, strict=True)
    )
    images = sum(n * (len(c) - 1) for c, n in zip(curves, sizes, strict=True))
    return images / seconds


def _at_least(low: int):
    """An argparse type: an integer >= ``low`` (argparse then names the option and value)."""

    def parse(text: str) -> int:
        value = int(text)  # a ValueError is argparse's "invalid ... value" message
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 5 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"must be 5 positive integers like 4,8,16,32,64: {text}")
    return widths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=_at_least(16), default=64)
    ap.add_argument("--batch-size", type=_at_least(1), default=16)
    ap.add_argument("--epochs", type=_at_least(1), default=3, help="timed epochs (+1 compiling)")
    ap.add_argument("--folds", type=_at_least(2), default=5)
    ap.add_argument("--n", type=_at_least(10), default=None, help="phantom images (default 647)")
    widths = "five levels, e.g. 4,8,16,32,64 (default: the paper's 64..1024)"
    ap.add_argument("--widths", type=_widths, default=None, help=widths)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = ap.parse_args(argv)

    try:
        _compare(args)
    except (ValueError, DataError) as e:  # data too small for the folds, a size the net rejects
        ap.error(str(e))


def _compare(args: argparse.Namespace) -> None:
    import jax

    from mtl_bench.config import RunConfig
    from mtl_bench.data.folds import fold_indices, manifest_for
    from mtl_bench.data.phantom import synth_phantom
    from mtl_bench.fit import fit_fold
    from mtl_bench.fold_parallel import fit_folds_parallel

    kwargs = {"widths": args.widths} if args.widths else {}
    cfg = RunConfig(
        model_kwargs=kwargs, image_size=args.image_size, epochs=args.epochs + 1,
        batch_size=args.batch_size, preprocess="none", checkpoint_every=0,
        precision=args.precision, lr_decay_every=0,
    )  # fmt: skip
    ds = synth_phantom(args.n, image_size=args.image_size, class_set="binary")
    manifest = manifest_for(ds, k=args.folds, seed=0)
    splits = [fold_indices(manifest, ds, f) for f in range(args.folds)]
    sizes = [len(tr) for tr, _ in splits]

    t = time.perf_counter()
    seq = [fit_fold(cfg, ds, tr, te, fold=f, quiet=True) for f, (tr, te) in enumerate(splits)]
    seq_wall = time.perf_counter() - t
    t = time.perf_counter()
    par = fit_folds_parallel(cfg, ds, splits, folds=list(range(args.folds)), quiet=True)
    par_wall = time.perf_counter() - t
    # fit_folds_parallel's curve rate is all folds' images per second already.
    par_rate = float(np.median([r["img_per_s"] for r in par[0].curve[1:]]))
    seq_rate = _rate([r.curve for r in seq], sizes)
    rows = [
        ["sequential folds", f"{seq_rate:.1f}", f"{seq_wall:.1f}"],
        ["fold-parallel", f"{par_rate:.1f}", f"{par_wall:.1f}"],
    ]
    print(
        f"device: {jax.devices()[0].device_kind}, {args.folds} folds, {args.image_size}², "
        f"batch {args.batch_size}/fold, {args.precision}, {args.epochs} timed epochs"
    )
    print(
        tabulate(
            rows,
            headers=["mode", "train img/s (all folds)", "wall s (incl. compile)"],
            tablefmt="github",
        )
    )
    print(f"fold-parallel / sequential: {par_rate / seq_rate:.2f}×")


if __name__ == "__main__":
    main()
