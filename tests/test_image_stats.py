"""Near-duplicate images as one unit: cluster bootstrap, group-mean Wilcoxon, clustered McNemar.

The checks lean on one property: copying every test image into a group with its copy adds no
information, so with the groups known every CI and p value must be the one of the originals;
counted as independent images, the copies narrow the CIs and shrink the p values.
"""

import json

import numpy as np
import pandas as pd
import pytest
from fixtures_results import write_fixture_results
from scipy import stats as sps

from mtl_bench import bootstrap, image_stats, stats
from mtl_bench.data.types import DataError
from mtl_bench.results_io import duplicate_groups, load_results, per_image
from mtl_bench.tables import build_tables


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    methods = {
        "ref": {"seg_quality": 0.82, "cls_quality": 0.85},
        "other": {"seg_quality": 0.79, "cls_quality": 0.75},
    }
    write_fixture_results(root, methods, n_folds=5, n_images=60, seed=1)
    results = load_results(root)
    return per_image(results, "ref"), per_image(results, "other")


def _doubled(frame: pd.DataFrame) -> pd.DataFrame:
    copy = frame.assign(id=frame["id"] + "_copy")
    return pd.concat([frame, copy], ignore_index=True)


def test_resample_groups_draws_whole_groups_and_singletons_as_before():
    plain = bootstrap.resample_indices(7, 20, seed=5)
    assert np.array_equal(bootstrap.resample_groups(np.arange(7), 20, seed=5), plain)
    assert np.array_equal(bootstrap.resample_groups(list("abcdefg"), 20, seed=5), plain)
    keys = np.array(["x", "y", "x", "z", "y", "x"])  # x: 0, 2, 5; y: 1, 4; z: 3
    for r in bootstrap.resample_groups(keys, 50, seed=0):
        counts = np.bincount(r, minlength=6)
        assert counts[0] == counts[2] == counts[5] and counts[1] == counts[4]  # whole groups
        assert counts[0] + counts[1] + counts[3] == 3  # three groups drawn per resample
    with pytest.raises(ValueError, match="3 keys for 4 items"):
        bootstrap.mean_ci([1.0, 2.0, 3.0, 4.0], groups=["a", "a", "b"])


def test_clustered_mcnemar():
    rng = np.random.default_rng(0)
    a, b = rng.random(80) < 0.8, rng.random(80) < 0.6
    n_a, n_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    exact = sps.binomtest(n_a, n_a + n_b, 0.5).pvalue
    assert stats.clustered_mcnemar_p(a, b, np.arange(80)) == pytest.approx(exact, rel=1e-12)
    # Each image saved twice, in one group: the same evidence, the same p.
    twice = np.repeat(np.arange(80), 2)
    doubled = stats.clustered_mcnemar_p(np.repeat(a, 2), np.repeat(b, 2), twice)
    assert doubled == pytest.approx(exact, rel=1e-12)
    naive = stats.clustered_mcnemar_p(np.repeat(a, 2), np.repeat(b, 2), np.arange(160))
    assert naive < exact / 5  # counted twice, the same data looks far more significant
    # Groups of images both methods get right carry no evidence and change nothing.
    right = np.ones(40, bool)
    wrong_b = right.copy()
    wrong_b[:5] = False
    paired_up = np.where(np.arange(40) >= 30, np.arange(40) // 2, np.arange(40) + 100)
    assert stats.clustered_mcnemar_p(right, wrong_b, paired_up) == pytest.approx(
        stats.mcnemar_p(right, wrong_b), rel=1e-12
    )
    # Discordances in opposite directions within a group cancel: 3 groups (+1, -1) and one +2.
    ga = np.array([1, 0, 1, 0, 1, 0, 1, 1], bool)
    assert stats.clustered_mcnemar_p(ga, ~ga, [0, 0, 1, 1, 2, 2, 3, 3]) == 1.0
    assert stats.clustered_mcnemar_p(a, a, np.arange(80)) == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        stats.clustered_mcnemar_p(a, b, np.arange(79))
    with pytest.raises(ValueError, match="no group key"):
        stats.clustered_mcnemar_p(a[:2], b[:2], ["x", None])


@pytest.mark.parametrize(
    ("metric", "task"),
    [("DC", "segmentation"), ("ACC", "classification"), ("AUC", "classification")],
)
def test_duplicates_in_groups_add_nothing(images, metric, task):
    ref, other = images
    groups = {f"{i}_copy": g for g, i in enumerate(ref["id"])} | {
        i: g for g, i in enumerate(ref["id"])
    }
    base = image_stats.image_level(metric, task, other, ref, n_boot=400, seed=2)
    grouped = image_stats.image_level(
        metric, task, _doubled(other), _doubled(ref), n_boot=400, seed=2, groups=groups
    )
    naive = image_stats.image_level(
        metric, task, _doubled(other), _doubled(ref), n_boot=400, seed=2
    )
    assert grouped["n_images"] == 2 * base["n_images"]
    for key in ("pooled", "ci_lo", "ci_hi"):
        assert grouped[key] == pytest.approx(base[key], abs=1e-12)
    assert grouped["p_images"] == pytest.approx(base["p_images"], rel=1e-12)
    assert grouped["n_units"] == base["n_units"] == base["n_images"] and naive["n_units"] == 120
    assert naive["ci_hi"] - naive["ci_lo"] < 0.85 * (base["ci_hi"] - base["ci_lo"])
    assert naive["p_images"] < grouped["p_images"] < 0.5


def test_a_broken_duplicate_group_is_named(tmp_path):
    write_fixture_results(tmp_path, ["mtl_resunet"], n_folds=5, n_images=20, duplicate_groups=[])
    path = tmp_path / "folds.json"
    data = json.loads(path.read_text())
    # A folder written before details_hash existed: the fold hash ignores the groups, so the
    # groups' own checks must catch a hand-edited list.
    data.pop("details_hash")
    for groups, message in [
        ([["a", "b"]], r"duplicate_groups\[0\] is not"),
        ([{"ids": ["a", "b"]}, {"ids": ["b", "c"]}], "image 'b' is in two duplicate groups"),
    ]:
        path.write_text(json.dumps({**data, "duplicate_groups": groups}))
        with pytest.raises(DataError, match=message) as err:
            duplicate_groups(tmp_path)
        assert str(path) in str(err.value)


def test_unit_keys_only_when_images_share_a_group():
    ids = pd.Series(["a", "b", "c"])
    assert image_stats.unit_keys(ids, None) is None and image_stats.unit_keys(ids, {}) is None
    assert image_stats.unit_keys(ids, {"a": 0, "z": 0}) is None  # z is not tested here
    keys = image_stats.unit_keys(ids, {"a": 0, "c": 0})
    assert keys[0] == keys[2] != keys[1]
    frame = pd.DataFrame({"id": ["a", "b", "c", "d"]})
    assert image_stats.duplicate_units(frame, {"a": 0, "c": 0, "d": 1}) == (1, 2)


def test_tables_group_the_manifests_duplicates(tmp_path):
    methods = {
        "mtl_resunet": {},
        "unet": {"tasks": ("mask",), "seg_quality": 0.7},
        "vgg16": {"tasks": ("label",), "cls_quality": 0.7},
    }
    # Fixture image i is in fold i % 5 (0, 5, 10 share fold 0; 1, 6 fold 1); ids name the label.
    write_fixture_results(tmp_path, methods, n_folds=5, n_images=40, duplicate_groups=[])
    labels = {i.split("/")[1]: i for i in per_image(load_results(tmp_path), "unet")["id"]}
    groups = [
        [labels["img_000"], labels["img_005"], labels["img_010"]],
        [labels["img_001"], labels["img_006"]],
    ]
    write_fixture_results(tmp_path, methods, n_folds=5, n_images=40, duplicate_groups=groups)
    ((digest, ids),) = duplicate_groups(tmp_path).items()
    assert set(load_results(tmp_path)["fold_manifest_hash"]) == {digest} and len(ids) == 5
    build_tables(tmp_path, formats=("csv",), skip_empty=True)
    raw = pd.read_csv(tmp_path / "tables" / "table4.csv").set_index("method")
    assert raw.loc["unet", "DC_n_images"] == 40 and raw.loc["unet", "DC_n_units"] == 37
    tables = build_tables(tmp_path, formats=(), skip_empty=True)
    notes = tables["table4"].attrs["notes"]
    assert any("5 test images fall in 2 near-duplicate groups" in n for n in notes)
    assert any("near-duplicate groups as clusters" in n for n in tables["table7"].attrs["notes"])
    assert any("Wilcoxon signed-rank over per-image DC / JSI pairs (a near-dup" in n for n in notes)
    (tmp_path / "folds.json").unlink()
    notes = build_tables(tmp_path, formats=(), skip_empty=True)["table4"].attrs["notes"]
    assert any(n.startswith("No fold manifest (folds.json)") for n in notes)
