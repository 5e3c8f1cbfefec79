"""Contrast pre-processing applied once at prepare time: MPGHE (the paper's), CLAHE, or none.

MPGHE, multi-peak generalised histogram equalisation (after Wongsritong et al., 1998), here:

1. Normalise: min–max stretch to [0, 255]. A constant image (all-black too) is returned as is.
2. Detail term (unsharp masking): ``e = x + detail_weight * (x - box_mean(x, detail_size))``
   (defaults 0.5, 5; reflecting borders), clipped and rounded to 256 levels, so the histogram
   sees sharpened tumour borders. Weight 0 gives plain multi-peak HE.
3. Histogram of ``e``, smoothed by a Gaussian of ``smooth_sigma`` levels (2.0; 0: off) against
   spurious speckle peaks.
4. Peaks (:func:`find_peaks_and_valleys`): local maxima (a flat top once, at its middle; either
   end of the range can be one); drop those under ``min_peak_frac`` (0.05) of the tallest; of
   two within ``merge_distance`` (15) levels keep the taller (greedy, tallest first, ties keep
   the darker); then, while some neighbouring pair has a shallow valley (lowest value between
   them > ``valley_ratio`` (0.75) x the smaller peak), drop the smaller peak of the shallowest.
5. Segments: split the range at the valley minimum between consecutive peaks (middle of the
   lowest run; the valley level ends the darker segment).
6. Each segment [lo, hi] is equalised within its own range from the raw counts:
   ``lut[k] = lo + round((hi - lo) * (cdf(k) - cdf_min) / (1 - cdf_min))``, ``cdf_min`` being the
   segment's share at its darkest occupied level (that level maps to lo, the brightest to hi);
   a segment with one occupied level is left as is. The table is non-decreasing, so the output
   is an order-preserving function of ``e``. One peak means one segment (global HE of ``e``).

CLAHE wraps ``skimage.exposure.equalize_adapthist``; constant images are returned unchanged
(skimage would turn an all-black image white).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage, signal

PREPROCESS_METHODS: tuple[str, ...] = ("mpghe", "clahe", "none")
N_LEVELS = 256


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 2 or image.dtype != np.uint8:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image)
        raise ValueError(f"expected a (H, W) uint8 image, got {desc}")
    if image.size == 0:
        raise ValueError(f"expected a non-empty image, got shape {image.shape}")


def detail_enhance(
    image: np.ndarray, *, detail_weight: float = 0.5, detail_size: int = 5
) -> np.ndarray:
    """Steps 1–2 of MPGHE → uint8: normalised image plus its detail term; constants as is."""
    _check_image(image)
    if detail_weight < 0:
        raise ValueError(f"detail_weight must be >= 0, got {detail_weight}")
    if int(detail_size) != detail_size or detail_size < 1:
        raise ValueError(f"detail_size must be a positive integer, got {detail_size}")
    lo, hi = int(image.min()), int(image.max())
    if lo == hi:
        return image.copy()
    x = (image.astype(np.float32) - lo) * (255.0 / (hi - lo))
    if detail_weight > 0 and detail_size > 1:
        x += detail_weight * (x - ndimage.uniform_filter(x, size=int(detail_size), mode="reflect"))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def find_peaks_and_valleys(
    hist: np.ndarray,
    *,
    min_peak_frac: float = 0.05,
    merge_distance: int = 15,
    valley_ratio: float = 0.75,
) -> tuple[np.ndarray, np.ndarray]:
    """Significant peaks of ``hist`` (rules: module docstring) and the valley between each pair.

    Returns sorted int arrays ``(peaks, valleys)`` with ``peaks[i] < valleys[i] < peaks[i+1]``.
    """
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim != 1 or hist.size == 0 or not np.all(np.isfinite(hist) & (hist >= 0)):
        raise ValueError(f"hist must be a non-empty 1-D array of counts >= 0, got {hist.shape}")
    if not 0.0 <= min_peak_frac <= 1.0:
        raise ValueError(f"min_peak_frac must be in [0, 1], got {min_peak_frac}")
    if merge_distance < 0:
        raise ValueError(f"merge_distance must be >= 0, got {merge_distance}")
    if not 0.0 < valley_ratio <= 1.0:
        raise ValueError(f"valley_ratio must be in (0, 1], got {valley_ratio}")
    top = hist.max()
    if top <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)

    # Pad with -1 so that a maximum at either end (e.g. a black background) is found too;
    # scipy reports a flat top once, at its middle.
    cand, _ = signal.find_peaks(np.concatenate([[-1.0], hist, [-1.0]]))
    cand = cand - 1
    cand = cand[(hist[cand] > 0) & (hist[cand] >= min_peak_frac * top)]

    # Non-maximum suppression, tallest first (a stable sort: ties keep the darker peak).
    kept: list[int] = []
    for p in cand[np.argsort(-hist[cand], kind="stable")]:
        if all(abs(int(p) - q) > merge_distance for q in kept):
            kept.append(int(p))
    peaks = sorted(kept)

    def valley(a: int, b: int) -> int:  # two maxima always have a lower level between them
        seg = hist[a + 1 : b]
        lowest = np.flatnonzero(seg == seg.min())
        return a + 1 + int(lowest[len(lowest) // 2])

    while len(peaks) > 1:  # drop the smaller peak of the shallowest pair, then re-check
        ratios = [
            hist[valley(a, b)] / min(hist[a], hist[b])
            for a, b in zip(peaks, peaks[1:], strict=False)
        ]
        i = int(np.argmax(ratios))
        if ratios[i] <= valley_ratio:
            break
        a, b = peaks[i], peaks[i + 1]
        peaks.remove(a if hist[a] < hist[b] else b)

    valleys = [valley(a, b) for a, b in zip(peaks, peaks[1:], strict=False)]
    return np.asarray(peaks, dtype=np.int64), np.asarray(valleys, dtype=np.int64)


def segment_bounds(valleys: np.ndarray, n_levels: int = N_LEVELS) -> list[tuple[int, int]]:
    """Inclusive ``(lo, hi)`` grey ranges split at ``valleys`` (a valley ends its segment)."""
    starts = [0] + [int(v) + 1 for v in valleys]
    ends = [int(v) for v in valleys] + [n_levels - 1]
    return list(zip(starts, ends, strict=True))


def segment_lut(counts: np.ndarray, bounds: list[tuple[int, int]]) -> np.ndarray:
    """Look-up table equalising each segment of ``counts`` within its own [lo, hi] range."""
    lut = np.arange(len(counts), dtype=np.float64)
    for lo, hi in bounds:
        c = counts[lo : hi + 1].astype(np.float64)
        total = c.sum()
        if total == 0:
            continue
        cdf = np.cumsum(c) / total
        cdf_min = cdf[np.flatnonzero(c)[0]]
        if cdf_min >= 1.0:  # one occupied level: nothing to spread
            continue
        # Levels below the segment's darkest occupied one map to lo (cdf < cdf_min there), so
        # the table stays non-decreasing; no pixel has those levels, so images are unchanged.
        spread = np.maximum(cdf - cdf_min, 0.0) / (1.0 - cdf_min)
        lut[lo : hi + 1] = lo + np.rint((hi - lo) * spread)
    return np.clip(lut, 0, len(counts) - 1).astype(np.uint8)


@dataclass(frozen=True)
class MpgheAnalysis:
    """Intermediate MPGHE results (for tests, figures and the README)."""

    enhanced: np.ndarray  # (H, W) uint8 after the detail term
    hist: np.ndarray  # (256,) smoothed histogram of it
    peaks: np.ndarray
    valleys: np.ndarray
    segments: list[tuple[int, int]]
    lut: np.ndarray  # (256,) uint8; the output is lut[enhanced]


def mpghe_analyse(
    image: np.ndarray,
    *,
    detail_weight: float = 0.5,
    detail_size: int = 5,
    min_peak_frac: float = 0.05,
    merge_distance: int = 15,
    valley_ratio: float = 0.75,
    smooth_sigma: float = 2.0,
) -> MpgheAnalysis:
    """All MPGHE steps for one (H, W) uint8 image, keeping the intermediate results."""
    if smooth_sigma < 0:
        raise ValueError(f"smooth_sigma must be >= 0, got {smooth_sigma}")
    enhanced = detail_enhance(image, detail_weight=detail_weight, detail_size=detail_size)
    counts = np.bincount(enhanced.ravel(), minlength=N_LEVELS)
    hist = counts.astype(np.float64)
    if smooth_sigma > 0:
        hist = ndimage.gaussian_filter1d(hist, smooth_sigma, mode="constant")
    peaks, valleys = find_peaks_and_valleys(
        hist, min_peak_frac=min_peak_frac, merge_distance=merge_distance, valley_ratio=valley_ratio
    )
    segments = segment_bounds(valleys)
    if image.min() == image.max():
        lut = np.arange(N_LEVELS, dtype=np.uint8)  # constant image: leave it alone
    else:
        lut = segment_lut(counts, segments)
    return MpgheAnalysis(enhanced, hist, peaks, valleys, segments, lut)


def mpghe(
    image: np.ndarray,
    *,
    detail_weight: float = 0.5,
    detail_size: int = 5,
    min_peak_frac: float = 0.05,
    merge_distance: int = 15,
    valley_ratio: float = 0.75,
    smooth_sigma: float = 2.0,
) -> np.ndarray:
    """MPGHE (module docstring) of one (H, W) uint8 image → (H, W) uint8."""
    a = mpghe_analyse(
        image,
        detail_weight=detail_weight,
        detail_size=detail_size,
        min_peak_frac=min_peak_frac,
        merge_distance=merge_distance,
        valley_ratio=valley_ratio,
        smooth_sigma=smooth_sigma,
    )
    return a.lut[a.enhanced]


def clahe(
    image: np.ndarray, *, clip_limit: float = 0.01, kernel_size: int | None = None, nbins: int = 256
) -> np.ndarray:
    """CLAHE (``skimage.exposure.equalize_adapthist``) → (H, W) uint8; constant images unchanged."""
    from skimage.exposure import equalize_adapthist

    _check_image(image)
    if not 0.0 < clip_limit <= 1.0:
        raise ValueError(f"clip_limit must be in (0, 1], got {clip_limit}")
    if int(nbins) != nbins or nbins < 2:
        raise ValueError(f"nbins must be an integer >= 2, got {nbins}")
    if image.min() == image.max():
        return image.copy()
    out = equalize_adapthist(image, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


_METHOD_FUNCS: dict[str, Callable[..., np.ndarray] | None] = {"mpghe": mpghe, "clahe": clahe}


def method_params(method: str) -> tuple[str, ...]:
    """The keyword parameters ``method`` accepts (read from its signature, so never stale)."""
    func = _METHOD_FUNCS.get(method)
    sig = inspect.signature(func).parameters.values() if func else []
    return tuple(p.name for p in sig if p.kind is inspect.Parameter.KEYWORD_ONLY)


def preprocess(
    images: np.ndarray,
    method: str = "mpghe",
    params: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Apply ``method`` (keyword ``params``) to each image of an (N, H, W) uint8 stack → a copy.

    ``progress(done, total)`` is called after each image. Bad methods/parameters: ValueError.
    """
    if method not in PREPROCESS_METHODS:
        raise ValueError(
            f"unknown pre-processing method {method!r}: "
            f"choose one of {', '.join(PREPROCESS_METHODS)}"
        )
    params = dict(params or {})
    unknown = sorted(set(params) - set(method_params(method)))
    if unknown:
        allowed = ", ".join(method_params(method)) or "none"
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for pre-processing "
            f"method {method!r} (allowed: {allowed})"
        )
    if not isinstance(images, np.ndarray) or images.ndim != 3 or images.dtype != np.uint8:
        desc = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images)
        raise ValueError(f"expected an (N, H, W) uint8 image stack, got {desc}")
    func = _METHOD_FUNCS.get(method)
    if func is not None:
        # Probe a tiny ramp so that a bad parameter value fails before any real work (prepare
        # validates on an empty stack before reading the data).
        try:
            func(np.arange(64, dtype=np.uint8).reshape(8, 8), **params)
        except (ValueError, TypeError) as err:
            raise ValueError(f"bad parameter for pre-processing method {method!r}: {err}") from None
    out = images.copy()
    total = len(images)
    for i in range(total):
        if func is not None:
            out[i] = func(images[i], **params)
        if progress is not None:
            progress(i + 1, total)
    return out
