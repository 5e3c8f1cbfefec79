"""mtl-bench command line: a thin layer that parses arguments and calls the library.

Bad input ends with one line ``mtl-bench: error: ...`` and a non-zero exit, never a traceback
(set MTL_BENCH_DEBUG=1 to see the traceback of an error).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from mtl_bench.data.types import DataError

DEFAULT_RESULTS = "results/runs/latest"


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="registered model name (mtl-bench models)")
    p.add_argument("--preset", default="smoke", help="smoke | phantom | paper (default smoke)")
    p.add_argument("--data", default=None, help="'synthetic' (default) or a BUSI-layout folder")
    p.add_argument("--out", default=DEFAULT_RESULTS, help=f"results folder ({DEFAULT_RESULTS})")
    p.add_argument("--resume", action="store_true", help="skip finished folds, resume the rest")
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
        help="train all chosen folds side by side in one program",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtl-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("models", help="list registered models")

    data = sub.add_parser("data", help="data tools").add_subparsers(dest="data_cmd", required=True)
    p = data.add_parser("check", help="integrity check and duplicate audit of a BUSI folder")
    p.add_argument("root")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--class-set", default="three_class")
    p = data.add_parser("synth", help="write the synthetic phantom in the BUSI folder layout")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=None, help="images in all (default 780, BUSI's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5)
    p.add_argument("--image-size", type=int, default=256)
    p = data.add_parser("prepare", help="build a TFDS array_record dataset (no TensorFlow)")
    p.add_argument("--dataset", required=True, choices=("busi", "busi_synthetic"))
    p.add_argument("--manual-dir", default=None, help="folder holding Dataset_BUSI_with_GT")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default ~/tensorflow_datasets)")
    p.add_argument("--image-size", type=int, default=256)
    p = data.add_parser("folds", help="write the fold manifest of a results folder")
    p.add_argument("--data", default="synthetic")
    p.add_argument("--preset", default="smoke")
    p.add_argument("--out", default=DEFAULT_RESULTS)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    p = sub.add_parser("cv", help="cross-validate a model on the shared folds")
    _add_run_options(p)
    p.add_argument("--folds", type=_int_list, default=None, help="e.g. 0,1 (default all)")
    p = sub.add_parser("train", help="train and evaluate one fold (same options as cv)")
    _add_run_options(p)
    p.add_argument("--fold", type=int, required=True)

    w = sub.add_parser("weights", help="pretrained-weights tools").add_subparsers(
        dest="weights_cmd", required=True
    )
    p = w.add_parser("import", help="port a local torchvision/timm checkpoint to an orbax folder")
    p.add_argument("--arch", required=True, help="classifier name, e.g. resnet50, inception_v3")
    p.add_argument("--file", required=True, help="local .pth/.safetensors (never downloaded)")
    p.add_argument("--out", required=True, help="folder to create")

    from benchmarks.throughput import add_bench_arguments  # light: no jax at import

    p = sub.add_parser("bench", help="throughput: img/s, compile, GFLOPs, MFU, PyTorch peer")
    add_bench_arguments(p)
    p = sub.add_parser("figures", help="figures (PNG) from result files")
    p.add_argument("--results", default=DEFAULT_RESULTS)
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
    p.add_argument("--results", default=DEFAULT_RESULTS)
    p.add_argument("--format", default="md,latex,csv", help="md, latex, csv (comma-separated)")
    p.add_argument("--reference", default="mtl_resunet")
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


def _enable_compile_cache() -> None:
    """JAX's persistent compilation cache, on by default: a second identical run skips compiling."""
    if os.environ.get("MTL_BENCH_COMPILE_CACHE", "1") == "0":
        return
    import jax

    path = os.environ.get("MTL_BENCH_COMPILE_CACHE_DIR") or str(
        Path.home() / ".cache" / "mtl_bench" / "jax_compile"
    )
    jax.config.update("jax_compilation_cache_dir", path)
    min_secs = float(os.environ.get("MTL_BENCH_COMPILE_CACHE_MIN_SECS", "1.0"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_secs)


def _run(args: argparse.Namespace) -> int:
    if args.command == "models":
        from mtl_bench.registry import list_models, model_info

        for name in list_models():
            info = model_info(name)
            print(f"{name:28s} {info.family:15s} outputs: {', '.join(info.tasks)}")
        return 0
    if args.command == "data":
        return _run_data(args)
    if args.command in ("cv", "train"):
        from mtl_bench.cv import run_cv
        from mtl_bench.distributed import init_distributed

        init_distributed(
            args.coordinator, args.num_processes, args.process_id, auto=args.distributed == "auto"
        )
        _enable_compile_cache()
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
        for path in paths:
            print(path)
        return 0
    if args.command == "predict":
        from mtl_bench.predict import predict

        _enable_compile_cache()
        report = predict(args.inputs, args.checkpoint, args.out)
        ok = sum(r["status"] == "ok" for r in report.rows)
        for r in report.failed:
            print(f"{r['file']}: {r['status']}", file=sys.stderr)
        skipped = len(report.rows) - ok - len(report.failed)
        print(
            f"{ok} predicted, {len(report.failed)} unreadable, {skipped} skipped → {report.table}"
        )
        return 1 if report.failed else 0
    if args.command == "weights":
        from mtl_bench.weights_cli import import_weights

        print(json.dumps(import_weights(args.arch, args.file, args.out), indent=2))
        return 0
    if args.command == "tables":
        from mtl_bench.tables import build_tables, render_markdown

        names = {"md": "md", "markdown": "md", "latex": "tex", "tex": "tex", "csv": "csv"}
        formats = []
        for f in args.format.split(","):
            if f.strip() not in names:
                raise ValueError(f"unknown --format {f!r}: use md, latex or csv")
            formats.append(names[f.strip()])
        tables = build_tables(args.results, formats=tuple(formats), reference=args.reference)
        print(render_markdown(tables))
        return 0
    raise AssertionError(args.command)


def _run_data(args: argparse.Namespace) -> int:
    if args.data_cmd == "check":
        from mtl_bench.data.check import check_busi

        report = check_busi(args.root, class_set=args.class_set)
        print(json.dumps(report.to_dict(), indent=1) if args.json else report.format())
        return 0 if report.ok else 1
    if args.data_cmd == "synth":
        from mtl_bench.data.phantom import write_phantom

        out = write_phantom(
            args.out, args.n, image_size=args.image_size, seed=args.seed, difficulty=args.difficulty
        )
        print(f"wrote the phantom to {out}")
        return 0
    if args.data_cmd == "prepare":
        from mtl_bench.data.tfds import prepare_tfds

        path = prepare_tfds(
            args.dataset,
            data_dir=args.data_dir,
            manual_dir=args.manual_dir,
            image_size=args.image_size,
        )
        print(f"prepared {args.dataset} at {path}")
        return 0
    if args.data_cmd == "folds":
        from mtl_bench.config import apply_overrides
        from mtl_bench.configs import get_config
        from mtl_bench.cv import MANIFEST_NAME, dataset_for, shared_manifest

        cfg = apply_overrides(
            dataclasses.replace(get_config("mtl_resunet", args.preset), data=args.data),
            args.overrides,
        )
        manifest = shared_manifest(cfg, dataset_for(cfg), Path(args.out))
        sizes = ", ".join(str(len(ids)) for ids in manifest.fold_ids)
        print(
            f"{Path(args.out) / MANIFEST_NAME}: k={manifest.k}, test sizes {sizes}, "
            f"hash {manifest.hash()}"
        )
        return 0
    raise AssertionError(args.data_cmd)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mtl_bench.train import TrainingDiverged

    try:
        return _run(args)
    except (
        DataError, TrainingDiverged, ValueError, KeyError, TypeError, FileNotFoundError,
        ImportError,
    ) as e:  # fmt: skip
        if os.environ.get("MTL_BENCH_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"mtl-bench: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mtl-bench: interrupted (rerun with --resume to continue)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
