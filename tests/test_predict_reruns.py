"""predict into an ``--out`` that already holds results: an earlier run's outputs are replaced
and its stale ones removed, anything else refused before a file is written; single-task and
three-class models. A tiny untrained network stands in for a checkpoint (those forms are
tested in test_predict.py): the bookkeeping, not the weights, is under test here."""

import csv
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from flax import nnx
from PIL import Image

from mtl_bench import predict as predict_module
from mtl_bench.config import RunConfig
from mtl_bench.data.types import DataError
from mtl_bench.fold_checkpoint import FoldModel
from mtl_bench.predict import predict, run_predict


class _Tiny(nnx.Module):
    """A conv and a dense head, filling the output keys its registered model fills."""

    def __init__(self, tasks: tuple[str, ...], n_classes: int):
        rngs = nnx.Rngs(0)
        self.conv = nnx.Conv(1, 1, (3, 3), rngs=rngs)
        self.head = nnx.Linear(1, n_classes, rngs=rngs)
        self.tasks = tasks

    def __call__(self, x, train=False):
        y = self.conv(x)
        out = {"mask": y} if "mask" in self.tasks else {}
        return out | ({"label": self.head(y.mean((1, 2)))} if "label" in self.tasks else {})


def _use(monkeypatch, model: str, tasks: tuple[str, ...], names: tuple[str, ...]) -> None:
    graphdef, params, rest = nnx.split(_Tiny(tasks, len(names)), nnx.Param, ...)
    cfg = RunConfig(model=model, image_size=32, preprocess="none")
    state = {"params": params, "rest": rest}
    # A three-class run's checkpoint: its method (results folder) is not the model's name.
    fold = FoldModel(cfg, names, SimpleNamespace(graphdef=graphdef), state, f"{model}@3class")
    monkeypatch.setattr(predict_module, "load_fold_model", lambda checkpoint: fold)


def _images(folder: Path, names: list[str]) -> Path:
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        grey = np.random.default_rng(i).integers(0, 256, (40, 36), dtype=np.uint8)
        Image.fromarray(grey).save(folder / name)
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    files = (p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def test_a_rerun_replaces_the_earlier_outputs_and_removes_stale_ones(tmp_path, monkeypatch):
    _use(monkeypatch, "mtl_resunet", ("mask", "label"), ("benign", "malignant"))
    scans = _images(tmp_path / "scans", ["a.png", "b.png", "sub/c.png", "échographie 1.png"])
    out = tmp_path / "out"
    first = predict(scans, "ckpt", out)
    assert all(r["status"] == "ok" for r in first.rows) and not first.removed
    with open(out / "predictions.csv", newline="", encoding="utf-8") as f:
        rows = {Path(r["file"]).name: r for r in csv.DictReader(f)}
    row = rows["échographie 1.png"]
    got = (row["width"], row["height"], row["model"], row["method"], row["checkpoint"])
    absolute = str(Path("ckpt").resolve())  # stored absolute
    assert got == ("36", "40", "mtl_resunet", "mtl_resunet@3class", absolute)
    mask = np.asarray(Image.open(row["mask_png"])) > 0  # absolute: readable from anywhere
    assert Path(row["mask_png"]).is_absolute() and int(row["mask_pixels"]) == mask.sum()
    # Next time b.png is unreadable and sub/c.png gone: their old masks must not stay behind.
    (scans / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (scans / "sub" / "c.png").unlink()
    second = predict(scans, "ckpt", out)
    removed = sorted(p.name for p in second.removed)
    assert removed == ["b_mask.png", "b_overlay.png", "c_mask.png", "c_overlay.png"]
    kept = ["a_mask.png", "a_overlay.png", "predictions.csv"]
    assert sorted(_files(out)) == [*kept, "échographie 1_mask.png", "échographie 1_overlay.png"]
    assert not (out / "sub").exists()  # emptied by the removal
    # A table from before absolute paths (relative to the directory it ran in) counts too.
    monkeypatch.chdir(tmp_path)
    text = (out / "predictions.csv").read_text(encoding="utf-8")
    (out / "predictions.csv").write_text(text.replace(str(tmp_path) + os.sep, ""), "utf-8")
    assert predict("scans", "ckpt", "out").removed == []


def test_foreign_files_in_out_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    _use(monkeypatch, "mtl_resunet", ("mask", "label"), ("benign", "malignant"))
    scans = _images(tmp_path / "scans", ["a.png", "b.png"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "b_mask.png").write_bytes(b"someone's mask")  # an interrupted run's, or by hand
    with pytest.raises(DataError, match=r"out/b_mask\.png would be overwritten, and no earlier"):
        predict(scans, "ckpt", out)
    assert _files(out) == {"b_mask.png": b"someone's mask"}
    (out / "b_mask.png").unlink()
    (out / "predictions.csv").write_text("patient,grade\n7,3\n")  # the user's own table
    with pytest.raises(DataError, match=r"predictions\.csv is in the way: not a table predict"):
        predict(scans, "ckpt", out)
    assert _files(out) == {"predictions.csv": b"patient,grade\n7,3\n"}
    (out / "predictions.csv").unlink()
    predict(scans, "ckpt", out)
    other = _images(tmp_path / "other", ["a.png"])  # another folder's run must not replace it
    before = _files(out)
    with pytest.raises(DataError, match=r"predictions\.csv holds the predictions of another fo"):
        predict(other, "ckpt", out)
    # One image: the same name from another folder would replace its JSON and PNGs.
    predict(scans / "a.png", "ckpt", tmp_path / "one")
    with pytest.raises(DataError, match=r"a_prediction\.json holds the predictions of another"):
        predict(other / "a.png", "ckpt", tmp_path / "one")
    # Into the folder run's out, one image's outputs would overwrite that run's a_mask.png.
    with pytest.raises(DataError, match=r"out/a_mask\.png \(and 1 more\) would be overwritten"):
        predict(other / "a.png", "ckpt", out)
    assert _files(out) == before
    # An out above the inputs whose outputs would land inside them (scans/scans/x.png).
    _images(scans, ["scans/x.png"])
    with pytest.raises(DataError, match=r"scans/x_mask\.png would be written inside the input"):
        predict(scans, "ckpt", tmp_path)
    with pytest.raises(DataError, match=r"--out .*a\.png/sub: cannot write there"):
        predict(other, "ckpt", scans / "a.png" / "sub")


def test_single_task_and_three_class_models(tmp_path, monkeypatch, capsys):
    scans = _images(tmp_path / "scans", ["a.png", "b.png"])
    (scans / "a_mask.png").write_bytes((scans / "a.png").read_bytes())
    out = tmp_path / "out"
    _use(monkeypatch, "unet", ("mask",), ("benign", "malignant"))
    assert run_predict(scans, "ckpt", out) == 0
    captured = capsys.readouterr()
    assert "masks only, no class probabilities" in captured.err
    assert f"{scans / 'a_mask.png'}: skipped: a mask file" in captured.err
    assert (out / "a_mask.png").is_file()
    # A classifier next into the same out: the segmenter's masks are not left as if its own.
    _use(monkeypatch, "mobilenet_v2", ("label",), ("benign", "malignant", "normal"))
    assert run_predict(scans, "ckpt", out) == 0
    captured = capsys.readouterr()
    assert "class probabilities only, no masks" in captured.err
    assert "removed 4 output(s) of the earlier run" in captured.err
    assert sorted(_files(out)) == ["predictions.csv"]
    with open(out / "predictions.csv", newline="") as f:
        row = next(csv.DictReader(f))
    probs = [float(row[f"prob_{n}"]) for n in ("benign", "malignant", "normal")]
    assert sum(probs) == pytest.approx(1.0, abs=1e-5) and "mask_png" not in row
    assert row["predicted_class"] == ("benign", "malignant", "normal")[int(np.argmax(probs))]
    predict(scans / "b.png", "ckpt", tmp_path / "one")
    data = json.loads((tmp_path / "one" / "b_prediction.json").read_text())
    assert data["class_names"] == ["benign", "malignant", "normal"] and data["tasks"] == ["label"]


def test_a_rerun_from_another_working_directory_is_the_same_run(tmp_path, monkeypatch):
    # Relative inputs as typed in a shell: the table must not tie the rerun to this directory.
    _use(monkeypatch, "mtl_resunet", ("mask", "label"), ("benign", "malignant"))
    _images(tmp_path / "scans", ["a.png", "b.png"])
    monkeypatch.chdir(tmp_path)
    predict("scans", "ckpt", "out")
    predict("scans/a.png", "ckpt", "one")
    with open(tmp_path / "out" / "predictions.csv", newline="", encoding="utf-8") as f:
        assert all(Path(r["file"]).is_absolute() for r in csv.DictReader(f))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = predict("../scans", "ckpt", tmp_path / "out")
    assert [r["status"] for r in again.rows] == ["ok", "ok"] and again.removed == []
    kinds = ("mask.png", "overlay.png")
    outputs = sorted(f"{s}_{k}" for s in "ab" for k in kinds)
    assert sorted(_files(tmp_path / "out")) == [*outputs, "predictions.csv"]
    assert predict(tmp_path / "scans" / "a.png", "ckpt", "../one").removed == []


def test_tables_have_the_same_columns_whatever_the_notes(tmp_path, monkeypatch):
    # Scripts read several runs' tables together: a note in one run must not add a column.
    _use(monkeypatch, "mtl_resunet", ("mask", "label"), ("benign", "malignant"))
    plain = _images(tmp_path / "plain", ["a.png"])
    noted = _images(tmp_path / "noted", ["a.png"])
    Image.fromarray(np.zeros((20, 200), np.uint8)).save(noted / "strip.png")
    (noted / "bad.png").write_bytes(b"")  # a row with no prediction: same columns
    headers = {}
    for folder in (plain, noted):
        predict(folder, "ckpt", tmp_path / f"out_{folder.name}")
        with open(tmp_path / f"out_{folder.name}" / "predictions.csv", newline="") as f:
            reader = csv.DictReader(f)
            headers[folder.name], rows = reader.fieldnames, list(reader)
    assert headers["plain"] == headers["noted"] and "note" in headers["plain"]
    assert {Path(r["file"]).name: r["note"] for r in rows}["a.png"] == ""


def test_the_checkpoint_is_stored_absolute(tmp_path, monkeypatch):
    # Typed relative, it is stored absolute (resolved) like the file and PNG paths, in the CSV
    # of a folder and the JSON of one image.
    _use(monkeypatch, "mtl_resunet", ("mask", "label"), ("benign", "malignant"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "ckpt_fold_0").mkdir(parents=True)
    os.symlink("results", tmp_path / "latest")
    want = str(tmp_path.resolve() / "results" / "ckpt_fold_0")
    scans = _images(tmp_path / "scans", ["a.png"])
    predict("scans", "latest/ckpt_fold_0", "out")
    with open(tmp_path / "out" / "predictions.csv", newline="") as f:
        assert [r["checkpoint"] for r in csv.DictReader(f)] == [want]
    predict(scans / "a.png", "latest/../results/ckpt_fold_0", "one")
    assert json.loads((tmp_path / "one" / "a_prediction.json").read_text())["checkpoint"] == want


def test_a_table_of_another_folder_is_refused_naming_that_folder(tmp_path, monkeypatch):
    _use(monkeypatch, "mtl_resunet", ("mask", "label"), ("benign", "malignant"))
    mixed = _images(tmp_path / "imgs" / "mixed", ["good1.png", "sub/good2.png"])
    (mixed / "empty.png").write_bytes(b"")
    mixed2 = _images(tmp_path / "imgs" / "mixed2", ["x.png"])
    predict(mixed, "ckpt", tmp_path / "p2")
    with pytest.raises(DataError) as err:
        predict(mixed2, "ckpt", tmp_path / "p2")
    msg = str(err.value)  # the folder, not one of its rows' files
    assert f"holds the predictions of another folder's images (all under {mixed})" in msg
    assert "empty.png" not in msg and "good1" not in msg


def test_an_overwrite_of_another_tables_outputs_names_that_table(tmp_path, monkeypatch):
    _use(monkeypatch, "mtl_resunet", ("mask", "label"), ("benign", "malignant"))
    mixed = _images(tmp_path / "mixed", ["good1.png", "good2.png"])
    out = tmp_path / "p2"
    predict(mixed, "ckpt", out)
    before = _files(out)
    # One image of that folder: its outputs are the folder run's, listed in predictions.csv.
    # Refused (that table would then describe masks it did not make), and said so.
    with pytest.raises(DataError) as err:
        predict(mixed / "good1.png", "ckpt", out)
    msg = str(err.value)
    assert msg.startswith(f"{out / 'good1_mask.png'} (and 1 more) would be overwritten")
    assert "an earlier folder run wrote it (listed in predictions.csv)" in msg
    assert "interrupted" not in msg and "\n" not in msg
    assert _files(out) == before
    # A folder run over the outputs of an earlier run on one image names that image's JSON.
    predict(mixed / "good2.png", "ckpt", tmp_path / "one")
    with pytest.raises(DataError, match=r"an earlier run on one image wrote it \(listed in good2_"):
        predict(mixed, "ckpt", tmp_path / "one")
