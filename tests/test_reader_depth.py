"""16-bit PNGs in a BUSI folder: the reader and the checker say which files lost grey levels, in
one line per kind, and decode them as ``load_grey_png`` (predict's decoding) does."""

from __future__ import annotations

import re
import warnings

import numpy as np
from busi_fixture import Item, make_busi_tree
from PIL import Image, PngImagePlugin

from mtl_bench.data.check import check_busi
from mtl_bench.data.png import load_grey_png
from mtl_bench.data.reader import DataWarning, read_busi


def twelve_bit(seed: int) -> np.ndarray:
    """A 48² image with 12-bit values (0..4095), many levels."""
    return np.random.default_rng(seed).integers(0, 4096, size=(48, 48)).astype(np.uint16)


def save16(path, a: np.ndarray, sbit: int | None = None) -> None:
    info = PngImagePlugin.PngInfo()
    if sbit is not None:
        info.add(b"sBIT", bytes([sbit]))
    Image.fromarray(a.astype(np.uint16)).save(path, pnginfo=info)


def tree(tmp_path):
    root = tmp_path / "busi"
    spec = {c: [Item(f"{c} ({i})") for i in (1, 2, 3)] for c in ("benign", "malignant")}
    make_busi_tree(root, spec)
    for name in ("benign (1)", "malignant (2)"):  # 12-bit data stored unscaled, no sBIT
        save16(root / name.split()[0] / f"{name}.png", twelve_bit(len(name)))
    v = twelve_bit(7)
    save16(root / "benign" / "benign (3).png", (v << 4) | (v >> 8), sbit=12)  # done right
    return root, v


def test_reader_warns_once_naming_each_squeezed_file(tmp_path):
    root, v = tree(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = read_busi(root, 48)
    said = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(said) == 1, said
    line = said[0]
    assert line.startswith("2 squeezed 16bit pngs: ") and "\n" not in line
    assert len(re.findall(r"benign \(1\)\.png: 16-bit PNG \(no sBIT chunk\)", line)) == 1
    assert len(re.findall(r"malignant \(2\)\.png: 16-bit PNG \(no sBIT chunk\)", line)) == 1
    assert "benign (3)" not in line  # its sBIT chunk was honoured
    assert len(ds) == 6  # kept: the warning says what happened, nothing is left out
    k = ds.ids.index("benign/benign (3)")
    np.testing.assert_array_equal(ds.images[k], np.rint(v * (255 / 4095)).astype(np.uint8))
    for sid in ("benign/benign (1)", "benign/benign (3)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            predicted = load_grey_png(root / f"{sid}.png")  # the pixels predict decodes
        np.testing.assert_array_equal(ds.images[ds.ids.index(sid)], predicted)
    assert len(np.unique(ds.images[ds.ids.index("benign/benign (1)")])) <= 17


def test_check_reports_squeezed_files_as_warnings(tmp_path):
    root, _ = tree(tmp_path)
    report = check_busi(root)
    assert report.ok  # usable, only questionable
    squeezed = [p for p in report.warnings if p.kind == "squeezed_16bit_png"]
    assert sorted(p.path.rsplit("/", 1)[1] for p in squeezed) == [
        "benign (1).png",
        "malignant (2).png",
    ]
    assert all("0..4095" not in p.detail or "12-bit data?" in p.detail for p in squeezed)
    text = report.format()
    assert "squeezed_16bit_png (2):" in text
    assert "benign/benign (1).png: 16-bit PNG (no sBIT chunk) with values" in text


def test_a_twelve_bit_mask_is_noted_beside_its_other_warnings(tmp_path):
    root = tmp_path / "m"
    make_busi_tree(root, {c: [Item(f"{c} (1)")] for c in ("benign", "malignant")})
    lesion = np.zeros((48, 48), np.uint16)
    lesion[10:20, 10:20] = 4095
    lesion[10:12, 10:12] = 3000  # a third value: a 0/4095 mask alone reads 4095 as the lesion
    save16(root / "benign" / "benign (1)_mask.png", lesion)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_busi(root, 48)
    said = " | ".join(str(w.message) for w in caught)
    assert "1 squeezed 16bit png: " in said and "benign (1)_mask.png: 16-bit PNG" in said
    assert "1 nonbinary mask: " in said and "1 empty lesion mask: " in said
