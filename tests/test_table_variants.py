"""Ablations of the reference (``mtl_resunet@TAG``) as rows tested against it, results that no
table shows named in a warning, and the note on methods run at other input sizes."""

import pandas as pd
import pytest
from fixtures_results import write_fixture_results
from fixtures_tables import cls_spec, seg_spec

from mtl_bench.cli import main
from mtl_bench.data.types import DataWarning
from mtl_bench.tables import DEFAULT_SPECS, build_tables

ABLATION = {
    "mtl_resunet": {},
    "mtl_resunet@add": {"seg_quality": 0.7, "cls_quality": 0.7},
    "mtl_resunet@3class": {"class_names": ("benign", "malignant", "normal")},
    "unet": {"tasks": ("mask",)},
}


def _csv(root, name):
    return pd.read_csv(root / "tables" / f"{name}.csv").set_index("method")


def test_an_ablation_of_the_reference_is_a_row_after_it_tested_against_it(tmp_path):
    write_fixture_results(tmp_path, ABLATION)
    frames = build_tables(tmp_path, formats=("csv",), n_boot=50, skip_empty=True)
    t4 = list(frames["table4"]["Method"])
    assert t4[-2:] == ["mtl_resunet", "mtl_resunet@add"]  # right after the reference
    for name in ("table6", "table7"):
        rows = list(frames[name]["Method"])
        assert rows[rows.index("mtl_resunet") + 1] == "mtl_resunet@add"
        assert "mtl_resunet@3class" not in rows  # the three-class run has its own table
    # Tested like any other row: the p cell is a p value, not "ref.", and the CSV holds it.
    row = frames["table4"].set_index("Method").loc["mtl_resunet@add"]
    assert row["p DC (folds / images)"] != "ref."
    assert pd.notna(_csv(tmp_path, "table4").at["mtl_resunet@add", "DC_p_images"])
    # Per-fold Tables 1-2 stay the reference's own; an ablation builds no supplementary table.
    assert "(mtl_resunet)" in frames["table1"].attrs["title"]
    assert not {"table_s1", "table_s2"} & set(frames)
    assert list(frames["table_3class"]["Method"])[-1] == "mtl_resunet@3class"


@pytest.mark.filterwarnings("ignore:results not in any table")  # the three-class run
def test_with_the_ablation_as_reference_the_untagged_model_is_compared_to_it(tmp_path):
    write_fixture_results(tmp_path, ABLATION)
    build_tables(tmp_path, formats=("csv",), n_boot=50, table_specs=[seg_spec()])
    forward = _csv(tmp_path, "table4").at["mtl_resunet@add", "DC_p_images"]
    frames = build_tables(
        tmp_path,
        formats=("csv",),
        n_boot=50,
        reference="mtl_resunet@add",
        table_specs=[seg_spec(methods=("{reference}", "unet"))],
    )
    assert list(frames["table4"]["Method"]) == ["mtl_resunet@add", "mtl_resunet", "unet"]
    assert any(n.startswith("p vs mtl_resunet@add") for n in frames["table4"].attrs["notes"])
    # The same paired test either way round: a two-sided p does not depend on which is "ref.".
    assert _csv(tmp_path, "table4").at["mtl_resunet", "DC_p_images"] == pytest.approx(forward)


def test_an_ablation_alone_is_shown_beside_the_not_run_reference(tmp_path):
    write_fixture_results(tmp_path, {"mtl_resunet@add": {}}, n_folds=2, n_images=12)
    frames = build_tables(tmp_path, formats=(), n_boot=20, skip_empty=True)
    assert list(frames["table4"]["Method"])[-2:] == ["mtl_resunet", "mtl_resunet@add"]
    assert frames["table4"].set_index("Method").at["mtl_resunet", "DC (%)"] == "not run"


def test_results_no_table_shows_are_named_in_a_warning(tmp_path, capsys):
    write_fixture_results(tmp_path, {"mtl_resunet": {}, "my_net": {}, "unet@3class": {}})
    with pytest.warns(DataWarning, match=r"results not in any table: my_net, unet@3class \("):
        build_tables(tmp_path, formats=(), n_boot=20, table_specs=[seg_spec()])
    # The default tables put a method no paper table lists (a model of the user's own) into
    # S1 and S2 by its outputs; the CLI warns of the three-class run on stderr.
    assert main(["tables", "--results", str(tmp_path), "--format", "md"]) == 0
    out, err = capsys.readouterr()
    assert "results not in any table: unet@3class (" in err and "my_net" not in err
    for table in ("Supplementary Table S1", "Supplementary Table S2"):
        title = next(line for line in out.splitlines() if line.startswith(table))
        assert title.endswith(", and methods no other table lists")
    frames = build_tables(tmp_path, formats=(), n_boot=20)
    # reproduce passes its own list of the default specs: the same S1 / S2.
    own = [s for s in DEFAULT_SPECS if s.name != "table_3class"]
    again = build_tables(tmp_path, formats=(), n_boot=20, table_specs=own, skip_empty=True)
    assert list(again["table_s1"]["Method"]) == list(frames["table_s1"]["Method"])
    for name in ("table_s1", "table_s2"):
        table = frames[name].set_index("Method")
        assert list(table.index)[-2:] == ["my_net", "mtl_resunet"]  # tested against it
        assert table.iloc[-2].iloc[0] not in ("not run", "—")


def test_a_table_says_when_its_methods_ran_on_other_input_sizes(tmp_path):
    write_fixture_results(
        tmp_path,
        {
            "mtl_resunet": {"config": {"image_size": 32}},
            "unet": {"config": {"image_size": 32}},
            "fpn": {},  # the fixture's 64²
            "resnet50": {"config": {"image_size": 299}},
            "moon_features": {"config": {"image_size": 32, "preprocess": "none"}},
        },
    )
    specs = [seg_spec(), cls_spec(methods=("mtl_resunet", "resnet50", "moon_features"))]
    frames = build_tables(tmp_path, formats=("md", "tex"), n_boot=20, table_specs=specs)
    assert frames["table4"].attrs["notes"][-1] == (
        "Input size differs: 32²: mtl_resunet, unet; 64²: fpn — pixel metrics are at each "
        "method's own resolution (compare with care)."
    )
    assert frames["table6"].attrs["notes"][-1] == (
        "Input size differs: 32²: moon_features, mtl_resunet; 299²: resnet50 | Pre-processing "
        "differs: mpghe: mtl_resunet, resnet50; none: moon_features — each method classified "
        "images prepared its own way (compare with care)."
    )
    assert "64²: fpn" in (tmp_path / "tables" / "table4.md").read_text()
    assert "64²: fpn" in (tmp_path / "tables" / "table4.tex").read_text()  # a % comment
    # Alike inputs: nothing to say.
    alike = build_tables(tmp_path, formats=(), n_boot=20, table_specs=[seg_spec(methods=("unet",))])
    assert not any("differs:" in n for n in alike["table4"].attrs["notes"])
    # One size, another pre-processing: the images differ, not the resolution masks are scored at.
    other = tmp_path / "same_size"
    write_fixture_results(other, {"mtl_resunet": {}, "unet": {"config": {"preprocess": "clahe"}}})
    same_size = build_tables(other, formats=(), n_boot=20, table_specs=[seg_spec()])
    assert same_size["table4"].attrs["notes"][-1] == (
        "Pre-processing differs: clahe: unet; mpghe: mtl_resunet — each method segmented images "
        "prepared its own way (compare with care)."
    )


def test_an_untagged_three_class_run_is_left_out_of_the_binary_tables_with_a_warning(tmp_path):
    # Its macro-averaged metrics are not the binary tables' "malignant positive" ones.
    write_fixture_results(
        tmp_path,
        {
            "mtl_resunet": {"class_names": ("benign", "malignant", "normal")},
            "unet": {"tasks": ("mask",)},
        },
    )
    with pytest.warns(DataWarning, match=r"mtl_resunet ran with 3 classes: left out of table1, "):
        frames = build_tables(tmp_path, formats=("csv",), n_boot=50, skip_empty=True)
    assert not {"table1", "table2", "table_3class"} & set(frames)  # nothing of theirs ran
    row = frames["table4"].set_index("Method").loc["mtl_resunet"]
    assert "not run" in " ".join(map(str, row.values))


def test_a_three_class_baseline_left_out_of_its_table_is_left_out_of_its_settings_table(tmp_path):
    # Table 5 (settings) showing a run Table 7 (results) leaves out would contradict it.
    write_fixture_results(
        tmp_path,
        {
            "mtl_resunet": {},
            "mobilenet": {"tasks": ("label",), "class_names": ("benign", "malignant", "normal")},
            "resnet50": {"tasks": ("label",)},
        },
    )
    with pytest.warns(DataWarning, match=r"mobilenet ran with 3 classes: left out of table5, "):
        frames = build_tables(tmp_path, formats=(), n_boot=20)
    settings = frames["table5"].set_index("Method")
    assert (settings.loc["mobilenet"].drop("Note", errors="ignore") == "not run").all()
    assert (settings.loc["resnet50"] != "not run").all()
    row = frames["table7"].set_index("Method").loc["mobilenet"]
    assert (row.drop("Note", errors="ignore") == "not run").all()
