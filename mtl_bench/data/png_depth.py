"""16-bit PNG samples to 8-bit grey: the ``sBIT`` chunk, the mapping, and a note on lost levels.

A 16-bit PNG maps 0..65535 onto 0..255 (v / 257, so 8-bit data stored as v * 257 comes back
exactly). When its ``sBIT`` chunk says fewer bits are significant (a 12-bit scanner: sBIT 12), the
samples are shifted back down as the PNG specification prescribes (v >> 4) and 0..4095 is mapped
onto 0..255. Nothing is guessed per image: 16-bit data that uses only a corner of its range
(12-bit values stored unscaled with no sBIT, which v / 257 squeezes into 16 grey levels) is kept
as mapped and given a note, which the reader, the checker and ``load_grey_png`` report.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# No sBIT and every value below this: 12-bit (or 10-bit) data written without scaling up.
LOW_RANGE = 4096
# At most this many grey levels left, from more distinct 16-bit values: a severe loss.
FEW_LEVELS = 64
# Chunks after which sBIT may not come (it precedes PLTE and the image data).
_LAST = (b"PLTE", b"IDAT", b"IEND")


@dataclass(frozen=True)
class PngHeader:
    """What Pillow does not expose: bit depth and colour type (IHDR), significant bits (sBIT,
    one value per channel; ``()`` when absent)."""

    bit_depth: int
    colour_type: int
    sbit: tuple[int, ...]


def read_png_header(path: str | os.PathLike) -> PngHeader | None:
    """IHDR and sBIT read from the file's bytes; None for a file that is not a PNG or whose
    chunks before the image data are damaged (Pillow, which decoded it, names real damage)."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != PNG_SIGNATURE:
                return None
            ihdr, sbit = b"", b""
            for _ in range(1000):  # ancillary chunks before the image data; a bound for safety
                head = f.read(8)
                if len(head) < 8:
                    break
                length, kind = struct.unpack(">I4s", head)
                if kind in _LAST:
                    break
                if kind in (b"IHDR", b"sBIT") and length <= 16:
                    data = f.read(length)
                    ihdr, sbit = (data, sbit) if kind == b"IHDR" else (ihdr, data)
                    f.seek(4, os.SEEK_CUR)  # the CRC
                else:
                    f.seek(length + 4, os.SEEK_CUR)
    except OSError:
        return None
    if len(ihdr) != 13:
        return None
    return PngHeader(ihdr[8], ihdr[9], tuple(sbit))


def grey_sbit(header: PngHeader | None) -> int | None:
    """The significant bits of a 16-bit grey PNG (1..16), or None: no sBIT, or an invalid one
    (ignored, as libpng does)."""
    if header is None or (header.bit_depth, header.colour_type) != (16, 0) or not header.sbit:
        return None
    bits = header.sbit[0]
    return bits if 1 <= bits <= 16 else None


def sixteen_to_eight(raw: np.ndarray, sbit: int | None) -> np.ndarray:
    """16-bit grey samples as uint8: ``v >> (16 - sbit)`` mapped linearly onto 0..255 (no sBIT:
    v / 257, exact for v * 257)."""
    bits = sbit or 16
    a = np.clip(np.asarray(raw, dtype=np.int64), 0, 65535) >> (16 - bits)
    return np.rint(a / ((2**bits - 1) / 255.0)).astype(np.uint8)


def _levels(a: np.ndarray) -> int:
    return int(np.count_nonzero(np.bincount(a.ravel())))


def sixteen_bit_note(raw: np.ndarray, grey: np.ndarray, sbit: int | None) -> str | None:
    """Why ``grey`` lost grey levels of the 16-bit ``raw`` (one line), or None when it did not:
    values all below ``LOW_RANGE`` with no sBIT, or at most ``FEW_LEVELS`` levels left of more.
    8-bit data stored as v * 257 never gets a note."""
    raw = np.clip(np.asarray(raw, dtype=np.int64), 0, 65535)
    top = int(raw.max(initial=0))
    if top == 0 or not np.any(raw % 257):
        return None
    n16, n8 = _levels(raw), _levels(grey)
    low = sbit is None and top < LOW_RANGE
    if not (low or (n8 <= FEW_LEVELS and n16 > n8)):
        return None
    how = f"sBIT {sbit}" if sbit else "no sBIT chunk"
    hint = (
        f"{top.bit_length()}-bit data? scale it up to 0..65535 or add an sBIT chunk"
        if low
        else f"the data use little of the {sbit or 16}-bit range"
    )
    return (
        f"16-bit PNG ({how}) with values {int(raw.min())}..{top} keeps {n8} of {n16} grey "
        f"levels in 8 bits ({hint})"
    )


def colour_sixteen_note(header: PngHeader | None, rgb_max: int) -> str | None:
    """A note for a 16-bit colour (or grey + alpha) PNG whose values all lie below 4096: Pillow
    keeps only each sample's high byte, so such data is left with at most 16 grey levels."""
    if header is None or header.bit_depth != 16 or header.colour_type not in (2, 4, 6):
        return None
    if not 0 < rgb_max < LOW_RANGE >> 8:
        return None
    return (
        f"16-bit colour PNG with values below {LOW_RANGE}: only the high byte is read, so "
        f"{rgb_max + 1} grey levels at most are left (store it as 16-bit grey, or scale it up)"
    )
