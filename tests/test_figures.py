"""Figures from fixture results; predicted-mask files; the choice of overlay cases (labels and
keys: ``test_figure_labels``; the throughput figure: ``test_figure_throughput``)."""

import numpy as np
import pandas as pd
import pytest
from fixtures_results import write_fixture_results
from PIL import Image

from benchmarks.throughput_io import write_csv
from mtl_bench import figure_curves, figures
from mtl_bench.data.types import DataError, Dataset
from mtl_bench.figure_overlays import select_cases
from mtl_bench.figures import build_figures, pooled_roc
from mtl_bench.pred_masks import load_method_masks, load_predicted_masks, save_predicted_masks
from mtl_bench.results_io import load_results

METHODS = {
    "mtl_resunet": {"seg_quality": 0.85},
    "unet_resnet34": {"tasks": ("mask",), "seg_quality": 0.7},
    "vgg16": {"tasks": ("label",), "cls_quality": 0.7},
}


def _dataset(records, size=32):
    """A dataset holding exactly the fixture's ids (images and masks drawn at random)."""
    ids, labels = [], []
    for fold in sorted(records["mtl_resunet"]):
        per = records["mtl_resunet"][fold]["per_image"]
        ids += per["id"]
        labels += per["label"]
    rng = np.random.default_rng(0)
    n = len(ids)
    masks = np.zeros((n, size, size), np.uint8)
    masks[:, 8:20, 10:24] = 1
    return Dataset(
        images=rng.integers(0, 256, (n, size, size), dtype=np.uint8),
        masks=masks,
        labels=np.array(labels, np.int32),
        ids=ids,
        class_names=("benign", "malignant"),
    )


@pytest.fixture()
def results(tmp_path):
    records = write_fixture_results(tmp_path, METHODS, n_folds=2, n_images=12, curve_epochs=4)
    rng = np.random.default_rng(1)
    for method in ("mtl_resunet", "unet_resnet34"):
        for fold, rec in records[method].items():
            ids = rec["per_image"]["id"]
            masks = rng.random((len(ids), 16, 16)) < 0.3  # another size than the images
            save_predicted_masks(tmp_path / method / f"fold_{fold}_masks.npz", ids, masks)
    rows = [
        {"model": m, "batch_size": b, "status": "ok", "precision": "bf16", "image_size": 256,
         "strategy": "none", "devices": 1, "device_kind": "NVIDIA H100 80GB HBM3",
         "train_img_per_s": b * f, "torch_eager_train_img_per_s": b * f / 1.5}
        for m, f in (("mtl_resunet", 40.0), ("unet_resnet34", 70.0)) for b in (16, 64)
    ]  # fmt: skip
    rows.append({**rows[0], "status": "error: boom", "train_img_per_s": None})
    write_csv(tmp_path / "throughput" / "nvidia-h100-80gb-hbm3-20250101-000000.csv", rows)
    return tmp_path, records


def _is_png(path):
    assert path.is_file() and path.stat().st_size > 1000, path
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 150
        return im.size


def test_build_figures_writes_every_figure(results):
    root, records = results
    paths = build_figures(root, dataset=_dataset(records))
    names = sorted(p.relative_to(root / "figures").as_posix() for p in paths)
    assert names == [
        "curves/mtl_resunet.png",
        "curves/unet_resnet34.png",
        "curves/vgg16.png",
        "roc.png",
        "segmentation_overlays.png",
        "throughput_nvidia-h100-80gb-hbm3.png",
    ]
    sizes = {p.name: _is_png(p) for p in paths}
    # 4 case rows (typical + hard, per class) × 4 columns (image, truth, 2 methods with masks):
    # 1.9 in per column, 2 in per row and 0.3 in for the colour key, at 110 dpi.
    assert sizes["segmentation_overlays.png"] == (round(4 * 1.9 * 110), round(8.3 * 110))


def test_pooled_roc_is_the_auc_of_all_folds_together(results):
    from sklearn.metrics import roc_auc_score

    root, records = results
    curves = pooled_roc(load_results(root))
    assert sorted(curves) == ["mtl_resunet", "vgg16"]  # unet_resnet34 has no probabilities
    for method, (fpr, tpr, auc) in curves.items():
        per = [records[method][f]["per_image"] for f in sorted(records[method])]
        labels = [y for p in per for y in p["label"]]
        scores = [pr[1] for p in per for pr in p["prob"]]
        assert auc == pytest.approx(roc_auc_score(labels, scores))
        assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1


def test_overlays_skipped_without_masks_others_still_drawn(results):
    root, _ = results
    for p in root.glob("*/fold_*_masks.npz"):
        p.unlink()
    names = {p.name for p in build_figures(root)}
    assert "segmentation_overlays.png" not in names and "roc.png" in names


def test_select_cases_picks_hardest_and_typical_by_mean_dice():
    dc = pd.DataFrame(
        {
            "a": [0.9, 0.2, 0.6, 0.7, np.nan, 0.8, 0.1, 0.5, 0.5],
            "b": [0.8, 0.4, 0.6, 0.7, np.nan, 0.7, 0.3, np.nan, 0.6],
        },
        index=["benign/1", "benign/2", "benign/3", "benign/4", "benign/empty",
               "malignant/1", "malignant/2", "malignant/3", "malignant/4"],
    )  # fmt: skip
    cases = select_cases(dc)
    # benign means .85 .3 .6 .7 → hard benign/2; the rest's median .7 → typical benign/4.
    # malignant means .75 .2 .5 (b missing: mean of a) .55 → hard 2; median of rest .55 → 4.
    assert cases == [
        ("benign/4", "typical benign"),
        ("malignant/4", "typical malignant"),
        ("benign/2", "hard benign"),
        ("malignant/2", "hard malignant"),
    ]
    assert all(c != "benign/empty" for c, _ in cases)
    assert select_cases(dc.iloc[:0]) == []


def test_predicted_masks_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    masks = rng.random((3, 7, 9)) < 0.5  # H·W = 63: not a multiple of 8
    ids = ["benign/a", "benign/b", "malignant/c"]
    path = save_predicted_masks(tmp_path / "m" / "fold_0_masks.npz", ids, masks)
    got = load_predicted_masks(path)
    assert list(got) == ids
    for i, k in enumerate(ids):
        np.testing.assert_array_equal(got[k], masks[i])
    assert not list(path.parent.glob(".*tmp"))  # atomic write leaves no temporary file
    with pytest.raises(ValueError, match="N = 2 ids"):
        save_predicted_masks(tmp_path / "x.npz", ids[:2], masks)
    with pytest.raises(ValueError, match="boolean or 0/1"):
        save_predicted_masks(tmp_path / "x.npz", ids, masks * 3)
    save_predicted_masks(tmp_path / "m" / "fold_1_masks.npz", ["benign/a"], masks[:1])
    with pytest.raises(DataError, match="another fold"):
        load_method_masks(tmp_path / "m")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz"):
        load_predicted_masks(bad)


def test_bad_throughput_csv_is_named(tmp_path):
    (tmp_path / "throughput").mkdir()
    (tmp_path / "throughput" / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="x.csv: not a throughput CSV"):
        build_figures(tmp_path)


def test_learning_curve_legends_number_folds_as_the_tables_do(results, monkeypatch):
    root, _ = results
    legends = []

    def keep_labels(fig, path):
        legends.append([t.get_text() for t in fig.axes[0].get_legend().get_texts()])
        return path

    monkeypatch.setattr(figures, "_save", keep_labels)
    figure_curves.curve_figures(root, root / "figures")
    assert legends and all(labels == ["Fold 1", "Fold 2"] for labels in legends)  # fold_0 = Fold 1


def test_a_rebuild_removes_the_figures_it_no_longer_draws_and_nothing_else(results):
    import shutil

    root, records = results
    build_figures(root, dataset=_dataset(records))
    out = root / "figures"
    mine = [out / "notes.png", out / "roc.png.bak", out / "curves" / "my_sketch.png"]
    for p in mine:  # the user's own files, whatever their suffix
        p.write_bytes(b"kept")
    # vgg16 gone from the results (its ROC curve too), and no throughput measured any more.
    shutil.rmtree(root / "vgg16")
    shutil.rmtree(root / "throughput")
    paths = build_figures(root, dataset=_dataset(records))
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert names == [
        "curves/mtl_resunet.png",
        "curves/my_sketch.png",
        "curves/unet_resnet34.png",
        "notes.png",
        "roc.png",
        "segmentation_overlays.png",
    ]
    users = ("notes.png", "curves/my_sketch.png")
    assert sorted(paths) == sorted(out / n for n in names if n not in users)
    assert all(p.read_bytes() == b"kept" for p in mine)


def test_a_stored_config_that_cannot_be_read_is_named_for_the_overlays(results):
    import json

    root, _ = results
    path = root / "mtl_resunet" / "fold_0.json"
    rec = json.loads(path.read_text())
    rec["config"]["image_size"] = "big"
    path.write_text(json.dumps(rec))
    with pytest.raises(DataError, match=r"mtl_resunet/fold_0\.json: cannot read the run config"):
        build_figures(root)  # no dataset given: the overlays rebuild it from the stored config
