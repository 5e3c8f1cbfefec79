"""Hand-crafted lesion features in the manner of Moon et al.: texture, intensity, morphology.

One feature vector per (image, lesion mask), in the fixed order of ``FEATURE_NAMES``:

- **Texture** (24): grey-level co-occurrence matrices (scikit-image ``graycomatrix``, symmetric,
  normalised) of the lesion's bounding box quantised to ``GLCM_LEVELS`` grey levels, at distances
  1, 2, 4 px and angles 0°, 45°, 90°, 135°; for each of contrast, correlation, energy and
  homogeneity and each distance, the mean over the four angles (rotation invariant) and the range
  over them (directionality).
- **Intensity** (11): mean, sd, skewness, kurtosis of the lesion pixels; the lesion mean minus
  that of a ring just outside it (margin contrast, the echo-pattern cue); and posterior acoustic
  features — statistics of the band directly below the lesion (as deep as the lesion, as wide as
  its box) and its mean minus, and over, the mean of the bands beside it at the same depth
  (enhancement > 0, shadowing < 0).
- **Morphology** (12), from the mask: area and perimeter (as fractions of the image area / side),
  circularity 4πA/P², solidity, eccentricity, extent, orientation (|angle| of the major axis from
  the vertical: 0 = "not parallel"), depth-to-width ratio of the box (taller-than-wide), margin
  irregularity as the sd and entropy of the normalised radial length (NRL) of boundary pixels and
  the elliptic-normalised circumference (perimeter over that of the equal-moment ellipse), and the
  number of connected components.
- ``mask_empty`` (1): 1 when the mask was empty and a central box stood in (below).

An empty mask (a "normal" image, or a predicted mask that found nothing): features of a central
box of half the image side, flagged by ``mask_empty``. An undefined value (no posterior band under
a lesion at the bottom edge; skewness of a constant region) is NaN, imputed by the classifier.
``predicted_masks`` reads the masks of ``mask_source="predicted"`` (see ``moon_features``).
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from scipy import ndimage, stats
from skimage.feature import graycomatrix, graycoprops
from skimage.measure import regionprops

from mtl_bench.data.types import DataError

GLCM_DISTANCES = (1, 2, 4)
GLCM_ANGLES = (0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)
GLCM_PROPS = ("contrast", "correlation", "energy", "homogeneity")
# 256 grey levels over a lesion box of a few hundred pixels leave the co-occurrence matrix almost
# empty (every pair unique); 32 levels keep it populated while keeping speckle texture.
GLCM_LEVELS = 32
MIN_BOX = 8  # a smaller lesion box is widened to this side so that distance 4 still fits

TEXTURE_NAMES = tuple(
    f"glcm_{p}_d{d}_{s}" for p in GLCM_PROPS for d in GLCM_DISTANCES for s in ("mean", "range")
)
INTENSITY_NAMES = (
    "lesion_mean", "lesion_sd", "lesion_skew", "lesion_kurt", "margin_contrast",
    "post_mean", "post_sd", "post_skew", "post_kurt", "post_minus_beside", "post_over_beside",
)  # fmt: skip
MORPHOLOGY_NAMES = (
    "area", "perimeter", "circularity", "solidity", "eccentricity", "extent", "orientation",
    "depth_width_ratio", "nrl_sd", "nrl_entropy", "ellipse_norm_circumference", "n_components",
)  # fmt: skip
FEATURE_NAMES: tuple[str, ...] = (*TEXTURE_NAMES, *INTENSITY_NAMES, *MORPHOLOGY_NAMES, "mask_empty")


def lesion_region(mask: np.ndarray) -> tuple[np.ndarray, bool]:
    """(boolean lesion mask, empty): the mask itself, or a central box of half the side if empty."""
    region = np.asarray(mask).astype(bool)
    if region.any():
        return region, False
    h, w = region.shape
    region[h // 4 : h // 4 + max(h // 2, 1), w // 4 : w // 4 + max(w // 2, 1)] = True
    return region, True


def _span(lo: int, hi: int, size: int, min_side: int) -> tuple[int, int]:
    """[lo, hi) widened about its centre to ``min_side`` (at most ``size``), kept in [0, size)."""
    side = min(max(hi - lo, min_side), size)
    start = min(max(0, (lo + hi - side) // 2), size - side)
    return start, start + side


def _box(region: np.ndarray, min_side: int = 1) -> tuple[int, int, int, int]:
    """Bounding box (r0, r1, c0, c1), half-open, widened to ``min_side`` within the image."""
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    r0, r1 = _span(int(rows[0]), int(rows[-1]) + 1, region.shape[0], min_side)
    c0, c1 = _span(int(cols[0]), int(cols[-1]) + 1, region.shape[1], min_side)
    return r0, r1, c0, c1


def texture_features(image: np.ndarray, region: np.ndarray) -> list[float]:
    """GLCM contrast/correlation/energy/homogeneity: mean and range over angles, per distance."""
    r0, r1, c0, c1 = _box(region, MIN_BOX)
    crop = image[r0:r1, c0:c1].astype(np.int64) * GLCM_LEVELS // 256
    glcm = graycomatrix(
        crop.astype(np.uint8),
        distances=list(GLCM_DISTANCES),
        angles=list(GLCM_ANGLES),
        levels=GLCM_LEVELS,
        symmetric=True,
        normed=True,
    )
    out = []
    for prop in GLCM_PROPS:
        with np.errstate(invalid="ignore", divide="ignore"):
            values = graycoprops(glcm, prop)  # (distances, angles)
        for row in values:
            out += [float(np.mean(row)), float(np.ptp(row))]
    return out


def _moments(values: np.ndarray) -> list[float]:
    """mean, sd, skewness, kurtosis (excess); NaN where undefined (empty or constant values)."""
    if values.size == 0:
        return [math.nan] * 4
    if values.size < 3 or np.all(values == values[0]):
        return [float(values.mean()), float(values.std()), math.nan, math.nan]
    return [
        float(values.mean()),
        float(values.std()),
        float(stats.skew(values)),
        float(stats.kurtosis(values)),
    ]


def intensity_features(image: np.ndarray, region: np.ndarray) -> list[float]:
    """Lesion moments, margin contrast and posterior acoustic features (see module docstring)."""
    img = image.astype(np.float64)
    h, w = region.shape
    lesion = _moments(img[region])
    ring_width = max(2, round(min(h, w) / 32))  # 2 px at 64², 8 px at 256²
    ring = ndimage.binary_dilation(region, iterations=ring_width) & ~region
    margin = lesion[0] - img[ring].mean() if ring.any() else math.nan
    r0, r1, c0, c1 = _box(region)
    depth = slice(r1, min(h, r1 + (r1 - r0)))
    posterior = img[depth, c0:c1].ravel()
    width = c1 - c0
    beside = np.concatenate(
        [img[depth, max(0, c0 - width) : c0].ravel(), img[depth, c1 : min(w, c1 + width)].ravel()]
    )
    post = _moments(posterior)
    if posterior.size and beside.size:
        diff = post[0] - beside.mean()
        ratio = post[0] / beside.mean() if beside.mean() > 0 else math.nan
    else:
        diff = ratio = math.nan
    return [*lesion, margin, *post, diff, ratio]


def _nrl(region: np.ndarray, centroid: tuple[float, float]) -> tuple[float, float]:
    """sd and entropy (100-bin histogram, nats) of boundary-pixel radial length / its maximum."""
    boundary = region & ~ndimage.binary_erosion(region)
    rr, cc = np.nonzero(boundary)
    d = np.hypot(rr - centroid[0], cc - centroid[1])
    if d.size < 2 or d.max() == 0:
        return 0.0, 0.0
    nrl = d / d.max()
    hist = np.histogram(nrl, bins=100, range=(0.0, 1.0))[0] / nrl.size
    hist = hist[hist > 0]
    return float(nrl.std()), float(-(hist * np.log(hist)).sum())


def morphology_features(region: np.ndarray) -> list[float]:
    """Shape and margin features of the (union of the) mask's pixels."""
    h, w = region.shape
    # All foreground pixels as one region: BUSI masks of one lesion are sometimes split in two.
    props = regionprops(region.astype(np.uint8))[0]
    area, perimeter = float(props.area), max(float(props.perimeter), 1.0)
    a, b = props.axis_major_length / 2, props.axis_minor_length / 2
    # Ramanujan's approximation of the perimeter of the ellipse with the region's moments.
    ellipse = math.pi * (3 * (a + b) - math.sqrt(max((3 * a + b) * (a + 3 * b), 0.0)))
    r0, c0, r1, c1 = props.bbox
    nrl_sd, nrl_entropy = _nrl(region, props.centroid)
    return [
        area / (h * w),
        perimeter / math.sqrt(h * w),
        4 * math.pi * area / perimeter**2,
        float(props.solidity),
        float(props.eccentricity),
        float(props.extent),
        abs(float(props.orientation)),
        (r1 - r0) / (c1 - c0),
        nrl_sd,
        nrl_entropy,
        perimeter / ellipse if ellipse > 0 else math.nan,
        float(ndimage.label(region)[1]),
    ]


def extract_features(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The ``FEATURE_NAMES`` vector (float64) of one (H, W) uint8 image and its {0,1} mask."""
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 2 or image.shape != mask.shape:
        raise ValueError(
            f"moon_features needs an (H, W) image and a mask of the same shape, got image "
            f"{image.shape} and mask {mask.shape}"
        )
    region, empty = lesion_region(mask)
    vec = [
        *texture_features(image, region),
        *intensity_features(image, region),
        *morphology_features(region),
        float(empty),
    ]
    return np.asarray(vec, dtype=np.float64)


def extract_all(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N, len(FEATURE_NAMES)) features of (N, H, W) images and masks."""
    if images.shape != masks.shape:
        raise ValueError(f"images {images.shape} and masks {masks.shape} differ in shape")
    if len(images) == 0:
        return np.zeros((0, len(FEATURE_NAMES)))
    return np.stack([extract_features(im, m) for im, m in zip(images, masks, strict=True)])


PredictedMasks = str | os.PathLike | Mapping[str, np.ndarray] | Callable[[list[str]], np.ndarray]


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: predicted-mask file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, masks = z["ids"], z["masks"]
    except KeyError as err:
        raise DataError(
            f"{path}: a predicted-mask file needs arrays 'ids' and 'masks' ({err})"
        ) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # a damaged zip too
        raise DataError(f"{path}: cannot read predicted masks ({err})") from None
    if masks.ndim != 3 or len(ids) != len(masks):
        raise DataError(
            f"{path}: masks {masks.shape} must be (N, H, W) with N = len(ids) = {len(ids)}"
        )
    return {str(i): m for i, m in zip(ids, masks, strict=True)}


def predicted_masks(source: PredictedMasks, ids: list[str], shape: tuple[int, int]) -> np.ndarray:
    """(len(ids), H, W) uint8 masks of ``ids`` from ``source``; DataError for a missing id, another
    size or a non-binary mask, naming the source."""
    where = str(source) if isinstance(source, str | os.PathLike) else "predicted_masks"
    if callable(source) and not isinstance(source, Mapping):
        masks = np.asarray(source(list(ids)))
        if len(masks) != len(ids):
            raise DataError(f"{where}: the callable returned {len(masks)} masks for {len(ids)} ids")
        by_id = dict(zip(ids, masks, strict=True))
    else:
        by_id = _load_npz(Path(source)) if isinstance(source, str | os.PathLike) else dict(source)
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise DataError(
            f"{where}: no predicted mask for {len(missing)} test image(s), e.g. {missing[0]!r}"
        )
    bad = next((i for i in ids if np.shape(by_id[i]) != tuple(shape)), None)
    if bad is not None:
        raise DataError(f"{where}: mask of {bad!r} is {np.shape(by_id[bad])}, images are {shape}")
    out = np.stack([np.asarray(by_id[i]) for i in ids]) if ids else np.zeros((0, *shape))
    if not np.isin(out, (0, 1)).all():
        raise DataError(f"{where}: predicted masks must hold only 0 and 1 (threshold them first)")
    return out.astype(np.uint8)
