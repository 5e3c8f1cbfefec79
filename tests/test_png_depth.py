"""16-bit PNGs: sBIT honoured, 8-bit data stored as v * 257 exact, lost grey levels noted."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from mtl_bench.data.png import load_grey_noted, load_grey_png, load_mask_counted
from mtl_bench.data.png_depth import PngHeader, read_png_header
from mtl_bench.data.types import DataWarning

RAMP12 = np.arange(4096, dtype=np.uint16).reshape(64, 64)  # every 12-bit value once


def save16(path: Path, a: np.ndarray, sbit: int | None = None, text: bool = False) -> Path:
    """A 16-bit grey PNG through Pillow, with an sBIT chunk (and a tEXt chunk before it)."""
    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("Comment", "before sBIT")
    if sbit is not None:
        info.add(b"sBIT", bytes([sbit]))
    Image.fromarray(np.asarray(a, dtype=np.uint16)).save(path, pnginfo=info)
    return path


def raw_png(path: Path, a: np.ndarray, colour_type: int) -> Path:
    """A 16-bit PNG written by hand (Pillow cannot save 16-bit colour): (H, W, C) samples."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    h, w = a.shape[:2]
    rows = b"".join(b"\0" + a[i].astype(">u2").tobytes() for i in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    data = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


def test_twelve_bit_values_without_sbit_are_mapped_as_before_and_noted(tmp_path):
    path = save16(tmp_path / "scan.png", RAMP12)
    grey, note = load_grey_noted(path)
    np.testing.assert_array_equal(grey, np.rint(RAMP12 / 257.0).astype(np.uint8))
    assert len(np.unique(grey)) == 17
    assert note is not None and "\n" not in note
    assert "no sBIT chunk" in note and "0..4095" in note and "17 of 4096 grey levels" in note
    assert "12-bit data?" in note
    with pytest.warns(DataWarning, match=r"scan\.png: 16-bit PNG \(no sBIT chunk\)"):
        np.testing.assert_array_equal(load_grey_png(path), grey)  # predict's path: same pixels


def test_sbit_twelve_with_shifted_samples_keeps_every_level(tmp_path):
    shifted = (RAMP12 << 4) | (RAMP12 >> 8)  # as an encoder scales 12 bits up (PNG spec)
    path = save16(tmp_path / "s.png", shifted, sbit=12, text=True)
    assert read_png_header(path) == PngHeader(16, 0, (12,))
    grey, note = load_grey_noted(path)
    np.testing.assert_array_equal(grey, np.rint(RAMP12 * (255 / 4095)).astype(np.uint8))
    assert len(np.unique(grey)) == 256 and note is None
    # Without the chunk the same file would be read as v / 257: within one level here.
    assert np.abs(grey.astype(int) - np.rint(shifted / 257.0)).max() <= 1


@pytest.mark.parametrize("sbit", [None, 8, 16])
def test_eight_bit_data_stored_as_v_times_257_comes_back_exactly(tmp_path, sbit):
    for top in (255, 15):  # a dark image (all values below 4096) is no 12-bit suspect either
        g = np.random.default_rng(top).integers(0, top + 1, size=(20, 30)).astype(np.uint16)
        path = save16(tmp_path / f"e{top}.png", g * 257, sbit=sbit)
        grey, note = load_grey_noted(path)
        np.testing.assert_array_equal(grey, g)
        assert note is None


def test_sbit_that_does_not_match_the_samples_is_followed_and_noted(tmp_path):
    path = save16(tmp_path / "u.png", RAMP12, sbit=12)  # says 12 bits, samples not shifted up
    grey, note = load_grey_noted(path)
    np.testing.assert_array_equal(grey, np.rint((RAMP12 >> 4) * (255 / 4095)).astype(np.uint8))
    assert note is not None and "(sBIT 12)" in note and "12-bit range" in note


@pytest.mark.parametrize("bad", [0, 17])
def test_invalid_sbit_is_ignored(tmp_path, bad):
    a = np.array([[0, 257, 30000, 65535]], dtype=np.uint16)
    path = save16(tmp_path / "i.png", a, sbit=bad)
    assert read_png_header(path) == PngHeader(16, 0, (bad,))
    grey, note = load_grey_noted(path)
    assert grey.tolist() == [[0, 1, 117, 255]] and note is None


def test_full_range_sixteen_bit_is_not_noted(tmp_path):
    a = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    grey, note = load_grey_noted(save16(tmp_path / "f.png", a))
    assert note is None and len(np.unique(grey)) == 256


def test_header_reader_stops_at_image_data_and_refuses_non_png(tmp_path):
    assert read_png_header(save16(tmp_path / "n.png", RAMP12)) == PngHeader(16, 0, ())
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "j.jpg")
    assert read_png_header(tmp_path / "j.jpg") is None
    (tmp_path / "t.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    assert read_png_header(tmp_path / "t.png") is None
    assert read_png_header(tmp_path / "missing.png") is None


def test_sixteen_bit_colour_below_4096_is_noted(tmp_path):
    low = np.stack([RAMP12] * 3, axis=-1)
    grey, note = load_grey_noted(raw_png(tmp_path / "c.png", low, colour_type=2))
    assert grey.max() == 15 and note is not None and "only the high byte" in note
    full = np.stack([RAMP12 * 16] * 3, axis=-1)
    grey, note = load_grey_noted(raw_png(tmp_path / "d.png", full, colour_type=2))
    assert grey.max() == 255 and note is None


def test_sixteen_bit_masks_zero_one_full_range_and_twelve_bit(tmp_path):
    shape = np.zeros((8, 8), np.uint16)
    shape[2:5, 3:6] = 1
    mask, count, note, _ = load_mask_counted(save16(tmp_path / "a_mask.png", shape))
    assert mask.sum() == 9 and count == 0 and note is None  # 0/1: 1 is the lesion, no note
    mask, count, note, _ = load_mask_counted(save16(tmp_path / "b_mask.png", shape * 65535))
    assert mask.sum() == 9 and count == 0 and note is None
    for top in (255, 4095):  # two-valued: the other value is the lesion, at any depth
        mask, count, note, _ = load_mask_counted(save16(tmp_path / f"{top}_mask.png", shape * top))
        assert mask.sum() == 9 and count == 0 and note is None
    twelve = shape * 4095
    twelve[0, 0] = 2000  # not two-valued: mapped by 1/257 and binarised, said, not silently empty
    mask, count, note, _ = load_mask_counted(save16(tmp_path / "c_mask.png", twelve))
    assert mask.sum() == 0 and count == 10 and "0..4095" in note
