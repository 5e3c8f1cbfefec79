"""predict: a fold trained by run_cv (alone or side by side), applied to PNGs, a bad file and other
inputs."""

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mtl_bench.config import RunConfig
from mtl_bench.cv import run_cv
from mtl_bench.cv_data import dataset_for
from mtl_bench.data.types import DataError
from mtl_bench.fold_checkpoint import load_fold_model, resolve_checkpoint
from mtl_bench.metrics import confusion_counts, per_image_segmentation
from mtl_bench.pred_masks import predicted_masks
from mtl_bench.predict import predict

# Training the fold (module fixture) takes ~40-90 s on 2 busy cores; the tests are fast after it.
pytestmark = pytest.mark.slow

CFG = RunConfig(
    model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16},
    synthetic_n=24,
    image_size=32,
    folds=2,
    epochs=1,
    batch_size=8,
    lr=3e-3,  # as test_train's TINY: the same train-step program, compiled once per session
    lr_decay_every=0,
    checkpoint_every=1,
    preprocess="none",
    eval_batch_size=8,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One trained fold, its result record, and its test images written as PNG files."""
    root = tmp_path_factory.mktemp("results")
    run_cv(CFG, root, folds=[0], quiet=True)
    record = json.loads((root / "mtl_resunet" / "fold_0.json").read_text())
    ds = dataset_for(CFG, quiet=True)
    images = tmp_path_factory.mktemp("images")
    index = {k: i for i, k in enumerate(ds.ids)}
    test_ids = record["per_image"]["id"][:4]
    for k in test_ids:
        cls, stem = k.split("/")
        (images / cls).mkdir(exist_ok=True)
        Image.fromarray(ds.images[index[k]]).save(images / cls / f"{stem}.png")
    return root, record, ds, images, test_ids


def test_folder_prediction_matches_the_fold_evaluation(trained, tmp_path):
    root, record, ds, images, test_ids = trained
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(images / "benign" / "x_mask.png")
    (images / "notes.txt").write_text("hello")
    report = predict(images, root / "mtl_resunet" / "ckpt_fold_0", tmp_path)
    assert report.table == tmp_path / "predictions.csv"
    with open(report.table, newline="") as f:
        rows = {Path(r["file"]).relative_to(images).as_posix(): r for r in csv.DictReader(f)}
    statuses = {k: r["status"] for k, r in rows.items()}
    assert (
        statuses["broken.png"].startswith("error: ") and "cannot decode" in statuses["broken.png"]
    )
    assert str(images) not in statuses["broken.png"]  # the file column names it, once
    assert statuses["benign/x_mask.png"].startswith("skipped: a mask file")
    assert statuses["notes.txt"].startswith("skipped: not an image")
    assert [r["file"] for r in report.failed] == [str(images / "broken.png")]
    prob = dict(zip(record["per_image"]["id"], record["per_image"]["prob"], strict=True))
    for k in test_ids:  # same pixels, same weights: the probabilities the fold reported
        row = rows[f"{k}.png"]
        got = [float(row["prob_benign"]), float(row["prob_malignant"])]
        np.testing.assert_allclose(got, prob[k], atol=2e-5)
        assert row["predicted_class"] == ("benign", "malignant")[int(np.argmax(prob[k]))]
        mask = np.asarray(Image.open(row["mask_png"]))
        assert mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 255}
        assert float(row["mask_fraction"]) == pytest.approx((mask > 0).mean(), abs=1e-6)
        with Image.open(row["overlay_png"]) as im:
            assert im.mode == "RGB" and im.size == (32, 32)
        assert row["mask_png"].startswith(str(tmp_path / k.split("/")[0]))  # mirrors sub-folders


def test_single_image_json_and_checkpoint_forms(trained, tmp_path):
    root, record, ds, images, test_ids = trained
    big = tmp_path / "in" / "scan.png"
    big.parent.mkdir()
    src = images / f"{test_ids[0]}.png"
    Image.open(src).convert("RGB").resize((48, 40)).save(big)  # colour, another size
    ckpt = root / "mtl_resunet" / "ckpt_fold_0"
    step = next((ckpt / "last").iterdir())
    for form in (ckpt, ckpt / "last", step, root / "mtl_resunet" / "fold_0.json"):
        assert resolve_checkpoint(form) == (ckpt, root / "mtl_resunet" / "fold_0.json", None)
    report = predict(big, step, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "scan_prediction.json").read_text())
    assert data["status"] == "ok" and data["model"] == data["method"] == "mtl_resunet"
    assert data["class_names"] == ["benign", "malignant"]
    assert data["prob_benign"] + data["prob_malignant"] == pytest.approx(1.0, abs=1e-5)
    assert np.asarray(Image.open(data["mask_png"])).shape == (40, 48)  # the input's own size
    assert report.table == tmp_path / "out" / "scan_prediction.json"
    assert "note" not in data  # near square, big enough
    # A strip is still predicted, with a note (the CLI prints it as a warning).
    Image.open(src).resize((400, 40)).save(big)
    predict(big, step, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "scan_prediction.json").read_text())
    assert data["status"] == "ok" and "400x40 px resized to 32x32 (aspect 10.0:1)" in data["note"]


def test_predicted_masks_reproduce_the_fold_dice(trained):
    root, record, ds, _, _ = trained
    _, _, engine, state, _ = load_fold_model(root / "mtl_resunet" / "ckpt_fold_0")
    index = {k: i for i, k in enumerate(ds.ids)}
    rows = [index[k] for k in record["per_image"]["id"]]
    masks = predicted_masks(engine, state, ds.images[rows], batch_size=8)
    assert masks.shape == (len(rows), 32, 32) and masks.dtype == bool
    counts = np.asarray(confusion_counts(masks, ds.masks[rows] > 0))
    dc = per_image_segmentation(counts, CFG.empty_policy)["DC"]
    expected = np.array([np.nan if v is None else v for v in record["per_image"]["DC"]], float)
    np.testing.assert_allclose(dc, expected, atol=1e-6)


def test_bad_checkpoints_and_inputs_are_named(trained, tmp_path):
    root, _, _, images, _ = trained
    with pytest.raises(DataError, match="checkpoint not found"):
        predict(images, tmp_path / "nope", tmp_path / "o")
    with pytest.raises(DataError, match="not a fold checkpoint"):
        predict(images, root / "mtl_resunet", tmp_path / "o")
    lone = tmp_path / "r" / "m" / "ckpt_fold_3" / "last"
    lone.mkdir(parents=True)
    with pytest.raises(DataError, match="fold_3.json: missing"):
        resolve_checkpoint(lone.parent)
    orphan = tmp_path / "r" / "m" / "fold_1.json"
    orphan.write_text("{}")  # a result whose checkpoint was deleted (a baseline's, say)
    with pytest.raises(DataError, match=r"ckpt_fold_1: missing, so .*fold_1\.json has no weights"):
        resolve_checkpoint(orphan)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        predict(tmp_path / "empty", root / "mtl_resunet" / "ckpt_fold_0", tmp_path / "o")


def test_a_fold_trained_side_by_side_predicts_from_its_slice(tmp_path):
    root = tmp_path / "res"
    stale = root / "mtl_resunet" / "ckpt_fold_1" / "last"
    stale.mkdir(parents=True)  # as an earlier sequential run of fold 1 left it
    run_cv(dataclasses.replace(CFG, fold_parallel=True), root, quiet=True)
    method = root / "mtl_resunet"
    assert not stale.parent.exists()  # retrained side by side: its old weights are gone
    record = json.loads((method / "fold_1.json").read_text())
    assert record["folds_trained_together"] == [0, 1]
    assert resolve_checkpoint(method / "fold_1.json") == (
        method / "ckpt_folds_0_1",
        method / "fold_1.json",
        1,
    )
    ds = dataset_for(CFG, quiet=True)
    index = {k: i for i, k in enumerate(ds.ids)}
    images = tmp_path / "images"
    ids = record["per_image"]["id"][:3]
    for k in ids:
        (images / k).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(ds.images[index[k]]).save(images / f"{k}.png")
    report = predict(images, method / "fold_1.json", tmp_path / "out")
    rows = {Path(r["file"]).relative_to(images).as_posix(): r for r in report.rows}
    prob = dict(zip(record["per_image"]["id"], record["per_image"]["prob"], strict=True))
    for k in ids:  # fold 1's slice of the stacked weights: the probabilities fold 1 reported
        got = [float(rows[f"{k}.png"]["prob_benign"]), float(rows[f"{k}.png"]["prob_malignant"])]
        np.testing.assert_allclose(got, prob[k], atol=2e-5)
    with pytest.raises(DataError, match="folds 0, 1 trained side by side in one checkpoint"):
        resolve_checkpoint(method / "ckpt_folds_0_1" / "last")
    # A sequential checkpoint left by an earlier run is not this result's weights.
    shutil.copytree(method / "ckpt_folds_0_1", method / "ckpt_fold_1")
    with pytest.raises(DataError, match="fold_1.json was trained side by side with other folds"):
        resolve_checkpoint(method / "ckpt_fold_1")
    shutil.rmtree(method / "ckpt_folds_0_1")
    with pytest.raises(DataError, match=r"ckpt_folds_0_1: missing, so .*\(folds \[0, 1\]"):
        resolve_checkpoint(method / "fold_1.json")
