"""The comparison tables' statistics: paired tests against scipy, Holm adjustment, pooled values
and CIs, the three-class averages and the CLI's --p-adjust."""

import numpy as np
import pytest
from fixtures_results import write_fixture_results
from fixtures_tables import cls_spec, fold_numbers, seg_spec
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from mtl_bench import stats
from mtl_bench.table_kinds import fmt_p
from mtl_bench.tables import build_table, build_tables, load_results, per_image


def test_wilcoxon_p_values_equal_scipy(fx):
    root, written = fx
    results = load_results(root)
    table = build_table(seg_spec(), results, n_boot=100)
    raw = table.raw.set_index("method")
    for m in ("DC", "JSI", "REC"):
        a, b = (fold_numbers(written, x, "segmentation", m) for x in ("mtl_resunet", "unet"))
        assert raw.at["unet", f"{m}_p_folds"] == pytest.approx(sps.wilcoxon(a, b).pvalue)
    assert raw.at["unet", "DC_p_folds"] == pytest.approx(0.0625)  # all 5 folds favour the ref
    assert stats.min_wilcoxon_p(5) == 0.0625
    assert any("0.0625" in note for note in table.notes)
    ref, other = per_image(results, "mtl_resunet"), per_image(results, "unet")
    pair = ref.merge(other, on="id")
    expected = sps.wilcoxon(pair["DC_x"], pair["DC_y"]).pvalue
    assert raw.at["unet", "DC_p_images"] == pytest.approx(expected)
    assert expected < 0.05 and table.display.set_index("Method").at["unet", "DC (%)"].endswith("*")
    assert np.isnan(raw.at["mtl_resunet", "DC_p_images"])


def test_p_values_and_marks_are_holm_adjusted_over_the_tables_methods(three_seg):
    results = load_results(three_seg)
    table = build_table(seg_spec(), results, n_boot=100)
    raw, shown = table.raw.set_index("method"), table.display.set_index("Method")
    others = ["unet", "fpn"]
    for m in ("DC", "JSI"):
        expected = stats.adjust_p(raw.loc[others, f"{m}_p_images"])
        np.testing.assert_allclose(raw.loc[others, f"{m}_p_images_adj"], expected)
        for method, p in zip(others, expected, strict=True):
            assert shown.at[method, f"{m} (%)"].endswith("*") == (p < 0.05)
            assert shown.at[method, f"p {m} (folds / images)"].endswith(fmt_p(p))
    folds = stats.adjust_p(raw.loc[others, "REC_p_folds"])
    np.testing.assert_allclose(raw.loc[others, "REC_p_folds_adj"], folds)
    assert any("Holm-adjusted for testing 2 methods against mtl_resunet" in n for n in table.notes)
    plain = build_table(seg_spec(), results, n_boot=100, p_adjust="none")
    plain_raw = plain.raw.set_index("method")
    for col in ("DC_p_images", "REC_p_folds"):
        np.testing.assert_array_equal(plain_raw[f"{col}_adj"], plain_raw[col])
        np.testing.assert_array_equal(plain_raw[col], raw[col])  # the tests themselves: unchanged
    assert any("not adjusted for multiple comparisons" in n for n in plain.notes)
    with pytest.raises(ValueError, match="unknown p adjustment 'fdr'"):
        build_tables(three_seg, table_specs=[seg_spec()], p_adjust="fdr")


def test_a_mark_that_holm_removes(three_seg, monkeypatch):
    # Two methods each at p = 0.03: significant alone, not when both are tested (0.06 each).
    monkeypatch.setattr(stats, "wilcoxon_p", lambda a, b: 0.03)
    results = load_results(three_seg)
    for p_adjust, mark in (("none", True), ("holm", False)):
        shown = build_table(seg_spec(), results, n_boot=20, p_adjust=p_adjust).display
        cells = shown.set_index("Method").loc[["unet", "fpn"]]
        assert all(c.endswith("*†") == mark for c in cells["DC (%)"]), (p_adjust, cells)
        assert all(c.endswith("†") == mark for c in cells["REC (%)"]), (p_adjust, cells)
        p_text = "0.03 / 0.03" if mark else "0.06 / 0.06"
        assert list(cells["p DC (folds / images)"]) == [p_text, p_text]


def test_three_class_comparison(tmp_path):
    names = ("benign", "malignant", "normal")
    write_fixture_results(tmp_path, ["mtl_resunet@3class", "vgg19"], class_names=names, n_images=60)
    spec = cls_spec(methods=("mtl_resunet@3class", "vgg19"), fixed_rows={})
    table = build_table(spec, load_results(tmp_path), reference="mtl_resunet@3class", n_boot=100)
    raw = table.raw
    assert "3 classes: PRE, REC, SPE, F1 and AUC are unweighted means" in table.notes[-1]
    img = per_image(load_results(tmp_path), "vgg19")
    probs, y = img[["prob_0", "prob_1", "prob_2"]].to_numpy(), img["label"].to_numpy(int)
    sk = roc_auc_score(y, probs, multi_class="ovr", average="macro")
    assert stats.auc_from_probs(probs, y) == pytest.approx(sk)
    row = raw.set_index("method").loc["vgg19"]
    assert row["AUC_ci_lo"] <= sk <= row["AUC_ci_hi"] and 0 <= row["ACC_p_images"] <= 1
    assert row["AUC_pooled"] == pytest.approx(sk) and row["AUC_n_folds"] == 5


def test_cli_p_adjust(three_seg, capsys):
    from mtl_bench.cli import main

    for choice, words in (("none", "not adjusted"), ("holm", "Holm-adjusted")):
        assert main(["tables", "--results", str(three_seg), "--p-adjust", choice]) == 0
        assert words in (three_seg / "tables" / "table4.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["tables", "--results", str(three_seg), "--p-adjust", "fdr"])
    assert e.value.code == 2 and "invalid choice: 'fdr'" in capsys.readouterr().err


def test_a_p_value_never_rounds_across_a_significance_level():
    assert fmt_p(0.04996) == "0.04996" and fmt_p(0.00999) == "0.00999"  # not "0.05" / "0.01"
    assert fmt_p(0.0500001) == "0.05" and fmt_p(0.123456) == "0.123" and fmt_p(0.0004) == "<0.001"
