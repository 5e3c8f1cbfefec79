"""The inner validation split (``val_fraction``): group-aware, stratified; the epoch it picks."""

import dataclasses

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from mtl_bench import cv
from mtl_bench.config import RunConfig
from mtl_bench.cv_data import duplicate_groups
from mtl_bench.data.phantom import synth_phantom
from mtl_bench.fit import fit_fold
from mtl_bench.validation import best_epoch, split_validation

CFG = RunConfig(val_fraction=0.25, seed=3)


def test_without_groups_the_split_is_the_plain_stratified_one():
    labels = np.arange(40) % 2
    train = np.arange(5, 40)
    fit, val = split_validation(CFG, labels, train, None)
    tr, va = train_test_split(train, test_size=0.25, stratify=labels[train], random_state=3)
    assert fit.tolist() == sorted(tr) and val.tolist() == sorted(va)
    off = dataclasses.replace(CFG, val_fraction=0.0)
    assert split_validation(off, labels, train, None) == (train, None)


def test_duplicate_groups_stay_on_one_side():
    labels = np.arange(60) % 2
    groups = np.arange(60)
    for a, b in [(0, 2), (4, 6), (8, 10), (12, 14), (1, 3), (5, 7), (9, 11)]:
        groups[b] = a  # pairs of (same-class) duplicates
    train = np.arange(60)
    for seed in range(10):
        fit, val = split_validation(dataclasses.replace(CFG, seed=seed), labels, train, groups)
        assert sorted([*fit, *val]) == train.tolist()  # every image on exactly one side
        assert not set(groups[fit]) & set(groups[val])  # no group on both sides
        assert abs(labels[val].mean() - 0.5) < 0.15  # still stratified


def test_cv_hands_the_manifests_duplicate_groups_to_the_split():
    class Manifest:
        duplicate_groups = [{"ids": ["b/2", "b/0"]}, {"ids": ["m/1", "gone/9"]}]

    class Data:
        ids = ["b/0", "m/1", "b/2", "m/3"]

        def __len__(self):
            return 4

    groups = duplicate_groups(Manifest(), Data())
    assert groups[0] == groups[2] and len(set(groups.tolist())) == 3  # an unknown id is ignored


def test_the_tested_weights_are_the_selected_epochs(monkeypatch):
    import mtl_bench.fit

    data = synth_phantom(32, image_size=32, seed=3, class_set="binary")
    idx = np.random.default_rng(0).permutation(len(data))
    train, test = np.sort(idx[:24]), np.sort(idx[24:])
    cfg = RunConfig(
        model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16},
        image_size=32, epochs=3, batch_size=8, lr=3e-3, lr_decay_every=0, preprocess="none",
        checkpoint_every=0, eval_batch_size=8, val_fraction=0.25, eval_every=1,
    )  # fmt: skip
    scores = []
    monkeypatch.setattr(mtl_bench.fit, "val_score", lambda *a: scores.pop(0))
    scores[:] = [0.5, 0.9, 0.1]  # epoch 2 is the best of three
    run = fit_fold(cfg, data, train, test, quiet=True)
    assert run.extras["selected_by_validation"] and run.extras["selected_epoch"] == 2
    assert [r["val_score"] for r in run.curve] == [0.5, 0.9, 0.1]
    assert run.epochs_run == 3 and run.extras["train_images"] == 18
    # Training is the same run up to epoch 2: a two-epoch run ends on the weights selected ...
    scores[:] = [0.5, 0.9]
    short = fit_fold(dataclasses.replace(cfg, epochs=2), data, train, test, quiet=True)
    for key in run.test_eval:
        np.testing.assert_array_equal(run.test_eval[key], short.test_eval[key])
    # ... and selecting the last epoch instead tests other weights (the check above can fail).
    scores[:] = [0.1, 0.5, 0.9]
    last = fit_fold(cfg, data, train, test, quiet=True)
    assert last.extras["selected_epoch"] == 3
    assert any(not np.array_equal(run.test_eval[k], last.test_eval[k]) for k in run.test_eval)


def test_run_cv_gives_the_split_the_manifests_groups(monkeypatch, tmp_path, capsys):
    seen = {}

    def spy(cfg, dataset, train_idx, test_idx, **kwargs):
        seen["groups"] = kwargs.get("groups")
        raise RuntimeError("stop here")

    monkeypatch.setattr(cv, "fit_fold", spy)
    cfg = RunConfig(synthetic_n=24, image_size=32, folds=2, preprocess="none", val_fraction=0.25)
    with pytest.raises(RuntimeError, match="stop here"):
        cv.run_cv(cfg, tmp_path, folds=[0])
    assert seen["groups"] is not None and len(seen["groups"]) == 24
    # The fold's line says how many of its training images are held out, not trained on.
    assert "12 train (9 + 3 validation) / 12 test" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("scores", "epoch"), [([np.nan, 0.5, np.nan, 0.7, 0.7], 4), ([np.nan, np.nan], None)]
)
def test_best_epoch_is_the_first_of_the_highest(scores, epoch):
    curve = [{"epoch": e + 1, "val_score": s} for e, s in enumerate(scores)]
    assert best_epoch(curve) == epoch


def test_val_score_is_the_mean_of_dice_and_auc():
    from mtl_bench.validation import val_score

    counts = np.array([[3, 1, 0, 12], [1, 0, 1, 14]])  # DC 6/7 and 2/3
    dc = (6 / 7 + 2 / 3) / 2
    prob = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])  # AUC: 3 of the 4 (positive, negative) pairs ordered
    assert val_score(("mask",), {"counts": counts}, labels[:2]) == pytest.approx(dc)
    assert val_score(("label",), {"prob": prob}, labels) == pytest.approx(0.75)
    both = val_score(("mask", "label"), {"counts": counts, "prob": prob}, labels)
    assert both == pytest.approx((dc + 0.75) / 2)
    # One class only in the split: no AUC, so accuracy stands in (never a NaN score).
    assert val_score(("label",), {"prob": prob}, np.zeros(4, int)) == pytest.approx(0.5)
    # A normal image (empty true mask) predicted empty: left out under "exclude", a Dice of 1
    # under "match" -- the run's policy, as its test metrics use it.
    normal = np.vstack([counts, [[0, 0, 0, 16]]])
    assert val_score(("mask",), {"counts": normal}, labels[:3]) == pytest.approx(dc)
    match = val_score(("mask",), {"counts": normal}, labels[:3], "match")
    assert match == pytest.approx((6 / 7 + 2 / 3 + 1) / 3)


def test_a_library_fold_that_leaks_or_points_outside_the_data_is_refused_before_training():
    ds = synth_phantom(16, image_size=32, seed=0, class_set="binary")
    cfg = RunConfig(epochs=1, image_size=32, model_kwargs={"widths": (4, 8, 16, 32, 64)})
    train, test = np.arange(12), np.arange(12, 16)
    for bad_train, bad_test, match in [
        (np.arange(16), test, r"fold 0: 4 image\(s\) in both train_idx and test_idx \(row 12\)"),
        (train, np.array([], int), r"test_idx must be a non-empty 1-D integer array, got empty"),
        (np.array([0, 1, 100]), test, r"train_idx holds row 100, outside the 16 images"),
        (train.astype(float), test, r"train_idx must be .* got float64"),
    ]:
        with pytest.raises(ValueError, match=match):
            fit_fold(cfg, ds, bad_train, bad_test, quiet=True)
    # The config is checked as cv checks it (these trained, or divided by zero).
    for field, value in (("epochs", 0), ("lr", -1.0), ("batch_size", 0)):
        with pytest.raises(ValueError, match=field):
            fit_fold(dataclasses.replace(cfg, **{field: value}), ds, train, test, quiet=True)
