"""``mtl-bench data check|synth|prepare|folds``: the data tools' options and handler (split out of
``mtl_bench.cli`` to keep it small; behaviour unchanged)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def add_data_parser(sub: argparse._SubParsersAction, default_results: str) -> None:
    """Add the ``data`` subcommand and its four tools to the top-level subparsers ``sub``."""
    data = sub.add_parser("data", help="data tools").add_subparsers(dest="data_cmd", required=True)
    p = data.add_parser("check", help="integrity check and duplicate audit of a BUSI folder")
    p.add_argument("root", help="the folder holding benign/, malignant/ (and normal/)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument(
        "--class-set",
        default="auto",
        choices=("auto", "binary", "three_class"),
        help="auto (default): three_class when ROOT has a normal/ folder, else binary",
    )
    p = data.add_parser("synth", help="write the synthetic phantom in the BUSI folder layout")
    p.add_argument("--out", required=True, help="folder to write (BUSI layout)")
    p.add_argument("--n", type=int, default=None, help="images in all (default 780, BUSI's)")
    p.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    p.add_argument(
        "--difficulty",
        type=float,
        default=0.5,
        help="0: strong lesion contrast, little class overlap .. 1: faint, much overlap (0.5)",
    )
    p.add_argument("--image-size", type=int, default=256, help="side in pixels (default 256)")
    p = data.add_parser("prepare", help="build a TFDS array_record dataset (no TensorFlow)")
    p.add_argument("--dataset", required=True, choices=("busi", "busi_synthetic"))
    p.add_argument("--manual-dir", default=None, help="folder holding Dataset_BUSI_with_GT")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default ~/tensorflow_datasets)")
    p.add_argument("--image-size", type=int, default=256, help="side in pixels (default 256)")
    p = data.add_parser("folds", help="write the fold manifest of a results folder")
    p.add_argument("--data", default="synthetic", help="'synthetic' (default) or a BUSI folder")
    p.add_argument("--preset", default="smoke", help="smoke | phantom | paper (default smoke)")
    p.add_argument("--out", default=default_results, help=f"results folder ({default_results})")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="as for cv: the fields the folds depend on (folds, fold_seed, image_size, ...)",
    )


def _phantom_said(folder: Path) -> str | None:
    """The phantom in ``folder`` in a few words (from its ``PHANTOM.json``), None if none is."""
    from mtl_bench.data.phantom import MARKER

    try:
        info = json.loads((folder / MARKER).read_text("utf-8"))
        n, size = sum(info["counts"].values()), info["image_size"]
        said = f"{n} images, {size}², seed {info['seed']}, difficulty {info['difficulty']}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return said if info.get("complete") else f"{said}, unfinished"


def run_data(args: argparse.Namespace) -> int:
    """Run the chosen data tool; the exit status (check: 1 when the folder has problems)."""
    if args.data_cmd == "check":
        from mtl_bench.data.check import check_busi
        from mtl_bench.data.types import DataError

        try:
            report = check_busi(args.root, class_set=args.class_set)
        except DataError as e:
            if args.json:  # a script reading stdout gets JSON whatever went wrong
                print(json.dumps({"root": args.root, "ok": False, "error": str(e)}, indent=1))
            raise
        print(json.dumps(report.to_dict(), indent=1) if args.json else report.format())
        return 0 if report.ok else 1
    if args.data_cmd == "synth":
        from mtl_bench.atomic import check_out_folder
        from mtl_bench.data.phantom import write_phantom

        check_out_folder(args.out)
        before = _phantom_said(Path(args.out))  # write_phantom clears an earlier phantom's files
        out = write_phantom(
            args.out, args.n, image_size=args.image_size, seed=args.seed, difficulty=args.difficulty
        )
        after = _phantom_said(out)
        if before is None:
            print(f"wrote the phantom to {out} ({after})")
        elif before == after:
            print(f"wrote the phantom to {out} ({after}; the same as the one it replaced)")
        else:
            print(f"wrote the phantom to {out} ({after}), replacing the one there ({before})")
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
        from mtl_bench.atomic import check_out_folder
        from mtl_bench.config import apply_overrides, check_options_agree
        from mtl_bench.config_checks import check_config
        from mtl_bench.configs import get_config
        from mtl_bench.cv_data import MANIFEST_NAME, dataset_for, fold_splits, shared_manifest

        base = dataclasses.replace(get_config("mtl_resunet", args.preset), data=args.data)
        if args.data != "synthetic":  # given: a --set data= must agree (it had won in silence)
            check_options_agree(base, args.overrides, {"data": args.data})
        cfg = apply_overrides(base, args.overrides)
        check_config(cfg)  # a bad --set value (folds=1) fails before the data is read
        path = Path(args.out) / MANIFEST_NAME
        check_out_folder(args.out)  # before reading the data
        existed = path.exists()
        dataset = dataset_for(cfg)
        manifest = shared_manifest(cfg, dataset, Path(args.out))
        if existed:  # the folder's folds stand: this data must be theirs, as cv would require
            fold_splits(manifest, dataset, list(range(manifest.k)), cfg)
        sizes = ", ".join(str(len(ids)) for ids in manifest.fold_ids)
        state = "already there, matches this data" if existed else "written"
        print(f"{path}: {state}; k={manifest.k}, test sizes {sizes}, hash {manifest.hash()}")
        return 0
    raise AssertionError(args.data_cmd)
