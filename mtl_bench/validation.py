"""Model selection inside a training fold (``val_fraction`` > 0): a stratified, group-aware
validation split of the training fold, the score each epoch is judged by, and the epoch kept.

The outer test fold is never looked at: choosing the epoch on it would flatter every table.
"""

from __future__ import annotations

import math

import numpy as np

from mtl_bench.config import RunConfig


def check_fold_indices(
    n_images: int, train_idx, test_idx, fold: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``train_idx`` and ``test_idx`` as int arrays, or a one-line ValueError: rows that are not
    integers or not in the dataset, an empty side, or a test image also trained on (a fold
    built by hand that leaks its test set would flatter every number it reports)."""
    out = []
    for name, idx in (("train_idx", train_idx), ("test_idx", test_idx)):
        a = np.asarray(idx)
        if a.ndim != 1 or a.size == 0 or not np.issubdtype(a.dtype, np.integer):
            what = f"{a.dtype} {a.shape}" if a.size else "empty"
            raise ValueError(
                f"fold {fold}: {name} must be a non-empty 1-D integer array, got {what}"
            )
        bad = a[(a < 0) | (a >= n_images)]
        if bad.size:
            raise ValueError(
                f"fold {fold}: {name} holds row {bad[0]}, outside the {n_images} images"
            )
        out.append(a.astype(np.int64))
    shared = np.intersect1d(*out)
    if shared.size:
        raise ValueError(
            f"fold {fold}: {shared.size} image(s) in both train_idx and test_idx (row {shared[0]}"
            "): the test images must be unseen in training"
        )
    return out[0], out[1]


def split_validation(
    cfg: RunConfig, labels: np.ndarray, train_idx: np.ndarray, groups: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(fit, validation) indices: a stratified ``val_fraction`` of the training fold's duplicate
    groups (``groups``: a group id per image; None: every image its own), so no near-duplicate
    sits on both sides and flatters the epoch choice, as the outer folds keep them together."""
    if cfg.val_fraction <= 0:
        return train_idx, None
    from sklearn.model_selection import train_test_split

    g = (np.arange(len(labels)) if groups is None else np.asarray(groups))[train_idx]
    ids, first = np.unique(g, return_index=True)  # a group's label: its first member's
    strata = labels[train_idx][first]
    try:
        _, val_groups = train_test_split(
            ids, test_size=cfg.val_fraction, stratify=strata, random_state=cfg.seed
        )
    except ValueError as e:  # sklearn's words name its own arguments, not this setting
        n_classes = len(np.unique(strata))
        raise ValueError(
            f"val_fraction={cfg.val_fraction!r}: a stratified split of this training fold's "
            f"{len(ids)} groups ({n_classes} classes) needs at least one group of each class on "
            f"both sides ({e})"
        ) from None
    is_val = np.isin(g, val_groups)
    return np.sort(train_idx[~is_val]), np.sort(train_idx[is_val])


def val_score(
    tasks: tuple[str, ...],
    ev: dict[str, np.ndarray],
    labels: np.ndarray,
    empty_policy: str = "exclude",
) -> float:
    """Selection score on the inner validation split: mean of Dice and AUC (those present), the
    Dice under the run's ``empty_policy`` (as its test metrics), so that with ``match`` the
    epoch kept is also judged on the normal images' empty masks."""
    from mtl_bench.metrics import classification_metrics, segmentation_metrics_from_counts

    parts = []
    if "counts" in ev:
        seg = segmentation_metrics_from_counts(ev["counts"], empty_policy=empty_policy)
        parts.append(seg["DC"])
    if "prob" in ev:
        auc = classification_metrics(labels, ev["prob"])["AUC"]
        parts.append(classification_metrics(labels, ev["prob"])["ACC"] if math.isnan(auc) else auc)
    return float(np.mean(parts))


def best_epoch(curve: list[dict]) -> int | None:
    """The first epoch with the highest validation score (the weights kept: a later equal
    score does not replace them)."""
    scored = [r for r in curve if np.isfinite(r.get("val_score", np.nan))]
    return int(max(scored, key=lambda r: r["val_score"])["epoch"]) if scored else None
