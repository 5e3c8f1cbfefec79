"""mtl-bench command line: a thin layer that parses arguments and calls the library.

Bad input ends with one line ``mtl-bench: error: ...`` and a non-zero exit, never a traceback
(set MTL_BENCH_DEBUG=1 to see the traceback of an error).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import warnings

from mtl_bench.compile_cache import enable_compile_cache
from mtl_bench.data.types import DataError
from mtl_bench.data_cli import add_data_parser, run_data
from mtl_bench.reproduce_cli import add_reproduce_arguments, run_reproduce

DEFAULT_RESULTS = "results/runs/latest"
DEFAULT_REFERENCE = "mtl_resunet"  # the proposed model: the tables' reference row


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values:  # an empty list would run nothing and report success
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


def _add_run_options(p: argparse.ArgumentParser, *, one_fold: bool = False) -> None:
    p.add_argument("--model", required=True, help="registered model name (mtl-bench models)")
    p.add_argument("--preset", default="smoke", help="smoke | phantom | paper (default smoke)")
    p.add_argument("--data", default=None, help="'synthetic' (default) or a BUSI-layout folder")
    p.add_argument("--out", default=DEFAULT_RESULTS, help=f"results folder ({DEFAULT_RESULTS})")
    p.add_argument(
        "--resume",
        action="store_true",
        help=(
            "skip the fold if finished, else continue it"
            if one_fold
            else "skip finished folds, resume the rest"
        ),
    )
    p.add_argument("--tag", default=None, help="store results as MODEL@TAG (a variant run)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set epochs=50 --set lr=3e-4",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    scale = p.add_argument_group("scale (see README: GPUs, TPUs, clusters)")
    scale.add_argument(
        "--parallel",
        choices=("none", "jit", "pmap"),
        default=None,
        help="data parallelism over the devices (default: the config's, none)",
    )
    scale.add_argument("--devices", type=int, default=None, help="how many devices (0 = all)")
    scale.add_argument(
        "--fold-parallel",
        action="store_true",
        help="(cv) train the chosen folds side by side in one program"
        if not one_fold
        else "a fold axis of one (use cv --folds for several)",
    )
    scale.add_argument("--precision", choices=("fp32", "bf16"), default=None)
    scale.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (multi-host)")
    scale.add_argument("--num-processes", type=int, default=None)
    scale.add_argument("--process-id", type=int, default=None)
    scale.add_argument(
        "--distributed",
        choices=("off", "auto"),
        default="off",
        help="auto: let JAX read SLURM / TPU pod / Kubernetes settings",
    )


class _Version(argparse.Action):
    """``--version`` as one unwrapped line (argparse's own action wraps it at the terminal width,
    which breaks the line a bug report pastes), computed only when asked for."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version_line())
        parser.exit()


def _version_line() -> str:
    """``mtl-bench 0.1.0 (python …, jax …, …)``: what a bug report or a result needs."""
    from mtl_bench import __version__
    from mtl_bench.provenance import versions

    v = {k: x for k, x in versions().items() if k != "mtl-bench"}
    return f"mtl-bench {__version__} ({', '.join(f'{k} {x}' for k, x in v.items())})"


class _Parser(argparse.ArgumentParser):
    """Usage mistakes (an unknown option, a bad type or choice) as one ``mtl-bench: error:`` line
    pointing at the command's ``--help``, like every other error, instead of the usage block.
    Subcommands' parsers are of this class too (argparse makes them with the parent's class)."""

    def error(self, message: str, prog: str = ""):  # type: ignore[override]
        prog = prog or self.prog
        self.exit(2, f"mtl-bench: error: {message} (`{prog} --help` lists the options)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        # Leftovers are found by the top parser: name the subcommand's help, not the top one's.
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            # `mtl-bench data folds --nope` names `mtl-bench data folds --help`.
            command = getattr(ns, "command", None)
            nested = getattr(ns, f"{command}_cmd", None) if command else None
            where = " ".join([self.prog, *(c for c in (command, nested) if c)])
            self.error(f"unrecognized arguments: {' '.join(extras)}", where)
        return ns


def _name_subcommands(parser: argparse.ArgumentParser) -> None:
    """A missing subcommand is named by its choices ("required: {check,synth,...}"), not by the
    namespace attribute argparse stores it in ("required: data_cmd")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if action.metavar is None:
                action.metavar = "{" + ",".join(action.choices) + "}"
            for child in action.choices.values():
                _name_subcommands(child)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mtl-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_Version, nargs=0, help="print versions and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("models", help="list registered models")

    add_data_parser(sub, DEFAULT_RESULTS)

    p = sub.add_parser("cv", help="cross-validate a model on the shared folds")
    _add_run_options(p)
    p.add_argument("--folds", type=_int_list, default=None, help="0-based, e.g. 0,1 (default all)")
    p = sub.add_parser("train", help="train and evaluate one fold (same options as cv)")
    _add_run_options(p, one_fold=True)
    p.add_argument("--fold", type=int, required=True, help="the fold, 0-based (tables print K+1)")

    w = sub.add_parser("weights", help="pretrained-weights tools").add_subparsers(
        dest="weights_cmd", required=True
    )
    p = w.add_parser("import", help="port a local torchvision/timm checkpoint to an orbax folder")
    p.add_argument("--arch", required=True, help="classifier name, e.g. resnet50, inception_v3")
    p.add_argument("--file", required=True, help="local .pth/.safetensors (never downloaded)")
    p.add_argument("--out", required=True, help="folder to create")

    from benchmarks.bench_args import add_bench_arguments  # light: no jax at import

    p = sub.add_parser("bench", help="throughput: img/s, compile, GFLOPs, MFU, PyTorch peer")
    add_bench_arguments(p)
    p = sub.add_parser("figures", help="figures (PNG) from result files")
    p.add_argument("--results", default=DEFAULT_RESULTS, help=f"results folder ({DEFAULT_RESULTS})")
    p.add_argument(
        "--throughput", default=None, help="throughput CSVs (default RESULTS/throughput)"
    )
    p.add_argument("--max-methods", type=int, default=8, help="methods in the overlay figure")
    p = sub.add_parser("predict", help="masks and class probabilities of new images")
    p.add_argument("inputs", metavar="IMAGE_OR_DIR")
    p.add_argument(
        "--checkpoint", required=True, help="RESULTS/<method>/ckpt_fold_K or fold_K.json"
    )
    p.add_argument("--out", default="predictions", help="output folder (default predictions/)")

    p = sub.add_parser("tables", help="build the paper's tables from result files")
    p.add_argument("--results", default=DEFAULT_RESULTS, help=f"results folder ({DEFAULT_RESULTS})")
    p.add_argument("--format", default="md,latex,csv", help="md, latex, csv (comma-separated)")
    p.add_argument(
        "--reference",
        default=DEFAULT_REFERENCE,
        help="the method in the proposed model's place: rows are compared with it (default "
        "mtl_resunet; e.g. a variant mtl_resunet@TAG)",
    )
    p.add_argument(
        "--p-adjust",
        choices=("holm", "none"),
        default="holm",
        help="multiple-comparison adjustment of the comparison tables' p values and marks "
        "(default holm: Holm-Bonferroni over the methods tested against the reference)",
    )
    p = sub.add_parser("reproduce", help="every method on the same folds, then all tables/figures")
    add_reproduce_arguments(p)
    _name_subcommands(parser)
    return parser


def _config(args: argparse.Namespace):
    from mtl_bench.config import apply_overrides
    from mtl_bench.configs import get_config

    cfg = get_config(args.model, args.preset)
    if getattr(args, "data", None):
        cfg = dataclasses.replace(cfg, data=args.data)
    cfg = apply_overrides(cfg, args.overrides)
    flags = {
        "parallel": getattr(args, "parallel", None),
        "devices": getattr(args, "devices", None),
        "precision": getattr(args, "precision", None),
        "fold_parallel": True if getattr(args, "fold_parallel", False) else None,
    }
    return dataclasses.replace(cfg, **{k: v for k, v in flags.items() if v is not None})


def _run(args: argparse.Namespace) -> int:
    if args.command == "models":
        from mtl_bench.registry import list_models, model_info

        for name in list_models():
            info = model_info(name)
            print(f"{name:28s} {info.family:15s} outputs: {', '.join(info.tasks)}")
        return 0
    if args.command == "data":
        return run_data(args)
    if args.command == "reproduce":
        return run_reproduce(args)
    if args.command in ("cv", "train"):
        from mtl_bench.cv import run_cv
        from mtl_bench.distributed import init_distributed

        init_distributed(
            args.coordinator, args.num_processes, args.process_id, auto=args.distributed == "auto"
        )
        enable_compile_cache()
        cfg = _config(args)
        folds = [args.fold] if args.command == "train" else args.folds
        written = run_cv(
            cfg, args.out, folds=folds, resume=args.resume, tag=args.tag, quiet=args.quiet
        )
        for fold, path in written.items():
            print(f"fold {fold}: {path}")
        return 0
    if args.command == "bench":  # the bench manages its own compilation cache
        from benchmarks.throughput import run_from_args

        return run_from_args(args)
    if args.command == "figures":
        from mtl_bench.figures import build_figures

        paths = build_figures(
            args.results, throughput_dir=args.throughput, max_methods=args.max_methods
        )
        if not paths:
            raise DataError(
                f"{args.results}: nothing to draw (no fold_K.json results with probabilities, "
                "masks or curves, and no throughput CSVs)"
            )
        for path in paths:
            print(path)
        return 0
    if args.command == "predict":
        from mtl_bench.predict import run_predict

        enable_compile_cache()
        return run_predict(args.inputs, args.checkpoint, args.out)
    if args.command == "weights":
        from mtl_bench.weights_cli import import_weights

        print(json.dumps(import_weights(args.arch, args.file, args.out), indent=2))
        return 0
    if args.command == "tables":
        from mtl_bench.tables import (
            DEFAULT_SPECS,
            build_tables,
            normalise_formats,
            render_markdown,
        )

        formats = normalise_formats([f.strip() for f in args.format.split(",")])
        # Tables with no result at all are left out (a paper folder has no three-class runs).
        tables = build_tables(
            args.results,
            formats=formats,
            reference=args.reference,
            p_adjust=args.p_adjust,
            skip_empty=True,
            # Another reference must have run (the default may not have yet: a "not run" row).
            check_reference=args.reference != DEFAULT_REFERENCE,
        )
        print(render_markdown(tables))
        empty = [s.name for s in DEFAULT_SPECS if s.name not in tables]
        if empty:
            print(f"mtl-bench: no results for {', '.join(empty)}: not written", file=sys.stderr)
        return 0
    raise AssertionError(args.command)


def _show_data_warning(other, message, category, filename, lineno, file=None, line=None) -> None:
    """Data warnings (files skipped, empty masks, label leakage) as one ``mtl-bench: warning:``
    line each, not Python's file:line form; other warnings as usual."""
    from mtl_bench.data.types import DataWarning

    if issubclass(category, DataWarning):
        print(f"mtl-bench: warning: {message}", file=file or sys.stderr)
    else:
        other(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mtl_bench.train import TrainingDiverged

    previous = warnings.showwarning
    warnings.showwarning = functools.partial(_show_data_warning, previous)
    try:
        return _run(args)
    except BrokenPipeError:  # output piped into `head` that has closed: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (
        DataError, TrainingDiverged, ValueError, KeyError, TypeError, OSError, ImportError,
    ) as e:  # fmt: skip
        if os.environ.get("MTL_BENCH_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"mtl-bench: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Only cv, train and reproduce resume, and a fold continues only from a checkpoint.
        hint = (
            " (rerun with --resume: finished folds are kept, an unfinished one continues from "
            "its last checkpoint, or from the start with checkpoint_every=0)"
            if args.command in ("cv", "train", "reproduce")
            else ""
        )
        print(f"mtl-bench: interrupted{hint}", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":
    sys.exit(main())
