"""BUSI folder reader on clean folders: layout, grey conversion, OR-merge, resizing, order, names
(damaged folders: test_reader_problems.py)."""

from __future__ import annotations

import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
from busi_fixture import IMAGE_MODES, Item, ellipse, make_busi_tree, write_png
from PIL import Image

from mtl_bench.data.png import load_grey_png
from mtl_bench.data.reader import DataWarning, read_busi, scan_busi
from mtl_bench.data.types import DataError


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
