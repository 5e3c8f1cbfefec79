"""Tables from fixture result files: values, layout, statistics, errors and written files."""

import json

import numpy as np
import pandas as pd
import pytest
from fixtures_results import edit_result, result_path, write_fixture_results
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from mtl_bench import stats
from mtl_bench.table_kinds import fmt_p
from mtl_bench.tables import (
    DEFAULT_SPECS,
    TableSpec,
    build_table,
    build_tables,
    load_results,
    per_image,
)
from mtl_bench.tables import render_markdown as render

SEG = ("JSI", "DC", "ACC", "PRE", "REC", "SPE")
CLS = ("ACC", "PRE", "REC", "SPE", "F1", "AUC")
REASON = "not reproducible: needs RF time series"


def seg_spec(**kw):
    kw.setdefault("methods", ("mtl_resunet", "unet", "fpn"))
    return TableSpec("table4", "Table 4: segmentation", "comparison", **kw)


def cls_spec(**kw):
    kw.setdefault("methods", ("mtl_resunet", "resnet50", "uniyal"))
    kw.setdefault("fixed_rows", {"uniyal": REASON})
    return TableSpec("table6", "Table 6: classification", "comparison", task="classification", **kw)


@pytest.fixture
def fx(tmp_path):
    methods = {
        "mtl_resunet": {"seg_quality": 0.85, "cls_quality": 0.9},
        "unet": {"tasks": ("mask",), "seg_quality": 0.7},
        "resnet50": {"tasks": ("label",), "cls_quality": 0.6},
    }
    return tmp_path, write_fixture_results(tmp_path, methods, n_folds=5, n_images=40, seed=0)


def fold_numbers(written, method, task, metric):
    return np.array([written[method][f]["metrics"][task][metric] for f in sorted(written[method])])


def test_table1_and_table2_equal_fixture_mean_and_sample_sd(fx):
    root, written = fx
    frames = build_tables(root, formats=("csv",))
    t1, t2 = frames["table1"], frames["table2"]
    assert list(t1["Fold"]) == [f"Fold {i}" for i in range(1, 6)] + ["Mean ± SD"]
    assert list(t1.columns) == ["Fold", *(f"{m} (%)" for m in SEG)]
    assert list(t2.columns) == ["Fold", *(f"{m} (%)" for m in CLS[:-1]), "AUC"]
    for frame, task, names in ((t1, "segmentation", SEG), (t2, "classification", CLS)):
        raw = pd.read_csv(root / "tables" / f"{frame.attrs['name']}.csv").set_index("row")
        for m in names:
            v = fold_numbers(written, "mtl_resunet", task, m)
            mean, sd = v.mean(), v.std(ddof=1)  # sample SD, as documented
            assert raw.at["mean", m] == pytest.approx(mean, abs=1e-12)
            assert raw.at["sd", m] == pytest.approx(sd, abs=1e-12)
            assert raw.loc[[f"Fold {i}" for i in range(1, 6)], m].to_numpy() == pytest.approx(v)
            col = "AUC" if m == "AUC" else f"{m} (%)"
            cell = frame[col].iloc[-1]
            expected = (
                f"{mean:.3f} ± {sd:.3f}" if m == "AUC" else f"{100 * mean:.2f} ± {100 * sd:.2f}"
            )
            assert cell == expected
            assert frame[col].iloc[0] == (f"{v[0]:.3f}" if m == "AUC" else f"{100 * v[0]:.2f}")
    assert "mtl_resunet" in t1.attrs["title"]


def test_comparison_rows_not_run_and_reason(fx):
    root, _ = fx
    spec = cls_spec(methods=("mtl_resunet", "resnet50", "densenet201", "uniyal"))
    table = build_table(spec, load_results(root), n_boot=100)
    d = table.display.set_index("Method")
    assert list(d.index) == ["mtl_resunet", "resnet50", "densenet201", "uniyal"]
    assert (d.loc["densenet201"].drop("Note") == "not run").all()
    assert (d.loc["uniyal"].drop("Note") == "n/a").all()
    assert d.at["uniyal", "Note"] == REASON and d.at["resnet50", "Note"] == ""
    assert d.at["mtl_resunet", "p ACC (folds / images)"] == "ref."
    raw = table.raw.set_index("method")
    assert raw.at["densenet201", "status"] == "not run" and raw.at["uniyal", "status"] == REASON
    assert raw.loc[["densenet201", "uniyal"], "ACC_mean"].isna().all()
    # A reason row for a method that is not in ``methods`` is appended, in mapping order.
    extra = cls_spec(methods=("mtl_resunet",), fixed_rows={"uniyal": REASON, "moon": "no code"})
    assert list(build_table(extra, load_results(root), n_boot=50).display["Method"]) == [
        "mtl_resunet",
        "uniyal",
        "moon",
    ]


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


@pytest.fixture
def three_seg(tmp_path):
    methods = {
        "mtl_resunet": {"seg_quality": 0.85, "cls_quality": 0.9},
        "unet": {"tasks": ("mask",), "seg_quality": 0.7},
        "fpn": {"tasks": ("mask",), "seg_quality": 0.83},
    }
    write_fixture_results(tmp_path, methods, n_folds=5, n_images=40, seed=0)
    return tmp_path


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


def test_files_written_and_parseable(fx):
    root, _ = fx
    specs = [seg_spec(fixed_rows={"daf": "needs {code} & 50% luck_"})]
    frames = build_tables(root, table_specs=specs, n_boot=100)
    out = root / "tables"
    md = (out / "table4.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "Table 4: segmentation" and lines[1] == ""
    table_lines = [ln for ln in lines if ln.startswith("|")]
    assert len(table_lines) == 2 + 4  # header, separator, 4 methods
    assert table_lines[0].split("|")[1].strip() == "Method"
    assert md == render(frames["table4"]) + "\n"
    tex = (out / "table4.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and tex.count("\\begin{tabular}") == 1
    assert "mtl\\_resunet" in tex and "$\\pm$" in tex and "\\{code\\} \\& 50\\% luck\\_" in tex
    assert "% needs \\usepackage{booktabs}" in tex
    from mtl_bench.tables import tex_escape

    assert tex_escape("32², 5 %") == "32$^2$, 5 \\%"  # ASCII only: pdflatex needs no inputenc
    body = tex[tex.index("\\midrule") : tex.index("\\bottomrule")]
    assert all(ln.count(" & ") == len(frames["table4"].columns) - 1 for ln in body.splitlines()[1:])
    csv = pd.read_csv(out / "table4.csv").set_index("method")
    raw = build_table(specs[0], load_results(root), n_boot=100).raw.set_index("method")
    num = [c for c in raw.columns if c not in ("status",)]
    np.testing.assert_allclose(csv[num].to_numpy(float), raw[num].to_numpy(float), rtol=1e-12)
    assert csv.at["daf", "status"] == "needs {code} & 50% luck_"


def test_format_selection_and_latex_alias(fx):
    root, _ = fx
    frames = build_tables(root, formats="latex")
    printed = render(frames)  # what the CLI prints: every table, titles first
    assert printed.startswith("Table 1: ") and "\n\n\nTable 2: " in printed
    written = sorted(p.name for p in (root / "tables").iterdir())
    # Only the asked format; supplementary tables only when their methods ran (none here).
    assert written == sorted(f"{s.name}.tex" for s in DEFAULT_SPECS if not s.supplementary)
    with pytest.raises(ValueError, match="unknown table format 'xls'"):
        build_tables(root, formats=("md", "xls"))


def test_null_metrics_show_a_dash(tmp_path):
    written = write_fixture_results(tmp_path, ["mtl_resunet"])
    path = result_path(tmp_path, "mtl_resunet", 2)
    record = json.loads(path.read_text())
    record["metrics"]["segmentation"]["PRE"] = None
    record["metrics"]["classification"] = None
    path.write_text(json.dumps(record))
    frames = build_tables(tmp_path, formats=("csv",))
    t1, t2 = frames["table1"].set_index("Fold"), frames["table2"].set_index("Fold")
    assert t1.at["Fold 3", "PRE (%)"] == "—" and (t2.loc["Fold 3"] == "—").all()
    pre = [written["mtl_resunet"][f]["metrics"]["segmentation"]["PRE"] for f in (0, 1, 3, 4)]
    assert t1.at["Mean ± SD", "PRE (%)"].startswith(f"{100 * np.mean(pre):.2f} ± ")
    # A task the method lacks altogether reads "—", not "nan".
    write_fixture_results(tmp_path, {"unet": {"tasks": ("mask",)}})
    table = build_table(
        cls_spec(methods=("mtl_resunet", "unet")), load_results(tmp_path), n_boot=50
    )
    row = table.display.set_index("Method").loc["unet"]
    assert (row.drop("Note") == "—").all() and "nan" not in render(table.display)


def test_missing_method_and_missing_folds(tmp_path):
    write_fixture_results(tmp_path, {"unet": {}, "fpn": {"folds": [0, 1, 3]}})
    frames = build_tables(tmp_path, formats=(), table_specs=[seg_spec(methods=("unet", "fpn"))])
    assert list(frames["table4"]["Method"]) == ["unet", "fpn (3/5 folds)"]
    # The CSV says over how many folds each mean is, as the display's "(j/k)".
    csv = build_table(seg_spec(methods=("unet", "fpn")), load_results(tmp_path), n_boot=20).raw
    assert csv.set_index("method")["DC_n_folds"].tolist() == [5, 3]
    t1 = build_tables(tmp_path, formats=())["table1"]  # no mtl_resunet results at all
    assert list(t1.iloc[0]) == ["Mean ± SD", *["not run"] * 6]
    spec = TableSpec("t", "{method} per fold", "per_fold", methods=("fpn",))
    d = build_table(spec, load_results(tmp_path)).display.set_index("Fold")
    assert (d.loc["Fold 3"] == "not run").all() and d.loc["Fold 4"].iloc[0] != "not run"


def test_hyperparameter_table_from_config(tmp_path):
    write_fixture_results(
        tmp_path,
        {
            "mtl_resunet": {},
            "unet": {"config": {"batch_size": 8, "optimizer": "sgd", "lr": 0.01, "epochs": 100}},
        },
        n_folds=2,
        n_images=8,
    )
    path = result_path(tmp_path, "unet", 1)
    record = json.loads(path.read_text())
    record["config"]["batch_size"] = 4
    path.write_text(json.dumps(record))
    spec = TableSpec(
        "table3", "Table 3", "hyperparams", methods=("mtl_resunet", "unet", "fpn", "daf"),
        fixed_rows={"daf": "no public code"},
    )  # fmt: skip
    table = build_table(spec, load_results(tmp_path))
    d = table.display.set_index("Method")
    assert list(d.loc["mtl_resunet"].iloc[:5]) == [
        "16",
        "adam",
        "0.0001",
        "500",
        "×0.1 every 20 epochs",
    ]
    assert d.at["unet", "Batch size"] == "8 / 4"  # folds that disagree are shown, not hidden
    assert (d.loc["fpn"].drop("Note") == "not run").all() and d.at[
        "daf", "Note"
    ] == "no public code"
    assert table.raw.set_index("method").at["mtl_resunet", "lr"] == 1e-4


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


def test_spec_validation():
    with pytest.raises(ValueError, match="unknown kind"):
        TableSpec("x", "X", "pie")
    with pytest.raises(ValueError, match="'F1' is not a segmentation metric"):
        TableSpec("x", "X", "comparison", metrics=("F1",))
    with pytest.raises(ValueError, match="main metric 'PRE'"):
        TableSpec("x", "X", "comparison", main_metrics=("PRE",))


def test_a_table_says_when_its_methods_ran_on_different_machines(tmp_path):
    write_fixture_results(tmp_path, {"unet": {}, "fpn": {}})
    specs = [seg_spec(methods=("unet", "fpn"))]
    frames = build_tables(tmp_path, formats=(), table_specs=specs)
    assert not any("different machines" in n for n in frames["table4"].attrs["notes"])
    # fpn rerun on another CPU (its files now name it); unet's predate host_cpu.
    amd = {"host_cpu": "AMD EPYC, x86_64, 2 cores, avx512f"}
    edit_result(tmp_path, "fpn", range(5), lambda r: r.update(amd))
    frames = build_tables(tmp_path, formats=("md",), table_specs=specs)
    note = frames["table4"].attrs["notes"][-1]
    assert note == (
        "Results from different machines (or a CPU not recorded), which may round differently "
        "(compare with care): "
        "cpu (AMD EPYC, x86_64, 2 cores, avx512f): fpn; cpu (CPU not recorded): unet."
    )
    assert note in (tmp_path / "tables" / "table4.md").read_text()
    # Both recorded and different: the note says so without the "not recorded" hedge.
    gpu = {"device_kind": "NVIDIA H100 80GB HBM3", "host_cpu": "Intel Xeon, x86_64, 16 cores"}
    edit_result(tmp_path, "unet", range(5), lambda r: r.update(gpu))
    note = build_tables(tmp_path, formats=(), table_specs=specs)["table4"].attrs["notes"][-1]
    assert note.startswith("Results from different machines, which may round differently")
    assert "NVIDIA H100 80GB HBM3 (Intel Xeon, x86_64, 16 cores): unet" in note


def test_a_table_says_when_a_methods_folds_ran_with_different_settings(tmp_path):
    write_fixture_results(tmp_path, {"unet": {}, "fpn": {}})
    specs = [seg_spec(methods=("unet", "fpn"))]
    for fold, changes in [(1, {"image_size": 32, "checkpoint_every": 1}), (3, {"epochs": 3})]:
        edit_result(tmp_path, "fpn", [fold], lambda r, c=changes: r["config"].update(c))
    frames = build_tables(tmp_path, formats=("md",), table_specs=specs)
    note = frames["table4"].attrs["notes"][-1]
    assert note == (
        "Folds of one method ran with different settings, so its mean ± sd mixes them: fpn: "
        "epochs 500 (Fold 1), 500 (Fold 2), 500 (Fold 3), 3 (Fold 4), 500 (Fold 5); "
        "image_size 64 (Fold 1), 32 (Fold 2), 64 (Fold 3), 64 (Fold 4), 64 (Fold 5)."
    )  # checkpoint_every says how a run was executed, not what it computed: not compared
    assert note in (tmp_path / "tables" / "table4.md").read_text()


def test_a_rebuild_leaves_no_stale_table_files(tmp_path):
    write_fixture_results(tmp_path, {"mtl_resunet": {}, "unet": {"tasks": ("mask",)}})
    build_tables(tmp_path, formats=("md", "tex", "csv"))
    made = {p.name for p in (tmp_path / "tables").iterdir()}
    assert {"table1.md", "table1.tex", "table4.csv"} <= made
    build_tables(tmp_path, formats=())  # frames only: writes nothing, removes nothing
    assert {p.name for p in (tmp_path / "tables").iterdir()} == made
    (tmp_path / "tables" / "mine.txt").write_text("a user's own file")
    build_tables(tmp_path, formats=("csv",))  # another format: md/tex of that build go
    left = {p.name for p in (tmp_path / "tables").iterdir()}
    assert "table1.md" not in left and "table1.tex" not in left and "table1.csv" in left
    assert "mine.txt" in left  # only files of the tables this build was asked for
    # Only unet left: the tables without a result of it are not written, and their old files go.
    for fold in range(5):
        result_path(tmp_path, "mtl_resunet", fold).unlink()
    frames = build_tables(tmp_path, formats=("csv",), skip_empty=True)
    assert set(frames) == {"table3", "table4"}  # unet's hyper-parameters and its comparison
    left = {p.name for p in (tmp_path / "tables").iterdir()}
    assert left == {"table3.csv", "table4.csv", "mine.txt"}


def test_the_reference_must_be_a_multi_task_method_with_results(tmp_path):
    from mtl_bench.data.types import DataError

    write_fixture_results(tmp_path, {"mtl_resunet": {}, "unet": {"tasks": ("mask",)}})
    with pytest.raises(DataError, match=r"--reference 'nope' has no results in .*mtl_resunet"):
        build_tables(tmp_path, formats=(), reference="nope", check_reference=True)
    with pytest.raises(DataError, match="--reference 'unet' has only mask outputs"):
        build_tables(tmp_path, formats=(), reference="unet", check_reference=True)
    assert build_tables(tmp_path, formats=(), check_reference=True)


def test_a_metric_undefined_in_some_folds_says_over_how_many(tmp_path):
    write_fixture_results(tmp_path, {"mtl_resunet": {}, "resnet50": {"tasks": ("label",)}})
    one_class = {"AUC": None}  # a one-class test fold
    edit_result(
        tmp_path, "resnet50", [2], lambda r: r["metrics"]["classification"].update(one_class)
    )
    frames = build_tables(tmp_path, formats=(), table_specs=[cls_spec()])
    row = frames["table6"].set_index("Method").loc["resnet50"]
    assert row["AUC"].endswith("(4/5)") and not row["ACC (%)"].endswith(")")
    assert "(j/k) after a Mean ± SD: over the j of k folds" in frames["table6"].attrs["notes"][0]


def test_cli_p_adjust(three_seg, capsys):
    from mtl_bench.cli import main

    for choice, words in (("none", "not adjusted"), ("holm", "Holm-adjusted")):
        assert main(["tables", "--results", str(three_seg), "--p-adjust", choice]) == 0
        assert words in (three_seg / "tables" / "table4.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["tables", "--results", str(three_seg), "--p-adjust", "fdr"])
    assert e.value.code == 2 and "invalid choice: 'fdr'" in capsys.readouterr().err


def test_variant_runs_get_rows_after_their_method(tmp_path):
    seg, cls = {"tasks": ("mask",)}, {"tasks": ("label",)}
    write_fixture_results(
        tmp_path,
        {
            "mtl_resunet": {},
            "mtl_resunet@add": {},  # a reference variant: --reference swaps it in, not a row
            "unet": seg,
            "unet@no_bn": seg,
            "unet@a_first": seg,
            "resnet50": cls,
            "resnet50@3class": cls,  # three-class runs belong to their own folder's table
            "moon_features": {**cls, "config": {"model_kwargs": {"mask_source": "ground_truth"}}},
            "moon_features@pred": {**cls, "config": {"model_kwargs": {"mask_source": "predicted"}}},
        },
    )
    frames = build_tables(tmp_path, formats=(), table_specs=[seg_spec(), cls_spec(
        methods=("mtl_resunet", "moon_features", "resnet50", "uniyal"))])  # fmt: skip
    assert list(frames["table4"]["Method"]) == [
        "mtl_resunet", "unet", "unet@a_first", "unet@no_bn", "fpn"
    ]  # fmt: skip
    t6 = frames["table6"].set_index("Method")
    assert list(t6.index) == ["mtl_resunet", "moon_features", "moon_features@pred", "resnet50",
                              "uniyal"]  # fmt: skip
    assert "ground-truth" in t6.at["moon_features", "Note"]
    assert t6.at["moon_features@pred", "Note"] == ""  # predicted masks: the image only
    notes = frames["table6"].attrs["notes"]
    assert any("testing 3 methods against mtl_resunet" in n for n in notes)  # uniyal: not run


def test_a_table_says_when_methods_were_scored_under_other_evaluation_settings(tmp_path):
    write_fixture_results(
        tmp_path, {"mtl_resunet": {}, "unet": {"config": {"empty_policy": "match"}}, "fpn": {}}
    )
    notes = build_tables(tmp_path, formats=(), table_specs=[seg_spec()])["table4"].attrs["notes"]
    assert notes[-1] == (
        "Methods were scored under different evaluation settings, so their metrics do not cover "
        'the same images: empty_policy "exclude": fpn, mtl_resunet; "match": unet.'
    )
    write_fixture_results(tmp_path, {"unet": {}})  # rerun alike: nothing to say
    notes = build_tables(tmp_path, formats=(), table_specs=[seg_spec()])["table4"].attrs["notes"]
    assert not any("evaluation settings" in n for n in notes)
