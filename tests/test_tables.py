"""Tables from fixture result files: values, layout, errors and written files (statistics:
``test_table_stats``; notes and variant rows: ``test_table_notes``)."""

import json

import numpy as np
import pandas as pd
import pytest
from fixtures_results import edit_result, refresh_metrics, result_path, write_fixture_results
from fixtures_tables import CLS, REASON, SEG, cls_spec, fold_numbers, seg_spec
from lock_holder import held_elsewhere

from mtl_bench.tables import (
    DEFAULT_SPECS,
    TableSpec,
    build_table,
    build_tables,
    load_results,
)
from mtl_bench.tables import render_markdown as render


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
    from mtl_bench.table_render import tex_escape

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
    # A one-class test fold: AUC undefined (null), as the writer leaves it.
    record["per_image"]["label"] = [0] * len(record["per_image"]["label"])
    refresh_metrics(record)
    assert record["metrics"]["classification"]["AUC"] is None
    path.write_text(json.dumps(record))
    frames = build_tables(tmp_path, formats=("csv",))
    t1, t2 = frames["table1"].set_index("Fold"), frames["table2"].set_index("Fold")
    assert t1.at["Fold 3", "PRE (%)"] == "—" and t2.at["Fold 3", "AUC"] == "—"
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


def test_a_fold_with_a_curve_and_no_result_reads_unfinished(tmp_path):
    # An interrupted fold leaves its learning curve and no fold file: "not run" would hide it.
    write_fixture_results(tmp_path, {"fpn": {"folds": [0, 1, 3]}})
    curve = "epoch,loss\n1,0.9\n2,0.8\n3,0.7\n"
    (tmp_path / "fpn" / "fold_2_curve.csv").write_text(curve)
    (tmp_path / "mtl_resunet").mkdir()
    (tmp_path / "mtl_resunet" / "fold_0_curve.csv").write_text(curve)
    spec = TableSpec("t", "{method} per fold", "per_fold", methods=("fpn",))
    table = build_table(spec, load_results(tmp_path))
    d = table.display.set_index("Fold")
    assert (d.loc["Fold 3"] == "unfinished").all() and (d.loc["Fold 5"] == "not run").all()
    assert "Unfinished: fold 3 stopped after epoch 3; rerun with --resume to finish." in (
        table.notes
    )
    # A fold a running cv holds (its claim, claim.py) is training, not stopped.
    with held_elsewhere(tmp_path / ".fpn.fold_2.lock"):
        notes = build_table(spec, load_results(tmp_path)).notes
        assert "Unfinished: fold 3 is training (epoch 3 so far)." in notes
    t1 = build_table(DEFAULT_SPECS[0], load_results(tmp_path))  # mtl_resunet: no fold finished
    assert list(t1.display.iloc[0]) == ["Mean ± SD", *["unfinished"] * 6]
    assert t1.notes == [
        "mtl_resunet: unfinished: fold 1 stopped after epoch 3; rerun with --resume to finish."
    ]


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


def test_spec_validation():
    with pytest.raises(ValueError, match="unknown kind"):
        TableSpec("x", "X", "pie")
    with pytest.raises(ValueError, match="'F1' is not a segmentation metric"):
        TableSpec("x", "X", "comparison", metrics=("F1",))
    with pytest.raises(ValueError, match="main metric 'PRE'"):
        TableSpec("x", "X", "comparison", main_metrics=("PRE",))


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

    def one_class(r):  # a one-class test fold: its AUC is null
        r["per_image"]["label"] = [0] * len(r["per_image"]["label"])
        refresh_metrics(r)

    edit_result(tmp_path, "resnet50", [2], one_class)
    frames = build_tables(tmp_path, formats=(), table_specs=[cls_spec()])
    row = frames["table6"].set_index("Method").loc["resnet50"]
    assert row["AUC"].endswith("(4/5)") and not row["ACC (%)"].endswith(")")
    assert "(j/k) after a Mean ± SD: over the j of k folds" in frames["table6"].attrs["notes"][0]


def test_one_fold_of_k_is_said_in_the_singular(tmp_path):
    write_fixture_results(tmp_path, {"fpn": {"folds": [1]}})
    spec = TableSpec("t", "{method} per fold", "per_fold", methods=("fpn",))
    notes = build_table(spec, load_results(tmp_path)).notes
    assert "Only 1 of 5 folds has results; Mean ± SD uses those." in notes


def test_a_build_stopped_while_writing_leaves_each_table_whole(tmp_path, monkeypatch):
    # Tables were written in place: a kill mid-write left a table cut short.
    write_fixture_results(tmp_path, ["mtl_resunet"])
    build_tables(tmp_path, formats=("csv",))
    before = (tmp_path / "tables" / "table1.csv").read_text()

    def stopped(self, f, index=False):
        f.write("row,JSI\nFold 1,0.")  # half a table, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", stopped)
    with pytest.raises(KeyboardInterrupt):
        build_tables(tmp_path, formats=("csv",))
    assert (tmp_path / "tables" / "table1.csv").read_text() == before
    assert sorted(p.name for p in (tmp_path / "tables").iterdir() if p.name.startswith(".")) == []
