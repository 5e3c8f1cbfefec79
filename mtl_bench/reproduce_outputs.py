"""What ``mtl-bench reproduce`` reads back from its result files: each folder's tables and
figures, a finished fold's one-line summary, and the training seconds per method."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mtl_bench.reproduce_plan import PROPOSED, THREE_CLASS_DIR, Job

if TYPE_CHECKING:
    import pandas as pd


def fold_summary(path: Path) -> str:
    """A finished fold file in one line: DC, ACC and AUC where present, how a --resume went
    (continued after epoch N, or retrained: no checkpoint), and its wall time."""
    rec = json.loads(path.read_text("utf-8"))
    seg, cls = rec["metrics"]["segmentation"], rec["metrics"]["classification"]
    parts = [f"DC {seg['DC']:.3f}"] if seg else []
    if cls:
        auc = cls["AUC"]
        parts.append(f"ACC {cls['ACC']:.3f} AUC {'—' if auc is None else f'{auc:.3f}'}")
    # How a --resume went, else a continued fold and one retrained from the start read alike.
    if after := rec.get("resumed_after_epoch"):
        parts.append(f"resumed after epoch {after} of {rec['epochs_run']}")
    if lost := rec.get("resume_lost_epochs"):
        unsaved = f"{lost} epoch{'s' * (lost != 1)} of the interrupted run unsaved"
        parts.append(f"retrained from the start ({unsaved})")
    return f"{', '.join(parts)} [{rec['wall_time_s']:.0f} s]"


def build_outputs(
    jobs: list[Job], out: Path, p_adjust: str = "holm"
) -> tuple[dict[str, pd.DataFrame], list[Path], list[tuple[str, str]]]:
    """Tables and figures of each folder, from its result files: (tables, figure paths,
    failures), a failure being (what, one-line error) so the other outputs are still built."""
    from mtl_bench.cv_data import dataset_for
    from mtl_bench.figures import build_figures
    from mtl_bench.table_specs import DEFAULT_SPECS, THREE_CLASS_TAG
    from mtl_bench.tables import build_tables

    tables: dict[str, pd.DataFrame] = {}
    figures: list[Path] = []
    failures: list[tuple[str, str]] = []
    three = [s for s in DEFAULT_SPECS if THREE_CLASS_TAG in s.reference]
    for subdir in dict.fromkeys(j.subdir for j in jobs):
        folder = out / subdir
        specs = three if subdir == THREE_CLASS_DIR else [s for s in DEFAULT_SPECS if s not in three]
        try:
            # As `mtl-bench tables`: a table none of whose methods has a result is not written.
            tables |= build_tables(
                folder, reference=PROPOSED, table_specs=specs, skip_empty=True, p_adjust=p_adjust
            )
        except Exception as e:  # still draw the figures, and report it at the end
            failures.append((f"tables of {folder}", f"{type(e).__name__}: {e}"))
        # Overlays need the images the masks were predicted on: a segmenting job's dataset.
        seg = [j for j in jobs if j.subdir == subdir and "mask" in job_tasks(j)]
        try:
            ds = dataset_for(seg[0].cfg, quiet=True) if seg else None
            figures += build_figures(folder, dataset=ds)
        except Exception as e:
            failures.append((f"figures of {folder}", f"{type(e).__name__}: {e}"))
    return tables, figures, failures


def job_tasks(job: Job) -> tuple[str, ...]:
    from mtl_bench.registry import model_info

    return model_info(job.cfg.model).tasks


def method_seconds(jobs: list[Job], out: Path) -> dict[str, float]:
    """Training wall time per method over its finished folds (from the result files). Folds
    trained side by side each record the one run's time, so that run counts once."""
    secs = {}
    for job in jobs:
        runs: dict[object, float] = {}
        for f in sorted((out / job.subdir / job.method).glob("fold_*.json")):
            rec = json.loads(f.read_text("utf-8"))
            together = rec.get("fold_parallel") and tuple(rec.get("folds_trained_together") or ())
            key = together or f.name
            runs[key] = max(runs.get(key, 0.0), rec["wall_time_s"])
        if runs:
            secs[job.method] = sum(runs.values())
    return secs
