"""The BUSI reader on damaged folders: every bad input is named (file and reason) or skipped,
listed and warned about; nothing is dropped silently."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from busi_fixture import Item, make_busi_tree, write_png
from PIL import Image

from mtl_bench.data.png import load_grey_png, load_mask_png
from mtl_bench.data.reader import DataWarning, read_busi
from mtl_bench.data.types import DataError

B, M = Path("benign"), Path("malignant")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _tiff(path: Path, dtype: type, scale: float) -> None:
    ramp = np.linspace(0, 255, 48 * 48).reshape(48, 48)
    Image.fromarray((ramp * scale).astype(dtype)).save(path, format="TIFF")


# case: (damage done to a clean tree, the image left out, text the DataError must contain)
BAD_INPUTS = {
    "image without mask": (
        lambda r: (r / B / "benign (2)_mask.png").unlink(),
        "benign (2).png",
        "benign (2).png: image without mask (no 'benign (2)_mask.png')",
    ),
    "mask without image": (
        lambda r: (r / M / "malignant (3).png").unlink(),
        "malignant (3)_mask.png",
        "malignant (3)_mask.png: mask without image (no 'malignant (3).png')",
    ),
    "garbage png": (
        lambda r: (r / B / "benign (3).png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(99)),
        "benign (3).png",
        "benign (3).png: cannot decode image",
    ),
    "empty file": (
        lambda r: (r / B / "benign (3).png").write_bytes(b""),
        "benign (3).png",
        "benign (3).png: an empty file (0 bytes)",  # as predict says it
    ),
    "broken link": (
        lambda r: (
            (r / B / "benign (3).png").unlink()
            or (r / B / "benign (3).png").symlink_to(r / "gone.png")
        ),
        "benign (3).png",
        "benign (3).png: a broken link (to ",
    ),
    "truncated png": (
        lambda r: _truncate(r / M / "malignant (7)_mask_2.png"),
        "malignant (7).png",
        "malignant (7)_mask_2.png: cannot decode image",
    ),
    # TIFFs under a .png name: mapping these to 8 bits left two grey levels, without a word.
    "float pixels": (
        lambda r: _tiff(r / B / "benign (3).png", np.float32, 1 / 255),
        "benign (3).png",
        "benign (3).png: 32-bit float pixels (0 to 1), not 8- or 16-bit",
    ),
    "32-bit integer pixels": (
        lambda r: _tiff(r / M / "malignant (7)_mask.png", np.int32, 1e6),
        "malignant (7).png",
        "malignant (7)_mask.png: 32-bit integer pixels (0 to 2.55e+08), not 8- or 16-bit",
    ),
    "size mismatch": (
        lambda r: write_png(r / M / "malignant (7)_mask_1.png", np.zeros((40, 48), np.uint8)),
        "malignant (7).png",
        "malignant (7)_mask_1.png: mask is 48x40 px but image 'malignant (7).png' is 48x48",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_each_bad_input_names_the_file_or_is_skipped_and_listed(tree, case):
    root, _ = tree
    damage, left_out, text = BAD_INPUTS[case]
    damage(root)
    with pytest.raises(DataError, match=re.escape(text)) as err:
        read_busi(root, 32)
    assert "\n" not in str(err.value)
    with pytest.warns(DataWarning, match="files? skipped") as caught:
        ds = read_busi(root, 32, strict=False)
    skipped = {Path(p).name: reason for p, reason in ds.skipped}
    assert len(ds) == 8 and set(skipped) == {left_out, "normal"}
    shown = next(str(w.message) for w in caught if " skipped: " in str(w.message))
    path = next(p for p in ds.skipped if Path(p[0]).name == left_out)[0]
    assert shown.count(f"{path}:") == 1  # a decoding error's reason names its file: not twice
    assert shown.count(str(Path(path).parent)) == 1  # a mask beside it is named without its folder
    assert text.split(": ")[1] in skipped[left_out]


def test_load_functions_name_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match="nope_mask.png: file not found"):
        load_mask_png(tmp_path / "nope_mask.png")
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="bad.png: cannot decode image"):
        load_grey_png(tmp_path / "bad.png")


def test_non_binary_mask_is_binarised_and_warned(tree):
    root, _ = tree
    mask = np.zeros((48, 48), np.uint8)
    mask[:10, :10], mask[10:20, :10], mask[20:30, :10] = 100, 200, 255
    write_png(root / "benign" / "benign (1)_mask.png", mask)
    with pytest.warns(DataWarning, match=r"nonbinary mask.*benign \(1\)_mask\.png: 200 px"):
        ds = read_busi(root, 48)
    got = ds.masks[ds.ids.index("benign/benign (1)")]
    np.testing.assert_array_equal(got, (mask > 127).astype(np.uint8))
    write_png(root / "m.png", (mask > 0).astype(np.uint8))  # a 0/1 mask: 1 is the foreground
    np.testing.assert_array_equal(load_mask_png(root / "m.png"), mask > 0)


def test_stray_files_are_skipped_listed_and_warned(tree):
    root, _ = tree
    (root / "benign" / "notes.txt").write_text("x")
    (root / "benign" / ".DS_Store").write_bytes(b"\0")
    (root / "malignant" / "old").mkdir()
    (root / "README.md").write_text("x")
    (root / "benign" / "._benign (1).png").write_bytes(b"\0")  # a macOS resource fork
    with pytest.warns(DataWarning, match="3 stray files skipped") as rec:
        ds = read_busi(root, 32)
    assert len(ds) == 9
    reasons = {Path(p).name: r for p, r in ds.skipped}
    assert reasons["notes.txt"] == "not a .png file" and reasons[".DS_Store"] == "hidden file"
    assert reasons["old"] == "sub-folder" and reasons["README.md"] == "not a class"
    assert reasons["._benign (1).png"] == "hidden file"
    # Hidden files (OS artefacts) are listed, not warned about; the class outside the set too.
    assert "normal" in reasons and "notes.txt" in str(rec[0].message) and len(rec) == 1
    assert "hidden" not in str(rec[0].message)


def test_empty_lesion_mask_is_kept_and_warned_also_when_lost_in_resize(tree):
    root, _ = tree
    write_png(root / "malignant" / "malignant (2)_mask.png", np.zeros((48, 48), np.uint8))
    with pytest.warns(DataWarning, match=r"empty lesion mask.*malignant \(2\)\.png"):
        ds = read_busi(root, 32)
    k = ds.ids.index("malignant/malignant (2)")
    assert not ds.masks[k].any() and ds.labels[k] == 1
    tiny = np.zeros((48, 48), np.uint8)
    tiny[1, 1] = 255  # nearest 48 -> 4 samples rows/cols 6, 18, 30, 42 only
    write_png(root / "benign" / "benign (1)_mask.png", tiny)
    with pytest.warns(DataWarning, match="mask vanished in resize"):
        read_busi(root, 4)


def test_not_strict_lists_every_problem_and_keeps_the_rest(tree):
    root, _ = tree
    (root / "benign" / "benign (2)_mask.png").unlink()
    (root / "malignant" / "malignant (3).png").unlink()
    (root / "benign" / "benign (10).png").write_bytes(b"junk")
    write_png(root / "malignant" / "malignant (1)_mask.png", np.zeros((10, 10), np.uint8))
    (root / "benign" / "x.txt").write_text("x")
    # strict stops at the file listing: two problems there, before anything is decoded
    more = r"\(\+1 more found before decoding any file; `mtl-bench data check"
    with pytest.raises(DataError, match=r"image without mask .*" + more):
        read_busi(root, 32)
    with pytest.warns(DataWarning, match="files? skipped"):
        ds = read_busi(root, 32, strict=False)
    assert {Path(p).name for p, _ in ds.skipped} == {
        *("benign (10).png", "benign (2).png", "malignant (1).png", "malignant (3)_mask.png"),
        *("normal", "x.txt"),
    }
    assert ds.ids == [
        *("benign/benign (1)", "benign/benign (3)", "benign/bénin écho (2)"),
        *("malignant/malignant (2)", "malignant/malignant (7)"),
    ]
    assert len(ds.skipped) == 6  # each once
    # The warning names five at most; a fold trained on this data records every one.
    from mtl_bench.config import RunConfig
    from mtl_bench.data.folds import manifest_for
    from mtl_bench.fit import FoldRun
    from mtl_bench.fold_record import fold_result

    manifest = manifest_for(ds, k=2, seed=0, preprocess="none")
    run = FoldRun(("mask", "label"), {}, [], 0.0, 0.0, 0, 0)
    record = fold_result(RunConfig(), "mtl_resunet", 0, manifest, ds, np.arange(2), run, 0.0)
    assert record["dataset_skipped"] == [[path, why] for path, why in ds.skipped]


def test_class_with_no_usable_image_raises_even_when_not_strict(tmp_path):
    root = tmp_path / "r"
    make_busi_tree(root, {"benign": [Item("b (1)")], "malignant": [Item("m (1)")]})
    (root / "malignant" / "m (1).png").write_bytes(b"junk")
    with pytest.raises(DataError, match="malignant: no usable images in class 'malignant'"):
        read_busi(root, 32, strict=False)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_very_large_image_warns_naming_the_file_and_twice_that_is_refused(tmp_path, monkeypatch):
    """Pillow's decompression-bomb warning names no file; ours does, and is a DataWarning."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600 px: warned, not refused
    big = tmp_path / "big.png"
    Image.fromarray(np.full((40, 40), 90, np.uint8)).save(big)
    with pytest.warns(DataWarning, match=r"big\.png: very large image \(40x40"):
        assert load_grey_png(big).shape == (40, 40)
    huge = tmp_path / "huge.png"
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(huge)  # 2500 px > 2 x 1000: refused
    with pytest.raises(DataError, match=r"huge\.png: cannot decode image"):
        load_grey_png(huge)


def test_cli_shows_the_large_image_warning_with_its_name_not_pillows(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from mtl_bench.cli import _show_data_warning, main

    make_busi_tree(tmp_path / "BUSI", {"benign": [Item("b (1)")], "malignant": [Item("m (1)")]})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # the fixture's 48x48 = 2304 px
    assert main(["data", "check", str(tmp_path / "BUSI")]) == 0
    err = capsys.readouterr().err
    assert "mtl-bench: warning: " in err and "b (1).png: very large image (48x48" in err
    shown = []  # Pillow's own warning (no file named) is not passed on to Python's printer
    _show_data_warning(lambda *a: shown.append(a), "big", Image.DecompressionBombWarning, "f", 1)
    _show_data_warning(lambda *a: shown.append(a), "other", UserWarning, "f", 1)
    assert [a[0] for a in shown] == ["other"]
