"""Bad user inputs to predict, figures and the result reader: one clear error (or warning) that
names the value, before any file is written, and no input ever overwritten."""

import warnings

import numpy as np
import pytest
from fixtures_results import write_fixture_results
from PIL import Image

from mtl_bench import figure_curves, figures
from mtl_bench.data.types import DataError, DataWarning
from mtl_bench.figures import build_figures
from mtl_bench.predict import predict
from mtl_bench.results_io import load_results, read_result


@pytest.fixture()
def dataset_folder(tmp_path):
    """benign/ with an image and its ground-truth mask, as in BUSI."""
    folder = tmp_path / "benign"
    folder.mkdir()
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(folder / "benign (1).png")
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:6] = 255
    Image.fromarray(mask).save(folder / "benign (1)_mask.png")
    return folder


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*"))}


def test_predict_refuses_out_in_the_input_folder(dataset_folder, tmp_path, monkeypatch):
    # The guard comes before the checkpoint is read: a missing one must not be what is reported.
    before = _snapshot(dataset_folder)
    ckpt = tmp_path / "no_checkpoint_needed"
    with pytest.raises(DataError, match="is the input folder") as err:
        predict(dataset_folder, ckpt, dataset_folder)
    assert str(dataset_folder) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="is inside the input folder"):
        predict(dataset_folder, ckpt, dataset_folder / "preds")
    monkeypatch.chdir(dataset_folder)  # relative and ".." forms resolve to the same folder
    with pytest.raises(DataError, match="is the input folder"):
        predict(".", ckpt, f"../{dataset_folder.name}")
    with pytest.raises(DataError, match="is the folder of the input"):
        predict(dataset_folder / "benign (1).png", ckpt, dataset_folder)
    afile = tmp_path / "out.log"
    afile.write_text("kept")
    with pytest.raises(DataError, match="out.log is a file, not a folder"):
        predict(dataset_folder, ckpt, afile)
    assert _snapshot(dataset_folder) == before  # ground truth untouched, nothing added


def test_predict_out_elsewhere_passes_the_guard(dataset_folder, tmp_path):
    # The next check (the checkpoint) is reached: the guard lets these through.
    ckpt = tmp_path / "nope"
    for inputs, out in (
        (dataset_folder, tmp_path / "preds"),
        (dataset_folder, tmp_path),  # the input's parent: outputs land beside benign/, not in it
        # One image: only its own folder holds names it could clash with.
        (dataset_folder / "benign (1).png", dataset_folder / "preds"),
    ):
        with pytest.raises(DataError, match="checkpoint not found"):
            predict(inputs, ckpt, out)


def test_figures_reject_max_methods_below_one(tmp_path):
    write_fixture_results(tmp_path, ["mtl_resunet"], n_folds=2, n_images=8)
    stale = tmp_path / "figures" / "segmentation_overlays.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    for bad in (0, -3):
        with pytest.raises(ValueError, match=f"--max-methods must be >= 1, got {bad}"):
            build_figures(tmp_path, max_methods=bad)
    assert [p.name for p in (tmp_path / "figures").iterdir()] == [stale.name]  # nothing written


def test_figures_reject_a_throughput_path_that_is_no_folder(tmp_path):
    write_fixture_results(tmp_path, ["mtl_resunet"], n_folds=2, n_images=8)
    with pytest.raises(DataError, match="--throughput .*nonexistent: no such folder"):
        build_figures(tmp_path, throughput_dir=tmp_path / "nonexistent")
    (tmp_path / "t.csv").write_text("model\n")
    with pytest.raises(DataError, match="t.csv: a file, not a folder"):
        build_figures(tmp_path, throughput_dir=tmp_path / "t.csv")
    assert not (tmp_path / "figures").exists()  # nothing written
    build_figures(tmp_path)  # the default throughput folder may be absent


def test_a_curve_of_other_columns_is_warned_and_skipped(tmp_path, monkeypatch):
    write_fixture_results(tmp_path, ["mtl_resunet"], n_folds=2, n_images=8, curve_epochs=3)
    bad = tmp_path / "mtl_resunet" / "fold_1_curve.csv"
    bad.write_text("a,b\n1,2\n")
    legends = []

    def keep(fig, path):
        legends.append([t.get_text() for t in fig.axes[0].get_legend().get_texts()])
        return path

    monkeypatch.setattr(figures, "_save", keep)
    with pytest.warns(DataWarning, match=r"fold_1_curve\.csv: not a learning curve .*has a, b"):
        figure_curves.curve_figures(tmp_path, tmp_path / "figures")
    assert legends == [["Fold 1"]]  # fold 0 still drawn


def test_good_curves_give_no_warning(tmp_path, monkeypatch):
    write_fixture_results(tmp_path, ["mtl_resunet"], n_folds=2, n_images=8, curve_epochs=3)
    monkeypatch.setattr(figures, "_save", lambda fig, path: path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert len(figure_curves.curve_figures(tmp_path, tmp_path / "figures")) == 1


def test_malformed_json_message_reads_naturally(tmp_path):
    path = tmp_path / "m" / "fold_0.json"
    path.parent.mkdir()
    path.write_text('{"schema": "a\tb"}')  # a raw tab inside a string: a control character
    with pytest.raises(DataError) as err:
        read_result(path)
    msg = str(err.value)
    assert "Invalid control character at line 1, column" in msg and "at at" not in msg


def test_results_path_that_is_a_file_is_named_a_file(tmp_path):
    f = tmp_path / "results.json"
    f.write_text("{}")
    with pytest.raises(DataError, match="results.json: a file, not a results folder"):
        load_results(f)
    with pytest.raises(DataError, match="results folder does not exist"):
        load_results(tmp_path / "missing")
