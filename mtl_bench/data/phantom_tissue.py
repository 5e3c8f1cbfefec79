"""Tissue, speckle and display for one phantom image (API: :mod:`mtl_bench.data.phantom`).

An image is built in decibels and log-compressed like a scanner's display: coupling gel, skin
line, subcutaneous fat (lobules and Cooper's ligaments), glandular tissue (texture stretched
laterally), retromammary fat, striated pectoral muscle, bright pleura, dim chest wall; lesions
(:mod:`mtl_bench.data.phantom_shapes`); depth attenuation partly undone by a time-gain-
compensation curve with slider ripple (so images darken with depth); a little lateral fall-off;
multiplicative Rayleigh speckle, the modulus of a band-limited complex Gaussian field (grain
wider laterally than axially), in dB times ``alpha = 0.55 + 0.45 difficulty`` (alpha < 1 is
speckle reduced as by compounding) with a -10 dB reject floor. Smooth fields are drawn in the
frequency domain in cycles per image, so a seed gives the same anatomy at any image size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

import numpy as np
import scipy.fft

from mtl_bench.data.phantom_shapes import draw_lesion, render_lesion
from mtl_bench.data.types import ALL_CLASSES

STREAM = 20240601  # mixed into every seed: bump when the generator's output changes


@lru_cache(maxsize=8)
def _gain(
    shape: tuple[int, int], sigmas: tuple[tuple[float, float], ...], full: bool
) -> np.ndarray:
    """Gaussian spectral gains on a box of (ky, kx) frequencies in cycles per image."""
    ky = np.arange(-shape[0], shape[0] + 1, dtype=np.float32)[:, None]
    kx = np.arange(-shape[1] if full else 0, shape[1] + 1, dtype=np.float32)[None, :]
    return np.stack([np.exp(-0.5 * ((kx / sx) ** 2 + (ky / sy) ** 2)) for sx, sy in sigmas])


def _place(box: np.ndarray, spec: np.ndarray, ky: int, kx: int, full: bool) -> None:
    """Put a centred (2ky+1, 2kx+1 | kx+1) frequency box into an FFT-ordered spectrum."""
    spec[..., : ky + 1, : kx + 1] = box[..., ky:, -kx - 1 :]
    spec[..., -ky:, : kx + 1] = box[..., :ky, -kx - 1 :]
    if full:
        spec[..., : ky + 1, -kx:] = box[..., ky:, :kx]
        spec[..., -ky:, -kx:] = box[..., :ky, :kx]


def _fields(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit-variance smooth fields: fat lobules, glandular texture, lesion interior."""
    kmax = 54  # a fixed box of frequencies so that the draws do not depend on size
    coef = rng.standard_normal((3, 2 * kmax + 1, kmax + 1, 2), dtype=np.float32)
    box = (coef[..., 0] + 1j * coef[..., 1]) * _gain(
        (kmax, kmax),
        ((5.0, 5.0), (7.0, 18.0), (14.0, 14.0)),
        False,  # (lateral, axial)
    )
    k = min(kmax, size // 2 - 1)  # frequencies a small image cannot show are dropped
    spec = np.zeros((3, size, size // 2 + 1), np.complex64)
    _place(box[:, kmax - k : kmax + k + 1, : k + 1], spec, k, k, False)
    out = scipy.fft.irfft2(spec, s=(size, size))
    out /= out.std(axis=(1, 2), keepdims=True) + 1e-12
    return out


def _speckle_db(rng: np.random.Generator, size: int) -> np.ndarray:
    """10*log10 of a unit-mean-power Rayleigh amplitude squared; grain is physical (per image)."""
    sx, sy = 19.0, 30.0  # cycles per image: about 2 px lateral, 1.3 px axial grain at 256 px
    kx, ky = min(int(3 * sx), size // 2 - 1), min(int(3 * sy), size // 2 - 1)
    z = rng.standard_normal((2 * ky + 1, 2 * kx + 1, 2), dtype=np.float32)
    box = (z[..., 0] + 1j * z[..., 1]) * _gain((ky, kx), ((sx, sy),), True)[0]
    spec = np.zeros((size, size), np.complex64)
    _place(box, spec, ky, kx, True)
    field = scipy.fft.ifft2(spec, overwrite_x=True)
    power = field.real**2 + field.imag**2
    power *= 1.0 / power.mean()
    # A reject floor, as scanners apply, keeps the deepest nulls from becoming black worms.
    return np.maximum(10.0 * np.log10(power + 1e-6), -10.0)


def _wavy(base: float, amp: float, p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A smooth boundary depth along x: base plus three low harmonics."""
    j = np.arange(1, 4, dtype=np.float32)[:, None]
    return base + (amp * p[:3, None] / j * np.sin(2 * np.pi * j * x + 6.283 * p[3:6, None])).sum(0)


def render_image(
    seed: int, cls: int, k: int, size: int, difficulty: float
) -> tuple[np.ndarray, ...]:
    """One image (uint8) and its lesion label map (0 background, 1 lesion, 2 second lesion)."""
    ss = np.random.SeedSequence((seed, STREAM), spawn_key=(cls, k))
    r_tis, r_les, r_les2, r_tex, r_spk = (np.random.default_rng(s) for s in ss.spawn(5))
    p = r_tis.random(40).astype(np.float32)
    fat, gland, lestex = _fields(r_tex, size)
    y = ((np.arange(size, dtype=np.float32) + 0.5) / size)[:, None]
    x = (np.arange(size, dtype=np.float32) + 0.5) / size

    y_skin = _wavy(0.02 + 0.03 * p[0], 0.01, p[4:10], x)
    y_fat = _wavy(float(y_skin.mean()) + 0.06 + 0.14 * p[1], 0.05, p[10:16], x)
    y_gland = _wavy(float(y_fat.mean()) + 0.25 + 0.2 * p[2], 0.04, p[16:22], x)
    y_musc = y_gland + 0.1 + 0.08 * p[3]

    def rows(lo_edge: float, hi_edge: float) -> tuple[int, int]:
        return max(0, int(lo_edge * size)), min(size, int(np.ceil(hi_edge * size)) + 1)

    def blend(target: Callable[[slice], np.ndarray], edge: np.ndarray, width: float) -> None:
        """Below ``edge`` the tissue becomes ``target`` (computed only for the rows it shows)."""
        lo, hi = rows(edge.min() - 5 * width, edge.max() + 5 * width)
        t = 0.5 * (1.0 + np.tanh((y[lo:hi] - edge) / width))  # tanh only where it is not 0/1
        new = target(slice(lo, size))
        db[lo:hi] += (new[: hi - lo] - db[lo:hi]) * t
        db[hi:] = new[hi - lo :]

    def band(centre: np.ndarray, width: float, amp: float) -> None:
        width = max(width, 0.8 / size)  # stays at least a pixel thick in small images
        lo, hi = rows(centre.min() - 3 * width, centre.max() + 3 * width)
        db[lo:hi] += amp * np.exp(-(((y[lo:hi] - centre) / width) ** 2))

    db = np.empty((size, size), np.float32)
    top = rows(0.0, y_fat.max() + 0.1)[1]
    db[:top] = -11.0 + 2.0 * fat[:top] + 8.0 * np.exp(-((fat[:top] / 0.1) ** 2))  # ligaments
    amp = 3.0 + 3.0 * difficulty
    blend(lambda r: amp * gland[r] + (gland[r] ** 2 - 1.0), y_fat, 0.02)
    phase = 2 * np.pi * 22  # pectoral muscle: hypoechoic with bright striations
    blend(
        lambda r: (
            -8.0 + 9.0 * np.maximum(np.cos(phase * (y[r] - y_gland) + 1.2 * gland[r]), 0) ** 3
        ),
        y_gland + 0.025,
        0.006,
    )
    blend(lambda r: -9.0 + 2.0 * fat[r], y_musc + 0.008, 0.004)  # chest wall, reverberation
    band(y_skin, 0.006, 9.0)
    band(y_gland + 0.012, 0.01, -8.0)  # retromammary fat
    band(y_musc, 0.006, 12.0)  # pleura
    lo, hi = rows(y_skin.min() - 0.03, y_skin.max() + 0.015)
    db[:lo] = -35.0  # coupling gel above the skin
    db[lo:hi] += (-35.0 - db[lo:hi]) * 0.5 * (1.0 - np.tanh((y[lo:hi] - y_skin + 0.008) / 0.004))

    labels = np.zeros((size, size), np.uint8)
    if ALL_CLASSES[cls] != "normal":
        malignant = ALL_CLASSES[cls] == "malignant"
        les = draw_lesion(r_les, malignant, difficulty)
        # In the glandular layer, below the skin, above the chest wall, inside the image.
        y_lo = max(float(y_fat.mean()), float(y_skin.mean()) + 0.05 + les.b)
        y_hi = max(y_lo, min(float(y_gland.mean()), 0.9 - les.b))
        xc = les.a + 0.04 + p[22] * (0.92 - 2 * les.a)
        les = replace(les, xc=float(xc), yc=float(y_lo + p[23] * (y_hi - y_lo)))
        render_lesion(les, db, lestex, labels, 1)
        if k % 40 == 2:
            two = draw_lesion(r_les2, malignant, difficulty)
            two = replace(two, a=two.a * (0.5 + 0.15 * p[24]), b=two.b * (0.5 + 0.15 * p[24]))
            side = 1.0 if les.xc < 0.5 else -1.0  # beside the first, on the roomier side
            xc2 = np.clip(les.xc + side * 1.15 * (les.a + two.a + 0.03), two.a, 1 - two.a)
            yc2 = np.clip(les.yc + 0.1 * (p[25] - 0.5), 0.1 + two.b, 0.9 - two.b)
            render_lesion(replace(two, xc=float(xc2), yc=float(yc2)), db, lestex, labels, 2)

    atten = 25.0 + 15.0 * p[26]  # dB over the full depth
    knots = np.linspace(0.0, 1.0, 6)
    tgc = (0.4 + 0.35 * p[27]) * atten * knots + 4.0 * (p[28:34] - 0.5)  # slider ripple
    depth_db = -atten * y[:, 0] + np.interp(y[:, 0], knots, tgc)
    lateral_db = -2.0 * ((x - 0.5) / 0.5) ** 4
    alpha = 0.55 + 0.45 * difficulty
    db += depth_db[:, None] + lateral_db[None, :] + alpha * _speckle_db(r_spk, size)
    dyn = 45.0 + 15.0 * p[34]
    white = 0.45 * dyn + 6.0 * (p[35] - 0.5)  # glandular tissue at mid-grey, varied gain
    img = np.clip((db - (white - dyn)) * (255.0 / dyn), 0.0, 255.0)
    return np.rint(img).astype(np.uint8), labels
