"""Predicted test-set masks of a fold, saved beside its result file for the overlay figures.

File: ``RESULTS/<method>/fold_<K>_masks.npz`` (written atomically), holding

- ``schema``: 1;
- ``ids``: (N,) str, the dataset ids ``"<class>/<stem>"`` in the fold's test order;
- ``shape``: (3,) int64 = (N, H, W), the model's input size;
- ``bits``: (N, ceil(H·W / 8)) uint8, each mask (logit > 0) flattened row-major and packed with
  ``np.packbits`` (1 bit per pixel: 156 BUSI test images at 256² take ~1.3 MB uncompressed).
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mtl_bench.atomic import atomic_write
from mtl_bench.data.types import DataError

SCHEMA = 1
_MASK_FILE = re.compile(r"fold_(\d+)_masks\.npz")


def save_predicted_masks(path: str | os.PathLike, ids: list[str], masks: np.ndarray) -> Path:
    """Write (N, H, W) boolean ``masks`` of the images ``ids`` to ``path`` (.npz), atomically."""
    path = Path(path)
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[0] != len(ids):
        raise ValueError(f"masks must be (N, H, W) with N = {len(ids)} ids, got {masks.shape}")
    if masks.dtype != bool and not np.isin(masks, (0, 1)).all():
        raise ValueError(f"masks must be boolean or 0/1, got values of dtype {masks.dtype}")
    if len(set(ids)) != len(ids):
        raise ValueError("mask ids must be unique")
    bits = np.packbits(masks.astype(bool).reshape(len(ids), -1), axis=1)
    arrays = {
        "schema": np.int64(SCHEMA),
        "ids": np.array(ids, dtype=str),
        "shape": np.array(masks.shape, dtype=np.int64),
        "bits": bits,
    }
    return atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def load_predicted_masks(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """{id: (H, W) bool mask} from a file written by :func:`save_predicted_masks`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            schema, ids = int(z["schema"]), [str(s) for s in z["ids"]]
            shape, bits = tuple(int(s) for s in z["shape"]), z["bits"]
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:  # damaged zip too
        raise DataError(f"{path}: not a predicted-mask file ({type(e).__name__}: {e})") from None
    if schema != SCHEMA:
        raise DataError(f"{path}: unsupported mask schema {schema} (this reads {SCHEMA})")
    n, h, w = shape
    if len(ids) != n or bits.shape[0] != n:
        raise DataError(f"{path}: {len(ids)} ids but {bits.shape[0]} masks (shape says {n})")
    flat = np.unpackbits(bits, axis=1, count=h * w).astype(bool)
    return {i: m.reshape(h, w) for i, m in zip(ids, flat, strict=True)}


def load_method_masks(method_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """All folds' predicted masks of one method folder, {id: mask}; an id twice is an error."""
    out: dict[str, np.ndarray] = {}
    for p in sorted(Path(method_dir).glob("fold_*_masks.npz")):
        if not _MASK_FILE.fullmatch(p.name):
            continue
        for k, v in load_predicted_masks(p).items():
            if k in out:
                raise DataError(f"{p}: image id {k!r} also appears in another fold's masks")
            out[k] = v
    return out


def out_of_fold_masks(method_dir: str | os.PathLike, fold: int, ids: list[str]):
    """{id: mask} of fold ``fold``'s test images from another method's results folder
    (``METHOD_DIR/fold_<fold>_masks.npz``, written by ``mtl-bench cv``).

    Out of fold by construction when that file's images are exactly ``ids``: its model was
    trained without them. Any other set (a run on another fold manifest) is a DataError.
    """
    path = Path(method_dir) / f"fold_{fold}_masks.npz"
    if not path.is_file():
        raise DataError(
            f"{path}: no predicted masks for fold {fold} (run `mtl-bench cv` for that method "
            "on this results folder first)"
        )
    masks = load_predicted_masks(path)
    if set(masks) != set(ids):
        n = len(set(masks) ^ set(ids))
        raise DataError(
            f"{path}: its images are not fold {fold}'s test images ({n} differ): the masks must "
            "come from a run on the same fold manifest"
        )
    return masks


def predicted_masks(engine: Any, state: dict, images: np.ndarray, batch_size: int = 32):
    """(N, H, W) bool masks (logit > 0) of the trained ``state`` on (N, H, W) uint8 ``images``.

    ``engine`` is the fold's :class:`mtl_bench.train.Engine` and ``state`` its canonical
    (single-copy) state, as ``fit_fold(..., keep_state=True)`` returns them.
    """
    import jax
    from flax import nnx

    from mtl_bench.batches import to_input

    graphdef = engine.graphdef
    if not all(getattr(x, "is_fully_addressable", True) for x in jax.tree.leaves(state)):
        # A multi-process run's state spans every process; its copy here runs on this process's
        # devices alone (no collective, so process 0 may do it while the others go on).
        from mtl_bench.parallel import fetch

        state = fetch(state)

    @jax.jit
    def forward(params, rest, x):
        out = nnx.merge(graphdef, params, rest)(to_input(x), train=False)
        return out["mask"][..., 0] > 0

    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W) uint8, got shape {images.shape}")
    pieces = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        pad = batch_size - len(chunk)  # one compiled shape for every chunk
        x = np.concatenate([chunk, np.repeat(chunk[:1], pad, 0)]) if pad else chunk
        pieces.append(np.asarray(forward(state["params"], state["rest"], x))[: len(chunk)])
    return np.concatenate(pieces) if pieces else np.zeros((0, *images.shape[1:]), bool)
