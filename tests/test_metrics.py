"""Metrics against hand-computed masks and against scikit-learn (the oracle) on random inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from mtl_bench.metrics import (
    SEG_KEYS,
    classification_metrics,
    confusion_counts,
    confusion_matrix,
    per_image_segmentation,
    segmentation_metrics,
    segmentation_metrics_from_counts,
)

TOL = 1e-6


def _random_masks(rng, n=6, size=32, p=0.3):
    pred = rng.random((n, size, size)) < p
    true = rng.random((n, size, size)) < p
    return pred, true


# --- segmentation ------------------------------------------------------------------------------


def test_counts_hand_computed_tiny_mask():
    pred = np.array([[[1, 1], [0, 0]]], np.uint8)
    true = np.array([[[1, 0], [1, 0]]], np.uint8)
    np.testing.assert_array_equal(confusion_counts(pred, true), [[1, 1, 1, 1]])
    m = segmentation_metrics(pred, true)
    assert m["JSI"] == pytest.approx(1 / 3) and m["DC"] == pytest.approx(0.5)
    assert m["ACC"] == m["PRE"] == m["REC"] == m["SPE"] == pytest.approx(0.5)
    assert m["n_images"] == 1


def test_counts_accept_channel_axis_bool_and_jax_under_jit():
    pred, true = _random_masks(np.random.default_rng(0))
    ref = confusion_counts(pred, true)
    assert ref.dtype == np.int64 and ref.shape == (6, 4)
    np.testing.assert_array_equal(confusion_counts(pred[..., None].astype(np.uint8), true), ref)
    on_device = jax.jit(confusion_counts)(jnp.asarray(pred[..., None]), jnp.asarray(true))
    assert on_device.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(on_device), ref)
    assert (ref.sum(axis=1) == 32 * 32).all()


@pytest.mark.parametrize(
    "pred, true, match",
    [
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 5)), "differs"),
        (np.zeros((4, 4)), np.zeros((4, 4)), r"\(N,H,W\)"),
        (np.full((1, 4, 4), 0.7), np.zeros((1, 4, 4)), "threshold"),
        (np.zeros((1, 4, 4)), np.full((1, 4, 4), 255), "true_mask"),
    ],
)
def test_counts_reject_bad_masks(pred, true, match):
    with pytest.raises(ValueError, match=match):
        confusion_counts(pred, true)


def test_per_image_matches_sklearn():
    pred, true = _random_masks(np.random.default_rng(1), n=8)
    per = per_image_segmentation(confusion_counts(pred, true))
    for i in range(len(pred)):
        t, p = true[i].ravel(), pred[i].ravel()
        assert per["JSI"][i] == pytest.approx(skm.jaccard_score(t, p), abs=TOL)
        assert per["DC"][i] == pytest.approx(skm.f1_score(t, p), abs=TOL)
        assert per["ACC"][i] == pytest.approx(skm.accuracy_score(t, p), abs=TOL)
        assert per["PRE"][i] == pytest.approx(skm.precision_score(t, p), abs=TOL)
        assert per["REC"][i] == pytest.approx(skm.recall_score(t, p), abs=TOL)
        assert per["SPE"][i] == pytest.approx(skm.recall_score(t, p, pos_label=0), abs=TOL)
    mean = segmentation_metrics(pred, true)
    assert mean["JSI"] == pytest.approx(per["JSI"].mean(), abs=TOL)


def test_batching_does_not_change_metrics():
    pred, true = _random_masks(np.random.default_rng(2), n=10)
    true[3] = 0  # one normal image, so the empty policy is exercised too
    whole = confusion_counts(pred, true)
    parts = np.concatenate([confusion_counts(pred[i : i + 3], true[i : i + 3]) for i in (0, 3, 6)])
    parts = np.concatenate([parts, confusion_counts(pred[9:], true[9:])])
    np.testing.assert_array_equal(parts, whole)
    for policy in ("exclude", "match"):
        for reduction in ("per_image", "global"):
            kw = {"empty_policy": policy, "reduction": reduction}
            assert segmentation_metrics_from_counts(parts, **kw) == pytest.approx(
                segmentation_metrics(pred, true, **kw)
            )


def _empty_cases():
    # rows: lesion perfectly found; normal image predicted empty; normal image with a false blob
    return np.array([[4, 0, 0, 12], [0, 0, 0, 16], [0, 2, 0, 14]])


def test_empty_policy_exclude():
    counts = _empty_cases()
    per = per_image_segmentation(counts, "exclude")
    for k in SEG_KEYS:
        assert per[k][0] == 1.0 and np.isnan(per[k][1:]).all()
    m = segmentation_metrics_from_counts(counts)
    assert m["n_images"] == 1 and m["JSI"] == 1.0
    only_normals = segmentation_metrics_from_counts(counts[1:])
    assert only_normals["n_images"] == 0 and np.isnan(only_normals["DC"])


def test_empty_policy_match():
    per = per_image_segmentation(_empty_cases(), "match")
    np.testing.assert_array_equal(per["JSI"], [1, 1, 0])
    np.testing.assert_array_equal(per["DC"], [1, 1, 0])
    np.testing.assert_array_equal(per["PRE"], [1, 0, 0])  # zero-division -> 0
    np.testing.assert_array_equal(per["REC"], [1, 0, 0])
    np.testing.assert_allclose(per["SPE"], [1, 1, 14 / 16])
    m = segmentation_metrics_from_counts(_empty_cases(), empty_policy="match")
    assert m["n_images"] == 3 and m["JSI"] == pytest.approx(2 / 3)


def test_lesion_with_empty_prediction_scores_zero():
    per = per_image_segmentation(np.array([[0, 0, 5, 11]]))
    assert {k: float(per[k][0]) for k in ("JSI", "DC", "PRE", "REC")} == dict.fromkeys(
        ("JSI", "DC", "PRE", "REC"), 0.0
    )
    assert per["SPE"][0] == 1.0


def test_global_and_per_image_reductions_differ():
    # A large lesion found perfectly and a tiny one missed: per-image JSI 0.5, pooled 100/101.
    counts = np.array([[100, 0, 0, 156], [0, 0, 1, 255]])
    assert segmentation_metrics_from_counts(counts)["JSI"] == pytest.approx(0.5)
    pooled = segmentation_metrics_from_counts(counts, reduction="global")
    assert pooled["JSI"] == pytest.approx(100 / 101) and pooled["n_images"] == 2


@pytest.mark.parametrize(
    "counts, kw, match",
    [
        (np.zeros((0, 4), int), {}, "shape"),
        (np.zeros((2, 3), int), {}, "shape"),
        (np.array([[1, -1, 0, 0]]), {}, "non-negative"),
        (np.array([[1.0, 0, 0, 0]]), {}, "integers"),
        (np.array([[1, 0, 0, 0]]), {"empty_policy": "zero"}, "empty_policy"),
        (np.array([[1, 0, 0, 0]]), {"reduction": "mean"}, "reduction"),
    ],
)
def test_from_counts_rejects_bad_input(counts, kw, match):
    with pytest.raises(ValueError, match=match):
        segmentation_metrics_from_counts(counts, **kw)


# --- classification ----------------------------------------------------------------------------


def _softmax_probs(rng, n, c, decimals=None):
    logits = rng.normal(size=(n, c)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if decimals is not None:  # coarse probabilities create many ties in the AUC ranks
        scale = 10**decimals
        p[:, :-1] = np.floor(p[:, :-1] * scale) / scale  # flooring keeps the last column >= 0
        p[:, -1] = np.round(1 - p[:, :-1].sum(axis=1), 10)
    return p


def _sk_reference(y, p):
    c = p.shape[1]
    pred = p.argmax(axis=1)
    cm = skm.confusion_matrix(y, pred, labels=list(range(c)))
    tn = cm.sum() - cm.sum(0) - cm.sum(1) + np.diag(cm)
    fp = cm.sum(0) - np.diag(cm)
    spe = np.where(tn + fp > 0, tn / np.maximum(tn + fp, 1), 0.0)
    if c == 2:
        kw = {"average": "binary", "zero_division": 0}
        return {
            "ACC": skm.accuracy_score(y, pred),
            "PRE": skm.precision_score(y, pred, **kw),
            "REC": skm.recall_score(y, pred, **kw),
            "F1": skm.f1_score(y, pred, **kw),
            "SPE": spe[1],
            "AUC": skm.roc_auc_score(y, p[:, 1]),
        }
    kw = {"average": "macro", "zero_division": 0, "labels": list(range(c))}
    return {
        "ACC": skm.accuracy_score(y, pred),
        "PRE": skm.precision_score(y, pred, **kw),
        "REC": skm.recall_score(y, pred, **kw),
        "F1": skm.f1_score(y, pred, **kw),
        "SPE": spe.mean(),
        "AUC": skm.roc_auc_score(y, p, multi_class="ovr", average="macro"),
    }


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("decimals", [None, 1])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_matches_sklearn(num_classes, decimals, seed):
    rng = np.random.default_rng(seed)
    n = 60
    y = rng.integers(0, num_classes, n)
    y[:num_classes] = np.arange(num_classes)  # every class present, so sklearn's AUC is defined
    p = _softmax_probs(rng, n, num_classes, decimals)
    got = classification_metrics(y, p, num_classes=num_classes)
    want = _sk_reference(y, p)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=TOL), k
    assert got["n_samples"] == n


def test_binary_vector_and_matrix_forms_agree():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 40)
    p1 = np.round(rng.random(40), 1)  # includes exact 0.5 ties: both forms must predict class 0
    got_vec = classification_metrics(y, p1)
    got_mat = classification_metrics(y, np.stack([1 - p1, p1], axis=1))
    assert got_vec == pytest.approx(got_mat)
    assert got_vec["AUC"] == pytest.approx(skm.roc_auc_score(y, p1), abs=TOL)
    assert classification_metrics([1], [0.5])["REC"] == 0.0


def test_all_wrong_predictions():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.3])
    m = classification_metrics(y, p)
    assert (m["ACC"], m["PRE"], m["REC"], m["SPE"], m["F1"], m["AUC"]) == (0, 0, 0, 0, 0, 0)
    assert m["PRE"] == skm.precision_score(y, p > 0.5, zero_division=0)


def test_single_class_labels_give_nan_auc_and_zero_division():
    y = np.zeros(5, int)
    m = classification_metrics(y, np.array([0.1, 0.2, 0.3, 0.4, 0.6]))
    assert np.isnan(m["AUC"])
    assert m["ACC"] == pytest.approx(0.8)
    assert m["PRE"] == 0 and m["REC"] == 0 and m["F1"] == 0  # no positives: zero-division -> 0
    assert m["SPE"] == pytest.approx(0.8)
    with pytest.warns(UndefinedMetricWarning):  # recent sklearn: NaN + warning
        assert np.isnan(skm.roc_auc_score(y, np.linspace(0, 1, 5)))
    three = classification_metrics([0, 0, 1, 1], _softmax_probs(np.random.default_rng(4), 4, 3))
    assert np.isnan(three["AUC"])  # class 2 has no positives


def test_confusion_matrix_layout_and_checks():
    cm = confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1], 3)
    np.testing.assert_array_equal(cm, skm.confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1]))
    with pytest.raises(ValueError, match="label 3 at index 1"):
        confusion_matrix([0, 3], [0, 0], 3)
    with pytest.raises(ValueError, match="pred 3 at index 0"):  # named: not the labels' fault
        confusion_matrix([0, 1], [3, 0], 3)
    with pytest.raises(ValueError, match="preds must be integers"):
        confusion_matrix([0, 1, 1], [0.2, 0.8, 0.1], 2)


@pytest.mark.parametrize(
    "labels, probs, kw, match",
    [
        ([0, 1], [0.2, 1.5], {}, r"\[0, 1\], got 1\.5 at 1 "),
        ([0, 1], [[2.0, -1.0], [0.0, 1.0]], {}, "softmax"),
        ([0, 1], [[0.3, 0.3], [0.0, 1.0]], {}, "sum to 1"),
        ([0, 1], [0.2, 0.8], {"num_classes": 3}, "num_classes"),
        ([0, 1, 1], [0.2, 0.8], {}, "entries"),
        ([0.0, 1.0], [0.2, 0.8], {}, "integers"),
        ([0, 2], [0.2, 0.8], {}, "label 2"),
        ([], [], {}, "non-empty"),
    ],
)
def test_classification_rejects_bad_input(labels, probs, kw, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(np.asarray(labels), np.asarray(probs), **kw)


def test_roc_auc_refuses_scores_that_are_not_finite():
    from mtl_bench.metrics import roc_auc

    with pytest.raises(ValueError, match="finite"):
        roc_auc([1, 0, 0, 1], [np.nan, 0.9, 0.8, 0.1])  # NaN would rank highest
    assert roc_auc([1, 0, 0, 1], [0.95, 0.9, 0.8, 0.1]) == pytest.approx(0.5)


def test_a_scalar_probability_out_of_range_is_named():
    from mtl_bench.metrics import _prob_matrix

    for p in (1.5, np.nan):
        with pytest.raises(ValueError, match=r"probs must be finite probabilities .* at 0 "):
            _prob_matrix(np.float64(p), None)


def test_negative_counts_are_named():
    from mtl_bench.metrics import segmentation_metrics_from_counts

    with pytest.raises(ValueError, match=r"counts must be non-negative, got -2 at row 1"):
        segmentation_metrics_from_counts(np.array([[1, 2, 3, 4], [1, -2, 3, 4]]))
