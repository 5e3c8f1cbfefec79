"""The ``mtl-bench reproduce`` subcommand: its options and its handler (the work itself:
``mtl_bench.reproduce``)."""

from __future__ import annotations

import argparse
import time

from mtl_bench.progress import log
from mtl_bench.reproduce import reproduce
from mtl_bench.reproduce_plan import PRESETS


def add_reproduce_arguments(p: argparse.ArgumentParser) -> None:
    """The ``reproduce`` subcommand's options."""
    costs = "; ".join(f"{p.name}: {p.cost}" for p in PRESETS.values())
    p.add_argument("--preset", default="smoke", choices=tuple(PRESETS), help=f"({costs})")
    p.add_argument(
        "--methods",
        default="default",
        help="default (the preset's), all (every registered method) or NAME[,NAME...]",
    )
    p.add_argument("--data", default=None, help="'synthetic' (default) or a BUSI-layout folder")
    p.add_argument("--out", default=None, help="results folder (default results/reproduce-PRESET)")
    p.add_argument("--resume", action="store_true", help="continue OUT; finished folds are kept")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="[METHOD:]KEY=VALUE",
        help="override a config field of every method (or of METHOD only)",
    )
    p.add_argument(
        "--three-class",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the three-class table's methods in OUT/three_class (default: paper only)",
    )
    p.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep every method's fold checkpoints (default: the proposed model's only)",
    )
    p.add_argument(
        "--p-adjust",
        choices=("holm", "none"),
        default=None,
        help="the tables' multiple-comparison adjustment (default holm, or on --resume what OUT's "
        "tables were built with; as `mtl-bench tables`)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run_reproduce(args: argparse.Namespace) -> int:
    """The CLI handler: run, print the tables (stdout) and a summary (stderr); 1 on failures."""
    from mtl_bench.compile_cache import enable_compile_cache
    from mtl_bench.tables import render_markdown

    enable_compile_cache()
    t0 = time.perf_counter()
    report = reproduce(
        args.preset,
        args.methods,
        data=args.data,
        out=args.out,
        resume=args.resume,
        overrides=args.overrides,
        three_class=args.three_class,
        keep_checkpoints=args.keep_checkpoints,
        p_adjust=args.p_adjust,
        quiet=args.quiet,
    )
    if report.tables:
        print(render_markdown(report.tables))
    if report.seconds:  # from the result files: folds finished by an earlier run count too
        log("training time per method (its result files, earlier runs included):", quiet=args.quiet)
    for method, secs in report.seconds.items():
        log(f"  {method:28s} {secs:7.0f} s", quiet=args.quiet)
    tables = sorted({str(p) for p in report.out.glob("**/tables")})
    log(f"tables: {', '.join(tables) or 'none'} (md, tex, csv)", quiet=args.quiet)
    figures = sorted({str(p.parent) for p in report.figures if p.parent.name == "figures"})
    log(f"figures: {len(report.figures)} PNG in {', '.join(figures) or '-'}", quiet=args.quiet)
    log(f"reproduce: {time.perf_counter() - t0:.0f} s in all", quiet=args.quiet)
    for what, msg in report.failures:
        log(f"FAILED {what}: {msg}")
    if report.failures:
        log(f"{len(report.failures)} failure(s); rerun with --resume after fixing them")
    return 1 if report.failures else 0
