"""Decode BUSI-style PNGs to grey uint8 images and bool masks, and resize them for training.

The reader (``reader.read_busi``), the checker and ``predict`` all go through these, so an image
is decoded and resized the same way for training as for inference.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from mtl_bench.data.types import DataError

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def _grey(img: Image.Image) -> np.ndarray:
    if img.mode in _SIXTEEN_BIT:
        # 16-bit grey: map 0..65535 linearly onto 0..255 (v / 257), so 8-bit data stored as
        # 16 bits (v * 257) comes back exactly; Pillow's own convert would clip at 255 instead.
        a = np.clip(np.asarray(img, dtype=np.float64), 0, 65535)
        return np.rint(a / 257.0).astype(np.uint8)
    # 1, L, LA, P, RGB, RGBA: alpha is dropped (not composited), palettes are looked up, colour
    # becomes ITU-R 601 luma, which is exactly the grey value when R == G == B as in BUSI.
    return np.asarray(img.convert("L"), dtype=np.uint8)


def load_grey_png(path: str | os.PathLike) -> np.ndarray:
    """An image as (H, W) uint8 grey (RGB(A): luma, alpha dropped; palette looked up; 16-bit
    v / 257); DataError naming a missing, corrupt or truncated file."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return _grey(img)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        # Pillow's own text may quote the path again ("cannot identify image file '…'").
        reason = " ".join(str(e).replace(repr(str(path)), "").split()) or type(e).__name__
        raise DataError(f"{path}: cannot decode image ({reason})") from None


def load_mask_counted(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A mask as bool (> 127; a 0/1-valued mask uses 1) and its count of pixels not 0/255."""
    a = load_grey_png(path)
    if a.max(initial=0) == 1:
        return a == 1, 0
    nonbinary = int(np.count_nonzero((a != 0) & (a != 255)))
    return a > 127, nonbinary


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
