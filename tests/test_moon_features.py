"""moon_features end to end: result files, predicted-mask sources checked out of fold, inner
folds kept apart by duplicate group, calibration, the CLI and fold-parallel fallback."""

import json
import warnings

import numpy as np
import pytest

from baselines.moon_features import fit_moon, moon_settings
from baselines.moon_features_search import PlattSVC, inner_searches
from mtl_bench.cli import main
from mtl_bench.config import RunConfig
from mtl_bench.cv import run_cv
from mtl_bench.data.prepare import load_dataset
from mtl_bench.data.types import DataError

SIZE = 64


def _cfg(**kw) -> RunConfig:
    base = dict(synthetic_n=40, image_size=SIZE, folds=2, preprocess="none", model="moon_features")
    return RunConfig(**{**base, **kw})


FAST = {"C_grid": (1.0,)}  # one C per classifier: the tests of mask sources need no wide grid


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", image_size=SIZE, preprocess="none", synthetic_n=40)


def test_run_cv_writes_result_files(tmp_path, data):
    written = run_cv(_cfg(), tmp_path, quiet=True)
    assert sorted(written) == [0, 1]
    seen = []
    for fold, path in written.items():
        rec = json.loads(path.read_text())
        assert rec["method"] == rec["model"] == "moon_features" and rec["fold"] == fold
        assert rec["tasks"] == ["label"] and rec["metrics"]["segmentation"] is None
        cls = rec["metrics"]["classification"]
        assert 0.5 < cls["AUC"] <= 1 and 0 <= cls["ACC"] <= 1  # the phantom is learnable
        prob = np.array(rec["per_image"]["prob"])
        assert prob.shape == (len(rec["per_image"]["id"]), 2)
        assert np.allclose(prob.sum(axis=1), 1, atol=1e-5)
        assert rec["epochs_run"] == 0 and rec["params"] > 0 and rec["n_features"] == 48
        assert rec["selected_classifier"] in ("logreg", "svc") and rec["selected_C"] > 0
        assert rec["mask_source"] == "ground_truth" and rec["n_empty_test_masks"] == 0
        seen += rec["per_image"]["id"]
    assert sorted(seen) == sorted(data.ids)  # every image tested exactly once


def test_predicted_masks_change_only_the_test_features(data):
    idx = np.arange(len(data))
    train, test = idx[idx % 2 == 0], idx[idx % 2 == 1]
    gt = fit_moon(_cfg(model_kwargs=FAST), data, train, test, quiet=True)
    # Predicted masks equal to the truth reproduce the ground-truth run exactly ...
    same = {i: m for i, m in zip(data.ids, data.masks, strict=True)}
    pred = {**FAST, "mask_source": "predicted", "predicted_masks": same}
    again = fit_moon(_cfg(model_kwargs=pred), data, train, test, quiet=True)
    np.testing.assert_allclose(again.test_eval["prob"], gt.test_eval["prob"])
    # ... and a segmenter that finds nothing changes the predictions, and is counted.
    blank = {i: np.zeros_like(m) for i, m in same.items()}
    pred = {**FAST, "mask_source": "predicted", "predicted_masks": blank}
    miss = fit_moon(_cfg(model_kwargs=pred), data, train, test, quiet=True)
    assert miss.extras["n_empty_test_masks"] == len(test)
    assert not np.allclose(miss.test_eval["prob"], gt.test_eval["prob"])


def test_predicted_masks_from_a_methods_folder_are_checked_out_of_fold(data, tmp_path):
    from mtl_bench.pred_masks import save_predicted_masks

    idx = np.arange(len(data))
    train, test = idx[idx % 2 == 0], idx[idx % 2 == 1]
    seg = tmp_path / "mtl_resunet"
    ids = [data.ids[i] for i in test]
    save_predicted_masks(seg / "fold_1_masks.npz", ids, data.masks[test].astype(bool))
    pred = {**FAST, "mask_source": "predicted", "predicted_masks": str(seg)}
    gt = fit_moon(_cfg(model_kwargs=FAST), data, train, test, fold=1, quiet=True)
    run = fit_moon(_cfg(model_kwargs=pred), data, train, test, fold=1, quiet=True)
    np.testing.assert_allclose(run.test_eval["prob"], gt.test_eval["prob"])  # masks = the truth
    with pytest.raises(DataError, match="fold_0_masks.npz: no predicted masks for fold 0"):
        fit_moon(_cfg(model_kwargs=pred), data, train, test, fold=0, quiet=True)
    # Masks of other images (a run on another fold manifest) would not be out of fold.
    save_predicted_masks(seg / "fold_0_masks.npz", [data.ids[i] for i in train], data.masks[train])
    with pytest.raises(DataError, match=r"not fold 0's test images \(40 differ\)"):
        fit_moon(_cfg(model_kwargs=pred), data, train, test, fold=0, quiet=True)


def test_inner_folds_keep_duplicate_groups_together(data, monkeypatch):
    idx = np.arange(len(data))
    train, test = idx[idx % 2 == 0], idx[idx % 2 == 1]
    groups = idx.copy()  # pair up training images of one class: near duplicates, say
    for c in (0, 1):
        same = train[data.labels[train] == c]
        groups[same[1::2]] = same[: len(same) // 2 * 2 : 2]
    cfg = _cfg(model_kwargs=FAST)
    y, g = data.labels[train].astype(np.int64), groups[train]
    searches = inner_searches(moon_settings(cfg), y, tuple(data.class_names), cfg, 0, g)
    assert list(searches) == ["logreg", "svc"]
    for search in searches.values():
        for fit_part, val_part in search.cv.split(np.zeros((len(y), 1)), y, g):
            assert not set(g[fit_part]) & set(g[val_part])  # no group on both sides
    seen = []  # every SVM candidate's Platt split keeps the groups apart too
    fit = PlattSVC.fit

    def spy(self, X, y, groups=None):
        out = fit(self, X, y, groups)
        seen.append(groups is not None)
        for part in self.calibration_folds_:
            rest = np.setdiff1d(np.arange(len(y)), part)
            assert not set(groups[part]) & set(groups[rest])
        return out

    monkeypatch.setattr(PlattSVC, "fit", spy)
    run = fit_moon(cfg, data, train, test, quiet=True, groups=groups)
    assert run.extras["inner_folds_grouped"] and seen and all(seen)
    monkeypatch.undo()
    plain = fit_moon(cfg, data, train, test, quiet=True, groups=idx)  # no shared group
    assert not plain.extras["inner_folds_grouped"]
    np.testing.assert_array_equal(
        plain.test_eval["prob"], fit_moon(cfg, data, train, test, quiet=True).test_eval["prob"]
    )
    one_group = np.where(data.labels == 1, -1, idx)  # every malignant image one group
    with pytest.raises(DataError, match="fold 0: .*'malignant' is one duplicate group"):
        fit_moon(cfg, data, train, test, quiet=True, groups=one_group)


def test_three_class_and_too_small_folds():
    ds = load_dataset(
        "synthetic", image_size=SIZE, preprocess="none", synthetic_n=40, class_set="three_class"
    )
    idx = np.arange(len(ds))
    run = fit_moon(
        _cfg(class_set="three_class", model_kwargs=FAST), ds, idx[idx % 2 == 0], idx[idx % 2 == 1]
    )
    prob = run.test_eval["prob"]
    assert prob.shape == (20, 3) and np.allclose(prob.sum(axis=1), 1, atol=1e-6)
    one_malignant = np.concatenate(
        [np.flatnonzero(ds.labels != 1), np.flatnonzero(ds.labels == 1)[:1]]
    )
    with pytest.raises(DataError, match="fold 3: the training fold has 1 image.*'malignant'"):
        fit_moon(_cfg(class_set="three_class"), ds, one_malignant, idx[:4], fold=3, quiet=True)


def test_cli_smoke_preset(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["cv", "--model", "moon_features", "--preset", "smoke", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "moon_features").glob("fold_*.json")) == [
        "fold_0.json",
        "fold_1.json",
    ]
    rec = json.loads((out / "moon_features" / "fold_0.json").read_text())
    assert rec["config"]["preset"] == "smoke" and rec["config"]["preprocess"] == "none"
    err = capsys.readouterr().err
    assert "moon_features fold 1:" in err
    assert "48 test, features, no epochs\n" in err and "0 epochs" not in err  # it trains none


def test_platt_svc_is_sklearns_calibration_and_splits_by_group():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(np.int64)
    ours = PlattSVC(C=2.0, n_splits=3, random_state=0).fit(x, y)
    ref = CalibratedClassifierCV(
        SVC(kernel="rbf", gamma="scale", C=2.0, random_state=0),
        method="sigmoid",
        cv=3,
        ensemble=False,
    ).fit(x, y)
    np.testing.assert_array_equal(ours.predict_proba(x), ref.predict_proba(x))  # no groups
    assert set(ours.predict(x)) <= {0, 1}
    groups = np.arange(60) // 2  # pairs: a pair's two images never sit on both sides
    grouped = PlattSVC(n_splits=3, random_state=0).fit(x, y, groups)
    folds = grouped.calibration_folds_
    assert sorted(np.concatenate(folds)) == list(range(60))
    for part in folds:
        assert not set(groups[part]) & set(np.delete(groups, part))
    one = np.where(y == 1, -1, np.arange(60))  # every positive one group: a split lacks it
    with pytest.raises(DataError, match="Platt calibration split of 60 .*by duplicate group"):
        PlattSVC(n_splits=2, random_state=0).fit(x, y, one)


def test_fold_parallel_falls_back_to_folds_in_turn(tmp_path, capsys):
    # reproduce --set fold_parallel=true reaches every method; this one has no step to batch.
    written = run_cv(_cfg(fold_parallel=True, model_kwargs=FAST), tmp_path)
    assert sorted(written) == [0, 1]
    rec = json.loads(written[1].read_text())
    assert rec["config"]["fold_parallel"] is False and "fold_parallel" not in rec
    assert "no gradient training, so fold_parallel does not apply" in capsys.readouterr().err


def test_a_bad_option_is_refused_before_the_data_is_read(tmp_path, capsys):
    # Its options were checked only in its fit: after the data was read and folds.json written.
    out = tmp_path / "r"
    argv = ["cv", "--model", "moon_features", "--preset", "smoke", "--out", str(out)]
    assert main([*argv, "--set", "model_kwargs.inner_folds=1"]) == 2
    err = capsys.readouterr().err
    assert err == "mtl-bench: error: moon_features inner_folds must be an integer >= 2, got 1\n"
    assert not out.exists()


def test_three_class_on_ground_truth_masks_warns_of_the_empty_normal_masks():
    # A normal image's true mask is empty: its class can be read off the mask features.
    from mtl_bench.data.types import DataWarning

    with pytest.warns(DataWarning, match="a normal image's mask is empty, which gives its class"):
        moon_settings(_cfg(class_set="three_class"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        moon_settings(_cfg())  # binary: its Table 6 note says it saw the true outline
