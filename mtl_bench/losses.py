"""Training losses: soft Dice for masks, weighted focal loss for labels, and their joint sum.

All losses are jit-friendly JAX functions returning float32 scalars. Every reduction over samples
is a mean, or with ``sample_weight`` (B,) a weighted mean sum(w * l) / sum(w), so padded samples
(weight 0) contribute exactly nothing; an all-zero weight vector gives a loss of 0. Shapes and
Python-side arguments are checked at trace time; values only when the arrays are concrete.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

# (1 - p_y) is floored here before the power: d/dx x**gamma is infinite at x = 0 for gamma < 1,
# and 0 * inf would turn a confidently-right sample's gradient into NaN.
_MIN_ONE_MINUS_P = 1e-12

WEIGHT_SCHEMES = ("inverse_frequency", "uniform")


def _concrete_range(name: str, x, low: float, high: float | None, hint: str = "") -> None:
    """Refuse values of ``x`` outside [low, high] when it is concrete (under jit it is a tracer,
    and only shapes can be checked)."""
    if x is None or isinstance(x, jax.core.Tracer):
        return
    v = np.asarray(x, np.float64)
    bad = (v < low) | (v > high if high is not None else False) | np.isnan(v)
    if v.size and bad.any():
        span = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"{name} must be {span}, got {v.flat[np.flatnonzero(bad)[0]]:g}{hint}")


def _weighted_mean(values: jax.Array, sample_weight) -> jax.Array:
    if sample_weight is None:
        return jnp.mean(values)
    _concrete_range("sample_weight", sample_weight, 0.0, None)
    w = jnp.asarray(sample_weight, jnp.float32)
    if w.shape != values.shape:
        raise ValueError(f"sample_weight shape {w.shape} must be {values.shape} (one per sample)")
    return jnp.sum(w * values) / jnp.maximum(jnp.sum(w), 1e-12)


def _flatten_masks(mask_logits, true_masks) -> tuple[jax.Array, jax.Array]:
    # Soft targets are fine; a 0/255 mask (as PNGs store it) would give a loss below 0.
    _concrete_range("true_masks", true_masks, 0.0, 1.0, " (a 0/255 mask: divide by 255)")
    logits = jnp.asarray(mask_logits, jnp.float32)
    true = jnp.asarray(true_masks, jnp.float32)
    if logits.ndim == 4 and logits.shape[-1] == 1:
        logits = logits[..., 0]
    if true.ndim == 4 and true.shape[-1] == 1:
        true = true[..., 0]
    if logits.ndim != 3 or logits.shape != true.shape:
        raise ValueError(
            f"mask_logits {tuple(jnp.shape(mask_logits))} and true_masks "
            f"{tuple(jnp.shape(true_masks))} must both be (B,H,W) or (B,H,W,1) of equal size"
        )
    b = logits.shape[0]
    return logits.reshape(b, -1), true.reshape(b, -1)


def dice_loss(
    mask_logits,
    true_masks,
    *,
    smooth: float = 1.0,
    per_image: bool = True,
    sample_weight=None,
) -> jax.Array:
    """Soft Dice loss 1 - (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth), p = sigmoid(logits).

    ``per_image=True`` computes Dice for each image and then (weighted-)means over the batch, so a
    small tumour counts as much as a large one and an empty true mask with an empty prediction
    scores loss 0 (through ``smooth``). ``per_image=False`` pools the (weighted) pixel sums of the
    whole batch into one Dice. ``smooth=0`` is plain Dice: an empty true mask then scores loss 1
    with no gradient whatever is predicted (a sigmoid is never exactly 0, so the denominator
    stays positive), until every logit is below about -88 (float32 underflow) and it is 0/0,
    NaN, which the training loop stops on (pooled, ``per_image=False``, a batch of zero weights
    is 0/0 at once).
    """
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0, got {smooth}")
    logits, true = _flatten_masks(mask_logits, true_masks)
    probs = jax.nn.sigmoid(logits)
    inter = jnp.sum(probs * true, axis=1)
    denom = jnp.sum(probs, axis=1) + jnp.sum(true, axis=1)
    if per_image:
        dice = (2.0 * inter + smooth) / (denom + smooth)
        return _weighted_mean(1.0 - dice, sample_weight)
    _concrete_range("sample_weight", sample_weight, 0.0, None)
    w = jnp.ones(inter.shape) if sample_weight is None else jnp.asarray(sample_weight, jnp.float32)
    if w.shape != inter.shape:
        raise ValueError(f"sample_weight shape {w.shape} must be {inter.shape} (one per sample)")
    return 1.0 - (2.0 * jnp.sum(w * inter) + smooth) / (jnp.sum(w * denom) + smooth)


def focal_loss(
    label_logits,
    labels,
    *,
    alpha=None,
    gamma: float = 2.0,
    sample_weight=None,
) -> jax.Array:
    """Weighted softmax focal loss: mean over samples of -alpha[y] (1 - p_y)^gamma log p_y.

    ``alpha`` is a (C,) per-class weight (None: all 1; see ``class_weights``). With gamma = 0 and
    no alpha this is the mean softmax cross-entropy.
    """
    logits = jnp.asarray(label_logits, jnp.float32)
    labels = jnp.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"label_logits must be (B, C) and labels (B,), got {logits.shape} and {labels.shape}"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    num_classes = logits.shape[1]
    if not isinstance(labels, jax.core.Tracer):
        bad = np.flatnonzero((np.asarray(labels) < 0) | (np.asarray(labels) >= num_classes))
        if bad.size:
            raise ValueError(f"label {int(labels[bad[0]])} is outside [0, {num_classes}) classes")
    if isinstance(gamma, int | float) and gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)  # -log p_y
    # 1 - p_y = -expm1(-ce) keeps precision when p_y is close to 1.
    one_minus_p = jnp.maximum(-jnp.expm1(-ce), _MIN_ONE_MINUS_P)
    per_sample = jnp.power(one_minus_p, gamma) * ce
    if alpha is not None:
        # Check values on the host copy: under jit even a constant becomes a tracer once used in
        # jnp arithmetic, so only a not-yet-traced alpha can be checked.
        if not isinstance(alpha, jax.core.Tracer) and not np.all(np.asarray(alpha) >= 0):
            raise ValueError(f"alpha must be non-negative, got {np.asarray(alpha).tolist()}")
        a = jnp.asarray(alpha, jnp.float32)
        if a.shape != (num_classes,):
            raise ValueError(f"alpha shape {a.shape} must be ({num_classes},), one per class")
        per_sample = a[labels] * per_sample
    return _weighted_mean(per_sample, sample_weight)


def class_weights(labels, num_classes: int, *, scheme: str = "inverse_frequency") -> np.ndarray:
    """Per-class focal ``alpha`` (float32, (C,)) from a training fold's labels.

    "inverse_frequency": w_k = N / (C n_k), scikit-learn's "balanced" weights. They average to 1
    over the fold's samples (sum_i w_{y_i} = N), so the weighted loss keeps the unweighted scale.
    "uniform": all ones. A class with no training samples raises ValueError naming its index.
    """
    if scheme not in WEIGHT_SCHEMES:
        raise ValueError(f"unknown class-weight scheme {scheme!r}: choose one of {WEIGHT_SCHEMES}")
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a non-empty (N,) integer array, got {y.dtype} {y.shape}")
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if bad.size:
        raise ValueError(f"label {y[bad[0]]} at index {bad[0]} is outside [0, {num_classes})")
    if scheme == "uniform":
        return np.ones(num_classes, np.float32)
    counts = np.bincount(y, minlength=num_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ValueError(
            f"class {missing[0]} has no samples in the training labels (counts "
            f"{counts.tolist()}), so its inverse-frequency weight is undefined"
        )
    return (y.size / (num_classes * counts)).astype(np.float32)


def joint_loss(
    outputs: dict,
    batch: dict,
    *,
    w_seg: float = 1.0,
    w_cls: float = 1.0,
    alpha=None,
    gamma: float = 2.0,
    smooth: float = 1.0,
    sample_weight=None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """``w_seg * dice + w_cls * focal`` over whichever heads the model produced.

    Uses ``outputs["mask"]`` with ``batch["mask"]`` when the model has a mask head and
    ``outputs["label"]`` with ``batch["label"]`` when it has a label head; a missing term is 0.
    Deep supervision: a model may add ``"mask_aux"`` (K, N, H, W, 1) logits and
    ``"mask_aux_weight"`` (K,) (default 1 each); the Dice term is then
    ``dice(mask) + sum_k weight_k * dice(aux_k)``, as DAF trains. Likewise ``"label_aux"``
    (N, C) logits with ``"label_aux_weight"`` (default 1) add ``weight * focal(aux)`` to the
    focal term (Inception-v3's auxiliary classifier, 0.4 in torchvision's recipe).
    Returns (loss, {"loss", "dice_loss", "focal_loss"}).
    """
    zero = jnp.zeros((), jnp.float32)
    has_mask = outputs.get("mask") is not None
    has_label = outputs.get("label") is not None
    if not (has_mask or has_label):
        raise ValueError(f"outputs has neither 'mask' nor 'label' (keys: {sorted(outputs)})")
    for key, present in (("mask", has_mask), ("label", has_label)):
        if present and key not in batch:
            raise ValueError(f"model produced {key!r} but the batch has no {key!r} target")
    dice = (
        dice_loss(outputs["mask"], batch["mask"], smooth=smooth, sample_weight=sample_weight)
        if has_mask
        else zero
    )
    if has_mask and outputs.get("mask_aux") is not None:
        aux = outputs["mask_aux"]
        weights = outputs.get("mask_aux_weight")
        weights = jnp.ones(aux.shape[0]) if weights is None else jnp.asarray(weights)
        aux_dice = jax.vmap(
            lambda z: dice_loss(z, batch["mask"], smooth=smooth, sample_weight=sample_weight)
        )(aux)
        dice = dice + jnp.sum(weights * aux_dice)
    focal = (
        focal_loss(
            outputs["label"], batch["label"], alpha=alpha, gamma=gamma, sample_weight=sample_weight
        )
        if has_label
        else zero
    )
    if has_label and outputs.get("label_aux") is not None:
        weight = outputs.get("label_aux_weight", 1.0)
        focal = focal + weight * focal_loss(
            outputs["label_aux"], batch["label"], alpha=alpha, gamma=gamma,
            sample_weight=sample_weight,
        )  # fmt: skip
    loss = w_seg * dice + w_cls * focal
    return loss, {"loss": loss, "dice_loss": dice, "focal_loss": focal}
