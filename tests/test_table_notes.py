"""What a table says beside its numbers: notes on machines, settings and evaluation, and the
rows of variant runs."""

import shutil

import pytest
from fixtures_results import edit_result, write_fixture_results
from fixtures_tables import cls_spec, seg_spec

from mtl_bench.tables import build_tables


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
    (note,) = [n for n in frames["table4"].attrs["notes"] if n.startswith("Folds of one")]
    assert note == (
        "Folds of one method ran with different settings, so its mean ± sd mixes them: fpn: "
        "epochs 500 (Fold 1), 500 (Fold 2), 500 (Fold 3), 3 (Fold 4), 500 (Fold 5); "
        "image_size 64 (Fold 1), 32 (Fold 2), 64 (Fold 3), 64 (Fold 4), 64 (Fold 5)."
    )  # checkpoint_every says how a run was executed, not what it computed: not compared
    assert note in (tmp_path / "tables" / "table4.md").read_text()


def test_a_table_says_when_methods_were_scored_under_other_evaluation_settings(tmp_path):
    write_fixture_results(
        tmp_path, {"mtl_resunet": {}, "unet": {"config": {"empty_policy": "match"}}, "fpn": {}}
    )
    notes = build_tables(tmp_path, formats=(), table_specs=[seg_spec()])["table4"].attrs["notes"]
    assert notes[-1] == (
        "Methods were scored under different evaluation settings, so their metrics do not cover "
        'the same images: empty_policy "exclude": fpn, mtl_resunet; "match": unet.'
    )
    # empty_policy decides only which images segmentation metrics count: no note on Table 6.
    cls = build_tables(
        tmp_path, formats=(), table_specs=[cls_spec(methods=("mtl_resunet", "unet"))]
    )
    assert not any("evaluation settings" in n for n in cls["table6"].attrs["notes"])
    write_fixture_results(tmp_path, {"unet": {}})  # rerun alike: nothing to say
    notes = build_tables(tmp_path, formats=(), table_specs=[seg_spec()])["table4"].attrs["notes"]
    assert not any("evaluation settings" in n for n in notes)


def test_variant_runs_get_rows_after_their_method(tmp_path):
    seg, cls = {"tasks": ("mask",)}, {"tasks": ("label",)}
    write_fixture_results(
        tmp_path,
        {
            "mtl_resunet": {},
            "mtl_resunet@add": {},  # a reference variant: a row after the reference
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
        "mtl_resunet", "mtl_resunet@add", "unet", "unet@a_first", "unet@no_bn", "fpn"
    ]  # fmt: skip
    t6 = frames["table6"].set_index("Method")
    assert list(t6.index) == ["mtl_resunet", "mtl_resunet@add", "moon_features",
                              "moon_features@pred", "resnet50", "uniyal"]  # fmt: skip
    assert "ground-truth" in t6.at["moon_features", "Note"]
    assert t6.at["moon_features@pred", "Note"] == ""  # predicted masks: the image only
    notes = frames["table6"].attrs["notes"]
    assert any("testing 4 methods against mtl_resunet" in n for n in notes)  # uniyal: not run


def test_without_reference_results_no_test_is_claimed(tmp_path):
    write_fixture_results(tmp_path, {"unet": {"tasks": ("mask",)}}, n_folds=2, n_images=12)
    table = build_tables(tmp_path, formats=("csv",), table_specs=[seg_spec()])["table4"]
    notes = " ".join(table.attrs["notes"])
    assert "No p values: the reference mtl_resunet has no results here." in notes
    assert "2/2^k" not in notes and "Holm" not in notes
    assert "over the 2 folds" in notes and "given the 2 fold models" in notes  # not the paper's 5
    csv = (tmp_path / "tables" / "table4.csv").read_text().splitlines()
    assert csv[1].split(",")[:3] == ["mtl_resunet", "not run", "0"]
    unet = dict(zip(csv[0].split(","), csv[2].split(","), strict=True))
    assert unet["DC_n_folds"] == "2" and unet["DC_n_images"] == "12"  # counts, not 2.0


def test_results_no_table_lists_are_named(tmp_path):
    from mtl_bench.data.types import DataError

    # A two-class method no table lists joins S1 / S2 (beside a "not run" reference)...
    write_fixture_results(tmp_path, {"my_net": {}}, n_folds=2, n_images=12)
    frames = build_tables(tmp_path, formats=(), skip_empty=True)
    assert set(frames) == {"table_s1", "table_s2"}
    # ...a three-class one has no table to join: said.
    shutil.rmtree(tmp_path / "my_net")
    three = {"class_names": ("benign", "malignant", "normal")}
    write_fixture_results(tmp_path, {"my_net@3class": three}, n_folds=2, n_images=12)
    with pytest.raises(DataError, match=r"results of my_net@3class are here, but no table"):
        build_tables(tmp_path, formats=(), skip_empty=True)


def test_a_table_says_when_a_methods_network_changed_size_between_folds(tmp_path):
    # A model of the user's own, edited under the same name between two folds: no config field
    # differs, the network's size does.
    write_fixture_results(tmp_path, {"unet": {}, "fpn": {}}, n_folds=2)
    for fold, params in ((0, 203), (1, 691)):
        edit_result(tmp_path, "fpn", [fold], lambda r, p=params: r.update(params=p))
    edit_result(tmp_path, "unet", [0, 1], lambda r: r.update(params=1000))
    frames = build_tables(tmp_path, formats=(), table_specs=[seg_spec(methods=("unet", "fpn"))])
    (note,) = [n for n in frames["table4"].attrs["notes"] if n.startswith("Folds of one")]
    assert note.endswith("them: fpn: params 203 (Fold 1), 691 (Fold 2).")


def test_a_table_says_when_a_methods_model_file_changed_between_folds(tmp_path):
    # An edit that kept the network's size: the model file's hash (model_source) differs.
    write_fixture_results(tmp_path, {"unet": {}, "fpn": {}}, n_folds=2)
    for fold, sha in ((0, "aaaa"), (1, "bbbb")):
        src = {"module": "mymodels", "file": "/x/mymodels.py", "sha256": sha}
        edit_result(tmp_path, "fpn", [fold], lambda r, s=src: r.update(model_source=s))
    same = {"module": "m", "file": "/x/m.py", "sha256": "cccc"}
    edit_result(tmp_path, "unet", [0, 1], lambda r: r.update(model_source=same))
    frames = build_tables(tmp_path, formats=(), table_specs=[seg_spec(methods=("unet", "fpn"))])
    (note,) = [n for n in frames["table4"].attrs["notes"] if n.startswith("Folds of one")]
    assert note.endswith('them: fpn: model_source "aaaa" (Fold 1), "bbbb" (Fold 2).')


def test_tables_do_not_need_the_models_modules(tmp_path, monkeypatch):
    # Results copied to another machine whose MTL_BENCH_MODELS names a module it lacks.
    from mtl_bench import registry

    def absent(name):
        raise ImportError("MTL_BENCH_MODELS: cannot load model module 'gone.py'")

    write_fixture_results(tmp_path, {"unet": {}, "fpn": {}}, n_folds=2)
    monkeypatch.setattr(registry, "model_info", absent)
    assert "table4" in build_tables(tmp_path, formats=(), table_specs=[seg_spec()])
