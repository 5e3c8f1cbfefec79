"""The paper's Tables 3–7, the supplementary and three-class tables (DEFAULT_SPECS) from fixture
result files."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from fixtures_results import result_path, write_fixture_results

from mtl_bench.data.types import DataWarning
from mtl_bench.table_specs import (
    DEFAULT_SPECS,
    LITERATURE_CLASSIFIERS,
    OTHER_CLASSIFIERS,
    OTHER_SEGMENTATION,
    PRETRAINED_CNNS,
    SEGMENTATION_METHODS,
    UNIYAL_REASON,
    TableSpec,
)
from mtl_bench.tables import build_table, build_tables, load_results

SPECS = {s.name: s for s in DEFAULT_SPECS}
NA, NOT_RUN = "n/a", "not run"
MOON_KWARGS = {
    "classifiers": ["logreg", "svc"],
    "C_grid": [0.01, 1.0, 100.0],
    "inner_folds": 5,
    "mask_source": "ground_truth",
    "predicted_masks": None,
}
HIJAB_CONFIG = {
    "optimizer": "sgd",
    "lr": 1e-4,
    "batch_size": 16,
    "epochs": 50,
    "lr_decay_every": 0,
    "image_size": 224,
    "model_kwargs": {"weights": "/data/weights/vgg16-397923af.pth"},
}


def table(frames, name) -> pd.DataFrame:
    return frames[name].set_index("Method")


@pytest.fixture
def results(tmp_path):
    """Binary runs of some methods (others missing), with controlled configs."""
    label = {"tasks": ("label",)}
    seg = {"tasks": ("mask",), "seg_quality": 0.7}
    methods = {
        "mtl_resunet": {"seg_quality": 0.85, "cls_quality": 0.9},
        "unet": {**seg, "config": {"batch_size": 8, "optimizer": "adam", "epochs": 100}},
        "daf": {**seg, "config": {"lr": 1e-3, "lr_decay_every": 50}},
        "moon_features": {**label, "config": {"epochs": 0, "preprocess": "none",
                                              "model_kwargs": MOON_KWARGS}},
        "hijab_vgg16": {**label, "cls_quality": 0.8, "config": HIJAB_CONFIG},
        "resnet50": {**label, "cls_quality": 0.7},
        "densenet201": {**label, "folds": [0, 2, 4]},
    }  # fmt: skip
    write_fixture_results(tmp_path, methods, n_folds=5, n_images=40)
    # moon_features ran 0 epochs (the fixture copies config epochs into epochs_run); hijab
    # loaded ImageNet weights.
    for fold in range(5):
        path = result_path(tmp_path, "hijab_vgg16", fold)
        rec = json.loads(path.read_text())
        rec["from_scratch"] = False
        path.write_text(json.dumps(rec))
    return tmp_path


def test_default_specs_are_the_papers_tables_in_order():
    paper = [f"table{i}" for i in range(1, 8)]
    assert list(SPECS) == [*paper, "table_s1", "table_s2", "table_3class"]
    assert [n for n, s in SPECS.items() if s.supplementary] == ["table_s1", "table_s2"]
    assert SEGMENTATION_METHODS == (
        "deeplabv3plus_resnet34",
        "unetplusplus_resnet34",
        "unet",
        "fpn_resnet34",
        "daf",
    )
    kinds = {n: (s.kind, s.task) for n, s in SPECS.items()}
    assert kinds["table3"] == ("hyperparams", "segmentation")
    assert kinds["table5"] == ("hyperparams", "classification")
    assert kinds["table4"] == ("comparison", "segmentation")
    assert all(kinds[n] == ("comparison", "classification") for n in ("table6", "table7"))
    assert SPECS["table6"].row_methods("mtl_resunet") == [
        "moon_features",
        "uniyal",
        "hijab_vgg16",
        "mtl_resunet",
    ]
    assert SPECS["table7"].row_methods("m") == [*PRETRAINED_CNNS, "m"]
    three = SPECS["table_3class"]
    assert three.row_methods("mtl_resunet") == [
        *(f"{c}@3class" for c in PRETRAINED_CNNS),
        "mtl_resunet@3class",
    ]
    assert three.compared("x")[-1] == "x@3class"


def test_every_table_renders_from_an_empty_folder(tmp_path):
    frames = build_tables(tmp_path, formats=("md",), n_boot=20)
    assert sorted(frames) == sorted(n for n, s in SPECS.items() if not s.supplementary)
    for name, frame in frames.items():
        assert (tmp_path / "tables" / f"{name}.md").exists()
        for _, row in frame.drop(columns=["Note"], errors="ignore").iterrows():
            cells = set(row.iloc[1:])
            assert cells in ({NOT_RUN}, {NA}), (name, row.tolist())  # never a number
    for name in ("table5", "table6"):
        t = table(frames, name)
        assert (
            t.at["uniyal", "Note"] == UNIYAL_REASON and (t.loc["uniyal"].drop("Note") == NA).all()
        )
        assert "RF time series" in UNIYAL_REASON


def test_table4_segmentation_comparison(results):
    frames = build_tables(results, formats=("csv",), n_boot=100)
    t4 = table(frames, "table4")
    assert list(t4.index) == [*SEGMENTATION_METHODS, "mtl_resunet"]
    for missing in ("deeplabv3plus_resnet34", "unetplusplus_resnet34", "fpn_resnet34"):
        assert (t4.loc[missing] == NOT_RUN).all()
    assert t4.at["mtl_resunet", "p DC (folds / images)"] == "ref."
    raw = pd.read_csv(results / "tables" / "table4.csv").set_index("method")
    res = load_results(results)
    dc = res[res["method"] == "unet"]["segmentation.DC"]
    assert raw.at["unet", "DC_mean"] == pytest.approx(dc.mean())
    assert raw.at["unet", "DC_p_images"] < 0.05 and t4.at["unet", "DC (%)"].endswith("*")
    assert "Note" not in t4.columns  # no fixed-reason rows in Table 4


def test_tables_6_and_7_classification(results):
    frames = build_tables(results, formats=(), n_boot=100)
    t6, t7 = table(frames, "table6"), table(frames, "table7")
    assert list(t6.index) == ["moon_features", "uniyal", "hijab_vgg16", "mtl_resunet"]
    assert (t6.loc["uniyal"].drop("Note") == NA).all() and t6.at["uniyal", "Note"] == UNIYAL_REASON
    assert "±" in t6.at["moon_features", "AUC"]
    # It classifies the true outline, which no other row gets: the table says so.
    assert "ground-truth lesion mask" in t6.at["moon_features", "Note"]
    assert t6.at["hijab_vgg16", "Note"] == ""
    res = load_results(results)
    acc = res[res["method"] == "hijab_vgg16"]["classification.ACC"]
    mean, sd = acc.mean(), acc.std(ddof=1)
    assert t6.at["hijab_vgg16", "ACC (%)"].rstrip("*†") == f"{100 * mean:.2f} ± {100 * sd:.2f}"
    assert list(t7.index) == [
        "resnet50",
        "vgg19",
        "densenet201 (3/5 folds)",
        "inception_v3",
        "mobilenet",
        "inception_resnet_v2",
        "mtl_resunet",
    ]
    for missing in ("vgg19", "inception_v3", "mobilenet", "inception_resnet_v2"):
        assert (t7.loc[missing] == NOT_RUN).all()
    assert t7.at["resnet50", "p ACC (folds / images)"] != "ref."


def test_hyperparameter_tables_read_the_recorded_configs(results):
    frames = build_tables(results, formats=("csv",), n_boot=20)
    t3, t5 = table(frames, "table3"), table(frames, "table5")
    assert list(t3.index) == list(SEGMENTATION_METHODS) and "mtl_resunet" not in t3.index
    assert list(t3.loc["unet"].iloc[:5]) == ["8", "adam", "0.0001", "100", "×0.1 every 20 epochs"]
    assert t3.at["daf", "Learning rate"] == "0.001"
    assert t3.at["daf", "LR schedule"] == "×0.1 every 50 epochs"
    assert (t3.loc["fpn_resnet34"] == NOT_RUN).all()
    assert t3.at["unet", "Input"] == "64², mpghe" and t3.at["unet", "Weights"] == "scratch"
    assert list(t5.index) == ["moon_features", "uniyal", "hijab_vgg16", *PRETRAINED_CNNS]
    hijab = t5.loc["hijab_vgg16"]
    assert list(hijab.iloc[:5]) == ["16", "sgd", "0.0001", "50", "constant"]
    assert hijab["Input"] == "224², mpghe" and hijab["Weights"] == "ImageNet"
    assert hijab["Settings"] == "weights=vgg16-397923af.pth"  # a local path by its file name
    # The feature classifier ran no epoch: no batch size / optimiser / lr, its own settings.
    moon = t5.loc["moon_features"]
    assert (moon.iloc[:5] == NA).all() and moon["Weights"] == NA and moon["Input"] == "64², none"
    assert moon["Settings"] == (
        "classifiers=logreg, svc; C_grid=0.01, 1, 100; inner_folds=5; mask_source=ground_truth"
    )
    assert (
        t5.at["uniyal", "Note"] == UNIYAL_REASON and (t5.loc["vgg19"].drop("Note") == NOT_RUN).all()
    )
    raw = pd.read_csv(results / "tables" / "table5.csv").set_index("method")
    assert raw.at["hijab_vgg16", "lr"] == 1e-4 and raw.at["hijab_vgg16", "batch_size"] == 16
    assert not raw.at["moon_features", "gradient"] and raw.at["hijab_vgg16", "gradient"]
    assert raw.at["uniyal", "status"] == UNIYAL_REASON


def test_three_class_table_has_its_own_reference_and_manifest(results):
    names = ("benign", "malignant", "normal")
    three = {"tasks": ("label",), "manifest_hash": "3c" * 32}
    runs = {"mtl_resunet@3class": {**three, "tasks": ("mask", "label"), "cls_quality": 0.95}}
    runs |= {"resnet50@3class": {**three, "cls_quality": 0.6}, "vgg19@3class": three}
    write_fixture_results(results, runs, n_folds=5, n_images=60, class_names=names)
    # Binary and three-class runs use different fold manifests: each table compares only its own.
    frames = build_tables(results, formats=(), n_boot=100)
    t = table(frames, "table_3class")
    assert list(t.index)[-1] == "mtl_resunet@3class"
    assert t.at["mtl_resunet@3class", "p AUC (folds / images)"] == "ref."
    assert t.at["resnet50@3class", "p AUC (folds / images)"] not in ("ref.", NOT_RUN)
    assert (t.loc["densenet201@3class"] == NOT_RUN).all()
    res = load_results(results)
    auc = res[res["method"] == "vgg19@3class"]["classification.AUC"]
    assert t.at["vgg19@3class", "AUC"].rstrip("*†").startswith(f"{auc.mean():.3f} ± ")
    assert "p vs mtl_resunet@3class" in frames["table_3class"].attrs["notes"][1]
    # A tagged build reference (an ablation) still compares the model's three-class run there:
    # names hold one tag, so "mtl_resunet@v2@3class" could never have results.
    write_fixture_results(results, {"mtl_resunet@v2": {"cls_quality": 0.7}})
    frames = build_tables(results, formats=(), n_boot=100, reference="mtl_resunet@v2")
    tagged = table(frames, "table_3class")
    assert tagged.at["mtl_resunet@3class", "p AUC (folds / images)"] == "ref."
    assert "mtl_resunet@v2@3class" not in " ".join(frames["table_3class"].attrs["notes"])
    # A three-class run in a binary table is left out, with a warning, before manifests compare.
    mix = TableSpec("mix", "Mix", "comparison", task="classification",
                    methods=("resnet50", "resnet50@3class"))  # fmt: skip
    with pytest.warns(DataWarning, match=r"resnet50@3class ran with 3 classes: left out of mix"):
        frames = build_tables(results, table_specs=[mix], formats=())
    assert (table(frames, "mix").loc["resnet50@3class"] == NOT_RUN).all()
    # Mixing manifests inside one table is still refused.
    write_fixture_results(results, {"resnet50@other": {"manifest_hash": "9d" * 32}})
    bad = dataclasses.replace(mix, methods=("resnet50", "resnet50@other"))
    with pytest.raises(ValueError, match="different fold manifests"):
        build_tables(results, table_specs=[bad], formats=())


def test_three_class_segmentation_is_said_to_be_in_no_table(results):
    names = ("benign", "malignant", "normal")
    three = {"manifest_hash": "3c" * 32}
    runs = {"mtl_resunet@3class": three, "unet@3class": {**three, "tasks": ("mask",)}}
    write_fixture_results(results, runs, n_folds=5, n_images=60, class_names=names)
    # unet@3class needs no table entry (the old advice); it is said where its results are.
    with pytest.warns(DataWarning, match=r"three-class results not in any table: unet@3class "
                      r"\(the three-class table compares the classification of "
                      r"mtl_resunet@3class"):  # fmt: skip
        frames = build_tables(results, formats=(), n_boot=50)
    notes = frames["table_3class"].attrs["notes"]
    assert (
        "The segmentation results of mtl_resunet@3class are in no table: see "
        "metrics.segmentation in their fold files." in notes
    )


def test_reference_placeholder_follows_the_build_reference(results):
    write_fixture_results(results, {"mtl_resunet@v2": {"cls_quality": 0.7}}, n_images=40)
    spec = SPECS["table7"]
    t = build_table(spec, load_results(results), reference="mtl_resunet@v2", n_boot=50).display
    assert list(t["Method"])[-1] == "mtl_resunet@v2"
    row = t.set_index("Method").loc["mtl_resunet@v2"]
    assert row["p AUC (folds / images)"] == "ref." and np.all(row.iloc[:6] != NOT_RUN)


def test_every_registered_model_has_a_table():
    # `reproduce --methods all` runs every registered model: each must land in some table.
    from mtl_bench.registry import list_models

    rows = {m for s in DEFAULT_SPECS for m in s.row_methods("mtl_resunet")}
    assert set(list_models()) - rows == set()
    assert not set(OTHER_SEGMENTATION) & set(SEGMENTATION_METHODS)
    assert not set(OTHER_CLASSIFIERS) & {*PRETRAINED_CNNS, *LITERATURE_CLASSIFIERS}


def test_supplementary_tables_only_when_their_methods_ran(results):
    frames = build_tables(results, formats=("md",), n_boot=20)
    assert "table_s1" not in frames and not (results / "tables" / "table_s1.md").exists()
    write_fixture_results(results, {"unet_resnet18": {"tasks": ("mask",)}})
    frames = build_tables(results, formats=("md",), n_boot=20)
    s1 = table(frames, "table_s1")
    assert list(s1.index) == [*OTHER_SEGMENTATION, "mtl_resunet"]
    assert NOT_RUN not in set(s1.loc["unet_resnet18"]) and (s1.loc["fpn_vgg19"] == NOT_RUN).all()
    assert s1.at["mtl_resunet", "p DC (folds / images)"] == "ref."
    assert (results / "tables" / "table_s1.md").read_text().startswith("Supplementary Table S1")
    assert "table_s2" not in frames
