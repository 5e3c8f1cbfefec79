"""Masks not stored as BUSI's 0/255 grey: a label map (0/1/2) and a lesion drawn in the alpha
channel. Both were read as empty (or, alpha on white, as all lesion): the lesion lost."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from busi_fixture import Item, ellipse, make_busi_tree, write_png
from PIL import Image

from mtl_bench.data.check import check_busi
from mtl_bench.data.reader import DataWarning, read_busi

LESION = ellipse((48, 48), (24, 24), (8, 10))


def tree(tmp_path: Path) -> Path:
    root = tmp_path / "busi"
    make_busi_tree(root, {c: [Item(f"{c} (1)"), Item(f"{c} (2)")] for c in ("benign", "malignant")})
    return root


def read(root: Path) -> tuple:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = read_busi(root, 48)
    return ds, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def mask_of(ds, sid: str) -> np.ndarray:
    return ds.masks[ds.ids.index(sid)]


def test_a_label_map_mask_reads_every_nonzero_label_as_lesion_and_says_so(tmp_path):
    root = tree(tmp_path)
    labels = LESION.astype(np.uint8)
    labels[LESION & (np.arange(48)[:, None] > 24)] = 2  # two labels: the lower half is 2
    path = root / "benign" / "benign (1)_mask.png"
    write_png(path, labels)
    ds, lines = read(root)
    np.testing.assert_array_equal(mask_of(ds, "benign/benign (1)"), LESION)
    assert lines == [
        f"1 label map mask: {path}: a label map (values 0, 1, 2): every non-zero label read as "
        "lesion"
    ]
    report = check_busi(root)
    assert report.ok and [p.kind for p in report.warnings] == ["label_map_mask"]
    # Beside a _mask_1 it was worse: no "empty mask" warning, only the merged second lesion.
    write_png(root / "benign" / "benign (1)_mask_1.png", np.zeros((48, 48), np.uint8))
    ds, _ = read(root)
    np.testing.assert_array_equal(mask_of(ds, "benign/benign (1)"), LESION)


def test_a_lesion_drawn_in_alpha_is_read_from_alpha_on_any_constant_colour(tmp_path):
    root = tree(tmp_path)
    for name, colour in (("benign (1)", 0), ("malignant (1)", 255)):  # white: all "lesion"
        rgba = np.zeros((48, 48, 4), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = LESION * 255
        Image.fromarray(rgba, "RGBA").save(root / name.split()[0] / f"{name}_mask.png")
    ds, lines = read(root)
    for sid in ("benign/benign (1)", "malignant/malignant (1)"):
        np.testing.assert_array_equal(mask_of(ds, sid), LESION)
    assert len(lines) == 1 and lines[0].startswith("2 alpha masks: ")
    assert "lesion drawn in the alpha channel" in lines[0]
    # An opaque colour mask (alpha one value) is read from its colour, without a word.
    rgba = np.full((48, 48, 4), 255, np.uint8)
    rgba[..., :3] = LESION[..., None] * 255
    Image.fromarray(rgba, "RGBA").save(root / "benign" / "benign (1)_mask.png")
    ds, lines = read(root)
    np.testing.assert_array_equal(mask_of(ds, "benign/benign (1)"), LESION)
    assert len(lines) == 1 and lines[0].startswith("1 alpha mask: ")  # malignant (1)'s only


def test_an_empty_mask_with_an_alpha_margin_or_scattered_low_values_stays_empty(tmp_path):
    # Review: an empty black RGBA mask with a transparent 1-px margin read as 97 % lesion, and
    # scattered values 1-3 (noise of lossy editing) in an empty mask as a label map's lesion.
    root = tree(tmp_path)
    rgba = np.zeros((48, 48, 4), np.uint8)
    rgba[1:-1, 1:-1, 3] = 255  # opaque black, a transparent margin
    Image.fromarray(rgba, "RGBA").save(root / "benign" / "benign (1)_mask.png")
    noise = np.zeros((48, 48), np.uint8)
    rng = np.random.default_rng(0)
    noise[rng.integers(0, 48, 60), rng.integers(0, 48, 60)] = rng.integers(1, 4, 60)
    write_png(root / "malignant" / "malignant (1)_mask.png", noise)
    ds, lines = read(root)
    assert not mask_of(ds, "benign/benign (1)").any()
    assert not mask_of(ds, "malignant/malignant (1)").any()
    assert not [line for line in lines if "alpha" in line or "label map" in line]
    assert any(line.startswith("2 empty lesion masks") for line in lines)
