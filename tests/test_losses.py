"""Losses against hand-computed values, optax cross-entropy, and gradient sanity."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.utils.class_weight import compute_class_weight

from mtl_bench.losses import class_weights, dice_loss, focal_loss, joint_loss

BIG = 50.0  # sigmoid(+-50) is 1 / 0 in float32: "certain" logits


def _blob_masks(b=2, size=32):
    masks = np.zeros((b, size, size, 1), np.float32)
    masks[0, 4:12, 4:12] = 1
    masks[1, 16:30, 10:20] = 1
    return masks


# --- dice ----------------------------------------------------------------------------------


def test_dice_perfect_and_disjoint():
    true = _blob_masks()
    perfect = np.where(true > 0, BIG, -BIG)
    assert float(dice_loss(perfect, true)) == pytest.approx(0.0, abs=1e-6)
    # the complement covers every other pixel: Dice = smooth / (1024 + smooth) on both images
    want = 1 - 1 / 1025
    assert float(dice_loss(-perfect, true)) == pytest.approx(want, rel=1e-6)
    assert float(dice_loss(-perfect, true, smooth=0.0)) == pytest.approx(1.0, abs=1e-6)


def test_dice_hand_computed_soft_values():
    # logits 0 -> p = 0.5 everywhere; 2x2 image, one true pixel: (2*0.5 + 1) / (2 + 1 + 1) = 0.5
    logits = np.zeros((1, 2, 2))
    true = np.array([[[1, 0], [0, 0]]], np.uint8)
    assert float(dice_loss(logits, true)) == pytest.approx(0.5, rel=1e-6)
    assert float(dice_loss(logits, true, smooth=0.0)) == pytest.approx(1 - 1 / 3, rel=1e-6)


def test_dice_smoothing_on_empty_masks():
    empty = np.zeros((1, 8, 8))
    assert float(dice_loss(np.full((1, 8, 8), -BIG), empty)) == pytest.approx(0.0, abs=1e-6)
    # one false-positive pixel on a normal image: 1 - 1 / (1 + 1)
    logits = np.full((1, 8, 8), -BIG)
    logits[0, 0, 0] = BIG
    assert float(dice_loss(logits, empty)) == pytest.approx(0.5, rel=1e-6)
    assert float(dice_loss(logits, empty, smooth=10.0)) == pytest.approx(1 / 11, rel=1e-6)


def test_dice_per_image_versus_pooled():
    true = _blob_masks()
    logits = np.where(true > 0, BIG, -BIG)
    logits[1] = -BIG  # the large blob is missed entirely
    per_image = 1 - (1.0 + 1 / 141) / 2
    pooled = 1 - (2 * 64 + 1) / (2 * 64 + 140 + 1)
    assert float(dice_loss(logits, true)) == pytest.approx(per_image, rel=1e-6)
    assert float(dice_loss(logits, true, per_image=False)) == pytest.approx(pooled, rel=1e-6)


def test_dice_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="equal size"):
        dice_loss(np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 9)))


def test_dice_refuses_a_0_255_mask_and_negative_weights_when_concrete():
    mask = np.zeros((2, 8, 8, 1), np.uint8)
    mask[:, :4] = 255  # as a PNG stores it: the loss would come out below 0
    with pytest.raises(ValueError, match=r"true_masks must be \[0, 1\], got 255 \(a 0/255 mask"):
        dice_loss(np.zeros((2, 8, 8, 1)), mask)
    for pooled in (False, True):
        with pytest.raises(ValueError, match=r"sample_weight must be >= 0, got -1"):
            dice_loss(np.zeros((2, 8, 8)), mask // 255, sample_weight=[1, -1], per_image=pooled)
    with pytest.raises(ValueError, match=r"sample_weight must be >= 0, got -1"):
        focal_loss(np.zeros((2, 2)), np.array([0, 1]), sample_weight=[1, -1])
    # Soft targets in [0, 1] stay allowed, and under jit only shapes are checked.
    assert np.isfinite(float(dice_loss(np.zeros((2, 8, 8)), np.full((2, 8, 8), 0.5))))
    jitted = jax.jit(lambda t: dice_loss(np.zeros((2, 8, 8)), t))
    assert np.isfinite(float(jitted(mask[..., 0] // 255)))


# --- focal ---------------------------------------------------------------------------------


def test_focal_two_samples_by_hand():
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    labels = np.array([0, 0])
    p0 = [1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))]
    terms = [-((1 - p) ** 2) * math.log(p) for p in p0]
    assert float(focal_loss(logits, labels)) == pytest.approx(sum(terms) / 2, rel=1e-5)
    weighted = float(focal_loss(logits, labels, alpha=[0.25, 0.75], gamma=2.0))
    assert weighted == pytest.approx(0.25 * sum(terms) / 2, rel=1e-5)


def test_focal_gamma_zero_is_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 3)).astype(np.float32) * 3
    labels = rng.integers(0, 3, 8)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    assert float(focal_loss(logits, labels, gamma=0.0)) == pytest.approx(float(ce), rel=1e-6)
    # gamma > 0 only down-weights: every factor (1 - p)^gamma is <= 1
    assert float(focal_loss(logits, labels, gamma=2.0)) < float(ce)


def test_focal_alpha_weights_by_true_class():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2])
    alpha = np.array([1.0, 2.0, 0.5])
    per = [float(focal_loss(logits[i : i + 1], labels[i : i + 1])) for i in range(6)]
    want = np.mean([alpha[labels[i]] * per[i] for i in range(6)])
    assert float(focal_loss(logits, labels, alpha=alpha)) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(
    "kw, labels, match",
    [
        ({"alpha": [1.0, 1.0, 1.0]}, [0, 1], "one per class"),
        ({"alpha": [1.0, -1.0]}, [0, 1], "non-negative"),
        ({"gamma": -1.0}, [0, 1], "gamma"),
        ({}, [0, 2], "label 2"),
        ({}, [0.0, 1.0], "integer"),
        ({}, [0], r"\(B,\)"),
    ],
)
def test_focal_rejects_bad_input(kw, labels, match):
    with pytest.raises(ValueError, match=match):
        focal_loss(np.zeros((2, 2)), np.asarray(labels), **kw)


# --- class weights -------------------------------------------------------------------------


def test_class_weights_inverse_frequency():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    w = class_weights(labels, 3)
    np.testing.assert_allclose(w, [10 / 18, 10 / 9, 10 / 3], rtol=1e-6)
    np.testing.assert_allclose(w, compute_class_weight("balanced", classes=np.arange(3), y=labels))
    assert w[labels].mean() == pytest.approx(1.0)  # averages to 1 over the fold's samples
    np.testing.assert_array_equal(class_weights(labels, 3, scheme="uniform"), [1, 1, 1])


def test_class_weights_errors():
    with pytest.raises(ValueError, match="class 1 has no samples"):
        class_weights(np.array([0, 0, 2]), 3)
    with pytest.raises(ValueError, match="label 3"):
        class_weights(np.array([0, 3]), 2)
    with pytest.raises(ValueError, match="scheme"):
        class_weights(np.array([0, 1]), 2, scheme="sqrt")


# --- joint loss, sample weights, gradients -------------------------------------------------


def _outputs_and_batch(seed=0, b=4, size=32, c=2):
    rng = np.random.default_rng(seed)
    outputs = {
        "mask": jnp.asarray(rng.normal(size=(b, size, size, 1)), jnp.float32),
        "label": jnp.asarray(rng.normal(size=(b, c)), jnp.float32),
    }
    batch = {
        "mask": jnp.asarray(rng.random((b, size, size)) < 0.3, jnp.uint8),
        "label": jnp.asarray(rng.integers(0, c, b), jnp.int32),
    }
    return outputs, batch


def test_joint_loss_selects_heads():
    outputs, batch = _outputs_and_batch()
    dice = float(dice_loss(outputs["mask"], batch["mask"]))
    focal = float(focal_loss(outputs["label"], batch["label"], alpha=[0.5, 2.0]))
    loss, aux = jax.jit(lambda o, b: joint_loss(o, b, w_seg=2.0, alpha=[0.5, 2.0]))(outputs, batch)
    assert float(loss) == pytest.approx(2 * dice + focal, rel=1e-5)
    assert float(aux["loss"]) == float(loss) and float(aux["dice_loss"]) == pytest.approx(dice)

    seg_only, aux = joint_loss({"mask": outputs["mask"]}, batch)
    assert float(seg_only) == pytest.approx(dice, rel=1e-6) and float(aux["focal_loss"]) == 0.0
    cls_only, aux = joint_loss({"label": outputs["label"], "mask": None}, {"label": batch["label"]})
    assert float(aux["dice_loss"]) == 0.0 and float(cls_only) == pytest.approx(
        float(focal_loss(outputs["label"], batch["label"])), rel=1e-6
    )


def test_joint_loss_errors():
    outputs, batch = _outputs_and_batch()
    with pytest.raises(ValueError, match="neither"):
        joint_loss({}, batch)
    with pytest.raises(ValueError, match="no 'mask' target"):
        joint_loss(outputs, {"label": batch["label"]})


def test_zero_sample_weight_ignores_padded_samples_exactly():
    outputs, batch = _outputs_and_batch(seed=1, b=4, c=3)
    real = {k: v[:2] for k, v in outputs.items()}, {k: v[:2] for k, v in batch.items()}
    # Corrupt the padded rows: an exact weighted mean must not see them at all.
    padded_out = {k: v.at[2:].set(123.0) for k, v in outputs.items()}
    weight = jnp.array([1.0, 1.0, 0.0, 0.0])
    want, want_aux = joint_loss(*real, alpha=[1.0, 2.0, 3.0])
    got, got_aux = joint_loss(padded_out, batch, alpha=[1.0, 2.0, 3.0], sample_weight=weight)
    for k in ("loss", "dice_loss", "focal_loss"):
        assert float(got_aux[k]) == pytest.approx(float(want_aux[k]), rel=1e-6), k
    pooled = dice_loss(padded_out["mask"], batch["mask"], per_image=False, sample_weight=weight)
    want_pooled = dice_loss(real[0]["mask"], real[1]["mask"], per_image=False)
    assert float(pooled) == pytest.approx(float(want_pooled), rel=1e-6)
    grads = jax.grad(lambda o: joint_loss(o, batch, sample_weight=weight)[0])(padded_out)
    assert all(float(jnp.abs(g[2:]).max()) == 0.0 for g in grads.values())
    # alpha and weights as traced arguments, as a jitted train step passes them
    jitted = jax.jit(lambda o, b, a, w: joint_loss(o, b, alpha=a, sample_weight=w)[0])
    traced = jitted(padded_out, batch, jnp.array([1.0, 2.0, 3.0]), weight)
    assert float(traced) == pytest.approx(float(want), rel=1e-5)
    none = joint_loss(outputs, batch, sample_weight=jnp.zeros(4))[0]
    assert float(none) == 0.0
    with pytest.raises(ValueError, match="one per sample"):
        focal_loss(outputs["label"], batch["label"], sample_weight=jnp.ones(3))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_gradients_finite_at_extreme_logits(gamma):
    outputs, batch = _outputs_and_batch(seed=2)
    signs = jnp.where(jnp.arange(4)[:, None] % 2 == 0, 1.0, -1.0)
    extreme = {
        "mask": jnp.sign(outputs["mask"]) * BIG,
        # rows alternate confidently right / confidently wrong
        "label": signs * BIG * (2 * jax.nn.one_hot(batch["label"], 2) - 1),
    }

    def total(o):
        return joint_loss(o, batch, alpha=[0.7, 1.3], gamma=gamma)[0]

    value, grads = jax.value_and_grad(total)(extreme)
    assert np.isfinite(float(value))
    for g in jax.tree.leaves(grads):
        assert np.isfinite(np.asarray(g)).all()
    assert float(jnp.abs(grads["label"]).max()) > 0  # the wrong rows still push back


def test_joint_loss_adds_weighted_deep_supervision():
    key = jax.random.key(0)
    mask = (jax.random.uniform(key, (2, 8, 8, 1)) > 0.5).astype(jnp.float32)
    main = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
    aux = jax.random.normal(jax.random.key(2), (3, 2, 8, 8, 1))
    w = jnp.asarray([0.5, 1.0, 2.0])
    plain, _ = joint_loss({"mask": main}, {"mask": mask})
    deep, _ = joint_loss({"mask": main, "mask_aux": aux, "mask_aux_weight": w}, {"mask": mask})
    expected = plain + sum(float(w[k]) * dice_loss(aux[k], mask) for k in range(3))
    np.testing.assert_allclose(deep, expected, rtol=1e-6)
    unweighted, _ = joint_loss({"mask": main, "mask_aux": aux}, {"mask": mask})
    np.testing.assert_allclose(
        unweighted, plain + sum(dice_loss(aux[k], mask) for k in range(3)), rtol=1e-6
    )


def test_an_auxiliary_classifier_adds_its_weighted_focal_term():
    rng = np.random.default_rng(0)
    main, aux = (jnp.asarray(rng.normal(size=(4, 2)), jnp.float32) for _ in range(2))
    batch = {"label": jnp.array([0, 1, 1, 0])}
    alone, _ = joint_loss({"label": main}, batch)
    both, parts = joint_loss({"label": main, "label_aux": aux, "label_aux_weight": 0.4}, batch)
    expected = float(alone) + 0.4 * float(focal_loss(aux, batch["label"]))
    assert float(both) == pytest.approx(expected, rel=1e-6)
    assert float(parts["focal_loss"]) == pytest.approx(expected, rel=1e-6)
