"""Cross-validation: the shared fold manifest, one training engine per fold, atomic result files.

``RESULTS/folds.json`` is made once (from the first run on that folder) and reused by every method
afterwards, so every method provably runs on identical folds: each result file stores the
manifest's hash, and the tables refuse to compare results with different hashes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from mtl_bench.config import RunConfig, check_config, config_differences
from mtl_bench.data.folds import (
    FoldManifest,
    fold_indices,
    load_manifest,
    manifest_for,
    write_manifest,
)
from mtl_bench.data.prepare import load_dataset
from mtl_bench.data.types import DataError, Dataset, DataWarning
from mtl_bench.distributed import is_writer
from mtl_bench.fit import FoldRun, fit_fold
from mtl_bench.fold_io import folds_checkpoint_name
from mtl_bench.fold_record import fold_result, summary, write_json_atomic
from mtl_bench.progress import log
from mtl_bench.provenance import git_commit
from mtl_bench.registry import model_info

MANIFEST_NAME = "folds.json"


def method_name(cfg: RunConfig, tag: str | None = None) -> str:
    """The results directory / table row of a run: the model name, or ``model@tag``."""
    return f"{cfg.model}@{tag}" if tag else cfg.model


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
    log(
        f"data: {ds.source} — {len(ds)} images ({counts}), {cfg.image_size}², "
        f"{cfg.preprocess} [{time.perf_counter() - t:.1f} s]",
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


def run_cv(
    cfg: RunConfig,
    out: str | os.PathLike,
    *,
    folds: list[int] | None = None,
    resume: bool = False,
    tag: str | None = None,
    quiet: bool = False,
) -> dict[int, Path]:
    """Train and evaluate ``cfg.model`` on the chosen folds of the shared manifest under ``out``.

    With ``resume``, finished folds (their result file exists) are skipped and an interrupted fold
    continues from its last checkpoint. Without it, a fold is trained afresh and its old result
    and checkpoints are replaced. Returns {fold: result path}.
    """
    out = Path(out)
    git_commit()  # the code this run imported: read now, not when a fold finishes
    method = method_name(cfg, tag)
    check_config(cfg)  # a bad value fails now, before any data work or replaced checkpoint
    dataset = dataset_for(cfg, quiet=quiet)
    manifest = shared_manifest(cfg, dataset, out, quiet=quiet)
    cfg = _with_manifest_seed(cfg, manifest, quiet)
    if cfg.fold_parallel and model_info(cfg.model).fit is not None:
        # No training loop to batch over folds (a reproduce --set reaches every method).
        log(f"{method}: no gradient training, so fold_parallel does not apply", quiet=quiet)
        cfg = dataclasses.replace(cfg, fold_parallel=False)
    chosen = list(range(manifest.k)) if folds is None else list(folds)
    bad = [f for f in chosen if not 0 <= f < manifest.k]
    if bad:
        raise ValueError(
            f"fold {', '.join(map(str, bad))} out of range: {out / MANIFEST_NAME} has folds "
            f"0..{manifest.k - 1}"
        )
    if resume:
        check_finished_match(cfg, [out / method / f"fold_{f}.json" for f in chosen])
    written: dict[int, Path] = {}
    if cfg.fold_parallel:
        return _run_fold_parallel(cfg, out, method, dataset, manifest, chosen, resume, quiet)
    for fold in chosen:
        path = out / method / f"fold_{fold}.json"
        ckpt = out / method / f"ckpt_fold_{fold}"
        if resume and path.exists():
            log(f"{method} fold {fold}: done already ({path}), skipped", quiet=quiet)
            written[fold] = path
            continue
        if not resume and path.exists():
            log(f"{method} fold {fold}: retraining; {path} will be replaced", quiet=quiet)
        if not resume and ckpt.exists():
            shutil.rmtree(ckpt)
        train_idx, test_idx = fold_indices(
            manifest, dataset, fold, check_fingerprint=_same_pixels(manifest, cfg)
        )
        started = time.time()
        log(
            f"{method} fold {fold}: {len(train_idx)} train / {len(test_idx)} test, "
            f"{cfg.epochs} epoch{'s' * (cfg.epochs != 1)}, batch {cfg.batch_size}",
            quiet=quiet,
        )
        run = fit_fold(
            cfg,
            dataset,
            train_idx,
            test_idx,
            fold=fold,
            ckpt_dir=ckpt,
            curve_path=out / method / f"fold_{fold}_curve.csv",
            resume=resume,
            quiet=quiet,
            keep_state=True,
            groups=_duplicate_groups(manifest, dataset),
        )
        _save_masks(run, out / method / f"fold_{fold}_masks.npz", dataset, test_idx, cfg)
        record = fold_result(cfg, method, fold, manifest, dataset, test_idx, run, started)
        write_json_atomic(path, record)
        written[fold] = path
        log(
            f"{method} fold {fold}: {summary(record)} [{record['wall_time_s']:.0f} s] → {path}",
            quiet=quiet,
        )
    return written


def _with_manifest_seed(cfg: RunConfig, manifest: FoldManifest, quiet: bool) -> RunConfig:
    """The folds come from the folder's manifest: its seed is what the run's record says."""
    if manifest.seed == cfg.fold_seed:
        return cfg
    log(
        f"folds: the folder's manifest was made with fold_seed={manifest.seed}; this run's "
        f"fold_seed={cfg.fold_seed} is not used (a new seed needs a new --out)",
        quiet=quiet,
    )
    return dataclasses.replace(cfg, fold_seed=manifest.seed)


def check_finished_match(cfg: RunConfig, paths: list[Path]) -> None:
    """--resume skips finished folds: a one-line ValueError if any of ``paths`` (fold result
    files; absent ones are ignored) was trained with other settings than ``cfg``."""
    new = json.loads(json.dumps(cfg.to_dict(), default=str))
    for path in paths:
        if not path.exists():
            continue
        try:
            old = json.loads(path.read_text("utf-8")).get("config") or {}
        except (OSError, ValueError, AttributeError) as e:
            raise DataError(f"{path}: cannot read its config ({e})") from None
        diffs = config_differences(old, new)
        if diffs:
            raise ValueError(
                f"{path}: finished with other settings ({'; '.join(diffs)}, saved → now); "
                "--resume would mix them in one method's folds: drop --resume to retrain, or "
                "use another --out"
            )


def _run_fold_parallel(
    cfg: RunConfig,
    out: Path,
    method: str,
    dataset: Dataset,
    manifest: FoldManifest,
    chosen: list[int],
    resume: bool,
    quiet: bool,
) -> dict[int, Path]:
    """The chosen folds side by side in one program; finished folds are skipped on resume."""
    from mtl_bench.fold_parallel import fit_folds_parallel

    paths = {f: out / method / f"fold_{f}.json" for f in chosen}
    todo = [f for f in chosen if not (resume and paths[f].exists())]
    for f in sorted(set(chosen) - set(todo)):
        log(f"{method} fold {f}: done already ({paths[f]}), skipped", quiet=quiet)
    if not todo:
        return paths
    ckpt = out / method / folds_checkpoint_name(todo)
    if not resume and ckpt.exists():
        shutil.rmtree(ckpt)
    check = _same_pixels(manifest, cfg)
    splits = [fold_indices(manifest, dataset, f, check_fingerprint=check) for f in todo]
    started = time.time()
    log(
        f"{method} folds {todo}: trained side by side, {cfg.epochs} "
        f"epoch{'s' * (cfg.epochs != 1)}, batch {cfg.batch_size} per fold",
        quiet=quiet,
    )
    runs = fit_folds_parallel(
        cfg,
        dataset,
        splits,
        folds=todo,
        ckpt_dir=ckpt,
        resume=resume,
        quiet=quiet,
        curve_paths=[out / method / f"fold_{f}_curve.csv" for f in todo],
        keep_state=True,
    )
    for f, (_, test_idx), run in zip(todo, splits, runs, strict=True):
        _save_masks(run, out / method / f"fold_{f}_masks.npz", dataset, test_idx, cfg)
        record = fold_result(cfg, method, f, manifest, dataset, test_idx, run, started)
        write_json_atomic(paths[f], record)
        log(
            f"{method} fold {f}: {summary(record)} [{record['wall_time_s']:.0f} s] → {paths[f]}",
            quiet=quiet,
        )
    return paths


def _save_masks(run: FoldRun, path: Path, dataset: Dataset, test_idx, cfg: RunConfig) -> None:
    """The fold's predicted test masks (for the overlay figure and feature methods), written
    before the result JSON so a finished fold always has them; then the device copy is freed."""
    import jax

    from mtl_bench.pred_masks import predicted_masks, save_predicted_masks

    if run.engine is not None and "mask" in run.tasks and is_writer() and jax.process_count() == 1:
        masks = predicted_masks(
            run.engine, run.state, dataset.images[test_idx], cfg.eval_batch_size
        )
        save_predicted_masks(path, [dataset.ids[i] for i in test_idx], masks)
    run.state = run.engine = None


def _duplicate_groups(manifest: FoldManifest, dataset: Dataset) -> np.ndarray:
    """A group id per image: the manifest's duplicate groups share one, others are alone."""
    from types import SimpleNamespace

    from mtl_bench.data.duplicates import group_index

    groups = [SimpleNamespace(ids=tuple(g["ids"])) for g in manifest.duplicate_groups]
    return group_index(groups, len(dataset), list(dataset.ids))


def _same_pixels(manifest: FoldManifest, cfg: RunConfig) -> bool:
    """Whether this run's images should be byte-identical to those the manifest was made from.

    A method with another input size or pre-processing (an Inception at 299², a CLAHE ablation)
    still shares the folds — ids and labels are always checked — but not the pixels.
    """
    desc = manifest.description or {}
    return desc.get("image_size") == cfg.image_size and desc.get("preprocess") == cfg.preprocess
