"""BUSI folder reader: layout, grey conversion, OR-merge, resizing, order, and every bad input."""

from __future__ import annotations

import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
from busi_fixture import IMAGE_MODES, Item, ellipse, make_busi_tree, standard_spec, write_png
from PIL import Image

from mtl_bench.data.reader import (
    DataWarning,
    load_grey_png,
    load_mask_png,
    read_busi,
    scan_busi,
)
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
    assert ds.ids == [
        "benign/benign (1)",
        "benign/benign (2)",
        "benign/benign (3)",
        "benign/benign (10)",
        "benign/bénin écho (2)",
        "malignant/malignant (1)",
        "malignant/malignant (2)",
        "malignant/malignant (3)",
        "malignant/malignant (7)",
    ]
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
    ds = read_quiet(root, 32, "three_class")
    assert ds.class_counts() == {"benign": 5, "malignant": 4, "normal": 3}
    normal = ds.labels == 2
    assert [i.split("/")[0] for i in np.array(ds.ids)[normal]] == ["normal"] * 3
    assert not ds.masks[normal].any() and ds.masks[~normal].any(axis=(1, 2)).all()
    assert ds.skipped == []


def test_images_and_masks_match_files_at_native_size(tree):
    root, written = tree
    ds = read_quiet(root, 48, "three_class")
    for i, sid in enumerate(ds.ids):
        item = written[sid]
        np.testing.assert_array_equal(ds.images[i], item.image, err_msg=f"{sid} ({item.mode})")
        merged = np.logical_or.reduce([m.astype(bool) for m in item.masks])
        np.testing.assert_array_equal(ds.masks[i], merged.astype(np.uint8), err_msg=sid)


def test_or_merge_of_three_masks(tree):
    root, written = tree
    ds = read_quiet(root, 48)
    k = ds.ids.index("malignant/malignant (7)")
    parts = written["malignant/malignant (7)"].masks
    assert len(parts) == 3 and (root / "malignant" / "malignant (7)_mask_2.png").exists()
    assert ds.masks[k].sum() == np.logical_or.reduce(parts).sum() > max(p.sum() for p in parts)
    for part in parts:  # every part survives the merge
        assert ds.masks[k][part].all()


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
    # Upsampling an image with two grey levels creates in-between values; the mask stays binary.
    up = read_quiet(root, 96)
    assert set(np.unique(up.masks)) == {0, 1}
    assert len(np.unique(up.images[k])) > len(np.unique(item.image))


def test_scan_finds_files_without_decoding(tree):
    root, _ = tree
    (root / "benign" / "benign (1).png").write_bytes(b"not a png")  # scanning must not care
    scan = scan_busi(root)
    assert scan.problems == [] and len(scan.entries) == 12
    e = next(e for e in scan.entries if e.id == "malignant/malignant (7)")
    assert [m.name for m in e.masks] == [
        "malignant (7)_mask.png",
        "malignant (7)_mask_1.png",
        "malignant (7)_mask_2.png",
    ]
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


def test_progress_reports_every_image(tree):
    root, _ = tree
    calls = []
    read_quiet(root, 32, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 9) for i in range(1, 10)]


# --- bad inputs: each names the file -------------------------------------------------------


def test_missing_or_non_folder_root(tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        read_busi(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        scan_busi(tmp_path / "file")


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


def test_unknown_class_set_and_bad_size(tree):
    root, _ = tree
    with pytest.raises(DataError, match="unknown class set 'five'"):
        read_busi(root, class_set="five")
    with pytest.raises(DataError, match="image_size 0"):
        read_busi(root, 0)


def test_image_without_mask(tree):
    root, _ = tree
    (root / "benign" / "benign (2)_mask.png").unlink()
    with pytest.raises(DataError, match="image without mask") as err:
        read_busi(root, 32)
    assert "benign (2).png" in str(err.value)
    with pytest.warns(DataWarning, match=r"benign \(2\)\.png: image without mask"):
        ds = read_busi(root, 32, strict=False)
    assert "benign/benign (2)" not in ds.ids and len(ds) == 8
    assert any(p.endswith("benign (2).png") for p, _ in ds.skipped)


def test_mask_without_image(tree):
    root, _ = tree
    (root / "malignant" / "malignant (3).png").unlink()
    with pytest.raises(DataError, match=r"malignant \(3\)_mask\.png: mask without image"):
        read_busi(root, 32)
    with pytest.warns(DataWarning, match="mask without image"):
        ds = read_busi(root, 32, strict=False)
    assert any(p.endswith("malignant (3)_mask.png") for p, _ in ds.skipped)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_and_truncated_png(tree, damage):
    root, _ = tree
    path = root / "benign" / "benign (3).png"
    data = path.read_bytes()
    new = {"garbage": b"\x89PNG\r\n\x1a\n" + bytes(200), "truncated": data[: len(data) // 2]}
    path.write_bytes(new.get(damage, b""))
    with pytest.raises(DataError, match="cannot decode image") as err:
        load_grey_png(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"benign \(3\)\.png: cannot decode"):
        read_busi(root, 32)
    with pytest.warns(DataWarning, match="files skipped"):
        ds = read_busi(root, 32, strict=False)
    assert "benign/benign (3)" not in ds.ids
    with pytest.raises(DataError, match="file not found"):
        load_mask_png(root / "benign" / "nope_mask.png")


def test_image_mask_size_mismatch_names_both(tree):
    root, _ = tree
    write_png(root / "malignant" / "malignant (7)_mask_1.png", np.zeros((40, 48), np.uint8))
    with pytest.raises(DataError, match=r"_mask_1\.png: mask is 48x40 px but image") as err:
        read_busi(root, 32)
    assert "'malignant (7).png' is 48x48" in str(err.value)


def test_non_binary_mask_is_binarised_and_warned(tree):
    root, _ = tree
    mask = np.zeros((48, 48), np.uint8)
    mask[:10, :10], mask[10:20, :10], mask[20:30, :10] = 100, 200, 255
    write_png(root / "benign" / "benign (1)_mask.png", mask)
    with pytest.warns(DataWarning, match=r"nonbinary mask.*benign \(1\)_mask\.png: 200 px"):
        ds = read_busi(root, 48)
    got = ds.masks[ds.ids.index("benign/benign (1)")]
    np.testing.assert_array_equal(got, (mask > 127).astype(np.uint8))
    np.testing.assert_array_equal(
        load_mask_png(root / "benign" / "benign (1)_mask.png"), mask > 127
    )


def test_zero_one_mask_uses_one_as_foreground(tmp_path):
    write_png(tmp_path / "m.png", ellipse((30, 30), (15, 15), (6, 6)).astype(np.uint8))
    assert load_mask_png(tmp_path / "m.png").sum() == ellipse((30, 30), (15, 15), (6, 6)).sum()


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


def test_empty_lesion_mask_is_kept_and_warned(tree):
    root, _ = tree
    write_png(root / "malignant" / "malignant (2)_mask.png", np.zeros((48, 48), np.uint8))
    with pytest.warns(DataWarning, match=r"empty lesion mask.*malignant \(2\)\.png"):
        ds = read_busi(root, 32)
    k = ds.ids.index("malignant/malignant (2)")
    assert not ds.masks[k].any() and ds.labels[k] == 1


def test_lesion_lost_by_resizing_is_warned(tree):
    root, _ = tree
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
    with pytest.warns(DataWarning, match="files skipped"):
        ds = read_busi(root, 32, strict=False)
    names = sorted(Path(p).name for p, _ in ds.skipped)
    assert names == [
        "benign (10).png",
        "benign (2).png",
        "malignant (1).png",
        "malignant (3)_mask.png",
        "normal",
        "x.txt",
    ]
    assert ds.ids == [
        "benign/benign (1)",
        "benign/benign (3)",
        "benign/bénin écho (2)",
        "malignant/malignant (2)",
        "malignant/malignant (7)",
    ]


def test_class_with_no_usable_image_raises_even_when_not_strict(tmp_path):
    root = tmp_path / "r"
    make_busi_tree(root, {"benign": [Item("b (1)")], "malignant": [Item("m (1)")]})
    (root / "malignant" / "m (1).png").write_bytes(b"junk")
    with pytest.raises(DataError, match="malignant: no usable images in class 'malignant'"):
        read_busi(root, 32, strict=False)
