"""Write schema-1 result files ``ROOT/<method>/fold_<K>.json`` with controlled numbers, for tests.

Every method sees the same images (ids, labels, fold assignment: image i is in fold i % k), as
real runs on one fold manifest do. Per method, ``seg_quality`` sets the mean per-image DC and
``cls_quality`` the chance an image is classified correctly; fold-level classification metrics
are computed from the written per-image probabilities, so the file is self-consistent.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from mtl_bench.metrics import classification_metrics

BINARY = ("benign", "malignant")


def result_path(root: str | Path, method: str, fold: int) -> Path:
    """Where the result file of ``method`` on ``fold`` lives."""
    return Path(root) / method / f"fold_{fold}.json"


def _clean(value):
    """NaN → None (JSON null, as the schema says), numpy scalars → Python numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cls_metrics(labels: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """ACC, PRE, REC, SPE, F1, AUC (malignant positive; macro one-vs-rest for 3 classes)."""
    c, pred = prob.shape[1], prob.argmax(axis=1)
    per = {"PRE": [], "REC": [], "SPE": [], "F1": []}
    for k in [1] if c == 2 else range(c):
        tp = np.sum((pred == k) & (labels == k))
        fp = np.sum((pred == k) & (labels != k))
        fn = np.sum((pred != k) & (labels == k))
        tn = labels.size - tp - fp - fn
        per["PRE"].append(tp / (tp + fp) if tp + fp else 0.0)
        per["REC"].append(tp / (tp + fn) if tp + fn else 0.0)
        per["SPE"].append(tn / (tn + fp) if tn + fp else 0.0)
        per["F1"].append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    out = {k: float(np.mean(v)) for k, v in per.items()}
    out["ACC"] = float(np.mean(pred == labels))
    if len(np.unique(labels)) < c:
        out["AUC"] = math.nan  # AUC is undefined when a class is missing from the fold
    elif c == 2:
        out["AUC"] = float(roc_auc_score(labels, prob[:, 1]))
    else:
        out["AUC"] = float(roc_auc_score(labels, prob, multi_class="ovr", average="macro"))
    return out


def _probs(rng, labels: np.ndarray, c: int, quality: float) -> np.ndarray:
    """Probabilities whose argmax is the true label with chance ``quality``."""
    n = labels.size
    correct = rng.random(n) < quality
    wrong = (labels + rng.integers(1, c, size=n)) % c
    target = np.where(correct, labels, wrong)
    top = rng.uniform(0.55, 0.99, size=n)
    rest = rng.dirichlet(np.ones(c - 1), size=n) * (1 - top)[:, None]
    prob = np.empty((n, c))
    for i in range(n):
        others = [k for k in range(c) if k != target[i]]
        prob[i, target[i]] = top[i]
        prob[i, others] = rest[i]
    return prob


def write_fixture_results(
    root: str | Path,
    methods: Mapping[str, Mapping] | Iterable[str] = ("mtl_resunet",),
    *,
    n_folds: int = 5,
    n_images: int = 40,
    seed: int = 0,
    class_names: tuple[str, ...] = BINARY,
    curve_epochs: int = 0,
    duplicate_groups: list[list[str]] | None = None,
) -> dict[str, dict[int, dict]]:
    """Write result files and return them as {method: {fold: record}} (the numbers written).

    ``methods`` maps a method (folder) name to options: seg_quality (0.8), cls_quality (0.85),
    tasks (("mask", "label")), family, folds (which folds to write; default all),
    manifest_hash, config (overrides), class_names. A plain list uses the defaults.
    ``curve_epochs`` > 0 also writes ``fold_<K>_curve.csv`` learning curves of that length.
    ``duplicate_groups`` (lists of ids, each inside one fold; [] for none) also writes the fold
    manifest ``ROOT/folds.json`` naming them, whose hash the results then carry.
    """
    root = Path(root)
    methods = {m: {} for m in methods} if not isinstance(methods, Mapping) else dict(methods)
    data_rng = np.random.default_rng(seed)
    base_labels = data_rng.permutation(np.arange(n_images) % len(class_names))
    fold_of = np.arange(n_images) % n_folds
    default_hash = hashlib.sha256(f"fixture-folds-{n_folds}-{n_images}-{seed}".encode()).hexdigest()
    if duplicate_groups is not None:
        ids = [f"{class_names[y]}/img_{i:03d}" for i, y in enumerate(base_labels)]
        default_hash = _write_manifest(
            root, ids, base_labels, fold_of, class_names, duplicate_groups
        )
    written: dict[str, dict[int, dict]] = {}
    for method, opt in methods.items():
        names = tuple(opt.get("class_names", class_names))
        labels = base_labels % len(names)
        ids = [f"{names[y]}/img_{i:03d}" for i, y in enumerate(labels)]
        # A stable per-method stream, so adding a method does not change the others' numbers.
        rng = np.random.default_rng([seed, zlib.crc32(method.encode())])
        tasks = tuple(opt.get("tasks", ("mask", "label")))
        seg_q, cls_q = opt.get("seg_quality", 0.8), opt.get("cls_quality", 0.85)
        dc = np.clip(seg_q + rng.normal(0, 0.08, n_images), 0.05, 0.99)
        jsi = dc / (2 - dc)
        prob = _probs(rng, labels, len(names), cls_q)
        model = method.split("@")[0]
        family = opt.get("family") or (
            "proposed"
            if len(tasks) == 2
            else "segmentation"
            if "mask" in tasks
            else "classification"
        )
        config = {
            "model": model, "dataset": "busi_synthetic", "image_size": 64,
            "class_set": "binary" if len(names) == 2 else "three_class", "preprocess": "mpghe",
            "batch_size": 16, "optimizer": "adam", "lr": 1e-4, "lr_decay_every": 20,
            "lr_decay_factor": 0.1, "epochs": 500, "seed": seed, "precision": "float32",
            "empty_policy": "exclude",
        }  # fmt: skip
        config.update(opt.get("config", {}))
        written[method] = {}
        for fold in opt.get("folds", range(n_folds)):
            sel = np.flatnonzero(fold_of == fold)
            seg = cls = None
            if "mask" in tasks:
                seg = {"JSI": jsi[sel].mean(), "DC": dc[sel].mean(), "n_images": int(sel.size)}
                for key in ("ACC", "PRE", "REC", "SPE"):
                    seg[key] = float(np.clip(seg_q + 0.15 + rng.normal(0, 0.02), 0, 1))
            if "label" in tasks:
                cls = _cls_metrics(labels[sel], prob[sel])
            record = {
                "schema": 1, "method": method, "model": model, "family": family,
                "fold": fold, "n_folds": n_folds, "tasks": list(tasks), "class_names": list(names),
                "metrics": {"segmentation": seg, "classification": cls},
                "per_image": {
                    "id": [ids[i] for i in sel], "label": labels[sel].tolist(),
                    "prob": prob[sel].tolist() if cls else None,
                    "JSI": jsi[sel].tolist() if seg else None,
                    "DC": dc[sel].tolist() if seg else None,
                },
                "config": config,
                "fold_manifest_hash": opt.get("manifest_hash", default_hash),
                "dataset_fingerprint": hashlib.sha256(b"fixture-data").hexdigest(),
                "git_commit": "unknown", "versions": {"python": "3.11", "mtl_bench": "0.1.0"},
                "device_kind": "cpu", "from_scratch": True, "wall_time_s": 1.5,
                "train_img_per_s": 100.0, "epochs_run": config["epochs"],
                "finished_utc": "2025-01-01T00:00:00Z",
            }  # fmt: skip
            record = _clean(record)
            path = result_path(root, method, fold)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, allow_nan=False, indent=1), encoding="utf-8")
            if curve_epochs:
                _write_curve(path.with_name(f"fold_{fold}_curve.csv"), curve_epochs, rng)
            written[method][fold] = record
    return written


def _write_manifest(root, ids, labels, fold_of, class_names, groups) -> str:
    """Write ROOT/folds.json for the fixture's folds with ``groups`` as near duplicates."""
    from mtl_bench.data.folds import FoldManifest, write_manifest

    k = int(fold_of.max()) + 1
    manifest = FoldManifest(
        k=k, seed=0, class_set="binary" if len(class_names) == 2 else "three_class",
        class_names=tuple(class_names),
        fold_ids=[[ids[i] for i in np.flatnonzero(fold_of == f)] for f in range(k)],
        fold_labels=[labels[fold_of == f].tolist() for f in range(k)],
        fingerprint=hashlib.sha256(b"fixture-data").hexdigest(),
        duplicate_groups=[{"ids": list(g), "kind": "near", "cross_class": False} for g in groups],
    )  # fmt: skip
    write_manifest(manifest, Path(root) / "folds.json")
    return manifest.hash()


def edit_result(root: str | Path, method: str, folds: Iterable[int], change) -> None:
    """Rewrite ``method``'s fold files ``folds``: ``change(record)`` edits each in place."""
    for fold in folds:
        path = result_path(root, method, fold)
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))


def refresh_metrics(record: dict) -> None:
    """Recompute the fold metrics the loader cross-checks against ``per_image`` (classification,
    and segmentation JSI / DC) after a test edited the per-image values."""
    per, metrics = record["per_image"], record["metrics"]
    if per.get("prob") and metrics.get("classification") is not None:
        labels, prob = np.asarray(per["label"]), np.asarray(per["prob"], dtype=float)
        cls = classification_metrics(labels, prob, num_classes=prob.shape[1])
        cls.pop("n_samples")
        metrics["classification"].update(_clean(cls))
    for key in ("JSI", "DC"):
        kept = [v for v in per.get(key) or () if v is not None]
        if kept and metrics.get("segmentation") is not None:
            metrics["segmentation"][key] = float(np.mean(kept))


def _write_curve(path: Path, epochs: int, rng) -> None:
    rows = ["epoch,step,loss,dice_loss,focal_loss,lr,img_per_s"]
    for e in range(1, epochs + 1):
        dice, focal = 0.8 / e**0.5 + rng.uniform(0, 0.02), 0.3 / e + rng.uniform(0, 0.01)
        rows.append(f"{e},{e * 10},{dice + focal:.6f},{dice:.6f},{focal:.6f},0.0001,100.0")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
