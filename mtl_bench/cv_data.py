"""The data side of cross-validation: the run's dataset, the results folder's shared fold
manifest (``RESULTS/folds.json``, made by the first run on the folder and reused by every method
after it), and each fold's rows checked against that manifest."""

from __future__ import annotations

import dataclasses
import re
import time
import warnings
from pathlib import Path

import numpy as np

from mtl_bench.config import RunConfig
from mtl_bench.data.folds import fold_indices, manifest_for
from mtl_bench.data.manifest import FoldManifest, load_manifest, write_manifest
from mtl_bench.data.prepare import load_dataset
from mtl_bench.data.reader import OTHER_CLASS
from mtl_bench.data.types import DataError, Dataset, DataWarning
from mtl_bench.distributed import is_writer
from mtl_bench.progress import log

MANIFEST_NAME = "folds.json"


def dataset_for(cfg: RunConfig, *, quiet: bool = False) -> Dataset:
    """The run's dataset through the prepared-data cache."""
    t = time.perf_counter()
    ds = load_dataset(
        cfg.data,
        image_size=cfg.image_size,
        class_set=cfg.class_set,
        preprocess=cfg.preprocess,
        synthetic_n=cfg.synthetic_n,
        seed=cfg.synthetic_seed,
        difficulty=cfg.synthetic_difficulty,
        strict=not cfg.skip_bad_images,
    )
    counts = ", ".join(f"{k} {v}" for k, v in ds.class_counts().items())
    # A class folder outside the class set (BUSI's normal/ under binary) is left out on purpose,
    # but said, so a three-class folder is not taken for a binary one unnoticed.
    unused = [Path(p).name for p, why in ds.skipped if why.startswith(OTHER_CLASS)]
    note = (
        f"; not used: {', '.join(f'{u}/' for u in unused)} (class_set={cfg.class_set})"
        if unused
        else ""
    )
    log(
        f"data: {ds.source} — {len(ds)} images ({counts}), {cfg.image_size}², "
        f"{cfg.preprocess} [{time.perf_counter() - t:.1f} s]{note}",
        quiet=quiet,
    )
    return ds


def shared_manifest(
    cfg: RunConfig, dataset: Dataset, out: Path, *, quiet: bool = False
) -> FoldManifest:
    """Load ``out/folds.json`` or, for a new results folder, make and write it."""
    path = Path(out) / MANIFEST_NAME
    if path.exists():
        manifest = load_manifest(path)
        if manifest.k != cfg.folds:
            source = (manifest.description or {}).get("source", "unknown data")
            raise DataError(
                f"{path} has k={manifest.k} folds of {source} but the run asks for "
                f"folds={cfg.folds}: pass the --preset and --data of the run that made this "
                f"folder (or --set folds={manifest.k}), or use another --out"
            )
        return manifest
    manifest = manifest_for(dataset, k=cfg.folds, seed=cfg.fold_seed, preprocess=cfg.preprocess)
    leaks = [g["ids"] for g in manifest.duplicate_groups if g["cross_class"]]
    if leaks:  # kept in one fold, so no test image is seen in training, but labelled twice
        shown = "; ".join(" = ".join(ids) for ids in leaks[:3]) + ("; …" if len(leaks) > 3 else "")
        warnings.warn(
            f"{len(leaks)} group(s) of duplicate images carry different labels (label leakage; "
            f"each group stays in one fold): {shown} — `mtl-bench data check` lists them",
            DataWarning,
            stacklevel=2,
        )
    if not is_writer():  # other processes made the identical manifest; process 0 writes it
        return manifest
    write_manifest(manifest, path)
    log(f"folds: wrote {path} (k={manifest.k}, hash {manifest.hash()[:12]})", quiet=quiet)
    return manifest


def with_manifest_seed(cfg: RunConfig, manifest: FoldManifest, quiet: bool) -> RunConfig:
    """The folds come from the folder's manifest: its seed is what the run's record says."""
    if manifest.seed == cfg.fold_seed:
        return cfg
    log(
        f"folds: the folder's manifest was made with fold_seed={manifest.seed}; this run's "
        f"fold_seed={cfg.fold_seed} is not used (a new seed needs a new --out)",
        quiet=quiet,
    )
    return dataclasses.replace(cfg, fold_seed=manifest.seed)


def duplicate_groups(manifest: FoldManifest, dataset: Dataset) -> np.ndarray:
    """A group id per image: the manifest's duplicate groups share one, others are alone."""
    from types import SimpleNamespace

    from mtl_bench.data.duplicates import group_index

    groups = [SimpleNamespace(ids=tuple(g["ids"])) for g in manifest.duplicate_groups]
    return group_index(groups, len(dataset), list(dataset.ids))


def same_pixels(manifest: FoldManifest, cfg: RunConfig) -> bool:
    """Whether this run's images should be byte-identical to those the manifest was made from.

    A method with another input size or pre-processing (an Inception at 299², a CLAHE ablation)
    still shares the folds — ids and labels are always checked — but not the pixels.
    """
    desc = manifest.description or {}
    size = desc.get("image_size")  # [H, W] as manifest_for writes it; one int in older files
    square = list(size) if isinstance(size, list | tuple) else [size, size]
    return square == [cfg.image_size] * 2 and desc.get("preprocess") == cfg.preprocess


def fold_splits(
    manifest: FoldManifest, dataset: Dataset, folds: list[int], cfg: RunConfig
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """fold → (train, test) rows of ``dataset``; a dataset that is not the manifest's (other
    ids, labels or, at the manifest's size and pre-processing, pixels) is a DataError that
    names the data the folder's folds were made from."""
    check = same_pixels(manifest, cfg)
    if tuple(dataset.class_names) != tuple(manifest.class_names):  # the same data, other classes
        from mtl_bench.data.types import CLASS_SETS

        known = {v: k for k, v in CLASS_SETS.items()}.get(tuple(manifest.class_names))
        fix = f"add --set class_set={known}" if known else "pass data of those classes"
        have, want = manifest.class_names, dataset.class_names
        raise DataError(
            f"{manifest.where} holds folds of {len(have)} classes ({', '.join(have)}), this "
            f"run's data has {len(want)} ({', '.join(want)}): {fix}, or use another --out (a "
            "results folder holds one class set's folds)"
        )
    source = (manifest.description or {}).get("source", "other data")
    try:
        splits = {f: fold_indices(manifest, dataset, f, check_fingerprint=check) for f in folds}
    except DataError as e:
        raise DataError(f"{e} — {_which_data(source, dataset)}") from None
    made_from = (manifest.description or {}).get("source_fingerprint")
    if made_from and dataset.source_fingerprint and made_from != dataset.source_fingerprint:
        # Checked at any size and pre-processing: the pixel fingerprint above only catches other
        # data at the manifest's own, so a 299² classifier could run on edited images.
        raise DataError(
            f"{manifest.where}: this run's images or masks are not those the folds were made "
            f"from (source fingerprint {dataset.source_fingerprint[:12]}, the folds' "
            f"{made_from[:12]}; the ids and labels match) — {_which_data(source, dataset)}"
        )
    return splits


def _which_data(source: str, dataset: Dataset) -> str:
    """The end of a data-mismatch error: what the folder's folds were made from, and what to do."""
    if source == dataset.source:  # the folder named, its files changed since
        return (
            f"{source} changed since this folder's folds were made: restore its files, or use "
            "another --out for the data as it is now"
        )
    found = re.fullmatch(r"synthetic\(n=(\S+),seed=(\S+),difficulty=(\S+)\)", source)
    if found:  # load_dataset's name for the phantom: the settings that make it again
        keys = ("synthetic_n", "synthetic_seed", "synthetic_difficulty")
        sets = zip(keys, found.groups(), strict=True)
        fix = "give this run " + " ".join(f"--set {k}={v}" for k, v in sets)
    else:
        fix = "pass that --data"
    return f"this folder's folds were made from {source}: {fix}, or use another --out"
