"""Segmentation and classification metrics, computed from confusion counts.

Segmentation: ``confusion_counts`` turns masks into per-image integer [tp, fp, fn, tn] rows (jit-
friendly, so the eval step runs it on device); the host only concatenates rows and derives metrics.
Because every metric comes from summed integer counts, batch size never changes a result.

Zero-division rule (as scikit-learn's ``zero_division=0``): a ratio whose denominator is zero is
0. So a lesion image with an empty prediction has PRE = 0 and REC = JSI = DC = 0. Images whose
TRUE mask is empty (normal images) follow ``empty_policy``:

- ``"exclude"`` (default): left out of the mean; their per-image values are NaN.
- ``"match"``: JSI = DC = 1 if the prediction is empty too, else 0; PRE and REC follow the
  zero-division rule (both 0, since tp = 0); ACC and SPE as usual.

Classification runs on the host with numpy on small N. Malignant (label 1) is the positive class
for binary metrics; with more classes PRE/REC/SPE/F1/AUC are unweighted means over all
``num_classes`` one-vs-rest problems (a class absent from both labels and predictions counts
with 0 PRE/REC/F1, like scikit-learn given ``labels=range(C)``). AUC is the Mann-Whitney statistic
with average ranks for ties; it is NaN when a class has no positives or no negatives in ``labels``
(recent scikit-learn also returns NaN, with a warning; older versions raise), and the macro AUC is
NaN if any class's AUC is.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

SEG_KEYS = ("JSI", "DC", "ACC", "PRE", "REC", "SPE")
EMPTY_POLICIES = ("exclude", "match")
REDUCTIONS = ("per_image", "global")


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (the zero-division rule)."""
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    return np.divide(num, den, out=np.zeros(num.shape), where=den > 0)


def _as_nhw(mask, name: str):
    if mask.ndim == 4 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 3:
        raise ValueError(f"{name} must have shape (N,H,W) or (N,H,W,1), got {tuple(mask.shape)}")
    return mask


def _check_binary(mask, name: str) -> None:
    values = np.unique(np.asarray(mask))
    if not np.isin(values, (0, 1)).all():
        raise ValueError(
            f"{name} must be bool or {{0,1}}, found values {values[:5].tolist()}"
            " (threshold probabilities or logits first)"
        )


def confusion_counts(pred_mask, true_mask):
    """Per-image pixel counts [tp, fp, fn, tn], shape (N, 4).

    Inputs are (N,H,W) or (N,H,W,1), bool or {0,1}, numpy or jax. With a jax input the result is
    an int32 jax array (jit-friendly; values are only checked when not traced); with numpy inputs
    it is int64 numpy.
    """
    use_jax = isinstance(pred_mask, jax.Array) or isinstance(true_mask, jax.Array)
    xp = jnp if use_jax else np
    pred = _as_nhw(xp.asarray(pred_mask), "pred_mask")
    true = _as_nhw(xp.asarray(true_mask), "true_mask")
    if pred.shape != true.shape:
        raise ValueError(
            f"pred_mask shape {tuple(pred.shape)} differs from true_mask shape {tuple(true.shape)}"
        )
    for mask, name in ((pred, "pred_mask"), (true, "true_mask")):
        if not isinstance(mask, jax.core.Tracer):
            _check_binary(mask, name)
    p, t = pred.astype(bool), true.astype(bool)
    dtype = xp.int32 if use_jax else np.int64
    axes = (1, 2)
    tp = xp.sum(p & t, axis=axes, dtype=dtype)
    fp = xp.sum(p & ~t, axis=axes, dtype=dtype)
    fn = xp.sum(~p & t, axis=axes, dtype=dtype)
    tn = xp.sum(~p & ~t, axis=axes, dtype=dtype)
    return xp.stack([tp, fp, fn, tn], axis=-1)


def _check_counts(counts) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 2 or c.shape[1] != 4 or c.shape[0] == 0:
        raise ValueError(f"counts must have shape (N>0, 4) [tp, fp, fn, tn], got {c.shape}")
    if not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"counts must be non-negative integers, got dtype {c.dtype}")
    if (c < 0).any():
        row, col = np.argwhere(c < 0)[0]
        raise ValueError(f"counts must be non-negative, got {c[row, col]} at row {row}")
    return c.astype(np.int64)


def per_image_segmentation(counts, empty_policy: str = "exclude") -> dict[str, np.ndarray]:
    """Per-image JSI, DC, ACC, PRE, REC, SPE as float64 arrays of length N.

    Images excluded by ``empty_policy="exclude"`` (empty true mask) are NaN in every array, so
    paired tests over images can drop them with one mask.
    """
    if empty_policy not in EMPTY_POLICIES:
        raise ValueError(f"unknown empty_policy {empty_policy!r}: choose one of {EMPTY_POLICIES}")
    tp, fp, fn, tn = _check_counts(counts).T
    out = {
        "JSI": _div(tp, tp + fp + fn),
        "DC": _div(2 * tp, 2 * tp + fp + fn),
        "ACC": _div(tp + tn, tp + fp + fn + tn),
        "PRE": _div(tp, tp + fp),
        "REC": _div(tp, tp + fn),
        "SPE": _div(tn, tn + fp),
    }
    true_empty = (tp + fn) == 0
    if empty_policy == "exclude":
        for v in out.values():
            v[true_empty] = np.nan
    else:
        both_empty = true_empty & ((tp + fp) == 0)
        out["JSI"][both_empty] = 1.0
        out["DC"][both_empty] = 1.0
    return out


def segmentation_metrics_from_counts(
    counts, *, empty_policy: str = "exclude", reduction: str = "per_image"
) -> dict[str, float]:
    """JSI, DC, ACC, PRE, REC, SPE and ``n_images`` from (N, 4) counts.

    ``reduction="per_image"`` (the paper's convention) averages per-image metrics over the images
    the policy keeps; ``"global"`` sums the kept images' counts and computes each metric once (an
    all-empty pooled result under "match" scores JSI = DC = 1, as for a single image). With no
    kept images every metric is NaN and ``n_images`` is 0.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: choose one of {REDUCTIONS}")
    c = _check_counts(counts)
    per = per_image_segmentation(c, empty_policy)
    kept = ~np.isnan(per["JSI"])
    n = int(kept.sum())
    if n == 0:
        result = dict.fromkeys(SEG_KEYS, float("nan"))
    elif reduction == "per_image":
        result = {k: float(per[k][kept].mean()) for k in SEG_KEYS}
    else:
        pooled = per_image_segmentation(c[kept].sum(axis=0, keepdims=True), "match")
        result = {k: float(pooled[k][0]) for k in SEG_KEYS}
    result["n_images"] = n
    return result


def segmentation_metrics(pred_masks, true_masks, **kw) -> dict[str, float]:
    """``confusion_counts`` then ``segmentation_metrics_from_counts(**kw)``."""
    counts = np.asarray(confusion_counts(pred_masks, true_masks))
    return segmentation_metrics_from_counts(counts, **kw)


def _check_labels(labels, num_classes: int, name: str = "labels") -> np.ndarray:
    """``labels`` (or class predictions: ``name="preds"``) as int64, named in any error."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"{name} must be a non-empty (N,) array, got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ValueError(f"{name} must be integers, got dtype {y.dtype}")
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if bad.size:
        raise ValueError(
            f"{name[:-1]} {y[bad[0]]} at index {bad[0]} is outside [0, {num_classes}) classes"
        )
    return y.astype(np.int64)


def confusion_matrix(labels, preds, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts; rows are true classes, columns predicted (scikit-learn's layout)."""
    y = _check_labels(labels, num_classes)
    p = _check_labels(preds, num_classes, "preds")
    if y.shape != p.shape:
        raise ValueError(f"labels has {y.size} entries but preds has {p.size}")
    return np.bincount(y * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``; tied values share the mean of the ranks they span."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.r_[True, xs[1:] != xs[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], x.size]  # exclusive, so the group holds ranks starts+1 .. ends
    ranks = np.empty(x.size)
    ranks[order] = ((starts + 1 + ends) / 2)[np.cumsum(new_group) - 1]
    return ranks


def roc_auc(is_positive, scores) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n_pos n_neg)); NaN if a class is missing.

    A NaN or infinite score is a ValueError (it would sort as the highest score)."""
    pos = np.asarray(is_positive, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite numbers")
    if s.shape != pos.shape:
        raise ValueError(f"labels {pos.shape} and scores {s.shape} must have the same shape")
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _prob_matrix(probs, num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) probabilities and argmax predictions; (N,) is P(class 1), predicted 1 if > 0.5."""
    p = np.asarray(probs, dtype=np.float64)
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])  # a 0-d array too
        where = tuple(int(j) for j in np.unravel_index(i, p.shape)) if p.ndim > 1 else i
        raise ValueError(
            f"probs must be finite probabilities in [0, 1], got {p.flat[i]:g} at {where} "
            "(apply softmax to logits)"
        )
    if p.ndim == 1:
        if num_classes not in (None, 2):
            raise ValueError(f"(N,) probs means 2 classes, but num_classes={num_classes}")
        # p > 0.5 matches argmax over [1 - p, p], which picks class 0 on an exact tie.
        return np.stack([1 - p, p], axis=1), (p > 0.5).astype(np.int64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must have shape (N,) or (N, C>=2), got {p.shape}")
    if num_classes is not None and p.shape[1] != num_classes:
        raise ValueError(f"probs has {p.shape[1]} columns but num_classes={num_classes}")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("rows of (N, C) probs must sum to 1 (apply softmax to logits)")
    return p, p.argmax(axis=1)


def classification_metrics(labels, probs, *, num_classes: int | None = None) -> dict[str, float]:
    """ACC, PRE, REC, SPE, F1, AUC (and ``n_samples``) of class probabilities.

    ``probs`` is (N,) positive-class probabilities or an (N, C) matrix whose rows sum to 1.
    Binary: malignant (1) is positive. C > 2: macro one-vs-rest means over all C classes.
    """
    p, preds = _prob_matrix(probs, num_classes)
    c = p.shape[1]
    y = _check_labels(labels, c)
    if y.size != p.shape[0]:
        raise ValueError(f"labels has {y.size} entries but probs has {p.shape[0]} rows")
    cm = confusion_matrix(y, preds, c)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = y.size - tp - fp - fn
    per_class = {
        "PRE": _div(tp, tp + fp),
        "REC": _div(tp, tp + fn),
        "SPE": _div(tn, tn + fp),
        "F1": _div(2 * tp, 2 * tp + fp + fn),
    }
    if c == 2:
        result = {k: float(v[1]) for k, v in per_class.items()}
        result["AUC"] = roc_auc(y == 1, p[:, 1])
    else:
        result = {k: float(v.mean()) for k, v in per_class.items()}
        # Any NaN class AUC makes the mean NaN: a macro AUC over fewer classes would silently
        # change meaning between folds.
        result["AUC"] = float(np.mean([roc_auc(y == k, p[:, k]) for k in range(c)]))
    result["ACC"] = float(tp.sum() / y.size)
    result["n_samples"] = int(y.size)
    return {k: result[k] for k in ("ACC", "PRE", "REC", "SPE", "F1", "AUC", "n_samples")}
