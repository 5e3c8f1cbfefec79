"""Decode BUSI-style PNGs to grey uint8 images and bool masks, and resize them for training.

The reader (``reader.read_busi``), the checker and ``predict`` all go through these, so an image
is decoded and resized the same way for training as for inference. 16-bit samples are mapped to
8 bits by ``png_depth`` (the sBIT chunk honoured; a note when most grey levels are lost, which
the reader, the checker and ``predict`` gather (``load_grey_noted``), and ``load_grey_png``
warns about itself).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from mtl_bench.data.png_depth import (
    colour_sixteen_note,
    grey_sbit,
    read_png_header,
    sixteen_bit_note,
    sixteen_to_eight,
)
from mtl_bench.data.types import DataError, DataWarning

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def _grey(img: Image.Image, path: Path, mask: bool) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(grey uint8, the samples before mapping, note on lost grey levels or None); a colour
    ``mask`` reads its largest channel per pixel (see ``load_mask_counted``)."""
    if img.mode in _SIXTEEN_BIT:
        # 16-bit grey: sBIT honoured, else 0..65535 onto 0..255 (v / 257), so 8-bit data stored
        # as 16 bits (v * 257) comes back exactly; Pillow's own convert would clip at 255.
        raw = np.asarray(img)
        sbit = grey_sbit(read_png_header(path)) if img.format == "PNG" else None
        grey = sixteen_to_eight(raw, sbit)
        return grey, raw, sixteen_bit_note(raw, grey, sbit)
    # 1, L, LA, P, RGB, RGBA: alpha is dropped (not composited), palettes are looked up, colour
    # becomes ITU-R 601 luma, which is exactly the grey value when R == G == B as in BUSI.
    colour = img.mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")
    if mask and colour:  # a lesion drawn in pure red (luma 76) or blue (29) is still a lesion
        grey = np.asarray(img.convert("RGB"), dtype=np.uint8).max(axis=2)
    else:
        grey = np.asarray(img.convert("L"), dtype=np.uint8)
    note = None
    # Maybe 16-bit colour, of which Pillow keeps the high bytes: luma <= the largest channel,
    # so only a nearly black image needs a look at its channels and header.
    if img.format == "PNG" and img.mode in ("RGB", "RGBA", "LA") and grey.max(initial=0) < 16:
        top = int(np.asarray(img.convert("RGB")).max(initial=0))
        note = colour_sixteen_note(read_png_header(path), top)
    return grey, grey, note


def _warn_if_huge(img: Image.Image, path: Path) -> None:
    """A DataWarning naming the file where Pillow's own DecompressionBombWarning (over
    ``Image.MAX_IMAGE_PIXELS``, ~89 MP) names none; the CLI shows ours instead of Pillow's.
    Pillow refuses twice that size itself (DecompressionBombError, made a DataError below).
    Not ``catch_warnings``: the reader decodes in threads, and that is not thread-safe."""
    limit = Image.MAX_IMAGE_PIXELS
    width, height = img.size
    if limit and width * height > limit:
        warnings.warn(
            f"{path}: very large image ({width}x{height}, {width * height / 1e6:.0f} MP); "
            "decoding it needs much memory before it is resized",
            DataWarning,
            stacklevel=4,
        )


def _refuse_wide(img: Image.Image, path: Path) -> None:
    """A DataError for 32-bit pixels (a TIFF or other format under a ``.png`` name): float, or
    integer beyond 16 bits. No 8-bit mapping of them is the right one, and a fixed one turns
    them into a few grey levels without a word, so training, ``data check`` and ``predict``
    all refuse them alike."""
    if img.mode[0] not in "FI" or img.mode in _SIXTEEN_BIT - {"I"}:
        return
    lo, hi = img.getextrema()
    if img.mode == "F" or not 0 <= lo <= hi <= 65535:
        kind = "32-bit float" if img.mode == "F" else "32-bit integer"
        raise DataError(
            f"{path}: {kind} pixels ({lo:g} to {hi:g}), not 8- or 16-bit: convert the file to "
            "8 or 16 bits first"
        )


# A mask whose colour is one value throughout while its alpha varies, opaque on under half of
# it, holds its lesion in the alpha channel (drawn on a transparent layer); read from colour, it
# was empty, or all lesion. Opaque on most of it, the alpha is a margin or a hole in an empty
# black layer, and the colour is read.
ALPHA_READING = (
    "lesion drawn in the alpha channel (its colour is one value throughout): read from alpha"
)

# A mask of three or more stored values, all at most this, in regions (most of its non-zero
# pixels inside one, ``_regions``), is a label map (0 background, 1, 2, ... lesion labels):
# thresholded at > 127 it came out empty, its lesion lost. Scattered low values are noise in an
# empty mask, read as before (empty, with the non-binary warning).
LABEL_MAX = 7


def _regions(labels: np.ndarray) -> bool:
    """Whether most non-zero pixels have non-zero 4-neighbours all round (drawn regions have
    interiors; scattered noise has almost none)."""
    nz = np.pad(labels > 0, 1)
    inside = nz[1:-1, 1:-1] & nz[:-2, 1:-1] & nz[2:, 1:-1] & nz[1:-1, :-2] & nz[1:-1, 2:]
    return inside.sum() >= 0.25 * nz.sum()


def _alpha_lesion(img: Image.Image, colour: np.ndarray) -> np.ndarray | None:
    """A mask's alpha channel where it, not the colour, holds the drawing; else None."""
    if "A" not in img.getbands() or not colour.size or colour.min() != colour.max():
        return None
    alpha = np.asarray(img.getchannel("A"), dtype=np.uint8)
    drawn = alpha.min() != alpha.max() and np.mean(alpha > 127) < 0.5
    return alpha if drawn else None


def _decode(
    path: str | os.PathLike, mask: bool = False
) -> tuple[np.ndarray, np.ndarray, str | None, str | None]:
    """(grey, the samples before mapping, a note on lost grey levels, how a mask was read when
    not as usual: ``ALPHA_READING`` or None); DataError naming a file that cannot be decoded."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            _warn_if_huge(img, path)
            img.load()
            _refuse_wide(img, path)
            grey, samples, note = _grey(img, path, mask)
            if mask and (alpha := _alpha_lesion(img, grey)) is not None:
                return alpha, alpha, None, ALPHA_READING
            return grey, samples, note, None
    except DataError:
        raise  # already one line naming the file (a ValueError: not to be wrapped below)
    except FileNotFoundError:
        if path.is_symlink():  # listed in its folder, so "not found" would puzzle: say why
            raise DataError(f"{path}: a broken link (to {os.readlink(path)})") from None
        raise DataError(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        if path.is_file() and path.stat().st_size == 0:  # as predict says it
            raise DataError(f"{path}: an empty file (0 bytes)") from None
        # Pillow's own text may quote the path again ("cannot identify image file '…'").
        reason = " ".join(str(e).replace(repr(str(path)), "").split()) or type(e).__name__
        raise DataError(f"{path}: cannot decode image ({reason})") from None


def frame_count(path: str | os.PathLike) -> int:
    """How many frames the image file holds (an animated PNG: more than one); every reader here
    uses the first. Read from the header, for a file already decoded (1 if it cannot be read)."""
    try:
        with Image.open(path) as img:
            return int(getattr(img, "n_frames", 1))
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return 1  # the decoder has said what is wrong with it


def load_grey_noted(path: str | os.PathLike) -> tuple[np.ndarray, str | None]:
    """An image as (H, W) uint8 grey (see ``load_grey_png``) and a one-line note (without the
    path) when a 16-bit PNG lost most of its grey levels in the mapping (``png_depth``), else
    None; for callers that gather notes over many files."""
    grey, _, note, _ = _decode(path)
    return grey, note


def load_grey_png(path: str | os.PathLike) -> np.ndarray:
    """An image as (H, W) uint8 grey (RGB(A): luma, alpha dropped; palette looked up; 16-bit:
    v / 257, or per its sBIT chunk); DataError naming a missing, corrupt or truncated file. A
    16-bit PNG that loses most of its grey levels gives a DataWarning naming it."""
    grey, note = load_grey_noted(path)
    if note:
        warnings.warn(f"{path}: {note}", DataWarning, stacklevel=2)
    return grey


def load_mask_counted(
    path: str | os.PathLike,
) -> tuple[np.ndarray, int, str | None, str | None]:
    """A mask as bool (> 127 after decoding as ``load_grey_png``, except that a colour mask reads
    its largest channel, not luma: a lesion drawn in any saturated colour counts; a two-valued
    mask, 0 and one other stored value (0/1, 0/255, 16-bit 0/4095), uses that value; a label
    map, three or more values all at most ``LABEL_MAX`` drawn as regions, reads every non-zero
    label as lesion; a constant colour with a varying alpha, opaque on under half, reads the
    alpha), its count of pixels not 0/255, ``load_grey_noted``'s note, and a line saying how it
    was read when it was a label map or alpha (else None). BUSI's masks are grey (R == G == B),
    for which all readings agree."""
    grey, samples, note, reading = _decode(path, mask=True)
    top = samples.max(initial=0)
    # Two stored values have one reading whatever the depth: a 16-bit 0/255 or 0/4095 mask
    # mapped by 1/257 first would fall below 128 and come out empty.
    if top > 0 and not np.any((samples != 0) & (samples != top)):
        return samples == top, 0, None, reading
    if 0 < top <= LABEL_MAX and samples.ndim == 2 and _regions(samples):
        values = ", ".join(str(v) for v in np.unique(samples))
        label_map = f"a label map (values {values}): every non-zero label read as lesion"
        return samples > 0, 0, None, "; ".join(filter(None, (reading, label_map)))
    nonbinary = int(np.count_nonzero((grey != 0) & (grey != 255)))
    return grey > 127, nonbinary, note, reading


def load_mask_png(path: str | os.PathLike) -> np.ndarray:
    """A mask file as (H, W) bool (see ``load_mask_counted``); DataError naming a bad file."""
    return load_mask_counted(path)[0]


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A grey uint8 image at ``size`` (H, W) exactly as training data is made (also for predict)."""
    if image.shape == size:
        return image
    # Pillow's bilinear widens its support when shrinking: downsizing is anti-aliased.
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.BILINEAR))


def resize_pair(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple:
    """An image (bilinear, as ``resize_image``) and its bool mask (nearest) at ``size`` (H, W).

    The mask must have the image's shape (the reader checks this first)."""
    if mask.shape != image.shape:
        raise ValueError(f"mask {mask.shape} and image {image.shape} differ in size")
    if image.shape == size:
        return image, mask.astype(bool)
    m = Image.fromarray(mask.astype(np.uint8) * 255).resize(
        (size[1], size[0]), Image.Resampling.NEAREST
    )
    return resize_image(image, size), np.asarray(m) > 127
