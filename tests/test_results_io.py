"""Reading result files: validation errors name the file and key; per-image access."""

import json

import pytest
from fixtures_results import result_path, write_fixture_results

from mtl_bench.data.types import DataError
from mtl_bench.results_io import load_results, per_image
from mtl_bench.tables import TableSpec, build_tables


def test_malformed_json_names_the_file(tmp_path):
    write_fixture_results(tmp_path, ["mtl_resunet"], n_folds=3, n_images=12)
    bad = result_path(tmp_path, "mtl_resunet", 1)
    bad.write_text('{"schema": 1, "method": ')
    with pytest.raises(DataError, match="malformed JSON") as err:
        build_tables(tmp_path)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(method="other"), "differs from its folder name"),
        (lambda r: r.update(fold=2), "file name says fold 0"),
        (lambda r: r["metrics"]["segmentation"].update(DC=81.2), "outside \\[0, 1\\]"),
        (lambda r: r["metrics"]["segmentation"].update(DC=float("inf")), "= inf is outside"),
        (lambda r: r["metrics"]["classification"].update(AUC="high"), "must be a number"),
        (lambda r: r.pop("fold_manifest_hash"), "missing key"),
        (lambda r: r.update(schema=2), "unsupported result schema"),
        (lambda r: r["per_image"].update(DC=[0.5]), "per_image.DC has 1 entries"),
    ],
)
def test_invalid_result_files_name_file_and_key(tmp_path, edit, message):
    write_fixture_results(tmp_path, ["mtl_resunet"], n_folds=2, n_images=8)
    path = result_path(tmp_path, "mtl_resunet", 0)
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    with pytest.raises(DataError, match=message) as err:
        load_results(tmp_path)
    assert str(path) in str(err.value)


def test_results_folder_errors_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="results folder does not exist"):
        load_results(tmp_path / "nope")
    assert load_results(tmp_path).empty
    assert list(build_tables(tmp_path, formats=())["table2"].iloc[0])[1:] == ["not run"] * 6
    write_fixture_results(tmp_path, ["unet"], n_folds=3, n_images=12)
    path = result_path(tmp_path, "unet", 2)
    record = json.loads(path.read_text())
    record["n_folds"] = 4
    path.write_text(json.dumps(record))
    with pytest.raises(DataError, match=r"disagree on n_folds \(fold_0.json: 3, fold_2.json: 4;"):
        load_results(tmp_path)
    path.write_text(" \n")  # emptied: said so, not "Expecting value at line 1"
    with pytest.raises(DataError, match=r"fold_2.json: empty result file") as err:
        load_results(tmp_path)
    assert "malformed" not in str(err.value) and str(err.value).count("fold_2.json") == 1


def test_duplicate_image_ids_across_folds(tmp_path):
    write_fixture_results(tmp_path, ["unet"], n_folds=2, n_images=8)
    first = json.loads(result_path(tmp_path, "unet", 0).read_text())["per_image"]["id"][0]
    path = result_path(tmp_path, "unet", 1)
    record = json.loads(path.read_text())
    record["per_image"]["id"][0] = first
    path.write_text(json.dumps(record))
    with pytest.raises(DataError, match="appears in more than one test fold"):
        per_image(load_results(tmp_path), "unet")


def test_different_fold_manifests_raise_naming_methods_and_hashes(tmp_path):
    write_fixture_results(tmp_path, {"mtl_resunet": {}, "unet": {"manifest_hash": "ab" * 32}})
    ref_hash = json.loads(result_path(tmp_path, "mtl_resunet", 0).read_text())["fold_manifest_hash"]
    seg = TableSpec("table4", "Table 4", "comparison", methods=("mtl_resunet", "unet"))
    with pytest.raises(DataError) as err:
        build_tables(tmp_path, table_specs=[seg])
    msg = str(err.value)
    assert "table4" in msg and "\n" not in msg
    assert f"{'ab' * 6} (unet)" in msg and f"{ref_hash[:12]} (mtl_resunet)" in msg
    assert not (tmp_path / "tables").exists()  # nothing is written from an inconsistent set
    # A hyper-parameter table compares configs, not results: it builds on the same files.
    hp = TableSpec("table3", "Table 3", "hyperparams", methods=("mtl_resunet", "unet"))
    assert len(build_tables(tmp_path, table_specs=[hp], formats=())["table3"]) == 2


def test_git_commit_is_read_once_per_process(monkeypatch):
    # A long run records the commit of the code it imported: a commit made while it runs (git
    # answering differently later) must not reach the folds written after it.
    import subprocess

    from mtl_bench import provenance

    first = provenance.git_commit()
    assert first == "unknown" or len(first.split("+")[0]) == 40

    def moved_on(*args, **kwargs):
        raise AssertionError("git asked again")

    monkeypatch.setattr(subprocess, "run", moved_on)
    assert provenance.git_commit() == first


def test_host_cpu_names_model_architecture_cores_and_isa():
    # CPU-trained results repeat bit for bit only on the same CPU model, so each result names it.
    import platform

    from mtl_bench import provenance

    text = provenance.host_cpu()
    parts = text.split(", ")
    assert platform.machine() in parts and any(p.endswith(" cores") for p in parts), text
    if platform.machine() == "x86_64" and platform.system() == "Linux":
        assert any(p in ("avx512f", "avx2", "avx", "sse4_2") for p in parts), text
        assert "(family " in text, text


@pytest.mark.parametrize(
    ("method", "tasks", "edit", "message"),
    [
        ("unet", ("mask",), lambda r: r.pop("per_image"), "per_image is missing, but the run "
         "has segmentation results"),
        ("mobilenet", ("label",), lambda r: r["per_image"].update(prob=None),
         "per_image.prob is missing or null, but the run has classification results"),
        ("mtl_resunet", ("mask", "label"), lambda r: r["per_image"].pop("DC"),
         "per_image.DC is missing or null"),
        ("mtl_resunet", ("mask", "label"), lambda r: r["per_image"].update(label=None),
         "per_image.label is missing or null"),
        ("mobilenet", ("label",), lambda r: r["per_image"]["prob"][1].pop(),
         r"per_image.prob\[1\] is not a list of 2 probabilities"),
    ],
)  # fmt: skip
def test_a_fold_without_the_per_image_results_its_tasks_need_is_refused(
    tmp_path, capsys, method, tasks, edit, message
):
    # The pooled values, CIs and image-level p values come from per_image: a fold without it
    # would silently leave its images out of them (the other folds only).
    from mtl_bench.cli import main

    write_fixture_results(tmp_path, {"mtl_resunet": {}, method: {"tasks": tasks}}, n_folds=2)
    path = result_path(tmp_path, method, 1)
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    with pytest.raises(DataError, match=message) as err:
        load_results(tmp_path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert main(["tables", "--results", str(tmp_path)]) == 2
    out = capsys.readouterr()
    assert out.err.startswith(f"mtl-bench: error: {path}: per_image") and out.err.count("\n") == 1
    assert not (tmp_path / "tables").exists()  # no table is written


def test_a_segmenter_needs_no_probabilities_nor_a_classifier_masks(tmp_path):
    # What a complete record of each kind holds (fold_record.fold_result): prob null for a
    # segmenter, JSI / DC null for a classifier.
    write_fixture_results(tmp_path, {"unet": {"tasks": ("mask",)}, "vgg16": {"tasks": ("label",)}})
    results = load_results(tmp_path)
    assert "prob_0" not in per_image(results, "unet") and len(per_image(results, "vgg16")) == 40
