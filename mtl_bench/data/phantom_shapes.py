"""Lesion geometry and appearance for the synthetic phantom (see :mod:`mtl_bench.data.phantom`).

A lesion is a star-shaped region around a centre: in a frame rotated by ``tilt`` and scaled by
the half-width ``a`` and half-height ``b`` the boundary is ``rho <= R(theta)`` with
``R = 1 + macro lobulation (harmonics 2-4) + micro irregularity (harmonics 5-16) + spicules``
(narrow von Mises bumps in angle). Every feature that separates the classes is driven by one
latent malignancy score ``z`` (benign around 0.2, malignant around 0.8) plus a little
per-feature noise, so features are correlated the way BI-RADS descriptors are and a lesion
whose ``z`` lands in the middle is ambiguous in every respect at once. ``difficulty`` widens the
spread of ``z`` (class overlap) and lowers the lesion-to-tissue contrast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_MICRO = 12  # harmonics 5..16
N_SPIKES = 14
N_CALC = 6
N_ANGLES = 2048  # boundary table resolution: 0.15 px at a radius of 50 px


@dataclass(frozen=True)
class Lesion:
    """Parameters of one lesion; lengths are fractions of the image side, angles radians."""

    xc: float
    yc: float
    a: float  # half-width before tilt
    b: float  # half-height before tilt
    tilt: float
    harmonics: np.ndarray  # complex coefficients for w**k, k = 2..16
    spikes: np.ndarray  # (n, 3): angle, length (in units of R), angular width
    calcs: np.ndarray  # (n, 2): u, v positions of microcalcifications in the unit frame
    softness: float  # margin blur, in pixels of a 256-pixel image
    level_db: float  # interior echo relative to glandular tissue
    hetero_db: float  # amplitude of interior texture
    capsule_db: float  # thin bright rim (smooth benign margins)
    halo_db: float  # thick echogenic halo (infiltrating malignant margins)
    post_db: float  # + posterior enhancement / - shadowing, per lesion height of path


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def draw_lesion(rng: np.random.Generator, malignant: bool, difficulty: float) -> Lesion:
    """Draw one lesion's parameters; the caller places it (``xc``, ``yc`` are placeholders).

    The same number of random values is drawn in the same order whatever ``malignant`` and
    ``difficulty`` are, so that a difficulty sweep changes the same images, not new ones.
    """
    g = rng.standard_normal(8)
    u = rng.random(6)
    micro = rng.standard_normal((N_MICRO, 2))
    macro = rng.standard_normal((3, 2))
    spk = rng.random((N_SPIKES, 3))
    calc = rng.random((N_CALC, 2))

    spread = 0.06 + 0.30 * difficulty
    z = (0.8 if malignant else 0.2) + spread * g[0]
    s_shape = _clip01(z + 0.08 * g[1])
    s_post = _clip01(z + 0.12 * g[2])
    s_int = _clip01(z + 0.10 * g[3])

    a = float(np.exp(np.log(0.1) + u[0] * np.log(0.21 / 0.1)))  # half-width, log-uniform
    aspect = float(np.clip(0.45 + 0.95 * s_shape + 0.07 * g[4], 0.4, 1.6))  # height / width
    b = a * aspect
    if b > 0.24:  # keep tall lesions inside the tissue and under ~40 % of the image
        a, b = a * 0.24 / b, 0.24
    # Benign masses lie parallel to the skin; malignant ones grow across tissue planes.
    tilt = float(np.deg2rad(g[5] * (6.0 + 22.0 * s_shape)))

    k_macro = np.arange(2, 5)
    amp_macro = (0.02 + 0.08 * u[1] + 0.04 * s_shape) / k_macro  # some benign are lobulated
    k_micro = np.arange(5, 5 + N_MICRO)
    amp_micro = (0.004 + 0.07 * s_shape**2) / k_micro**0.6
    coef = np.concatenate(
        [amp_macro * (macro[:, 0] + 1j * macro[:, 1]), amp_micro * (micro[:, 0] + 1j * micro[:, 1])]
    )
    n_spikes = int(N_SPIKES * max(0.0, s_shape - 0.45) / 0.55)
    spikes = np.stack(
        [spk[:, 0] * 2 * np.pi, 0.15 + 0.45 * spk[:, 1], 0.05 + 0.08 * spk[:, 2]], axis=1
    )[:n_spikes]
    n_calc = int(N_CALC * max(0.0, s_int - 0.55) / 0.45 * u[2])
    r_calc = 0.75 * np.sqrt(calc[:n_calc, 0])
    calcs = np.stack(
        [r_calc * np.cos(6.283 * calc[:n_calc, 1]), r_calc * np.sin(6.283 * calc[:n_calc, 1])], 1
    )

    contrast = (15.0 + 6.0 * s_int + 2.0 * g[6]) * (1.0 - 0.45 * difficulty)
    return Lesion(
        xc=0.5,
        yc=0.5,
        a=a,
        b=b,
        tilt=tilt,
        harmonics=coef,
        spikes=spikes,
        calcs=calcs,
        softness=0.6 + 3.0 * s_shape,
        level_db=-contrast,
        hetero_db=1.0 + 5.0 * s_int,
        capsule_db=4.0 * (1.0 - s_shape) * u[3],
        halo_db=6.0 * max(0.0, s_shape - 0.5) * u[4],
        post_db=(10.0 - 26.0 * s_post) * (0.75 + 0.5 * u[5]),
    )


def _radius(les: Lesion, w: np.ndarray) -> np.ndarray:
    """Boundary radius R at the directions ``w = exp(i theta)`` (unit frame, circle = 1)."""
    acc = np.zeros_like(w)
    for c in les.harmonics[::-1].astype(np.complex64):  # Horner: powers without trig calls
        acc = (acc + c) * w
    radius = 1.0 + (acc * w).real
    for angle, length, width in les.spikes:
        cos_d = (w * complex(np.exp(-1j * angle))).real
        radius += float(length) * np.exp((cos_d - 1.0) / float(width) ** 2)
    return radius


def _radius_table(les: Lesion) -> np.ndarray:
    """R at N_ANGLES equally spaced angles from -pi (looked up per pixel: no per-pixel trig)."""
    theta = np.linspace(-np.pi, np.pi, N_ANGLES, endpoint=False)
    return _radius(les, np.exp(1j * theta).astype(np.complex64))


def render_lesion(
    les: Lesion, db: np.ndarray, tex: np.ndarray, labels: np.ndarray, label: int
) -> None:
    """Paint ``les`` into the echogenicity map ``db`` (dB, in place) and ``labels``.

    ``tex`` is a unit-variance smooth field for the interior texture. Pixels already labelled
    keep their label, so a second lesion never takes pixels of the first.
    """
    size = db.shape[0]
    table = _radius_table(les)
    ext = max(les.a, les.b) * float(table.max()) + (4.0 + 8.0 * les.softness) / 256  # + margin
    r0, r1 = max(0, int((les.yc - ext) * size)), min(size, int(np.ceil((les.yc + ext) * size)))
    c0, c1 = max(0, int((les.xc - ext) * size)), min(size, int(np.ceil((les.xc + ext) * size)))
    y = ((np.arange(r0, r1, dtype=np.float32) + 0.5) / size - les.yc)[:, None]
    x = ((np.arange(c0, c1, dtype=np.float32) + 0.5) / size - les.xc)[None, :]
    ct, st = float(np.cos(les.tilt)), float(np.sin(les.tilt))
    u = (x * ct + y * st) / les.a
    v = (-x * st + y * ct) / les.b
    rho = np.maximum(np.hypot(u, v), 1e-6)
    index = ((np.arctan2(v, u) + np.pi) * (N_ANGLES / (2 * np.pi))).astype(np.int32)
    radius = table[np.minimum(index, N_ANGLES - 1)]
    # Signed distance to the boundary along the ray, in pixels (positive inside).
    dist = (radius / rho - 1.0) * np.hypot(x, y) * size
    inside = dist > 0
    soft_px = les.softness * size / 256
    soft = 0.5 * (1.0 + np.tanh(dist / (2.0 * soft_px)))

    box = db[r0:r1, c0:c1]
    interior = les.level_db + les.hetero_db * tex[r0:r1, c0:c1]
    for cu, cv in les.calcs:  # bright specks of about 1.5 px
        interior += 14.0 * np.exp(-((u - cu) ** 2 + (v - cv) ** 2) * (les.a * size / 1.5) ** 2)
    rim = les.capsule_db * np.exp(-((dist / max(1.0, size / 256)) ** 2))
    rim += les.halo_db * np.exp(-(((dist + 3.0 * soft_px) / (3.0 * soft_px)) ** 2)) * (1 - soft)
    box[...] = box * (1.0 - soft) + interior * soft + rim

    lab = labels[r0:r1, c0:c1]
    lab[inside & (lab == 0)] = label

    # Posterior acoustic effect: proportional to the path length travelled inside the lesion,
    # so it is strongest under the thickest part and starts inside the lesion itself.
    path = np.cumsum(soft, axis=0) / (2.0 * les.b * size)
    below = np.arange(r1, size, dtype=np.float32)[:, None] / size - (les.yc + les.b)
    fade = np.exp(-np.maximum(below, 0.0) / 0.45)
    db[r0:r1, c0:c1] += les.post_db * path
    db[r1:, c0:c1] += les.post_db * path[-1:] * fade
