"""Joint image/mask flips and rotation: exactness, determinism, independence, jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.ndimage import map_coordinates

from mtl_bench.data.augment import (
    AugmentConfig,
    apply_transform,
    augment_batch,
    augment_one,
    sample_transform,
)

S = 32
FLIPS_ONLY = {"max_rotation_deg": 0.0, "flip_prob": 1.0}
# Jitted once per shape/config: eager op-by-op dispatch would make the tests several times slower.
aug = jax.jit(augment_batch, static_argnames="cfg")


def blob_batch(b: int = 4, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """Random smooth-ish images and masks of discs at random places."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:S, :S]
    masks = np.zeros((b, S, S, 1), np.float32)
    for i in range(b):
        cy, cx, r = rng.uniform(8, 24), rng.uniform(8, 24), rng.uniform(4, 9)
        masks[i, ..., 0] = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    images = rng.random((b, S, S, 1)).astype(np.float32)
    return jnp.asarray(images), jnp.asarray(masks)


def test_jit_deterministic_and_key_dependent() -> None:
    images, masks = blob_batch()
    f = aug
    a1, m1 = f(jax.random.key(0), images, masks)
    a2, m2 = f(jax.random.key(0), images, masks)
    a3, _ = f(jax.random.key(1), images, masks)
    assert a1.shape == images.shape and m1.shape == masks.shape and a1.dtype == images.dtype
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(m1, m2)
    assert not np.allclose(a1, a3)
    # Default-config jit (no static argument) compiles too.
    a4, _ = jax.jit(augment_batch)(jax.random.key(0), images, masks)
    np.testing.assert_allclose(a4, a1, atol=1e-6)


def test_masks_stay_binary_and_nonempty() -> None:
    images, masks = blob_batch(8)
    _, out = aug(jax.random.key(3), images, masks, AugmentConfig())
    assert set(np.unique(np.asarray(out))) <= {0.0, 1.0}
    assert np.all(np.asarray(out).sum(axis=(1, 2, 3)) > 0)


@pytest.mark.parametrize(
    "hflip,vflip,axes", [(True, False, (2,)), (False, True, (1,)), (True, True, (1, 2))]
)
def test_forced_flips_match_jnp_flip(hflip: bool, vflip: bool, axes: tuple[int, ...]) -> None:
    images, masks = blob_batch()
    cfg = AugmentConfig(hflip=hflip, vflip=vflip, **FLIPS_ONLY)
    out, out_m = aug(jax.random.key(5), images, masks, cfg)
    np.testing.assert_array_equal(out, jnp.flip(images, axes))
    np.testing.assert_array_equal(out_m, jnp.flip(masks, axes))
    # The resampling path gives the same exact result at angle 0.
    im, m = jax.jit(apply_transform)(images[0], masks[0], 0.0, hflip, vflip)
    np.testing.assert_array_equal(im, jnp.flip(images[0], [a - 1 for a in axes]))
    np.testing.assert_array_equal(m, jnp.flip(masks[0], [a - 1 for a in axes]))


@pytest.mark.parametrize("angle,k", [(90.0, 1), (-90.0, -1), (180.0, 2)])
def test_right_angle_rotation_matches_rot90(angle: float, k: int) -> None:
    images, masks = blob_batch(1)
    im, m = jax.jit(apply_transform)(images[0], masks[0], angle)
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(im[inner], np.rot90(images[0], k)[inner], atol=1e-4)
    np.testing.assert_array_equal(m[inner], np.rot90(masks[0], k)[inner])


def test_bilinear_and_nearest_match_map_coordinates() -> None:
    images, masks = blob_batch(1)
    angle = 17.0
    im, m = apply_transform(images[0], masks[0], angle)
    t, c = np.deg2rad(angle), (S - 1) / 2
    y, x = np.mgrid[:S, :S] - c
    coords = [np.cos(t) * y + np.sin(t) * x + c, np.cos(t) * x - np.sin(t) * y + c]
    ref = map_coordinates(images[0, ..., 0], coords, order=1, mode="constant", cval=0.0)
    ref_m = map_coordinates(masks[0, ..., 0], coords, order=0, mode="constant", cval=0.0)
    np.testing.assert_allclose(im[..., 0], ref, atol=1e-5)
    assert np.mean(np.asarray(m[..., 0]) == np.asarray(ref_m)) > 0.995


def test_zero_fill_outside_and_centre_kept() -> None:
    ones = jnp.ones((S, S, 1))
    im, m = apply_transform(ones, ones, 45.0)
    for corner in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert float(im[corner][0]) == 0.0 and float(m[corner][0]) == 0.0
    np.testing.assert_allclose(im[S // 2 - 4 : S // 2 + 4, S // 2 - 4 : S // 2 + 4], 1.0, atol=1e-5)


def test_image_and_mask_move_together() -> None:
    _, masks = blob_batch(8, seed=1)
    images = masks * 1.0  # the image is the mask, so thresholding it must give the mask back
    out, out_m = aug(jax.random.key(7), images, masks, AugmentConfig())
    agree = np.mean((np.asarray(out) > 0.5) == (np.asarray(out_m) > 0.5))
    assert agree >= 0.99
    assert not np.array_equal(out_m, masks)  # something did move


def test_samples_get_independent_transforms() -> None:
    images, masks = blob_batch(1)
    batch = jnp.repeat(images, 6, axis=0)
    batch_m = jnp.repeat(masks, 6, axis=0)
    key = jax.random.key(11)
    out, out_m = aug(key, batch, batch_m)
    flat = np.asarray(out).reshape(6, -1)
    assert len({row.tobytes() for row in flat}) == 6
    # Sample i uses split(key, B)[i], exactly as augment_one would.
    k2 = jax.random.split(key, 6)[2]
    one, one_m = jax.jit(augment_one, static_argnums=3)(k2, batch[2], batch_m[2], AugmentConfig())
    np.testing.assert_allclose(out[2], one, atol=1e-6)
    np.testing.assert_array_equal(out_m[2], one_m)


def test_sampled_parameters_follow_config() -> None:
    keys = jax.random.split(jax.random.key(0), 2000)
    angle, hflip, vflip = jax.jit(jax.vmap(lambda k: sample_transform(k, AugmentConfig())))(keys)
    assert float(jnp.max(jnp.abs(angle))) <= 30.0 and float(jnp.max(angle)) > 25.0
    assert 0.45 < float(hflip.mean()) < 0.55 and 0.45 < float(vflip.mean()) < 0.55
    assert float(jnp.corrcoef(hflip, vflip)[0, 1]) < 0.1  # drawn independently
    cfg = AugmentConfig(hflip=False, max_rotation_deg=10.0)
    angle, hflip, _ = jax.jit(jax.vmap(lambda k: sample_transform(k, cfg)))(keys)
    assert not bool(hflip.any()) and float(jnp.max(jnp.abs(angle))) <= 10.0


@pytest.mark.parametrize(
    "cfg",
    [
        AugmentConfig(hflip=False, vflip=False, max_rotation_deg=0.0),
        AugmentConfig(flip_prob=0.0, max_rotation_deg=0.0),
    ],
)
def test_disabled_config_is_identity(cfg: AugmentConfig) -> None:
    images, masks = blob_batch()
    assert not cfg.enabled
    out, out_m = augment_batch(jax.random.key(0), images, masks, cfg)
    assert out is images and out_m is masks
    out, out_m = jax.jit(augment_batch, static_argnames="cfg")(
        jax.random.key(0), images, masks, cfg
    )
    np.testing.assert_array_equal(out, images)


def test_none_masks_and_integer_images() -> None:
    images, masks = blob_batch()
    out, none = aug(jax.random.key(2), images, None)
    assert none is None
    with_masks, _ = aug(jax.random.key(2), images, masks)
    np.testing.assert_array_equal(out, with_masks)
    u8 = (images * 255).astype(jnp.uint8)
    out8, _ = jax.jit(augment_batch)(jax.random.key(2), u8, None)
    assert out8.dtype == jnp.uint8
    as_float, _ = aug(jax.random.key(2), u8.astype(jnp.float32), None)
    np.testing.assert_allclose(np.asarray(out8, np.float32), as_float, atol=0.5 + 1e-4)


def test_config_hashable_and_errors() -> None:
    assert hash(AugmentConfig()) == hash(AugmentConfig())
    with pytest.raises(ValueError, match="max_rotation_deg"):
        AugmentConfig(max_rotation_deg=-1.0)
    with pytest.raises(ValueError, match="flip_prob"):
        AugmentConfig(flip_prob=1.5)
    images, masks = blob_batch()
    with pytest.raises(ValueError, match=r"images must be \(B, H, W, C\)"):
        augment_batch(jax.random.key(0), images[0], None)
    with pytest.raises(ValueError, match=r"masks must be \(B, H, W, 1\)"):
        augment_batch(jax.random.key(0), images, masks[:, :16])
