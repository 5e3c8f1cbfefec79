"""predict's notes and problems on the console: a line per file while few files share one, one
line for them all past that (each file's own row still says it), and no Python warning per file.
A tiny untrained network stands in for a checkpoint, as in test_predict_reruns.py."""

import csv
import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from test_predict_reruns import _images, _use

from mtl_bench.data.types import DataWarning
from mtl_bench.predict import predict, run_predict
from mtl_bench.predict_notes import FEW, console_lines


def _twelve_bit(path: Path, seed: int) -> Path:
    """12-bit samples stored unscaled in a 16-bit PNG with no sBIT chunk (v / 257: 17 levels)."""
    a = np.random.default_rng(seed).integers(0, 4096, (40, 36)).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def _run(capsys, *args) -> tuple[int, list[str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # png.load_grey_png's per-file warning
        code = run_predict(*args)
    # Without the checkpoint-kind line (a segmenter's "masks only"): these tests count notes.
    lines = capsys.readouterr().err.splitlines()
    return code, [line for line in lines if "checkpoint: masks only" not in line]


def _rows(table: Path) -> dict[str, dict[str, str]]:
    with open(table, newline="", encoding="utf-8") as f:
        return {Path(r["file"]).name: r for r in csv.DictReader(f)}


def test_many_twelve_bit_pngs_give_one_console_line_and_a_note_each(tmp_path, monkeypatch, capsys):
    _use(monkeypatch, "mtl_resunet", ("mask", "label"), ("benign", "malignant"))
    scans = _images(tmp_path / "scans", ["plain.png"])
    deep = [_twelve_bit(scans / f"sub/deep_{i}.png", i) for i in range(FEW + 2)]
    Image.fromarray(np.zeros((20, 200), np.uint8)).save(scans / "strip.png")
    out = tmp_path / "out"
    code, err = _run(capsys, scans, "ckpt", out)
    assert code == 0
    assert err == [
        f"mtl-bench: warning: {scans / 'strip.png'}: 200x20 px resized to 32x32 (aspect 10.0:1): "
        "unlike the training images, so the prediction may mean little",
        f"mtl-bench: warning: {len(deep)} of {len(deep) + 2} images are 16-bit PNGs left with at "
        "most 17 grey levels in 8 bits (12-bit data stored unscaled?): see the note column of "
        f"{out / 'predictions.csv'}",
    ]
    rows = _rows(out / "predictions.csv")
    for path in deep:  # each file's own fact, in its row
        row = rows[path.name]
        assert row["status"] == "ok" and row["note"].startswith("16-bit PNG (no sBIT chunk)")
        assert "keeps 17 of " in row["note"] and "12-bit data?" in row["note"]
    assert rows["plain.png"]["note"] == "" and "aspect 10.0:1" in rows["strip.png"]["note"]


def test_few_twelve_bit_pngs_are_named_one_by_one(tmp_path, monkeypatch, capsys):
    _use(monkeypatch, "unet", ("mask",), ("benign", "malignant"))
    scans = _images(tmp_path / "scans", ["plain.png"])
    deep = [_twelve_bit(scans / f"deep_{i}.png", i) for i in range(2)]
    code, err = _run(capsys, scans, "ckpt", tmp_path / "out")
    assert code == 0 and len(err) == 2
    for path, line in zip(deep, err, strict=True):
        assert line.startswith(f"mtl-bench: warning: {path}: 16-bit PNG (no sBIT chunk) with ")
    # One image: the note goes in its JSON, and the console names it.
    code, err = _run(capsys, deep[0], "ckpt", tmp_path / "one")
    data = json.loads((tmp_path / "one" / "deep_0_prediction.json").read_text())
    assert data["status"] == "ok" and "12-bit data?" in data["note"]
    assert err == [f"mtl-bench: warning: {deep[0]}: {data['note']}"]
    report = predict(deep[0], "ckpt", tmp_path / "one")  # the library: a row, no warning
    assert report.notes == {"depth": {str(deep[0]): data["note"]}} and report.levels == 17


def test_a_status_many_files_share_is_one_line(tmp_path, monkeypatch, capsys):
    # A BUSI class folder holds a mask beside each scan; empty files share one error text.
    _use(monkeypatch, "mtl_resunet", ("mask", "label"), ("benign", "malignant"))
    names = [f"s{i}.png" for i in range(FEW + 1)]
    scans = _images(tmp_path / "scans", names + [n.replace(".", "_mask.") for n in names])
    for i in range(FEW + 1):
        (scans / f"e{i}.png").write_bytes(b"")
    (scans / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    code, err = _run(capsys, scans, "ckpt", out)
    assert code == 1  # unreadable inputs
    table = out / "predictions.csv"
    assert err[0].startswith(f"{scans / 'bad.png'}: error: cannot decode image")  # its own
    assert err[1:] == [
        f"{scans / 'e0.png'} and {FEW} more: error: an empty file (0 bytes) (each has its row in "
        f"{table})",
        f"{scans / 's0_mask.png'} and {FEW} more: skipped: a mask file (*_mask.png) (each has its "
        f"row in {table})",
    ]
    assert len(_rows(table)) == 3 * (FEW + 1) + 1


def test_console_lines_keep_a_files_notes_together():
    rows = [{"file": f, "status": "ok"} for f in ("a", "b")]
    notes = {"shape": {"a": "strip"}, "frames": {"a": "3 frames", "b": "2 frames"}}
    assert console_lines(rows, notes, Path("t.csv")) == [
        "mtl-bench: warning: a: strip; 3 frames",
        "mtl-bench: warning: b: 2 frames",
    ]


def test_a_mask_file_named_as_the_input_is_predicted_with_a_note(tmp_path, monkeypatch, capsys):
    # A folder run skips it; named on its own it is predicted, since the user asked for it,
    # but its row and the console say that its name marks it as a mask.
    _use(monkeypatch, "mtl_resunet", ("mask", "label"), ("benign", "malignant"))
    gt = _images(tmp_path / "gt", ["benign (1)_mask.png"])
    code, err = _run(capsys, gt / "benign (1)_mask.png", "ckpt", tmp_path / "out")
    data = json.loads((tmp_path / "out" / "benign (1)_mask_prediction.json").read_text())
    assert code == 0 and data["status"] == "ok"
    assert "its name marks it as a mask (*_mask.png)" in data["note"]
    assert err == [f"mtl-bench: warning: {gt / 'benign (1)_mask.png'}: {data['note']}"]
