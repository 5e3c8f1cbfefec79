"""Cross-validation: the shared fold manifest, one training engine per fold, atomic result files.

``RESULTS/folds.json`` is made once (from the first run on that folder) and reused by every method
afterwards, so every method provably runs on identical folds: each result file stores the
manifest's hash, and the tables refuse to compare results with different hashes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import time
import warnings
from pathlib import Path

import numpy as np

from mtl_bench.atomic import check_out_folder
from mtl_bench.claim import claimed, fold_lock
from mtl_bench.config import RunConfig, config_differences
from mtl_bench.config_checks import check_config
from mtl_bench.cv_data import (
    dataset_for,
    duplicate_groups,
    fold_splits,
    shared_manifest,
    with_manifest_seed,
)
from mtl_bench.cv_finish import finish_fold
from mtl_bench.data.types import DataError, DataWarning
from mtl_bench.distributed import is_writer
from mtl_bench.fit import fit_fold
from mtl_bench.progress import log
from mtl_bench.provenance import git_commit
from mtl_bench.registry import model_info
from mtl_bench.validation import split_validation

_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def method_name(cfg: RunConfig, tag: str | None = None) -> str:
    """The results directory / table row of a run: the model name, or ``model@tag``. A tag is
    a folder-name part, so no path separators: ``--tag ../x`` would write outside ``--out``."""
    if tag is not None and not _TAG.fullmatch(tag):
        raise ValueError(
            f"--tag {tag!r}: letters, digits and . _ + - only, starting with a letter or digit"
        )
    return f"{cfg.model}@{tag}" if tag else cfg.model


def _class_set_tag(cfg: RunConfig, tag: str | None, quiet: bool) -> str | None:
    """The tables find three-class runs by their tag: an untagged three-class run gets it (it
    would otherwise stand in the binary tables), and a binary run cannot take it."""
    from mtl_bench.table_specs import THREE_CLASS_TAG

    three = cfg.class_set == "three_class"
    if three and not tag:
        log(f"three-class run: results go under {cfg.model}@{THREE_CLASS_TAG}", quiet=quiet)
        return THREE_CLASS_TAG
    if tag == THREE_CLASS_TAG and not three:
        raise ValueError(
            f"--tag {THREE_CLASS_TAG} marks three-class runs: add --set class_set=three_class "
            "or choose another tag"
        )
    if three and tag != THREE_CLASS_TAG:
        # Kept (a user's own analysis may want it), but said now rather than after the training:
        # the binary tables leave a three-class run out and the three-class table reads @3class.
        warnings.warn(
            f"three-class run tagged {tag!r}: {cfg.model}@{tag} will be in no table (the "
            f"three-class table reads {cfg.model}@{THREE_CLASS_TAG}; leave out --tag for it)",
            DataWarning,
            stacklevel=2,
        )
    return tag


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
    if is_writer():  # process 0 writes the results; a file is refused in every process
        check_out_folder(out)
    elif out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    git_commit()  # the code this run imported: read now, not when a fold finishes
    tag = _class_set_tag(cfg, tag, quiet)
    method = method_name(cfg, tag)
    check_config(cfg)  # a bad value fails now, before any data work or replaced checkpoint
    # Fold numbers are checked against cfg.folds before the data loads: shared_manifest writes
    # folds.json into a new --out, which a refused --fold must not leave behind. (A folds.json
    # of another k is refused by shared_manifest, so cfg.folds is the manifest's k.)
    bad = [f for f in folds or () if not 0 <= f < cfg.folds]
    if bad:
        raise ValueError(
            f"fold {', '.join(map(str, bad))} out of range: the run has folds "
            f"0..{cfg.folds - 1} (folds={cfg.folds})"
        )
    if folds is not None and not folds:
        raise ValueError("no fold chosen (--folds is empty)")
    if not is_writer():  # process 0 holds the claims for the run's processes
        return _cv_folds(cfg, out, method, folds, resume, quiet)
    # A second run of one of these folds into this folder meanwhile is refused: both would write
    # its checkpoint and result (each then failed in orbax with pages of tracebacks). Runs of
    # other folds (one fold set per GPU, as the README shows) go on side by side.
    advice = "wait for it to finish, or choose other --folds, another --out or --tag"
    with contextlib.ExitStack() as held:
        for fold in range(cfg.folds) if folds is None else folds:
            lock = fold_lock(out, method, fold)
            held.enter_context(claimed(lock, f"{out / method} fold {fold}", advice))
        return _cv_folds(cfg, out, method, folds, resume, quiet)


def _cv_folds(
    cfg: RunConfig,
    out: Path,
    method: str,
    folds: list[int] | None,
    resume: bool,
    quiet: bool,
) -> dict[int, Path]:
    """``run_cv`` once its options are checked (and, in process 0, the folder is claimed)."""
    dataset = dataset_for(cfg, quiet=quiet)
    manifest = shared_manifest(cfg, dataset, out, quiet=quiet)
    cfg = with_manifest_seed(cfg, manifest, quiet)
    if cfg.fold_parallel and model_info(cfg.model).fit is not None:
        # No training loop to batch over folds (a reproduce --set reaches every method).
        log(f"{method}: no gradient training, so fold_parallel does not apply", quiet=quiet)
        cfg = dataclasses.replace(cfg, fold_parallel=False)
    chosen = list(range(manifest.k)) if folds is None else list(folds)
    # A method's finished folds that this run keeps must share its settings: with --resume
    # every one (skipped, or left alone outside --folds), without it those outside --folds.
    kept = [f for f in range(manifest.k) if resume or f not in chosen]
    check_finished_match(cfg, [out / method / f"fold_{f}.json" for f in kept], resume=resume)
    # Every chosen fold's data is checked against the manifest before any checkpoint is removed.
    splits = fold_splits(manifest, dataset, chosen, cfg)
    if cfg.val_fraction > 0:  # the inner split can still fail (too few groups): try it now
        groups = duplicate_groups(manifest, dataset)
        for fold in chosen:
            split_validation(cfg, dataset.labels, np.asarray(splits[fold][0]), groups)
    written: dict[int, Path] = {}
    if cfg.fold_parallel:
        from mtl_bench.cv_fold_parallel import run_fold_parallel

        return run_fold_parallel(cfg, out, method, dataset, manifest, splits, resume, quiet)
    for fold in chosen:
        path = out / method / f"fold_{fold}.json"
        ckpt = out / method / f"ckpt_fold_{fold}"
        if resume and path.exists():
            log(f"{method} fold {fold}: done already ({path}), skipped", quiet=quiet)
            written[fold] = path
            continue
        if not resume and path.exists():  # its checkpoint goes once the model is built (fit)
            log(f"{method} fold {fold}: retraining; {path} will be replaced", quiet=quiet)
        train_idx, test_idx = splits[fold]
        started = time.time()
        groups = duplicate_groups(manifest, dataset)
        # fit_fold draws the same inner split (a pure function of the config and the fold).
        fit_idx, val_idx = split_validation(cfg, dataset.labels, np.asarray(train_idx), groups)
        held = f" ({len(fit_idx)} + {len(val_idx)} validation)" if val_idx is not None else ""
        # A feature method (its own fit) runs no epochs: "0 epochs, batch 16" would say nothing.
        how = (
            f"{cfg.epochs} epoch{'s' * (cfg.epochs != 1)}, batch {cfg.batch_size}{_spread(cfg)}"
            if model_info(cfg.model).fit is None
            else "features, no epochs"
        )
        log(
            f"{method} fold {fold}: {len(train_idx)} train{held} / {len(test_idx)} test, {how}",
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
            groups=groups,
        )
        finish_fold(cfg, method, fold, manifest, dataset, test_idx, run, started, path, quiet)
        written[fold] = path
    return written


def _spread(cfg: RunConfig) -> str:
    """ ", over N devices (jit)" for a data-parallel run: ``devices=0`` (all) says no number."""
    if cfg.parallel == "none":
        return ""
    from mtl_bench.parallel import select_devices

    return f" over {len(select_devices(cfg.devices))} devices ({cfg.parallel})"


def check_finished_match(
    cfg: RunConfig, paths: list[Path], *, resume: bool = True, fix: str | None = None
) -> None:
    """A one-line ValueError if any of ``paths`` (fold result files the run keeps: skipped by
    --resume, or outside --folds; absent ones are ignored) was trained with other settings than
    ``cfg``: one method's folds would mix them. ``fix``: the caller's advice (what to do)."""
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
            if fix is None:
                fix = (
                    "--resume would mix them in one method's folds: drop --resume to retrain"
                    if resume
                    else "training only some folds would mix them in one method's results: "
                    "train every fold (`cv` without --folds), give this run a --tag"
                ) + ", or use another --out"
            raise ValueError(
                f"{path}: finished with other settings ({'; '.join(diffs)}, saved → now); {fix}"
            )
