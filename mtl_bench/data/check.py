"""Integrity and duplicate audit of a BUSI folder (``mtl-bench data check DIR [--json]``).

Integrity errors make ``ok`` False; non-binary or empty lesion masks are warnings; duplicates
are only reported (BUSI has ~19 %, 8 lesions both benign and malignant): ``group_index`` keeps
each group inside one fold. *exact*: identical decoded grey pixels (SHA-256); *near*: DCT pHash
(8x8 lowest frequencies of a 32x32 thumbnail vs their median) <= ``near_threshold`` bits apart.
On ultrasound-like images of BUSI size resized/noised/JPEG copies moved <= 4 of 64 bits and a
different lesion on the same tissue nearly always >= 8: default 6. Groups are connected
components (near pairs chain); a group spanning labels is ``cross_class`` (label leakage).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.fft import dctn
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from mtl_bench.data.reader import BusiEntry, Problem, decode_entry, parallel_map, scan_busi
from mtl_bench.data.types import class_names


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


def _thumb(image: np.ndarray, hash_size: int) -> np.ndarray:
    # Pillow's bilinear averages the whole footprint when shrinking: speckle goes.
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


def _build_groups(
    ids: list[str], labels: np.ndarray, keys: list[str], bits: np.ndarray, threshold: int
) -> list[DuplicateGroup]:
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


def _content_key(image: np.ndarray) -> str:
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
    keys = [_content_key(im) for im in images]
    return _build_groups(list(ids), np.asarray(labels), keys, phash(images, hash_size), thr)


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


@dataclass
class CheckReport:
    """What ``check_busi`` found; ``ok`` means no integrity errors (duplicates are reported)."""

    root: str
    class_set: str
    counts: dict[str, int]  # image files per class
    multi_mask: int  # images with several mask files (OR-merged by the reader)
    errors: list[Problem]
    warnings: list[Problem]
    skipped: list[tuple[str, str]]
    groups: list[DuplicateGroup]
    ids: list[str]  # the decodable images, in order: group indices point here
    hash_size: int
    near_threshold: int

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def in_groups(self) -> int:
        return sum(len(g.ids) for g in self.groups)

    @property
    def duplicate_percent(self) -> float:
        return 100.0 * self.in_groups / max(len(self.ids), 1)

    @property
    def leakage(self) -> list[DuplicateGroup]:
        return [g for g in self.groups if g.cross_class]

    def to_dict(self) -> dict:
        """Everything as JSON-able dicts and lists (``--json``)."""
        return {
            "root": self.root,
            "class_set": self.class_set,
            "ok": self.ok,
            "counts": dict(self.counts),
            "images": sum(self.counts.values()),
            "multi_mask_images": self.multi_mask,
            "errors": [asdict(p) for p in self.errors],
            "warnings": [asdict(p) for p in self.warnings],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "duplicates": {
                "hash_size": self.hash_size,
                "near_threshold": self.near_threshold,
                "groups": [
                    {"kind": g.kind, "cross_class": g.cross_class, "ids": list(g.ids)}
                    for g in self.groups
                ],
                "images_in_groups": self.in_groups,
                "percent_in_groups": round(self.duplicate_percent, 2),
                "leakage_groups": len(self.leakage),
            },
        }

    def format(self, limit: int = 20) -> str:
        """A readable report; at most ``limit`` lines per problem kind (``--json`` has all)."""
        rel = lambda p: os.path.relpath(p, self.root)  # noqa: E731  (paths lie under root)
        status = "OK" if self.ok else f"FAILED ({len(self.errors)} errors)"
        per_class = ", ".join(f"{c} {n}" for c, n in self.counts.items())
        lines = [
            f"BUSI check of {self.root} (class set {self.class_set}): {status}",
            f"images: {per_class} ({sum(self.counts.values())} total); "
            f"{self.multi_mask} with several masks (OR-merged)",
        ]
        for title, probs in (("errors", self.errors), ("warnings", self.warnings)):
            lines.append(f"{title}: {len(probs)}")
            for kind in dict.fromkeys(p.kind for p in probs):
                of_kind = [p for p in probs if p.kind == kind]
                lines.append(f"  {kind} ({len(of_kind)}):")
                lines += [f"    {rel(p.path)}: {p.detail}" for p in of_kind[:limit]]
                if len(of_kind) > limit:
                    lines.append(f"    … {len(of_kind) - limit} more (--json lists all)")
        lines.append(f"skipped files: {len(self.skipped)}")
        lines += [f"  {rel(p)}: {r}" for p, r in self.skipped[:limit]]
        lines += [f"  … {len(self.skipped) - limit} more"] if len(self.skipped) > limit else []
        exact = sum(g.kind == "exact" for g in self.groups)
        lines.append(
            f"duplicate groups: {len(self.groups)} ({exact} exact, {len(self.groups) - exact} "
            f"near at <= {self.near_threshold} of {self.hash_size**2} pHash bits); "
            f"{self.in_groups} of {len(self.ids)} images in groups ({self.duplicate_percent:.1f} %)"
        )
        for g in self.groups:
            flag = ", LABEL LEAKAGE" if g.cross_class else ""
            lines.append(f"  {g.kind}{flag}: {', '.join(g.ids)}")
        lines.append(f"label leakage: {len(self.leakage)} groups span two classes")
        return "\n".join(lines)


def _audit(entry: BusiEntry, hash_size: int) -> tuple:
    """(content key, pHash thumbnail, errors, warnings); the pixels themselves are dropped."""
    image, _, errors, warns = decode_entry(entry)
    if image is None:
        return None, None, errors, warns
    return _content_key(image), _thumb(image, hash_size), errors, warns


def check_busi(
    root: str | os.PathLike,
    *,
    class_set: str = "auto",
    hash_size: int = 8,
    near_threshold: int | None = None,
) -> CheckReport:
    """Audit every file of a BUSI folder, then find duplicates and label leakage.

    ``class_set`` "auto": three_class when the folder has a ``normal`` sub-folder, else binary
    (the report names the set it checked). A missing root raises DataError (``scan_busi``);
    every other finding is in the report.
    """
    if hash_size < 2:
        raise ValueError(f"hash_size {hash_size}: must be at least 2")
    if class_set == "auto":
        class_set = "three_class" if (Path(root).expanduser() / "normal").is_dir() else "binary"
    thr = default_near_threshold(hash_size) if near_threshold is None else near_threshold
    scan = scan_busi(root, class_set)
    names = class_names(class_set)
    audits = list(parallel_map(lambda e: _audit(e, hash_size), scan.entries))
    good = [(e, a) for e, a in zip(scan.entries, audits, strict=True) if a[0] is not None]
    ids = [e.id for e, _ in good]
    groups = []
    if good:
        labels = np.array([names.index(e.class_name) for e, _ in good])
        bits = _phash_bits(np.stack([a[1] for _, a in good]), hash_size)
        groups = _build_groups(ids, labels, [a[0] for _, a in good], bits, thr)
    return CheckReport(
        root=str(scan.root),
        class_set=class_set,
        counts={c: sum(e.class_name == c for e in scan.entries) for c in names},
        multi_mask=sum(len(e.masks) > 1 for e in scan.entries),
        errors=scan.problems + [p for a in audits for p in a[2]],
        warnings=[p for a in audits for p in a[3]],
        skipped=scan.skipped,
        groups=groups,
        ids=ids,
        hash_size=hash_size,
        near_threshold=thr,
    )
