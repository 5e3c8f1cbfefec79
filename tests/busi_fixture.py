"""Write small BUSI-layout folders for tests: ``ROOT/<class>/NAME.png`` + ``NAME_mask[_k].png``.

Images are ultrasound-like (smooth tissue field, speckle, a dark elliptical lesion) so that the
duplicate audit meets the hard case of BUSI: many images sharing one look.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, zoom

IMAGE_MODES = ("L", "RGB", "RGBA", "LA", "I;16", "P")


def tissue(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Float background in 0..255: smooth random structure plus blurred speckle."""
    rng = np.random.default_rng(seed)
    h, w = shape
    coarse = zoom(rng.uniform(60, 200, size=(6, 6)), (h / 6, w / 6), order=3)[:h, :w]
    speckle = gaussian_filter(rng.rayleigh(1.0, size=shape), 1.0)
    depth = np.linspace(1.1, 0.7, h)[:, None]  # deeper tissue is darker, as in ultrasound
    return np.clip(coarse * depth * speckle / speckle.mean(), 0, 255)


def ellipse(shape: tuple[int, int], center: tuple[float, float], radii: tuple[float, float]):
    """Bool ellipse mask."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - center[0]) / radii[0]) ** 2 + ((xx - center[1]) / radii[1]) ** 2 <= 1.0


def lesion_case(
    seed: int, shape: tuple[int, int] = (48, 48), background_seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8, mask bool): a dark lesion placed by ``seed`` on tissue ``background_seed``."""
    rng = np.random.default_rng(seed + 10_000)
    h, w = shape
    center = (rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w)
    radii = (rng.uniform(0.12, 0.25) * h, rng.uniform(0.12, 0.25) * w)
    mask = ellipse(shape, center, radii)
    img = tissue(shape, seed if background_seed is None else background_seed)
    img = np.where(mask, img * 0.25, img)
    return np.clip(gaussian_filter(img, 0.7), 0, 255).astype(np.uint8), mask


def resized_noisy_copy(
    image: np.ndarray, shape: tuple[int, int], sigma: float = 4.0, seed: int = 0
) -> np.ndarray:
    """``image`` resized (bilinear) to ``shape`` with Gaussian noise: a near duplicate."""
    out = np.asarray(Image.fromarray(image).resize(shape[::-1], Image.Resampling.BILINEAR))
    noise = np.random.default_rng(seed).normal(0, sigma, size=shape)
    return np.clip(out + noise, 0, 255).astype(np.uint8)


def write_png(path: Path, grey: np.ndarray, mode: str = "L") -> None:
    """Store a grey uint8 array as a PNG in ``mode`` so that a correct reader gets ``grey`` back.

    RGBA/LA carry a non-trivial alpha (must be dropped, not composited); I;16 stores v * 257;
    P stores inverted indices with an inverted palette (must be looked up, not read raw).
    """
    g = np.asarray(grey, dtype=np.uint8)
    alpha = np.linspace(0, 255, g.size).reshape(g.shape).astype(np.uint8)
    if mode == "L":
        img = Image.fromarray(g)
    elif mode == "RGB":
        img = Image.fromarray(np.stack([g] * 3, axis=-1))
    elif mode == "RGBA":
        img = Image.fromarray(np.stack([g, g, g, alpha], axis=-1), "RGBA")
    elif mode == "LA":
        img = Image.fromarray(np.stack([g, alpha], axis=-1), "LA")
    elif mode == "I;16":
        img = Image.fromarray(g.astype(np.uint16) * 257)
    elif mode == "P":
        img = Image.frombytes("P", g.shape[::-1], (255 - g).tobytes())
        img.putpalette([v for i in range(256) for v in (255 - i,) * 3])
    else:
        raise ValueError(f"write_png: unknown mode {mode!r}; choose one of {IMAGE_MODES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")


@dataclass
class Item:
    """One BUSI image to write. ``image=None``: a lesion case seeded by the name; ``masks=None``:
    its lesion mask (empty for class ``normal``); ``masks=[]``: no mask file at all."""

    name: str
    image: np.ndarray | None = None
    masks: list[np.ndarray] | None = None
    mode: str = "RGB"
    mask_mode: str = "L"


def make_busi_tree(root: Path, spec: dict[str, list[Item]], size: int = 48) -> dict[str, Item]:
    """Write ``spec`` (class -> items) under ``root``; returns id ``<class>/<name>`` -> Item with
    ``image`` and ``masks`` filled in. Several masks are written as ``_mask``, ``_mask_1``, …"""
    written: dict[str, Item] = {}
    for cls, items in spec.items():
        folder = Path(root) / cls
        folder.mkdir(parents=True, exist_ok=True)
        for item in items:
            image, mask = lesion_case(zlib.crc32(f"{cls}/{item.name}".encode()), (size, size))
            if cls == "normal":
                mask = np.zeros_like(mask)
            image = image if item.image is None else item.image
            masks = [mask] if item.masks is None else item.masks
            write_png(folder / f"{item.name}.png", image, item.mode)
            for k, m in enumerate(masks):
                suffix = "_mask" if k == 0 else f"_mask_{k}"
                grey = m.astype(np.uint8) * 255 if m.dtype == bool else m
                write_png(folder / f"{item.name}{suffix}.png", grey, item.mask_mode)
            written[f"{cls}/{item.name}"] = Item(item.name, image, masks, item.mode, item.mask_mode)
    return written


def standard_spec(n: int = 3) -> dict[str, list[Item]]:
    """``n`` images per class with BUSI names, the PNG modes cycling over all images, plus the
    awkward cases: a three-mask image (RGB masks), a non-ASCII name (palette masks) and
    ``benign (10)`` to test natural order."""
    spec: dict[str, list[Item]] = {}
    for c, cls in enumerate(("benign", "malignant", "normal")):
        modes = [IMAGE_MODES[(c * n + i) % len(IMAGE_MODES)] for i in range(n)]
        spec[cls] = [Item(f"{cls} ({i + 1})", mode=m) for i, m in enumerate(modes)]
    spec["benign"].append(Item("benign (10)"))
    spec["benign"].append(Item("bénin écho (2)", mode="L", mask_mode="P"))
    parts = [ellipse((48, 48), (14, 14), (6, 6)), ellipse((48, 48), (34, 30), (5, 8))]
    parts.append(ellipse((48, 48), (24, 40), (4, 4)))
    spec["malignant"].append(Item("malignant (7)", masks=parts, mask_mode="RGB"))
    return spec
