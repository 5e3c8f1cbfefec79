"""Device-side batching: per-epoch index tables and gathers from device-resident fold arrays.

The fold's uint8 arrays live on the device; every step gathers its batch by index inside the
jitted step, so the host does no per-step data work.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def to_input(images_u8: jax.Array) -> jax.Array:
    """(B, H, W) uint8 → (B, H, W, 1) float32 in [0, 1]."""
    return (images_u8.astype(jnp.float32) / 255.0)[..., None]


def gather_batch(data: dict[str, jax.Array], idx: jax.Array) -> dict[str, jax.Array]:
    """Rows ``idx`` of the device-resident fold arrays, as model-ready float tensors."""
    return {
        "image": to_input(data["images"][idx]),
        "mask": data["masks"][idx].astype(jnp.float32)[..., None],
        "label": data["labels"][idx],
    }


@partial(jax.jit, static_argnums=(1, 2, 3))
def _epoch_table(key: jax.Array, n: int, batch: int, steps: int) -> tuple[jax.Array, jax.Array]:
    """A (steps, batch) table of a fresh permutation of 0..n-1, padded with weight-0 repeats."""
    perm = jax.random.permutation(key, n)
    total = steps * batch
    reps = -(-total // n)
    flat = jnp.tile(perm, reps)[:total].astype(jnp.int32)
    weight = (jnp.arange(total) < n).astype(jnp.float32)
    return flat.reshape(steps, batch), weight.reshape(steps, batch)


def pad_rows(host: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
    """``host`` with zero rows appended up to a multiple of ``multiple``.

    Why: a device-resident fold array's row count is part of the compiled step's shape, so folds
    whose sizes differ by one image (the paper's 647 images make test sets of 129 and 130) would
    each compile the step again. Padded, they share one program. The padding rows are never read:
    the epoch table indexes the real rows only (``Engine.run_epoch(rows=...)``) and evaluation
    takes an explicit index.
    """
    n = len(host["labels"])
    pad = -n % multiple
    if pad == 0:
        return host
    return {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in host.items()}


def fold_arrays(images: np.ndarray, masks: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """A fold's host arrays in the dtypes the steps expect (placed by ``Engine.place_data``)."""
    return {
        "images": np.ascontiguousarray(images, dtype=np.uint8),
        "masks": np.ascontiguousarray(masks, dtype=np.uint8),
        "labels": np.asarray(labels, dtype=np.int32),
    }
