"""Integrity and duplicate audit of a BUSI folder (``mtl-bench data check DIR [--json]``).

Integrity errors make ``ok`` False; non-binary or empty lesion masks are warnings; duplicates
are only reported (BUSI has ~19 %, 8 lesions both benign and malignant), exact and near copies as
``mtl_bench/data/duplicates.py`` defines them; the folds keep each group inside one fold.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mtl_bench.data.duplicates import (
    DuplicateGroup,
    build_groups,
    content_key,
    default_near_threshold,
    phash_bits,
    thumbnail,
)
from mtl_bench.data.reader import BusiEntry, Problem, parallel_map
from mtl_bench.data.reader_entry import decode_entry
from mtl_bench.data.reader_scan import class_folders, scan_busi, unread_images
from mtl_bench.data.types import class_names


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
        n = len(self.errors)
        status = "OK" if self.ok else f"FAILED ({n} error{'s' * (n != 1)})"
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
        lines += [f"  … {len(self.skipped) - limit} more (--json lists all)"] * (
            len(self.skipped) > limit
        )
        exact = sum(g.kind == "exact" for g in self.groups)
        lines.append(
            f"duplicate groups: {len(self.groups)} ({exact} exact, {len(self.groups) - exact} "
            f"near at <= {self.near_threshold} of {self.hash_size**2} pHash bits); "
            f"{self.in_groups} of {len(self.ids)} images in groups ({self.duplicate_percent:.1f} %)"
        )
        for g in self.groups:
            flag = ", LABEL LEAKAGE" if g.cross_class else ""
            lines.append(f"  {g.kind}{flag}: {', '.join(g.ids)}")
        n = len(self.leakage)
        lines.append(f"label leakage: {n} group{'s' * (n != 1)} span{'s' * (n == 1)} two classes")
        return "\n".join(lines)


def _audit(entry: BusiEntry, hash_size: int) -> tuple:
    """(content key, pHash thumbnail, errors, warnings); the pixels themselves are dropped."""
    image, _, errors, warns = decode_entry(entry)
    if image is None:
        return None, None, errors, warns
    return content_key(image), thumbnail(image, hash_size), errors, warns


def check_busi(
    root: str | os.PathLike,
    *,
    class_set: str = "auto",
    hash_size: int = 8,
    near_threshold: int | None = None,
) -> CheckReport:
    """Audit every file of a BUSI folder, then find duplicates and label leakage.

    ``class_set`` "auto": three_class when the folder has a ``normal`` sub-folder (in any case),
    else binary (the report names the set it checked). A missing root raises DataError
    (``scan_busi``); every other finding is in the report.
    """
    if hash_size < 2:
        raise ValueError(f"hash_size {hash_size}: must be at least 2")
    if class_set == "auto":
        class_set = "three_class" if class_folders(Path(root).expanduser())["normal"] else "binary"
    thr = default_near_threshold(hash_size) if near_threshold is None else near_threshold
    scan = scan_busi(root, class_set)
    names = class_names(class_set)
    audits = list(parallel_map(lambda e: _audit(e, hash_size), scan.entries))
    good = [(e, a) for e, a in zip(scan.entries, audits, strict=True) if a[0] is not None]
    ids = [e.id for e, _ in good]
    groups = []
    if good:
        labels = np.array([names.index(e.class_name) for e, _ in good])
        bits = phash_bits(np.stack([a[1] for _, a in good]), hash_size)
        groups = build_groups(ids, labels, [a[0] for _, a in good], bits, thr)
    return CheckReport(
        root=str(scan.root),
        class_set=class_set,
        counts={c: sum(e.class_name == c for e in scan.entries) for c in names},
        multi_mask=sum(len(e.masks) > 1 for e in scan.entries),
        errors=scan.problems + [p for a in audits for p in a[2]],
        warnings=unread_images(scan.skipped) + [p for a in audits for p in a[3]],
        skipped=scan.skipped,
        groups=groups,
        ids=ids,
        hash_size=hash_size,
        near_threshold=thr,
    )
