"""Synthetic B-mode breast-ultrasound phantom: the default dataset when real BUSI is absent.

Each image is built in decibels and log-compressed like a scanner's display:
tissue echogenicity (gel, skin line, subcutaneous fat with lobules and Cooper's ligaments,
glandular tissue with laterally stretched texture, retromammary fat, striated pectoral muscle,
bright pleura/chest wall, dark depth), lesions (:mod:`phantom_shapes`), depth attenuation with a
partial time-gain-compensation curve (so images darken with depth, with a ripple like TGC
sliders), a little lateral fall-off, and multiplicative Rayleigh speckle (the modulus of a
band-limited complex Gaussian field, grain wider laterally than axially) raised to a power
``alpha`` <= 1 (less speckle, as spatial compounding gives). Smooth fields are drawn in the
frequency domain in cycles per image, so a seed gives the same anatomy at any ``image_size``.

``difficulty`` in [0, 1] (default 0.5) changes, for the same random draws:
speckle ``alpha = 0.55 + 0.45 d``; glandular texture amplitude ``3 + 3 d`` dB; lesion contrast
scaled by ``1 - 0.45 d``; class overlap: the spread of the latent malignancy score
``0.06 + 0.30 d`` (so more benign lesions are lobulated, tall or shadowing and more malignant
ones nearly oval, smooth or enhancing).

Determinism: image K of a class comes from ``SeedSequence(seed, spawn_key=(class, K))``, so it
does not depend on ``n``, the class set, or the other classes. Images with K = 2 (mod 40) have a
second, smaller lesion (17 of the 647 at BUSI counts), written by :func:`write_phantom` as a
separate ``_mask_1.png``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from numbers import Real
from pathlib import Path

import numpy as np
import scipy.fft

from mtl_bench.data.phantom_shapes import draw_lesion, render_lesion
from mtl_bench.data.types import ALL_CLASSES, DataError, Dataset, class_names

BUSI_COUNTS: dict[str, int] = {"benign": 437, "malignant": 210, "normal": 133}
MARKER = "PHANTOM.json"
_FILE_RE = re.compile(r"^(benign|malignant|normal) \(\d+\)(_mask(_\d+)?)?\.png$")
_STREAM = 20240601  # mixed into every seed: bump when the generator's output changes


def phantom_counts(
    n: int | None = None, class_set: str = "three_class", counts: dict[str, int] | None = None
) -> dict[str, int]:
    """Images per class: BUSI's 437:210:133 (over the classes of ``class_set``) scaled to ``n``.

    Rounding: largest remainder (floor each share, then give the leftover images to the largest
    fractional parts, ties to the earlier class); then, when ``n`` >= the number of classes, a
    class left at 0 takes one image from the currently largest class. ``counts`` overrides the
    ratio (classes not named get 0); given with ``n`` the totals must agree.
    """
    names = class_names(class_set)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise DataError(f"phantom n must be a positive integer, got {n!r}")
    if counts is not None:
        bad = [k for k, v in counts.items() if k not in names]
        if bad:
            raise DataError(f"phantom counts: class {bad[0]!r} is not in class set {class_set!r}")
        for k, v in counts.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise DataError(f"phantom counts[{k!r}] must be an integer >= 0, got {v!r}")
        out = {c: counts.get(c, 0) for c in names}
        total = sum(out.values())
        if total == 0 or (n is not None and n != total):
            raise DataError(f"phantom counts {out} total {total}, expected n={n or '>= 1'}")
        return out
    weights = np.array([BUSI_COUNTS[c] for c in names], dtype=np.float64)
    if n is None:
        return {c: int(w) for c, w in zip(names, weights, strict=True)}
    share = n * weights / weights.sum()
    got = np.floor(share).astype(int)
    order = sorted(range(len(names)), key=lambda i: (-(share[i] - got[i]), i))
    for i in order[: n - int(got.sum())]:
        got[i] += 1
    if n >= len(names):
        for i in np.flatnonzero(got == 0):
            got[int(np.argmax(got))] -= 1
            got[i] = 1
    return {c: int(g) for c, g in zip(names, got, strict=True)}


def _check_args(image_size: int, seed: int, difficulty: float) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 16 <= image_size:
        raise DataError(f"phantom image_size must be an integer >= 16, got {image_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"phantom seed must be an integer >= 0, got {seed!r}")
    if not isinstance(difficulty, Real) or not 0.0 <= float(difficulty) <= 1.0:
        raise DataError(f"phantom difficulty must be a number in [0, 1], got {difficulty!r}")


def _fields(rng: np.random.Generator, size: int, difficulty: float) -> np.ndarray:
    """Unit-variance smooth fields: fat lobules, glandular texture, lesion interior."""
    kmax = 54  # fixed box of frequencies (cycles per image) so draws do not depend on size
    coef = rng.standard_normal((3, 2 * kmax + 1, kmax + 1, 2)).astype(np.float32)
    ky = np.arange(-kmax, kmax + 1, dtype=np.float32)[:, None]
    kx = np.arange(kmax + 1, dtype=np.float32)[None, :]
    sigmas = ((5.0, 5.0), (7.0, 18.0), (14.0, 14.0))  # (lateral, axial) bandwidths
    h = np.stack([np.exp(-0.5 * ((kx / sx) ** 2 + (ky / sy) ** 2)) for sx, sy in sigmas])
    spec_box = (coef[..., 0] + 1j * coef[..., 1]) * h
    k = min(kmax, size // 2 - 1)
    spec = np.zeros((3, size, size // 2 + 1), np.complex64)
    spec[:, : k + 1, : k + 1] = spec_box[:, kmax : kmax + k + 1, : k + 1]
    spec[:, size - k :, : k + 1] = spec_box[:, kmax - k : kmax, : k + 1]
    out = scipy.fft.irfft2(spec, s=(size, size))
    out /= out.std(axis=(1, 2), keepdims=True) + 1e-12
    return out.astype(np.float32)


def _speckle_db(rng: np.random.Generator, size: int) -> np.ndarray:
    """10*log10 of a unit-mean-power Rayleigh amplitude squared; grain is physical (per image)."""
    sx, sy = 27.0, 41.0  # cycles per image: about 1.5 px lateral, 1 px axial grain at 256 px
    kx_, ky_ = min(int(3 * sx), size // 2 - 1), min(int(3 * sy), size // 2 - 1)
    z = rng.standard_normal((2 * ky_ + 1, 2 * kx_ + 1, 2)).astype(np.float32)
    ky = np.arange(-ky_, ky_ + 1, dtype=np.float32)[:, None]
    kx = np.arange(-kx_, kx_ + 1, dtype=np.float32)[None, :]
    box = (z[..., 0] + 1j * z[..., 1]) * np.exp(-0.5 * ((kx / sx) ** 2 + (ky / sy) ** 2))
    spec = np.zeros((size, size), np.complex64)
    spec[np.arange(-ky_, ky_ + 1)[:, None], np.arange(-kx_, kx_ + 1)[None, :]] = box
    field = scipy.fft.ifft2(spec)
    power = field.real**2 + field.imag**2
    return (10.0 * np.log10(power / power.mean() + 1e-6)).astype(np.float32)


def _wavy(base: float, amp: float, p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A smooth boundary depth along x: base plus three low harmonics."""
    j = np.arange(1, 4, dtype=np.float32)[:, None]
    return base + (amp * p[:3, None] / j * np.sin(2 * np.pi * j * x + 6.283 * p[3:6, None])).sum(0)


def _render(seed: int, cls: int, k: int, size: int, difficulty: float) -> tuple[np.ndarray, ...]:
    """One image (uint8) and its lesion label map (0 background, 1 lesion, 2 second lesion)."""
    ss = np.random.SeedSequence((seed, _STREAM), spawn_key=(cls, k))
    r_tis, r_les, r_les2, r_tex, r_spk = (np.random.default_rng(s) for s in ss.spawn(5))
    p = r_tis.random(40).astype(np.float32)
    fat, gland, lestex = _fields(r_tex, size, difficulty)
    y = ((np.arange(size, dtype=np.float32) + 0.5) / size)[:, None]
    x = (np.arange(size, dtype=np.float32) + 0.5) / size

    y_skin = _wavy(0.02 + 0.03 * p[0], 0.01, p[4:10], x)
    y_fat = _wavy(float(y_skin.mean()) + 0.08 + 0.17 * p[1], 0.05, p[10:16], x)
    y_gland = np.minimum(_wavy(float(y_fat.mean()) + 0.35 + 0.15 * p[2], 0.04, p[16:22], x), 0.88)
    y_musc = y_gland + 0.08 + 0.07 * p[3]

    def step(edge: np.ndarray, width: float = 0.012) -> np.ndarray:
        return 0.5 * (1.0 + np.tanh((y - edge) / width))

    def band(centre: np.ndarray, width: float) -> np.ndarray:
        return np.exp(-(((y - centre) / max(width, 0.8 / size)) ** 2))

    fat_db = -9.0 + 2.5 * fat + 9.0 * np.exp(-((fat / 0.12) ** 2))  # lobules and ligaments
    gland_db = (3.0 + 3.0 * difficulty) * gland + 1.5 * (gland**2 - 1.0)
    stripes = np.cos(2 * np.pi * 16 * (y - y_gland) + 1.5 * gland)
    muscle_db = -5.0 + 7.0 * np.maximum(stripes, 0.0) ** 4
    db = fat_db + (gland_db - fat_db) * step(y_fat, 0.02)
    db += (muscle_db - db) * step(y_gland + 0.03, 0.006)
    db += (-18.0 - db) * step(y_musc + 0.005, 0.004)
    db += 8.0 * band(y_skin, 0.006) - 7.0 * band(y_gland + 0.015, 0.012)
    db += 10.0 * band(y_musc, 0.005)
    db += (-35.0 - db) * step(y_skin - 0.008, 0.004)  # coupling gel above the skin

    labels = np.zeros((size, size), np.uint8)
    if ALL_CLASSES[cls] != "normal":
        malignant = ALL_CLASSES[cls] == "malignant"
        les = draw_lesion(r_les, malignant, difficulty)
        lo = max(float(y_fat.mean()), float(y_skin.mean()) + 0.05 + les.b)
        hi = max(lo, min(float(y_gland.mean()), 0.9 - les.b))
        xc = les.a + 0.04 + p[22] * (0.92 - 2 * les.a)
        les = replace(les, xc=float(xc), yc=float(lo + p[23] * (hi - lo)))
        render_lesion(les, db, lestex, labels, 1)
        if k % 40 == 2:
            two = draw_lesion(r_les2, malignant, difficulty)
            two = replace(two, a=two.a * (0.5 + 0.15 * p[24]), b=two.b * (0.5 + 0.15 * p[24]))
            side = 1.0 if les.xc < 0.5 else -1.0
            xc2 = np.clip(les.xc + side * 1.15 * (les.a + two.a + 0.03), two.a, 1 - two.a)
            yc2 = np.clip(les.yc + 0.1 * (p[25] - 0.5), 0.1 + two.b, 0.9 - two.b)
            render_lesion(replace(two, xc=float(xc2), yc=float(yc2)), db, lestex, labels, 2)

    atten = 25.0 + 15.0 * p[26]  # dB over the full depth
    knots = np.linspace(0.0, 1.0, 6)
    tgc = (0.55 + 0.3 * p[27]) * atten * knots + 2.0 * (p[28:34] - 0.5) * 2
    depth_db = -atten * y[:, 0] + np.interp(y[:, 0], knots, tgc)
    lateral_db = -2.0 * ((x - 0.5) / 0.5) ** 4
    alpha = 0.55 + 0.45 * difficulty
    db += depth_db[:, None] + lateral_db[None, :] + alpha * _speckle_db(r_spk, size)
    dyn, top = 45.0 + 15.0 * p[34], 9.0 + 5.0 * p[35] + 4.0 * (p[36] - 0.5)
    img = np.clip((db - (top - dyn)) * (255.0 / dyn), 0.0, 255.0)
    return np.rint(img).astype(np.uint8), labels
