"""BUSI folder reader: layout, grey conversion, OR-merge, resizing, order, and every bad input."""

from __future__ import annotations

import re
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
from busi_fixture import IMAGE_MODES, Item, ellipse, make_busi_tree, standard_spec, write_png
from PIL import Image

from mtl_bench.data.png import load_grey_png, load_mask_png
from mtl_bench.data.reader import DataWarning, read_busi, scan_busi
from mtl_bench.data.types import DataError


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, Item]]:
    root = tmp_path / "BUSI"
    return root, make_busi_tree(root, standard_spec())


def read_quiet(root: Path, *args, **kwargs):
    """read_busi that must not warn (a clean tree)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        return read_busi(root, *args, **kwargs)


def test_binary_reads_benign_then_malignant_in_natural_order(tree):
    root, _ = tree
    ds = read_quiet(root, 32)
    benign = [f"benign/benign ({i})" for i in (1, 2, 3, 10)] + ["benign/bénin écho (2)"]
    assert ds.ids == benign + [f"malignant/malignant ({i})" for i in (1, 2, 3, 7)]
    assert ds.labels.tolist() == [0] * 5 + [1] * 4 and ds.labels.dtype == np.int32
    assert ds.class_names == ("benign", "malignant")
    assert ds.images.shape == ds.masks.shape == (9, 32, 32)
    assert ds.images.dtype == ds.masks.dtype == np.uint8
    assert set(np.unique(ds.masks)) == {0, 1}
    # The normal folder is not silently ignored: it is listed as skipped, with its reason.
    assert [(Path(p).name, r) for p, r in ds.skipped] == [
        ("normal", "class not in class set 'binary'")
    ]
    assert read_quiet(root, 32).fingerprint() == ds.fingerprint()


def test_three_class_adds_normal_with_empty_masks(tree):
    root, _ = tree
    calls = []
    ds = read_quiet(root, 32, "three_class", progress=lambda *done_total: calls.append(done_total))
    assert calls == [(i, 12) for i in range(1, 13)]
    assert ds.class_counts() == {"benign": 5, "malignant": 4, "normal": 3}
    normal = ds.labels == 2
    assert [i.split("/")[0] for i in np.array(ds.ids)[normal]] == ["normal"] * 3
    assert not ds.masks[normal].any() and ds.masks[~normal].any(axis=(1, 2)).all()
    assert ds.skipped == []


def test_images_and_or_merged_masks_match_files_at_native_size(tree):
    root, written = tree
    ds = read_quiet(root, 48, "three_class")
    for i, sid in enumerate(ds.ids):
        item = written[sid]
        np.testing.assert_array_equal(ds.images[i], item.image, err_msg=f"{sid} ({item.mode})")
        merged = np.logical_or.reduce([m.astype(bool) for m in item.masks])
        np.testing.assert_array_equal(ds.masks[i], merged.astype(np.uint8), err_msg=sid)
    parts = written["malignant/malignant (7)"].masks  # three files, _mask, _mask_1, _mask_2
    assert len(parts) == 3 and np.logical_or.reduce(parts).sum() > max(p.sum() for p in parts)


@pytest.mark.parametrize("mode", IMAGE_MODES)
def test_grey_conversion_is_exact_for_each_png_mode(tmp_path, mode):
    grey = np.random.default_rng(1).integers(0, 256, size=(20, 30), dtype=np.uint8)
    write_png(tmp_path / "x.png", grey, mode)
    with Image.open(tmp_path / "x.png") as img:
        assert img.mode == mode  # the file really is in that mode
    out = load_grey_png(tmp_path / "x.png")
    assert out.dtype == np.uint8 and out.shape == (20, 30)
    np.testing.assert_array_equal(out, grey)


def test_colour_rgb_becomes_luma_and_sixteen_bit_is_scaled(tmp_path):
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    expected = np.rint(rgb @ np.array([0.299, 0.587, 0.114])).astype(int)
    assert np.abs(load_grey_png(tmp_path / "c.png").astype(int) - expected).max() <= 1
    Image.fromarray(np.array([[0, 257, 30000, 65535]], dtype=np.uint16)).save(tmp_path / "d.png")
    assert load_grey_png(tmp_path / "d.png").tolist() == [[0, 1, 117, 255]]


def test_resize_bilinear_images_nearest_binary_masks(tree):
    root, written = tree
    ds = read_quiet(root, (24, 40))
    assert ds.images.shape == (9, 24, 40) and ds.image_size == (24, 40)
    k = ds.ids.index("malignant/malignant (7)")
    item = written["malignant/malignant (7)"]
    merged = np.logical_or.reduce(item.masks).astype(np.uint8) * 255
    nearest = np.asarray(Image.fromarray(merged).resize((40, 24), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(ds.masks[k], nearest > 127)
    bilinear = np.asarray(Image.fromarray(item.image).resize((40, 24), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(ds.images[k], bilinear)
    # Bilinear upsampling creates in-between grey values; nearest keeps masks binary.
    up = read_quiet(root, 96)
    assert set(np.unique(up.masks)) == {0, 1}
    assert len(np.unique(up.images[k])) > len(np.unique(item.image))


def test_scan_finds_files_without_decoding(tree):
    root, _ = tree
    (root / "benign" / "benign (1).png").write_bytes(b"not a png")  # scanning must not care
    scan = scan_busi(root)
    assert scan.problems == [] and len(scan.entries) == 12
    e = next(e for e in scan.entries if e.id == "malignant/malignant (7)")
    assert [m.name for m in e.masks] == [f"malignant (7)_mask{k}.png" for k in ("", "_1", "_2")]
    assert e.class_name == "malignant" and e.image.name == "malignant (7).png"


def test_non_ascii_names_pair_across_unicode_normal_forms(tmp_path):
    root = tmp_path / "r"
    make_busi_tree(root, {"benign": [Item("b (1)")], "malignant": [Item("m (1)")]})
    grey = np.full((48, 48), 90, np.uint8)
    nfc, nfd = (unicodedata.normalize(f, "lésion ü (3)") for f in ("NFC", "NFD"))
    write_png(root / "benign" / f"{nfc}.png", grey, "RGB")
    write_png(root / "benign" / f"{nfd}_mask.png", ellipse((48, 48), (20, 20), (5, 5)) * 255)
    ds = read_quiet(root, 48)
    assert f"benign/{nfc}" in ds.ids and ds.masks[ds.ids.index(f"benign/{nfc}")].sum() > 0


# --- bad inputs: each names the file -------------------------------------------------------


def test_missing_or_non_folder_root_bad_class_set_and_size(tree, tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        read_busi(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        scan_busi(tmp_path / "file")
    with pytest.raises(DataError, match="unknown class set 'five'"):
        read_busi(tree[0], class_set="five")
    with pytest.raises(DataError, match="image_size 0"):
        read_busi(tree[0], 0)


def test_missing_and_empty_class_folders(tree):
    root, _ = tree
    for f in (root / "malignant").iterdir():
        f.unlink()
    (root / "malignant").rmdir()
    with pytest.raises(DataError, match=r"malignant: missing \(found: benign, normal\)"):
        read_busi(root, 32, strict=False)  # class-level problems raise even when not strict
    (root / "malignant").mkdir()
    (root / "malignant" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="class folder has no images") as err:
        read_busi(root, 32, strict=False)
    assert str(root / "malignant") in str(err.value)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


B, M = Path("benign"), Path("malignant")
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
        "benign (3).png: cannot decode image",
    ),
    "truncated png": (
        lambda r: _truncate(r / M / "malignant (7)_mask_2.png"),
        "malignant (7).png",
        "malignant (7)_mask_2.png: cannot decode image",
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
    with pytest.warns(DataWarning, match="4 files skipped") as rec:
        ds = read_busi(root, 32)
    assert len(ds) == 9
    reasons = {Path(p).name: r for p, r in ds.skipped}
    assert reasons["notes.txt"] == "not a .png file" and reasons[".DS_Store"] == "hidden file"
    assert reasons["old"] == "sub-folder" and reasons["README.md"] == "not a class"
    assert "normal" in reasons and "notes.txt" in str(rec[0].message)


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
    with pytest.raises(DataError, match=r"image without mask .*\(\+1 more; `mtl-bench data check"):
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


def test_class_with_no_usable_image_raises_even_when_not_strict(tmp_path):
    root = tmp_path / "r"
    make_busi_tree(root, {"benign": [Item("b (1)")], "malignant": [Item("m (1)")]})
    (root / "malignant" / "m (1).png").write_bytes(b"junk")
    with pytest.raises(DataError, match="malignant: no usable images in class 'malignant'"):
        read_busi(root, 32, strict=False)
