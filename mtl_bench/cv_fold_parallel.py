"""``cv --fold-parallel``: the chosen folds of one method trained side by side in one program
(``fold_parallel.fit_folds_parallel``), each finished as a sequential fold is (``cv_finish``)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from mtl_bench.config import RunConfig
from mtl_bench.cv_finish import finish_fold
from mtl_bench.data.manifest import FoldManifest
from mtl_bench.data.types import Dataset
from mtl_bench.fold_io import folds_checkpoint_name
from mtl_bench.fold_parallel import fit_folds_parallel
from mtl_bench.progress import log


def run_fold_parallel(
    cfg: RunConfig,
    out: Path,
    method: str,
    dataset: Dataset,
    manifest: FoldManifest,
    splits_by_fold: dict[int, tuple[np.ndarray, np.ndarray]],
    resume: bool,
    quiet: bool,
) -> dict[int, Path]:
    """The chosen folds (``splits_by_fold``: fold → (train, test) rows) side by side in one
    program; finished folds are skipped on resume."""
    chosen = list(splits_by_fold)
    paths = {f: out / method / f"fold_{f}.json" for f in chosen}
    todo = [f for f in chosen if not (resume and paths[f].exists())]
    for f in sorted(set(chosen) - set(todo)):
        log(f"{method} fold {f}: done already ({paths[f]}), skipped", quiet=quiet)
    if not todo:
        return paths
    ckpt = out / method / folds_checkpoint_name(todo)  # cleared once the model is built
    for f in todo if not resume else ():
        if paths[f].exists():
            log(f"{method} fold {f}: retraining; {paths[f]} will be replaced", quiet=quiet)
    splits = [splits_by_fold[f] for f in todo]
    started = time.time()
    together = f"folds {todo} side by side" if len(todo) > 1 else f"fold {todo[0]}"
    log(
        f"{method} {together}: {cfg.epochs} epoch{'s' * (cfg.epochs != 1)}, batch "
        f"{cfg.batch_size} per fold (one fold-parallel program)",
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
        if not resume:  # a sequential run's checkpoint of this fold would outlive its result
            shutil.rmtree(out / method / f"ckpt_fold_{f}", ignore_errors=True)
        finish_fold(cfg, method, f, manifest, dataset, test_idx, run, started, paths[f], quiet)
    return paths
