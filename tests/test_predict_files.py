"""predict's inputs without a model: what a folder gives (nothing left out unsaid), the pixels
each image gives (training's pipeline, unreadable depths refused), and output names."""

import os
from pathlib import Path

import numpy as np
import pytest
from busi_fixture import make_busi_tree, standard_spec
from PIL import Image

from mtl_bench.data.preprocess import preprocess
from mtl_bench.data.reader import read_busi
from mtl_bench.data.types import DataError
from mtl_bench.predict_files import list_inputs, output_stems
from mtl_bench.predict_image import prepare_image


def _grey(seed: int, shape=(40, 40)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_model_input_equals_training_pipeline(tmp_path):
    # Every PNG mode BUSI holds (L, RGB, RGBA, LA, I;16, P), 48 px resized to 32, MPGHE: the
    # tensor predict feeds the model is the one the reader + pre-processing trained it on.
    make_busi_tree(tmp_path, standard_spec(3), size=48)
    ds = read_busi(tmp_path, 32, "three_class")
    trained = preprocess(ds.images, "mpghe")
    for i, key in enumerate(ds.ids):
        cls, stem = key.split("/")
        grey, x, notes = prepare_image(tmp_path / cls / f"{stem}.png", 32, "mpghe")
        assert grey.shape == (48, 48) and notes == {}
        np.testing.assert_array_equal(x, trained[i], err_msg=key)
    files, rows = list_inputs(tmp_path)
    assert len(files) == len(ds.ids)  # the images, and each mask skipped in a row of its own
    assert {r["status"] for r in rows} == {"skipped: a mask file (*_mask.png)"}
    assert len(files) + len(rows) == sum(1 for p in tmp_path.rglob("*") if p.is_file())


def test_folder_entries_each_get_a_row_or_are_predicted(tmp_path, monkeypatch):
    Image.fromarray(_grey(0)).save(tmp_path / "a.png")
    Image.fromarray(_grey(1)).convert("RGB").save(tmp_path / "a.jpg")  # same stem
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))  # macOS AppleDouble
    (tmp_path / ".ipynb_checkpoints").mkdir()
    Image.fromarray(_grey(2)).save(tmp_path / ".ipynb_checkpoints" / "b.png")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(_grey(3)).save(tmp_path / "sub" / "deeper" / "a.png")
    os.symlink("missing.png", tmp_path / "broken.png")
    os.symlink("sub", tmp_path / "linked")
    (tmp_path / "notes.txt").write_text("x")
    files, rows = list_inputs(tmp_path)

    def rel(p):
        return Path(p).relative_to(tmp_path).as_posix()

    assert [rel(p) for p in files] == ["a.jpg", "a.png", "sub/deeper/a.png"]
    got = {rel(r["file"]): r["status"] for r in rows}
    assert got == {
        "._a.png": "skipped: a hidden file",
        ".ipynb_checkpoints": "skipped: a hidden folder",
        "broken.png": "error: a broken link (to missing.png)",
        "linked": "skipped: a link to a folder (not followed; pass it as an input of its own)",
        "notes.txt": "skipped: not an image (.txt)",
    }
    stems = output_stems(files, tmp_path, Path("/o"))
    assert [s.as_posix() for s in stems.values()] == ["/o/a", "/o/a_png", "/o/sub/deeper/a"]
    # On a case-insensitive disk A_mask.png would be a_mask.png: the second stem moves aside.
    upper = [tmp_path / "A.png", tmp_path / "a.png"]
    assert [s.name for s in output_stems(upper, tmp_path, Path("/o")).values()] == ["A", "a_png"]
    (tmp_path / "only").mkdir()
    Image.fromarray(_grey(5)).save(tmp_path / "only" / "x_mask.png")
    with pytest.raises(
        DataError,
        match=r"only: no image files .* found; skipped 1, such as .*x_mask\.png \(a mask",
    ):
        list_inputs(tmp_path / "only")
    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "deeper":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    with monkeypatch.context() as m:  # os.walk alone would skip it without a word
        m.setattr(os, "scandir", scandir)
        files, rows = list_inputs(tmp_path)
    assert [rel(p) for p in files] == ["a.jpg", "a.png"]
    assert {rel(r["file"]): r["status"] for r in rows}["sub/deeper"] == (
        "error: cannot list it (Permission denied)"
    )
    os.symlink("gone", tmp_path / "dead_input")
    with pytest.raises(DataError, match="dead_input: a broken link"):
        list_inputs(tmp_path / "dead_input")


def test_pixels_training_never_reads_are_refused_or_noted(tmp_path):
    grey = _grey(4)
    Image.fromarray(grey.astype(np.float32) / 255).save(tmp_path / "float.tif")
    with pytest.raises(DataError, match=r"float\.tif: 32-bit float pixels \(0 to 1\)"):
        prepare_image(tmp_path / "float.tif", 32, "none")  # Pillow's "L" would give all zeros
    Image.fromarray(grey.astype(np.int32) * 1000).save(tmp_path / "int32.tif")
    with pytest.raises(DataError, match="32-bit integer pixels"):
        prepare_image(tmp_path / "int32.tif", 32, "none")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.png: an empty file \(0 bytes\)"):
        prepare_image(tmp_path / "empty.png", 32, "none")
    frames = [Image.fromarray(np.roll(grey, k, 0)) for k in range(3)]
    frames[0].save(tmp_path / "cine.tif", save_all=True, append_images=frames[1:])
    first, x, notes = prepare_image(tmp_path / "cine.tif", 32, "none")
    assert notes == {"frames": "3 frames: only the first was predicted"}
    np.testing.assert_array_equal(first, grey)
    # 16-bit, RGBA and palette forms of one image give the model the same input.
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "d16.png")
    Image.fromarray(grey).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(grey).save(tmp_path / "grey.bmp")
    ref = prepare_image(tmp_path / "cine.tif", 32, "mpghe")[1]
    for name in ("d16.png", "rgba.png", "grey.bmp"):
        got_grey, got, notes = prepare_image(tmp_path / name, 32, "mpghe")
        assert notes == {}
        np.testing.assert_array_equal(got, ref, err_msg=name)
