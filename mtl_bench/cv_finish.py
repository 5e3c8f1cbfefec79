"""What ``cv`` does once a fold has trained, sequential or side by side: its predicted masks,
its result file (atomic), and the line that reports it."""

from __future__ import annotations

from pathlib import Path

from mtl_bench.config import RunConfig
from mtl_bench.data.manifest import FoldManifest
from mtl_bench.data.types import Dataset
from mtl_bench.distributed import is_writer
from mtl_bench.fit import FoldRun
from mtl_bench.fold_record import fold_result, summary, write_json_atomic
from mtl_bench.progress import log


def finish_fold(
    cfg: RunConfig,
    method: str,
    fold: int,
    manifest: FoldManifest,
    dataset: Dataset,
    test_idx,
    run: FoldRun,
    started: float,
    path: Path,
    quiet: bool,
) -> None:
    """Write fold ``fold``'s masks (beside ``path``), then its result file ``path``; say so."""
    save_masks(run, path.with_name(f"fold_{fold}_masks.npz"), dataset, test_idx, cfg)
    record = fold_result(cfg, method, fold, manifest, dataset, test_idx, run, started)
    write_json_atomic(path, record)
    log(
        f"{method} fold {fold}: {summary(record)} [{record['wall_time_s']:.0f} s] → {path}"
        f"{by_writer()}",
        quiet=quiet,
    )


def by_writer() -> str:
    """After a result path in a log line: who wrote it, in a multi-process run's other processes."""
    return "" if is_writer() else " (written by process 0)"


def save_masks(run: FoldRun, path: Path, dataset: Dataset, test_idx, cfg: RunConfig) -> None:
    """The fold's predicted test masks (for the overlay figure and feature methods), written
    before the result JSON so a finished fold always has them; then the device copy is freed."""

    from mtl_bench.pred_masks import predicted_masks, save_predicted_masks

    if run.engine is not None and "mask" in run.tasks and is_writer():
        masks = predicted_masks(
            run.engine, run.state, dataset.images[test_idx], cfg.eval_batch_size
        )
        save_predicted_masks(path, [dataset.ids[i] for i in test_idx], masks)
    run.state = run.engine = None
