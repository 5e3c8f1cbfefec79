"""Integrity and duplicate audit of a BUSI folder (``mtl-bench data check DIR [--json]``).

Integrity errors (``CheckReport.ok`` is False): missing/empty class folders, images without mask,
masks without image, undecodable files, image/mask size mismatch. Warnings: masks with values
other than 0/255, lesion images with an empty mask, stray files. Duplicates are reported, not
errors: BUSI itself holds them, and the folds keep each group on one side (``group_index``).

Duplicates: *exact* when the decoded grey pixels are identical (SHA-256 over shape and bytes);
*near* when the DCT perceptual hashes (pHash) differ in at most ``near_threshold`` bits. The pHash
is the sign of the 8x8 lowest DCT frequencies (minus their median) of the image shrunk to 32x32,
so it survives resizing, re-encoding and mild noise; the default threshold (6 of 64 bits) was
chosen on ultrasound-like test images, where a different lesion on the same background moves
the hash by well over 6 bits. Groups are connected components (near pairs chain), and a group
whose members carry different labels is flagged ``cross_class`` (label leakage).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image
from scipy.fft import dctn
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from mtl_bench.data.reader import (
    BusiEntry,
    DataError,
    Problem,
    load_grey_png,
    load_mask_counted,
    parallel_map,
    scan_busi,
)

NEAR_FRACTION = 6 / 64  # default near-duplicate threshold as a fraction of the hash bits


def default_near_threshold(hash_size: int = 8) -> int:
    """Default Hamming threshold for ``hash_size**2``-bit hashes (6 bits for 64)."""
    return round(NEAR_FRACTION * hash_size * hash_size)


@dataclass(frozen=True)
class DuplicateGroup:
    """Samples that are copies of each other; ``indices`` are positions in the audited order."""

    ids: tuple[str, ...]
    indices: tuple[int, ...]
    kind: str  # "exact": all members pixel-identical; "near": perceptual-hash match
    cross_class: bool  # members carry different labels: label leakage


def _thumb(image: np.ndarray, hash_size: int) -> np.ndarray:
    # Pillow's bilinear averages over the whole footprint when shrinking, which removes speckle.
    side = 4 * hash_size
    small = Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float32)


def _phash_bits(thumbs: np.ndarray, hash_size: int) -> np.ndarray:
    low = dctn(thumbs, type=2, axes=(1, 2), norm="ortho")[:, :hash_size, :hash_size]
    low = low.reshape(len(thumbs), -1)
    # The DC term only encodes brightness; the median of the rest makes the hash contrast-free.
    med = np.median(low[:, 1:], axis=1, keepdims=True)
    return low > med


def phash(images: np.ndarray, hash_size: int = 8) -> np.ndarray:
    """DCT perceptual hashes of (N, H, W) uint8 images: (N, hash_size**2) bool."""
    if len(images) == 0:
        return np.zeros((0, hash_size * hash_size), dtype=bool)
    return _phash_bits(np.stack([_thumb(im, hash_size) for im in images]), hash_size)


def hamming_pairs(bits: np.ndarray, threshold: int, block: int = 2048) -> np.ndarray:
    """Pairs (i < j) whose hashes differ in at most ``threshold`` bits, as a (P, 2) int array.

    One matrix product per block of rows: agreements = b·bᵀ + (1-b)·(1-b)ᵀ (exact in float32).
    """
    b = bits.astype(np.float32)
    nb = b.shape[1]
    pairs = []
    for start in range(0, len(b), block):
        rows = b[start : start + block]
        dist = nb - (rows @ b.T + (1 - rows) @ (1 - b).T)
        i, j = np.nonzero(dist <= threshold + 0.5)
        i += start
        pairs.append(np.stack([i[i < j], j[i < j]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def _build_groups(
    ids: list[str], labels: np.ndarray, keys: list[str], bits: np.ndarray, threshold: int
) -> list[DuplicateGroup]:
    n = len(ids)
    first: dict[str, int] = {}
    exact = [(first.setdefault(k, i), i) for i, k in enumerate(keys) if first.get(k, i) != i]
    pairs = np.concatenate([np.array(exact, dtype=np.int64).reshape(-1, 2), hamming_pairs(bits, threshold)])
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    members: dict[int, list[int]] = {}
    for i, c in enumerate(comp):
        members.setdefault(int(c), []).append(i)
    groups = []
    for idx in sorted((m for m in members.values() if len(m) > 1), key=lambda m: m[0]):
        kind = "exact" if len({keys[i] for i in idx}) == 1 else "near"
        cross = len({int(labels[i]) for i in idx}) > 1
        groups.append(DuplicateGroup(tuple(ids[i] for i in idx), tuple(idx), kind, cross))
    return groups


def _content_key(image: np.ndarray) -> str:
    return hashlib.sha256(repr(image.shape).encode() + np.ascontiguousarray(image).tobytes()).hexdigest()


def duplicate_groups(
    images: np.ndarray,
    ids: list[str],
    labels: np.ndarray,
    *,
    hash_size: int = 8,
    near_threshold: int | None = None,
) -> list[DuplicateGroup]:
    """Exact and near-duplicate groups (>= 2 members) among in-memory (N, H, W) uint8 images."""
    if not len(images) == len(ids) == len(labels):
        raise ValueError(f"images {len(images)}, ids {len(ids)}, labels {len(labels)}: lengths differ")
    thr = default_near_threshold(hash_size) if near_threshold is None else near_threshold
    keys = [_content_key(im) for im in images]
    return _build_groups(list(ids), np.asarray(labels), keys, phash(images, hash_size), thr)


def group_index(
    groups: list[DuplicateGroup], n: int, ids: list[str] | None = None
) -> np.ndarray:
    """(n,) int group number per sample, numbered in order of first member; singletons alone.

    Without ``ids`` groups are matched by ``indices``; with ``ids`` (the order of the data being
    split) by id, ignoring members not present, so groups from ``check_busi`` fit any subset.
    """
    owner = np.full(n, -1, dtype=np.int64)
    where = {s: i for i, s in enumerate(ids)} if ids is not None else None
    for g, group in enumerate(groups):
        pos = [where[s] for s in group.ids if s in where] if where is not None else group.indices
        for i in pos:
            if not 0 <= i < n:
                raise ValueError(f"duplicate group {group.ids}: index {i} outside 0..{n - 1}")
            if owner[i] not in (-1, g):
                raise ValueError(f"sample {i} belongs to two duplicate groups")
            owner[i] = g
    out = np.empty(n, dtype=np.int64)
    number: dict[tuple[int, int], int] = {}
    for i in range(n):
        key = (0, int(owner[i])) if owner[i] >= 0 else (1, i)
        out[i] = number.setdefault(key, len(number))
    return out
