"""Exact and near-duplicate images, and the group each sample belongs to (for folds).

*exact*: identical decoded grey pixels (SHA-256); *near*: DCT pHash (8x8 lowest frequencies of a
32x32 thumbnail vs their median) <= ``near_threshold`` bits apart. On ultrasound-like images of
BUSI size resized/noised/JPEG copies moved <= 4 of 64 bits and a different lesion on the same
tissue nearly always >= 8: default 6. Groups are connected components (near pairs chain); a group
spanning labels is ``cross_class`` (label leakage). ``group_index`` numbers them so the folds keep
each group inside one fold; ``mtl_bench/data/check.py`` audits a BUSI folder with them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.fft import dctn
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def default_near_threshold(hash_size: int = 8) -> int:
    """Default near-duplicate Hamming threshold: 6 bits per 64, scaled to ``hash_size**2``."""
    return round(6 / 64 * hash_size**2)


@dataclass(frozen=True)
class DuplicateGroup:
    """Samples that are copies of each other; ``indices`` are positions in the audited order."""

    ids: tuple[str, ...]
    indices: tuple[int, ...]
    kind: str  # "exact": all members pixel-identical; "near": perceptual-hash match
    cross_class: bool  # members carry different labels: label leakage


def thumbnail(image: np.ndarray, hash_size: int) -> np.ndarray:
    """The (4·hash_size)² float32 thumbnail a pHash is taken of (check_busi keeps these, not
    the decoded images, while it reads a folder)."""
    # Pillow's bilinear averages the whole footprint when shrinking: speckle goes.
    side = 4 * hash_size
    small = Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float32)


def phash_bits(thumbs: np.ndarray, hash_size: int) -> np.ndarray:
    """(N, hash_size²) bool pHashes of stacked :func:`thumbnail` outputs."""
    low = dctn(thumbs, type=2, axes=(1, 2), norm="ortho")[:, :hash_size, :hash_size]
    low = low.reshape(len(thumbs), -1)
    # The DC term only encodes brightness; the median of the rest makes the hash contrast-free.
    med = np.median(low[:, 1:], axis=1, keepdims=True)
    return low > med


def phash(images: np.ndarray, hash_size: int = 8) -> np.ndarray:
    """DCT perceptual hashes of (N, H, W) uint8 images: (N, hash_size**2) bool."""
    if len(images) == 0:
        return np.zeros((0, hash_size * hash_size), dtype=bool)
    return phash_bits(np.stack([thumbnail(im, hash_size) for im in images]), hash_size)


def hamming_pairs(bits: np.ndarray, threshold: int, block: int = 2048) -> np.ndarray:
    """(P, 2) pairs i < j of hashes at most ``threshold`` bits apart, by blocks of matmuls."""
    b = bits.astype(np.float32)
    nb = b.shape[1]
    pairs = []
    for start in range(0, len(b), block):
        rows = b[start : start + block]
        dist = nb - (rows @ b.T + (1 - rows) @ (1 - b).T)  # agreements; exact in float32
        i, j = np.nonzero(dist <= threshold + 0.5)
        i += start
        pairs.append(np.stack([i[i < j], j[i < j]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def build_groups(
    ids: list[str], labels: np.ndarray, keys: list[str], bits: np.ndarray, threshold: int
) -> list[DuplicateGroup]:
    """Groups (>= 2 members, in order of first member) joining equal ``keys`` (exact copies)
    and hashes at most ``threshold`` bits apart (near copies), chained as connected components."""
    n = len(ids)
    first: dict[str, int] = {}
    exact = [(first.setdefault(k, i), i) for i, k in enumerate(keys)]
    exact = np.array([p for p in exact if p[0] != p[1]], dtype=np.int64).reshape(-1, 2)
    pairs = np.concatenate([exact, hamming_pairs(bits, threshold)])
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    groups = []
    for c in dict.fromkeys(comp.tolist()):  # components in order of their first member
        if len(idx := np.flatnonzero(comp == c).tolist()) < 2:
            continue
        kind = "exact" if len({keys[i] for i in idx}) == 1 else "near"
        cross = len({int(labels[i]) for i in idx}) > 1
        groups.append(DuplicateGroup(tuple(ids[i] for i in idx), tuple(idx), kind, cross))
    return groups


def content_key(image: np.ndarray) -> str:
    """SHA-256 of shape and pixels: equal keys are exact copies."""
    return hashlib.sha256(f"{image.shape}".encode() + image.tobytes()).hexdigest()


def duplicate_groups(
    images: np.ndarray,
    ids: list[str],
    labels: np.ndarray,
    *,
    hash_size: int = 8,
    near_threshold: int | None = None,
) -> list[DuplicateGroup]:
    """Exact and near-duplicate groups (>= 2 members) among in-memory (N, H, W) uint8 images.

    ``near_threshold`` None: ``default_near_threshold(hash_size)``; negative: exact only.
    """
    if not len(images) == len(ids) == len(labels):
        raise ValueError(f"{len(images)} images, {len(ids)} ids, {len(labels)} labels differ")
    thr = default_near_threshold(hash_size) if near_threshold is None else near_threshold
    keys = [content_key(im) for im in images]
    return build_groups(list(ids), np.asarray(labels), keys, phash(images, hash_size), thr)


def group_index(groups: list[DuplicateGroup], n: int, ids: list[str] | None = None) -> np.ndarray:
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
    number: dict[int, int] = {}  # key: group g >= 0, or -1 - i for a singleton
    return np.array(
        [
            number.setdefault(g if g >= 0 else -1 - i, len(number))
            for i, g in enumerate(owner.tolist())
        ],
        dtype=np.int64,
    )
