"""What a table says about gaps in what it shows: methods with missing folds, a fold manifest of
other results beside them, a reference it cannot take, and its units and conventions."""

import shutil

import pandas as pd
import pytest
from fixtures_results import result_path, write_fixture_results
from fixtures_tables import seg_spec

from mtl_bench.cli import main
from mtl_bench.data.types import DataError, DataWarning
from mtl_bench.tables import build_table, build_tables, load_results


def _without(root, method, folds):
    for fold in folds:
        result_path(root, method, fold).unlink()


def test_a_comparison_row_with_missing_folds_says_so_in_cells_csv_and_note(tmp_path):
    write_fixture_results(tmp_path, {"mtl_resunet": {}, "unet": {}, "fpn": {"folds": [0, 1, 3]}})
    table = build_table(seg_spec(), load_results(tmp_path), n_boot=20)
    display = table.display.set_index("Method")
    # The cells carry (j/k) as Tables 1-2 do, not only the row label.
    assert all("(3/5)" in c for c in display.loc["fpn (3/5 folds)", ["JSI (%)", "DC (%)"]])
    assert not any("(" in c for c in display.loc["unet", ["JSI (%)", "DC (%)", "SPE (%)"]])
    # The CSV gives k beside j.
    raw = table.raw.set_index("method")
    assert raw.loc["fpn", ["n_folds", "n_folds_expected"]].tolist() == [3, 5]
    assert raw.loc["unet", ["n_folds", "n_folds_expected"]].tolist() == [5, 5]
    assert raw.loc["fpn", "DC_n_images"] == 24 and raw.loc["unet", "DC_n_images"] == 40
    # The note says what an incomplete row's pooled values and paired tests cover.
    (note,) = [n for n in table.notes if n.startswith("Rows over fewer folds")]
    assert "(fpn (3/5 folds))" in note and "cover only those folds' test images" in note
    assert "only the folds and images that both the row and the reference mtl_resunet" in note
    complete = build_table(seg_spec(methods=("mtl_resunet", "unet")), load_results(tmp_path))
    assert not any(n.startswith("Rows over fewer folds") for n in complete.notes)


def test_tables_warn_once_per_method_with_missing_folds(tmp_path, capsys):
    write_fixture_results(tmp_path, {"mtl_resunet": {}, "unet": {"tasks": ("mask",)}}, n_folds=3)
    _without(tmp_path, "mtl_resunet", [2])  # in Tables 1, 2, 4, 6 and 7: still one warning
    _without(tmp_path, "unet", [0, 1])
    with pytest.warns(DataWarning) as caught:
        frames = build_tables(tmp_path, formats=(), n_boot=20)
    said = [str(w.message).split(" (")[0] for w in caught if "has results for" in str(w.message)]
    assert said == ["mtl_resunet has results for 2 of 3 folds", "unet has results for 1 of 3 folds"]
    assert frames["table4"].set_index("Method").at["unet (1/3 folds)", "DC (%)"].endswith("(1/3)")
    assert main(["tables", "--results", str(tmp_path), "--format", "md"]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if "has results for" in x]
    mtl_dir, unet_dir = tmp_path / "mtl_resunet", tmp_path / "unet"
    assert lines == [
        f"mtl-bench: warning: mtl_resunet has results for 2 of 3 folds (no fold_2.json in "
        f"{mtl_dir}): its table rows are over those folds only, its pooled values and "
        "image-level tests over their test images only",
        f"mtl-bench: warning: unet has results for 1 of 3 folds (no fold_0.json, fold_1.json in "
        f"{unet_dir}): its table rows are over those folds only, its pooled values and "
        "image-level tests over their test images only",
    ]


def test_a_fold_manifest_of_other_results_is_named_as_such(tmp_path):
    other = tmp_path / "other"
    write_fixture_results(other, ["mtl_resunet"], n_folds=5, n_images=20, duplicate_groups=[])
    here = tmp_path / "here"
    write_fixture_results(here, ["mtl_resunet", "unet"], n_folds=5, n_images=40)
    results = load_results(here)
    ours = results["fold_manifest_hash"].iloc[0]
    notes = build_tables(here, formats=(), table_specs=[seg_spec()])["table4"].attrs["notes"]
    assert any(n.startswith("No fold manifest (folds.json) of these results") for n in notes)
    shutil.copy(other / "folds.json", here / "folds.json")
    theirs = load_results(other)["fold_manifest_hash"].iloc[0]
    notes = build_tables(here, formats=(), table_specs=[seg_spec()])["table4"].attrs["notes"]
    assert not any(n.startswith("No fold manifest") for n in notes)
    assert any(
        n.startswith(
            f"The fold manifest beside these results (folds.json, {theirs[:12]}) is not theirs "
            f"({ours[:12]}), so its duplicate groups are not used"
        )
        for n in notes
    )


def test_a_three_class_reference_is_refused_naming_the_model_to_give(tmp_path, capsys):
    names = ("benign", "malignant", "normal")
    write_fixture_results(tmp_path, {"mtl_resunet@3class": {"class_names": names}}, n_folds=2)
    with pytest.raises(DataError, match="--reference takes a model name without @3class"):
        build_tables(tmp_path, formats=(), reference="mtl_resunet@3class")
    assert main(["tables", "--results", str(tmp_path), "--reference", "mtl_resunet@3class"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "mtl-bench: error: --reference 'mtl_resunet@3class': --reference takes a model name "
        "without @3class ('mtl_resunet'); the three-class table then compares its @3class run\n"
    )
    assert not (tmp_path / "tables").exists()
    assert main(["tables", "--results", str(tmp_path), "--format", "md"]) == 0  # as the model


def test_notes_say_the_csv_holds_fractions_and_the_zero_division_rule(tmp_path):
    write_fixture_results(tmp_path, ["mtl_resunet"], n_folds=2, n_images=12)
    frames = build_tables(tmp_path, formats=("csv",))
    seg, cls = frames["table1"].attrs["notes"][0], frames["table2"].attrs["notes"][0]
    assert seg.startswith("Metrics in % (fractions in the CSV), AUC as a fraction;")
    assert "zero_division" not in seg  # an empty-mask image follows empty_policy instead
    assert "PRE, REC, SPE or F1 with a zero denominator" in cls and "is 0, not —" in cls
    csv = pd.read_csv(tmp_path / "tables" / "table1.csv").set_index("row")
    assert 0 < csv.loc["mean", "DC"] < 1  # a fraction where the table prints a percentage


def test_methods_scored_on_edited_data_are_refused_and_older_records_are_not(tmp_path):
    import json

    write_fixture_results(tmp_path, ["mtl_resunet", "unet", "fpn"])
    spec = seg_spec(methods=("mtl_resunet", "unet", "fpn"))

    def stamp(method, value):
        for fold in range(5):
            path = result_path(tmp_path, method, fold)
            rec = json.loads(path.read_text())
            path.write_text(json.dumps({**rec, "dataset_source_fingerprint": value}))

    stamp("mtl_resunet", "a" * 64)
    stamp("unet", "a" * 64)  # fpn: a record from before the fingerprint (null): not compared
    build_tables(tmp_path, formats=(), n_boot=20, table_specs=[spec])
    stamp("fpn", "b" * 64)  # same ids and folds, other pixels (an edited mask, say)
    with pytest.raises(DataError, match=r"different data under one fold manifest") as err:
        build_tables(tmp_path, formats=(), n_boot=20, table_specs=[spec])
    assert "aaaaaaaaaaaa (mtl_resunet, unet) vs bbbbbbbbbbbb (fpn)" in str(err.value)
