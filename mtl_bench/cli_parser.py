"""The ``mtl-bench`` argument parser: every subcommand's options, and usage mistakes as one line.

Split out of ``mtl_bench.cli``, which runs the parsed command; light to import (no JAX).
"""

from __future__ import annotations

import argparse

from mtl_bench.data_cli import add_data_parser
from mtl_bench.reproduce_cli import add_reproduce_arguments

DESCRIPTION = (
    "Multi-task breast-ultrasound benchmarks: data, cross-validation, tables, figures, "
    "prediction and throughput."
)
DEFAULT_RESULTS = "results/runs/latest"
DEFAULT_REFERENCE = "mtl_resunet"  # the proposed model: the tables' reference row


def _int_list(text: str) -> list[int]:
    items = [x.strip() for x in text.split(",")]
    if any(items) and not all(items):  # `0,,1`: a typo must not pass for a choice
        raise argparse.ArgumentTypeError(f"empty item in {text!r}; give comma-separated integers")
    try:
        values = [int(x) for x in items if x]
    except ValueError:
        values = []
    if not values:  # an empty list would run nothing and report success
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if len(set(values)) < len(values):  # `1,1` trained fold 1 twice, replacing its own result
        twice = sorted({v for v in values if values.count(v) > 1})
        raise argparse.ArgumentTypeError(f"{text!r} names {', '.join(map(str, twice))} twice")
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
    scale.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default=None,
        help="bf16: bf16 compute, fp32 parameters, optimiser state, loss and BN statistics "
        "(default: the config's, fp32)",
    )
    scale.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (multi-host)")
    scale.add_argument(
        "--num-processes", type=int, default=None, help="processes in all (multi-host)"
    )
    scale.add_argument("--process-id", type=int, default=None, help="this process, 0-based")
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
    parser = _Parser(prog="mtl-bench", description=DESCRIPTION)
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
    p.add_argument(
        "--file",
        required=True,
        help="local .pth/.pt/.bin (needs torch), .safetensors or .npz (never downloaded)",
    )
    p.add_argument("--out", required=True, help="folder to create")

    from benchmarks.bench_args import add_bench_arguments  # light: no jax at import

    p = sub.add_parser("bench", help="throughput: img/s, compile, GFLOPs, MFU, PyTorch peer")
    add_bench_arguments(p)
    p = sub.add_parser("figures", help="figures (PNG) from result files")
    p.add_argument("--results", default=DEFAULT_RESULTS, help=f"results folder ({DEFAULT_RESULTS})")
    p.add_argument(
        "--throughput", default=None, help="throughput CSVs (default RESULTS/throughput)"
    )
    p.add_argument(
        "--max-methods", type=int, default=8, help="methods in the overlay figure (default 8)"
    )
    p = sub.add_parser("predict", help="masks and class probabilities of new images")
    p.add_argument(
        "inputs",
        metavar="IMAGE_OR_DIR",
        help="an image, or a folder searched recursively (masks, hidden and non-image files "
        "skipped, each said)",
    )
    p.add_argument(
        "--checkpoint", required=True, help="RESULTS/<method>/ckpt_fold_K or fold_K.json"
    )
    p.add_argument(
        "--out",
        default="predictions",
        help="output folder outside the inputs (default predictions/); a rerun for the same "
        "inputs replaces its earlier outputs, other files there are never overwritten",
    )

    p = sub.add_parser("tables", help="build the paper's tables from result files")
    p.add_argument("--results", default=DEFAULT_RESULTS, help=f"results folder ({DEFAULT_RESULTS})")
    p.add_argument("--format", default="md,latex,csv", help="md, latex, csv (comma-separated)")
    p.add_argument(
        "--reference",
        default=DEFAULT_REFERENCE,
        help="the method in the proposed model's place: rows are compared with it (default "
        "mtl_resunet; e.g. a variant mtl_resunet@TAG; not @3class: the three-class table "
        "compares the reference's @3class run itself)",
    )
    p.add_argument(
        "--p-adjust",
        choices=("holm", "none"),
        default=None,
        help="multiple-comparison adjustment of the comparison tables' p values and marks "
        "(default holm: Holm-Bonferroni over the methods tested against the reference; in a "
        "reproduce folder, the one its tables were built with)",
    )
    p = sub.add_parser("reproduce", help="every method on the same folds, then all tables/figures")
    add_reproduce_arguments(p)
    _name_subcommands(parser)
    return parser
