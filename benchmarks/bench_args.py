"""The bench's command-line options and their checks (no jax at import: the CLI's
``mtl-bench bench --help`` stays instant). Model options (``--set``): ``bench_kwargs.py``."""

from __future__ import annotations

import argparse
import math
from typing import Any

from benchmarks.bench_checks import check_paths
from benchmarks.time_box import parse_time_box


def _csv_list(kind: type) -> Any:
    what = {int: "integers", float: "numbers"}.get(kind, "values")

    def parse(text: str) -> list:
        items = [x.strip() for x in text.split(",")]
        if not all(items):  # `4,,8` was silently 4,8: a typo must not shrink the grid unseen
            raise argparse.ArgumentTypeError(f"empty item in {text!r}; give comma-separated {what}")
        try:
            values = [kind(x) for x in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what}, got {text!r}"
            ) from None
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:  # `fp32,fp32` measured the same configuration twice, as two rows
            raise argparse.ArgumentTypeError(f"{', '.join(twice)} given twice in {text!r}")
        return values

    return parse


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Make ``parser``'s own errors (a bad type or choice) one ``PROG: error: ...`` line like
    every other bench error, not the whole usage. Set on this parser only: under ``mtl-bench``
    it is the bench subparser, whose errors argparse raises through it (its prog is ``mtl-bench
    bench``; the line says ``mtl-bench``, as the CLI's other errors do)."""
    prog = parser.prog.split()[0]

    def error(message: str):
        parser.exit(2, f"{prog}: error: {message} (`{parser.prog} --help` lists the options)\n")

    parser.error = error  # type: ignore[method-assign]


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """The bench options (shared by ``mtl-bench bench`` and ``python -m benchmarks.throughput``).

    Every help text states its default in words: the parser may be the CLI's subparser, whose
    formatter is not ours, and list defaults print better as ``16,64`` than as ``[16, 64]``."""
    _one_line_errors(p)
    p.add_argument(
        "--models", default="mtl_resunet", help="all | NAME[,NAME...] (default: mtl_resunet)"
    )
    p.add_argument(
        "--batch-sizes", type=_csv_list(int), default=[16, 64], help="e.g. 16,64 (default: 16,64)"
    )
    p.add_argument(
        "--precision", type=_csv_list(str), default=["bf16"], help="fp32,bf16 (default: bf16)"
    )
    p.add_argument("--image-size", type=int, default=256, help="pixels per side (default: 256)")
    p.add_argument(
        "--parallel",
        type=_csv_list(str),
        default=["none"],
        help="none,jit,pmap,fold (default: none)",
    )
    p.add_argument(
        "--folds", type=int, default=5, help="folds side by side for --parallel fold (default: 5)"
    )
    p.add_argument(
        "--fold-conv",
        type=_csv_list(str),
        default=["unrolled"],
        help="--parallel fold convolutions: grouped,split_wgrad,unrolled, see "
        "mtl_bench/fold_conv.py (default: unrolled)",
    )
    p.add_argument(
        "--devices",
        type=_csv_list(int),
        default=[1],
        help="device counts for jit/pmap, e.g. 1,8; 0 = all devices (default: 1)",
    )
    p.add_argument(
        "--steps", type=int, default=10, help="timed steps, median reported (default: 10)"
    )
    p.add_argument(
        "--warmup", type=int, default=3, help="untimed steps after compiling (default: 3)"
    )
    p.add_argument(
        "--set",
        dest="model_kwargs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model kwarg for every model (KEY=VALUE) or one (MODEL:KEY=VALUE), e.g. "
        "--set mtl_resunet:widths=(8,16,32,64,128); repeatable (default: the registered "
        "defaults)",
    )
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a training-config field for every configuration (mtl_bench/config.py), e.g. "
        "--config optimizer_flatten=true; sizes, precision and strategy have their own options; "
        "repeatable (default: RunConfig's defaults)",
    )
    p.add_argument("--out", default="results", help="CSV under OUT/throughput/ (default: results)")
    p.add_argument(
        "--csv",
        default=None,
        help="write/extend this CSV file instead of a new one under --out (default: none)",
    )
    p.add_argument(
        "--profile",
        default=None,
        metavar="DIR",
        help="trace 3 steps per configuration into DIR (default: no tracing)",
    )
    p.add_argument(
        "--peer",
        choices=("none", "torch"),
        default="none",
        help="time each model's PyTorch twin too (default: none)",
    )
    p.add_argument(
        "--peer-timeout",
        type=float,
        default=300.0,
        help="seconds per model and mode (eager, compile); cut to what --time-box leaves "
        "(default: 300)",
    )
    p.add_argument(
        "--peer-compile",
        choices=("on", "off"),
        default="on",
        help="also time the twin under torch.compile (default: on)",
    )
    p.add_argument(
        "--compile-cache",
        default="fresh",
        help="fresh (a new temporary persistent cache: cold then warm compile) | off | DIR "
        "(default: fresh)",
    )
    p.add_argument(
        "--time-box",
        default=None,
        metavar="SECONDS",
        help="the bench's own deadline from its start: a configuration or peer run that would "
        "not fit is not started and its row says so (default: no limit)",
    )


# RunConfig fields the bench sets from its own options: a --config for them would contradict the
# row's own columns (model options go through --set, recorded in model_kwargs).
BENCH_OWNED = ("model", "model_kwargs", "image_size", "batch_size", "eval_batch_size",
               "precision", "parallel", "devices", "fold_conv", "fold_parallel")  # fmt: skip


def check_config(items: list[str]) -> None:
    """One-line errors for --config items that are unknown or set by the bench's own options."""
    from mtl_bench.config import MODEL_KWARG_ALIASES, RunConfig, apply_overrides

    for item in items:
        key = item.partition("=")[0].strip()
        if key in BENCH_OWNED:
            raise ValueError(f"--config {item!r}: {key} is set by the bench's own options")
        if key.startswith("model_kwargs.") or key in MODEL_KWARG_ALIASES:
            raise ValueError(f"--config {item!r}: a model option; give it with --set")
        try:
            apply_overrides(RunConfig(), [item])  # unknown key or bad value: a one-line ValueError
        except ValueError as e:
            # apply_overrides speaks for the CLI's --set; here the user typed --config (and the
            # bench's own --set means model kwargs). Its messages name the option once, first.
            raise ValueError(str(e).replace("--set ", "--config ", 1)) from None


def check_options(args: argparse.Namespace) -> None:
    """One-line ValueErrors for bad sizes, precisions, strategies, fold settings, device counts,
    peer time box, time box and paths, all before anything is measured."""
    for name, value in (("--steps", args.steps), ("--image-size", args.image_size)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if args.warmup < 0:
        raise ValueError(f"--warmup {args.warmup}: must be >= 0")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        sizes = ",".join(map(str, args.batch_sizes)) or "''"  # '' : `--batch-sizes ,`
        raise ValueError(f"--batch-sizes {sizes}: must be positive integers")
    bad = [p for p in args.precision if p not in ("fp32", "bf16")]
    if bad or not args.precision:
        raise ValueError(f"--precision takes fp32 and/or bf16, got {','.join(args.precision)}")
    bad = [s for s in args.parallel if s not in ("none", "jit", "pmap", "fold")]
    if bad or not args.parallel:
        msg = f"--parallel takes none, jit, pmap and/or fold, got {','.join(args.parallel)}"
        raise ValueError(msg)
    if "fold" in args.parallel and args.folds < 2:
        raise ValueError(f"--folds must be >= 2 for --parallel fold, got {args.folds}")
    if "fold" not in args.parallel:  # as --devices below: not ignored without a word
        given = [f"--folds {args.folds}"] if args.folds != 5 else []
        if args.fold_conv != ["unrolled"]:
            given.append(f"--fold-conv {','.join(args.fold_conv)}")
        if given:
            raise ValueError(
                f"{' and '.join(given)}: only --parallel fold trains folds side by side; "
                f"--parallel {','.join(args.parallel)} does not (add fold, or leave them out)"
            )
    if not args.devices or min(args.devices) < 0:
        devices = ",".join(map(str, args.devices))
        raise ValueError(f"--devices takes device counts >= 0 (0 = all), got {devices!r}")
    if args.devices != [1] and not {"jit", "pmap"} & set(args.parallel):
        # none and fold run on one device: the counts would be ignored without a word.
        devices = ",".join(map(str, args.devices))
        raise ValueError(
            f"--devices {devices}: only --parallel jit and pmap span devices; --parallel "
            f"{','.join(args.parallel)} runs on one (add jit or pmap, or leave --devices out)"
        )
    if not math.isfinite(args.peer_timeout) or args.peer_timeout <= 0:
        raise ValueError(
            f"--peer-timeout must be a positive number of seconds, got {args.peer_timeout}"
        )
    parse_time_box(getattr(args, "time_box", None))
    check_paths(args)
