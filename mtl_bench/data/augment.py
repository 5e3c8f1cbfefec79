"""On-device augmentation: random flips and rotation applied jointly to images and masks.

Runs inside the jitted training step. Each sample draws, from its own PRNG key (the batch key
split B ways): a horizontal flip and a vertical flip, each with probability ``flip_prob``
(0.5), and a rotation angle uniform in [-max_rotation_deg, +max_rotation_deg] (30°, the paper's
"rotation by 30°" read as a Keras-style ``rotation_range``). The sample is flipped, then
rotated about the image centre ((H-1)/2, (W-1)/2); positive angles turn counter-clockwise as
displayed (row 0 at the top), like ``np.rot90``.

One source-coordinate grid per sample is shared by image and mask: the image is resampled
bilinearly, the mask by nearest neighbour, so a {0, 1} mask stays binary. Pixels whose source
lies outside the image are filled with 0 (black image, background mask) — for ultrasound the
corners outside the scan fan are black anyway. A config with rotation 0 flips by indexing
(exact, no resampling); a disabled config returns its inputs untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to draw; frozen and hashable so it can be a static jit argument."""

    hflip: bool = True
    vflip: bool = True
    max_rotation_deg: float = 30.0
    flip_prob: float = 0.5  # 1.0 forces the enabled flips (tests, test-time augmentation)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_rotation_deg <= 180.0:
            raise ValueError(f"max_rotation_deg must be in [0, 180], got {self.max_rotation_deg}")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {self.flip_prob}")

    @property
    def enabled(self) -> bool:
        """False when no augmentation can ever happen (the inputs are then returned as they are)."""
        flips = (self.hflip or self.vflip) and self.flip_prob > 0
        return flips or self.max_rotation_deg > 0


def _gather(img: jax.Array, yi: jax.Array, xi: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``img[yi, xi]`` (H, W, C) with indices clipped, and the in-image validity (H, W)."""
    h, w = img.shape[:2]
    valid = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
    return img[jnp.clip(yi, 0, h - 1), jnp.clip(xi, 0, w - 1)], valid


def _cast_like(x: jax.Array, like: jax.Array) -> jax.Array:
    if jnp.issubdtype(like.dtype, jnp.integer):
        x = jnp.round(x)
    return x.astype(like.dtype)


def apply_transform(
    image: jax.Array,
    mask: jax.Array | None,
    angle_deg: jax.Array | float,
    hflip: jax.Array | bool = False,
    vflip: jax.Array | bool = False,
) -> tuple[jax.Array, jax.Array | None]:
    """Flip then rotate one (H, W, C) image and its (H, W, 1) mask (or None) by ``angle_deg``.

    Every argument may be traced, so this jits and vmaps; see the module docstring for
    conventions (centre, direction, zero fill, bilinear image / nearest mask).
    """
    h, w = image.shape[:2]
    theta = jnp.deg2rad(jnp.asarray(angle_deg, jnp.float32))
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    y = jnp.arange(h, dtype=jnp.float32)[:, None] - cy
    x = jnp.arange(w, dtype=jnp.float32)[None, :] - cx
    # Output pixel p shows input pixel F(R^-1 p): inverse rotation, then the flips.
    sy = cos * y + sin * x
    sx = cos * x - sin * y
    sy = jnp.where(vflip, -sy, sy) + cy
    sx = jnp.where(hflip, -sx, sx) + cx

    img = image.astype(jnp.float32)
    y0, x0 = jnp.floor(sy), jnp.floor(sx)
    wy, wx = sy - y0, sx - x0
    y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)
    out = jnp.zeros(img.shape, jnp.float32)
    for dy, wyv in ((0, 1.0 - wy), (1, wy)):
        for dx, wxv in ((0, 1.0 - wx), (1, wx)):
            v, valid = _gather(img, y0 + dy, x0 + dx)
            out = out + jnp.where(valid, wyv * wxv, 0.0)[..., None] * v
    new_image = _cast_like(out, image)

    if mask is None:
        return new_image, None
    m, valid = _gather(mask, jnp.round(sy).astype(jnp.int32), jnp.round(sx).astype(jnp.int32))
    new_mask = jnp.where(valid[..., None], m, jnp.zeros((), mask.dtype))
    return new_image, new_mask


def _flip(x: jax.Array, hflip: jax.Array, vflip: jax.Array) -> jax.Array:
    x = jnp.where(hflip, jnp.flip(x, axis=1), x)
    return jnp.where(vflip, jnp.flip(x, axis=0), x)


def sample_transform(key: jax.Array, cfg: AugmentConfig) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Draw ``(angle_deg, hflip, vflip)`` for one sample from ``key``."""
    k_h, k_v, k_r = jax.random.split(key, 3)
    hflip = jnp.asarray(cfg.hflip) & jax.random.bernoulli(k_h, cfg.flip_prob)
    vflip = jnp.asarray(cfg.vflip) & jax.random.bernoulli(k_v, cfg.flip_prob)
    m = cfg.max_rotation_deg
    angle = jax.random.uniform(k_r, (), jnp.float32, -m, m) if m > 0 else jnp.zeros(())
    return angle, hflip, vflip


def augment_one(
    key: jax.Array, image: jax.Array, mask: jax.Array | None, cfg: AugmentConfig = AugmentConfig()
) -> tuple[jax.Array, jax.Array | None]:
    """Augment one (H, W, C) image and its (H, W, 1) mask (or None) with transforms from ``key``."""
    if not cfg.enabled:
        return image, mask
    angle, hflip, vflip = sample_transform(key, cfg)
    if cfg.max_rotation_deg == 0:  # flips only: exact, and cheaper than resampling
        return _flip(image, hflip, vflip), None if mask is None else _flip(mask, hflip, vflip)
    return apply_transform(image, mask, angle, hflip, vflip)


def augment_batch(
    key: jax.Array,
    images: jax.Array,
    masks: jax.Array | None,
    cfg: AugmentConfig = AugmentConfig(),
) -> tuple[jax.Array, jax.Array | None]:
    """Augment a (B, H, W, C) batch and its (B, H, W, 1) masks (or None), each sample independently.

    ``cfg`` must be static under jit: ``jax.jit(augment_batch, static_argnames="cfg")``.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, H, W, C), got shape {images.shape}")
    if masks is not None and masks.shape != (*images.shape[:3], 1):
        raise ValueError(
            f"masks must be (B, H, W, 1) = {(*images.shape[:3], 1)}, got shape {masks.shape}"
        )
    return augment_with_keys(jax.random.split(key, images.shape[0]), images, masks, cfg)


def augment_with_keys(
    keys: jax.Array,
    images: jax.Array,
    masks: jax.Array | None,
    cfg: AugmentConfig = AugmentConfig(),
) -> tuple[jax.Array, jax.Array | None]:
    """As ``augment_batch`` with one key per sample: a device holding a slice of a global batch
    draws exactly the transforms the single-device step would (``keys`` sliced alike)."""
    if not cfg.enabled:
        return images, masks
    if masks is None:
        return jax.vmap(lambda k, im: augment_one(k, im, None, cfg)[0])(keys, images), None
    return jax.vmap(lambda k, im, m: augment_one(k, im, m, cfg))(keys, images, masks)
