"""The result record of one fold, ``RESULTS/<method>/fold_K.json`` (schema 1), and its atomic
write. Everything a table, a figure or a later analysis needs is in it:

- identity: ``schema`` (1), ``method`` (the model name, ``@TAG`` for a ``--tag`` run), ``model``,
  ``family``, ``fold`` (0-based; tables print it as Fold K+1), ``n_folds``, ``tasks`` ("mask",
  "label"), ``class_names`` (label order);
- ``metrics``: {"segmentation": {JSI, DC, ACC, PRE, REC, SPE} or null, "classification": {ACC,
  PRE, REC, SPE, F1, AUC} or null}, fractions; null = undefined (the AUC of a one-class fold);
- ``per_image``: lists in test order — ``id`` ("<class>/<stem>"), ``label``, ``prob`` ((n, C)
  class probabilities or null), ``JSI``/``DC`` (per image, null where ``empty_policy`` leaves an
  image out) — from which the image-level tests and CIs are computed;
- provenance: ``config`` (the full ``RunConfig``), ``params``, ``fold_manifest_hash`` (tables
  refuse to mix hashes), ``dataset_fingerprint``, ``dataset_source``,
  ``dataset_source_fingerprint`` (the raw data whatever the size and pre-processing),
  ``dataset_skipped`` ([path, why] of every file or folder of the data not used: stray files, a
  class outside the class set, bad inputs left out by ``skip_bad_images``),
  ``git_commit``, ``model_source`` (a model of the user's own: its module and the hash of its
  file, ``plugins.model_source``; null for the suite's models), ``versions``, ``device_kind``,
  ``host_cpu``, ``from_scratch``, ``finished_utc``;
- the run: ``wall_time_s``, ``train_img_per_s`` (folds trained side by side: their one run's
  time and rate, all its folds' images), ``epochs_run`` (epochs trained),
  ``selected_by_validation``, ``best_val_score`` and ``selected_epoch`` (with ``val_fraction``:
  the epoch whose weights were tested), ``train_images``, ``resumed_after_epoch`` (> 0 after
  ``--resume``: the run's times and saves count from there), ``resume_lost_epochs`` (> 0 when a
  ``--resume`` found no checkpoint and retrained an interrupted fold's epochs from the start),
  ``checkpoints_saved``, ``devices_used`` (the devices the step ran on; ``config.devices`` 0
  means all), ``setup_s``,
  ``eval_s``, ``checkpoint_s`` (the saves' blocking part), ``checkpoint_first_s`` (the first
  save's share of it: one-time costs land there), ``checkpoint_close_s`` (the wait for
  the last save's background write); a method's own fields (``moon_features``: ``mask_source``,
  the selected classifier, …; transfer learning: ``weights``; folds trained side by side:
  ``fold_parallel``, ``folds_trained_together``).

Non-finite floats are written as null. ``results_io.load_results`` reads and validates them.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mtl_bench.atomic import atomic_write
from mtl_bench.config import RunConfig
from mtl_bench.data.manifest import FoldManifest
from mtl_bench.data.types import Dataset
from mtl_bench.distributed import is_writer
from mtl_bench.fit import FoldRun
from mtl_bench.metrics import (
    classification_metrics,
    per_image_segmentation,
    segmentation_metrics_from_counts,
)
from mtl_bench.plugins import model_source
from mtl_bench.provenance import device_kind, git_commit, host_cpu, versions
from mtl_bench.registry import model_info

SCHEMA = 1


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON via a temporary file and ``os.replace``: a reader never sees half a file.

    In a multi-process run only process 0 writes.
    """
    if not is_writer():
        return
    text = json.dumps(_json_safe(data), indent=1, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text), text=True)


def float32_list(values: Any) -> list:
    """``values`` as nested lists of floats, each the shortest decimal that reads back as the
    same float32: compact, yet exact. (Rounding to 6 decimals tied a classifier's malignant
    probabilities near 1e-6 at 0, which moved AUCs recomputed from ``per_image`` by 0.004.)"""
    array = np.asarray(values, np.float32)
    exact = np.array([float(str(v)) for v in array.flat], dtype=object)  # str: float32's shortest
    return exact.reshape(array.shape).tolist()


def fold_result(
    cfg: RunConfig,
    method: str,
    fold: int,
    manifest: FoldManifest,
    dataset: Dataset,
    test_idx: np.ndarray,
    run: FoldRun,
    started: float,
) -> dict[str, Any]:
    """The schema-1 result record of one fold (fields: the module docstring)."""
    info = model_info(cfg.model)
    labels = dataset.labels[test_idx]
    ev = run.test_eval
    seg = cls = None
    per: dict[str, Any] = {
        "id": [dataset.ids[i] for i in test_idx],
        "label": labels.tolist(),
        "prob": None,
        "JSI": None,
        "DC": None,
    }
    if "counts" in ev:
        seg = segmentation_metrics_from_counts(ev["counts"], empty_policy=cfg.empty_policy)
        img = per_image_segmentation(ev["counts"], cfg.empty_policy)
        per["JSI"], per["DC"] = img["JSI"].tolist(), img["DC"].tolist()
    if "prob" in ev:
        cls = classification_metrics(labels, ev["prob"], num_classes=len(dataset.class_names))
        per["prob"] = float32_list(ev["prob"])
    return {
        "schema": SCHEMA,
        "method": method,
        "model": cfg.model,
        "family": info.family,
        "fold": fold,
        "n_folds": manifest.k,
        "tasks": list(run.tasks),
        "class_names": list(dataset.class_names),
        "metrics": {"segmentation": seg, "classification": cls},
        "per_image": per,
        "config": cfg.to_dict(),
        "params": run.params,
        # A model of the user's own: its file's hash, taken as training started (run.extras,
        # which overrides this below), else now (a feature method's fit).
        "model_source": None if "model_source" in run.extras else model_source(cfg.model),
        "fold_manifest_hash": manifest.hash(),
        "dataset_fingerprint": dataset.fingerprint(),
        "dataset_source": dataset.source,
        "dataset_source_fingerprint": dataset.source_fingerprint or None,
        # The warning names five; the record keeps every one (bad inputs left out by
        # skip_bad_images too), so what a result was trained without is never lost.
        "dataset_skipped": [[str(path), str(why)] for path, why in dataset.skipped],
        "git_commit": git_commit(),
        "versions": versions(),
        "device_kind": device_kind(),
        "host_cpu": host_cpu(),
        "from_scratch": not (
            cfg.model_kwargs.get("encoder_weights") or cfg.model_kwargs.get("weights")
        ),
        "wall_time_s": time.time() - started,
        "train_img_per_s": run.train_img_per_s,
        "epochs_run": run.epochs_run,
        **run.extras,
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def summary(record: dict) -> str:
    """One log line's worth of a record's main metrics."""
    parts = []
    seg, cls = record["metrics"]["segmentation"], record["metrics"]["classification"]
    if seg:
        dc, jsi = ("nan" if v is None else f"{v:.3f}" for v in (seg["DC"], seg["JSI"]))
        text = f"DC {dc} JSI {jsi}"
        n, total = seg.get("n_images"), len((record.get("per_image") or {}).get("id") or ())
        if n is not None and n < total:  # empty_policy "exclude": normal images are left out
            text += f" (over the {n} of {total} images with a lesion)"
        parts.append(text)
    if cls:
        auc = cls["AUC"]
        parts.append(f"ACC {cls['ACC']:.3f} AUC {'nan' if auc is None else f'{auc:.3f}'}")
    return ", ".join(parts)
