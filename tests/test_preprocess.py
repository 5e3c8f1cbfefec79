"""MPGHE peak rules, per-segment equalisation, CLAHE and the preprocess dispatcher."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_bench.data.preprocess import (
    PREPROCESS_METHODS,
    clahe,
    detail_enhance,
    find_peaks_and_valleys,
    method_params,
    mpghe,
    mpghe_analyse,
    preprocess,
    segment_bounds,
)

LEVELS = np.arange(256, dtype=np.float64)


def bumps(*spec: tuple[float, float, float]) -> np.ndarray:
    """A histogram made of Gaussian bumps (centre, height, sigma)."""
    return sum(h * np.exp(-0.5 * ((LEVELS - c) / s) ** 2) for c, h, s in spec)


def three_region_image(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """Dark disc (tumour), mid background and a bright band, with speckle-like noise."""
    yy, xx = np.mgrid[:size, :size]
    img = rng.normal(90, 4, (size, size))
    disc = (yy - size // 2) ** 2 + (xx - size // 3) ** 2 < (size // 5) ** 2
    img[disc] = rng.normal(40, 4, disc.sum())
    img[:, -(size // 5) :] = rng.normal(200, 4, (size, size // 5))
    return np.clip(img, 0, 255).astype(np.uint8)


# --- peak / valley rules -------------------------------------------------------------------


def test_bimodal_histogram_peaks_and_valley() -> None:
    peaks, valleys = find_peaks_and_valleys(bumps((60, 100, 10), (180, 70, 12)))
    assert peaks.tolist() == [60, 180]
    assert len(valleys) == 1 and 110 <= valleys[0] <= 135


def test_min_peak_fraction_rule() -> None:
    hist = bumps((50, 100, 3), (150, 4, 3), (210, 6, 3))  # 4 % and 6 % of the tallest
    assert find_peaks_and_valleys(hist)[0].tolist() == [50, 210]
    assert find_peaks_and_valleys(hist, min_peak_frac=0.03)[0].tolist() == [50, 150, 210]


@pytest.mark.parametrize("first,second", [(100, 80), (80, 100)])
def test_merge_distance_keeps_the_taller(first: float, second: float) -> None:
    near = bumps((100, first, 2), (115, second, 2))  # 15 levels apart, deep valley between
    taller = 100 if first > second else 115
    assert find_peaks_and_valleys(near)[0].tolist() == [taller]
    far = bumps((100, first, 2), (116, second, 2))
    assert find_peaks_and_valleys(far)[0].tolist() == [100, 116]
    assert find_peaks_and_valleys(near, merge_distance=14)[0].tolist() == [100, 115]


def test_shallow_valley_drops_smaller_peak() -> None:
    # Peaks 100 at level 50 and 80 at level 120 joined by a flat floor at `floor`.
    def hist(floor: float) -> np.ndarray:
        h = np.zeros(256)
        h[40:131] = floor
        h[:41] = np.linspace(0, floor, 41)
        h = np.maximum(h, 100 - 5 * np.abs(LEVELS - 50))
        return np.maximum(h, 80 - 4 * np.abs(LEVELS - 120))

    # 0.75 x 80 = 60: a floor of 65 is too shallow, 55 is deep enough.
    assert find_peaks_and_valleys(hist(65))[0].tolist() == [50]
    peaks, valleys = find_peaks_and_valleys(hist(55))
    assert peaks.tolist() == [50, 120]
    assert 56 <= valleys[0] <= 114  # on the floor, between the peaks
    assert find_peaks_and_valleys(hist(65), valley_ratio=0.85)[0].tolist() == [50, 120]


def test_edge_peak_flat_top_and_empty() -> None:
    hist = bumps((0, 100, 5), (128, 50, 8))  # e.g. a black background
    assert find_peaks_and_valleys(hist)[0].tolist() == [0, 128]
    flat = np.zeros(256)
    flat[100:111] = 10.0  # one flat top counts once, at its middle
    assert find_peaks_and_valleys(flat)[0].tolist() == [105]
    peaks, valleys = find_peaks_and_valleys(np.zeros(256))
    assert peaks.size == 0 and valleys.size == 0
    assert segment_bounds(np.array([90, 170])) == [(0, 90), (91, 170), (171, 255)]


@pytest.mark.parametrize(
    "kwargs",
    [{"min_peak_frac": 1.5}, {"merge_distance": -1}, {"valley_ratio": 0.0}, {"valley_ratio": 2}],
)
def test_bad_peak_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        find_peaks_and_valleys(bumps((60, 10, 5)), **kwargs)
    with pytest.raises(ValueError, match="hist"):
        find_peaks_and_valleys(np.array([1.0, -2.0, 3.0]))


# --- MPGHE on images -----------------------------------------------------------------------


def test_mpghe_three_regions_segments_and_monotone_mapping() -> None:
    img = three_region_image(np.random.default_rng(0))
    a = mpghe_analyse(img)
    out = mpghe(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out, a.lut[a.enhanced])
    # Disc, background and band each get a segment of their own (clipping of the detail term
    # may add a small extra segment at either end of the range).
    patches = [a.enhanced[20:28, 12:20], a.enhanced[2:10, 2:10], a.enhanced[20:28, 42:46]]
    centres = [np.median(p) for p in patches]
    owner = [next(i for i, (lo, hi) in enumerate(a.segments) if lo <= c <= hi) for c in centres]
    assert owner[0] < owner[1] < owner[2]
    assert 3 <= len(a.segments) <= 5
    b = mpghe_analyse(img, detail_weight=0.0)
    assert len(b.segments) == 3
    e = a.enhanced.ravel()
    o = out.ravel().astype(int)
    for lo, hi in a.segments:
        sel = (e >= lo) & (e <= hi)
        order = np.argsort(e[sel], kind="stable")
        assert np.all(np.diff(o[sel][order]) >= 0)  # order-preserving within the segment
        assert o[sel].min() == lo and o[sel].max() == hi  # stretched over its own range


def test_mpghe_increases_contrast_of_low_contrast_image() -> None:
    rng = np.random.default_rng(1)
    img = np.where(rng.random((40, 40)) < 0.4, 110, 125) + rng.normal(0, 3, (40, 40))
    img = np.clip(img, 0, 255).astype(np.uint8)
    out = mpghe(img)
    assert out.std() > 3 * img.std()


@pytest.mark.parametrize("value", [0, 200])
def test_constant_images_unchanged(value: int) -> None:
    img = np.full((9, 7), value, np.uint8)
    np.testing.assert_array_equal(mpghe(img), img)
    np.testing.assert_array_equal(clahe(img), img)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 3), (3, 1), (5, 5)])
def test_tiny_images(shape: tuple[int, int]) -> None:
    img = np.random.default_rng(2).integers(0, 256, shape).astype(np.uint8)
    out = mpghe(img)
    assert out.shape == shape and out.dtype == np.uint8


def test_single_peak_is_global_equalisation() -> None:
    img = np.clip(np.random.default_rng(3).normal(128, 10, (32, 32)), 0, 255).astype(np.uint8)
    a = mpghe_analyse(img, detail_weight=0.0, smooth_sigma=6.0)  # 1024 pixels: a noisy histogram
    assert len(a.peaks) == 1 and a.segments == [(0, 255)]
    out = a.lut[a.enhanced]
    assert out.min() == 0 and out.max() == 255
    # Equalised: each quarter of the grey range holds roughly a quarter of the pixels.
    quarters = np.bincount(out.ravel() // 64, minlength=4) / out.size
    assert np.all(np.abs(quarters - 0.25) < 0.08)


def test_detail_term() -> None:
    img = np.zeros((20, 30), np.uint8)
    img[:, 10:20] = 128
    img[:, 20:] = 255
    plain = detail_enhance(img, detail_weight=0.0)
    np.testing.assert_array_equal(plain, img)  # already spans [0, 255]
    sharp = detail_enhance(img, detail_weight=0.5)
    assert sharp[5, 19] < 128 < sharp[5, 10]  # undershoot / overshoot at the mid band's edges
    np.testing.assert_array_equal(sharp[:, 14:16], plain[:, 14:16])  # flat interior untouched
    low = (img // 4 + 100).astype(np.uint8)  # normalisation stretches to the full range
    np.testing.assert_array_equal(
        detail_enhance(low, detail_weight=0.0)[:, [0, 25]], [[0, 255]] * 20
    )


def test_bad_images_and_params() -> None:
    with pytest.raises(ValueError, match="uint8"):
        mpghe(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        mpghe(np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="smooth_sigma"):
        mpghe(np.eye(4, dtype=np.uint8), smooth_sigma=-1)
    with pytest.raises(ValueError, match="detail_size"):
        mpghe(np.eye(4, dtype=np.uint8), detail_size=0)


# --- CLAHE and the dispatcher --------------------------------------------------------------


def test_preprocess_methods_and_progress() -> None:
    rng = np.random.default_rng(4)
    stack = np.stack([three_region_image(rng, 32) for _ in range(3)])
    assert PREPROCESS_METHODS == ("mpghe", "clahe", "none")
    calls: list[tuple[int, int]] = []
    out = preprocess(
        stack, "mpghe", {"valley_ratio": 0.8}, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert out.shape == stack.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], mpghe(stack[1], valley_ratio=0.8))
    none = preprocess(stack, "none")
    np.testing.assert_array_equal(none, stack)
    assert none is not stack
    cl = preprocess(stack, "clahe", {"clip_limit": 0.02})
    np.testing.assert_array_equal(cl[0], clahe(stack[0], clip_limit=0.02))
    assert cl.dtype == np.uint8 and not np.array_equal(cl, stack)
    assert method_params("clahe") == ("clip_limit", "kernel_size", "nbins")


def test_preprocess_errors() -> None:
    stack = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="unknown pre-processing method 'ghe'"):
        preprocess(stack, "ghe")
    with pytest.raises(ValueError, match="'clip_limit'.*'mpghe'"):
        preprocess(stack, "mpghe", {"clip_limit": 0.01})
    with pytest.raises(ValueError, match="'k'.*'none'"):
        preprocess(stack, "none", {"k": 1})
    with pytest.raises(ValueError, match=r"\(N, H, W\) uint8"):
        preprocess(stack[0], "mpghe")
    with pytest.raises(ValueError, match="clip_limit"):
        clahe(np.eye(8, dtype=np.uint8), clip_limit=0.0)
    # Bad values fail up front, even on the empty stack prepare validates with.
    empty = np.zeros((0, 8, 8), np.uint8)
    for method, params, word in [
        ("mpghe", {"valley_ratio": 2.0}, "valley_ratio"),
        ("mpghe", {"merge_distance": "x"}, "'mpghe'"),
        ("clahe", {"nbins": 0}, "nbins"),
    ]:
        with pytest.raises(ValueError, match=word):
            preprocess(empty, method, params)
    assert preprocess(empty, "mpghe").shape == (0, 8, 8)


def test_segment_lut_is_non_decreasing_below_a_segments_darkest_level() -> None:
    from mtl_bench.data.preprocess import segment_lut

    counts = np.zeros(256, int)
    counts[[20, 120, 200]] = [5, 90, 10]  # levels 100..119 are empty: below 120, the darkest
    lut = segment_lut(counts, [(0, 99), (100, 255)])
    assert np.all(np.diff(lut.astype(int)) >= 0)
    assert lut[100] == lut[119] == 100 and lut[200] == 255  # the occupied levels: as before
