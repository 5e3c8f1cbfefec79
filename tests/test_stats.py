"""Significance tests and bootstrap helpers against scipy / scikit-learn."""

import itertools

import numpy as np
import pytest
from fixtures_results import write_fixture_results
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from mtl_bench import bootstrap, image_stats, stats
from mtl_bench.results_io import load_results, per_image


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    methods = {"ref": {"seg_quality": 0.85, "cls_quality": 0.9}, "other": {"seg_quality": 0.75}}
    write_fixture_results(root, methods, n_folds=5, n_images=40, seed=0)
    results = load_results(root)
    return per_image(results, "ref"), per_image(results, "other")


def test_image_level_segmentation_ci_and_wilcoxon(images):
    ref, other = images
    st = image_stats.image_level("DC", "segmentation", other, ref, n_boot=300, seed=3)
    assert st["ci_lo"] < other["DC"].mean() < st["ci_hi"] and st["n_images"] == 40
    assert st == image_stats.image_level("DC", "segmentation", other, ref, n_boot=300, seed=3)
    moved = image_stats.image_level("DC", "segmentation", other, ref, n_boot=300, seed=4)
    assert (moved["ci_lo"], moved["ci_hi"]) != (st["ci_lo"], st["ci_hi"])
    pair = ref.merge(other, on="id")  # paired by image id, not by row order
    assert st["p_images"] == pytest.approx(sps.wilcoxon(pair["DC_x"], pair["DC_y"]).pvalue)
    assert np.isnan(
        image_stats.image_level("JSI", "segmentation", ref, None, n_boot=10)["p_images"]
    )
    assert st["pooled"] == pytest.approx(other["DC"].mean())  # the value the CI surrounds


def test_image_level_classification_mcnemar_and_auc(images):
    ref, other = images
    acc = image_stats.image_level("ACC", "classification", other, ref, n_boot=300)
    pair = ref.merge(other, on="id")
    a, b = pair["correct_x"].astype(bool), pair["correct_y"].astype(bool)
    n_a, n_b = int((a & ~b).sum()), int((~a & b).sum())
    assert acc["p_images"] == pytest.approx(sps.binomtest(n_a, n_a + n_b, 0.5).pvalue)
    assert acc["ci_lo"] <= other["correct"].mean() <= acc["ci_hi"]
    auc = image_stats.image_level("AUC", "classification", other, ref, n_boot=300)
    pooled = roc_auc_score(other["label"].astype(int), other["prob_1"])
    assert auc["ci_lo"] <= pooled <= auc["ci_hi"] and 0 < auc["p_images"] <= 1
    assert auc["pooled"] == pytest.approx(pooled) and acc["pooled"] == other["correct"].mean()
    assert image_stats.image_level("AUC", "classification", ref, ref, n_boot=50)["p_images"] == 1.0


def test_stats_helpers_against_references():
    rng = np.random.default_rng(1)
    s, y = rng.random(50), rng.integers(0, 2, 50)
    assert stats.auc_batch(s, y)[0] == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(stats.auc_batch(s, np.zeros(50))[0])  # one class: undefined
    a = rng.random(8)
    assert stats.wilcoxon_p(a, a) == 1.0 and np.isnan(stats.wilcoxon_p([1.0], [2.0]))
    assert stats.wilcoxon_p(a, a + 0.1) == pytest.approx(sps.wilcoxon(a, a + 0.1).pvalue)
    assert stats.wilcoxon_p([0.1, np.nan, 0.3, 0.25], [0.2, 0.5, 0.1, 0.4]) == pytest.approx(
        sps.wilcoxon([0.1, 0.3, 0.25], [0.2, 0.1, 0.4]).pvalue
    )
    # 0.3 - 0.1 and 0.2 - 0.4 tie (scipy ranks their float noise: 0.75); with midranks, p = 1.
    assert stats.wilcoxon_p([0.1, 0.3, 0.2], [0.2, 0.1, 0.4]) == 1.0
    same = bootstrap.paired_bootstrap_p(
        lambda i: s[i].mean(1), lambda i: s[i].mean(1), 50, n_boot=50
    )
    assert same == 1.0
    lo, hi = bootstrap.mean_ci(s, n_boot=500, seed=0)
    assert lo < s.mean() < hi and (lo, hi) == bootstrap.mean_ci(s, n_boot=500, seed=0)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap.mean_ci(s, n_boot=0)


def test_mcnemar_refuses_unpaired_samples():
    # Broadcasting one image against six would report p = 0.031 for a single discordant pair.
    with pytest.raises(ValueError, match="equal shapes"):
        stats.mcnemar_p([False], [True] * 6)
    assert stats.mcnemar_p([True, False], [True, False]) == 1.0


def test_holm_adjustment_by_hand():
    # sorted: 0.005×4 = 0.02, 0.01×3 = 0.03, 0.03×2 = 0.06, 0.04×1 = 0.04 → kept monotone: 0.06
    got = stats.adjust_p([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    got = stats.adjust_p([np.nan, 0.01, 0.04, 0.6])  # NaN: no test, not in the family of 3
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1:], [0.03, 0.08, 0.6])
    assert stats.adjust_p([0.4, 0.5, 0.9]).tolist() == [1.0, 1.0, 1.0]  # capped at 1
    raw = np.random.default_rng(0).random(9)
    adj = stats.adjust_p(raw)
    assert np.all(adj >= raw) and np.all(np.diff(adj[np.argsort(raw)]) >= 0)
    assert stats.adjust_p([0.7]).tolist() == [0.7]  # a family of one is not adjusted
    np.testing.assert_array_equal(stats.adjust_p(raw, "none"), raw)
    assert stats.adjust_p([]).shape == (0,)
    with pytest.raises(ValueError, match="unknown p adjustment 'bonf'"):
        stats.adjust_p([0.1], "bonf")
    for bad in ([-0.1, 0.5], [0.5, 1.5]):  # adjusted, they came back negative or above 1
        with pytest.raises(ValueError, match=r"p values must be in \[0, 1\], got "):
            stats.adjust_p(bad)


def test_auc_refuses_probabilities_and_labels_that_do_not_pair():
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match=r"\(10, 2\) and \(9,\)"):  # a row was dropped unsaid
        stats.auc_from_probs(rng.random((10, 2)), rng.integers(0, 2, 9))
    with pytest.raises(ValueError, match=r"prob must be \(n, C\)"):
        stats.auc_from_probs(rng.random(10), rng.integers(0, 2, 10))
    with pytest.raises(ValueError, match=r"level must be a fraction .* got 95"):
        bootstrap.percentile_ci(rng.random(20), level=95)


def test_wilcoxon_is_exact_with_ties_and_never_below_its_floor():
    rng = np.random.default_rng(2)
    for n in (3, 5, 8, 12):  # without ties: scipy's exact p
        a, b = rng.normal(size=n), rng.normal(size=n)
        assert stats.wilcoxon_p(a, b) == pytest.approx(sps.wilcoxon(a, b, method="exact").pvalue)

    def every_sign(d):  # the definition: all 2**n sign patterns of the midranks
        d = d[d != 0]
        r = sps.rankdata(np.abs(d))
        centre, seen = r.sum() / 2, abs(r[d > 0].sum() - r.sum() / 2)
        signs = np.array(list(itertools.product((0, 1), repeat=d.size)))
        return np.mean(np.abs(signs @ r - centre) >= seen - 1e-9)

    for _ in range(20):
        d = rng.integers(-3, 4, size=9).astype(float)  # ties and zeros
        if d.any():
            assert stats.wilcoxon_p(d, np.zeros(9)) == pytest.approx(every_sign(d), abs=1e-12)
    # Five folds with tied differences, all favouring one side: 2/2^5, as the notes promise
    # (scipy before 1.15 used the normal approximation here: 0.042).
    assert stats.wilcoxon_p(np.array([1, 1, 2, 2, 3]) / 130, np.zeros(5)) == 0.0625
    # Fold metrics k/40: 27/40 - 28/40 and 30/40 - 31/40 differ in their last bits, yet tie.
    a, b = np.array([27, 33, 33, 30, 31]) / 40, np.array([28, 33, 25, 31, 33]) / 40
    assert (a - b)[0] != (a - b)[3] and stats.wilcoxon_p(a, b) == every_sign(np.round(a - b, 9))
    assert stats.wilcoxon_p(a, b) == 0.75  # ranking the float noise gave 0.875
    big_a, big_b = rng.normal(size=80), rng.normal(size=80)  # beyond 50 pairs: approximation
    expected = sps.wilcoxon(big_a, big_b, method="approx").pvalue
    assert stats.wilcoxon_p(big_a, big_b) == pytest.approx(expected)


def test_paired_bootstrap_p_is_never_zero():
    s = np.random.default_rng(3).random(40)
    one_side = bootstrap.paired_bootstrap_p(lambda i: s[i].mean(1) + 1, lambda i: s[i].mean(1), 40)
    assert one_side == pytest.approx(2 / 1001)  # every resample favours a: 2 / (B + 1)
    assert stats.adjust_p([one_side, 0.5])[0] == pytest.approx(4 / 1001)  # Holm can act on it
