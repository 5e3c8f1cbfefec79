"""Read ``ROOT/{benign,malignant,normal}/NAME.png`` + ``NAME_mask[_k].png`` into a Dataset.

Questionable inputs give one ``DataWarning`` (``warnings.warn``) per kind, naming the files; bad
inputs raise ``DataError`` naming the file, or with ``strict=False`` are skipped and listed.
"""

from __future__ import annotations

import os
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtl_bench.data.png import load_grey_png, load_mask_counted, resize_pair
from mtl_bench.data.types import (
    ALL_CLASSES,
    DataError,
    Dataset,
    DataWarning,
    class_names,
    native_digest,
    source_fingerprint,
)

_MASK_RE = re.compile(r"^(?P<stem>.+)_mask(?:_(?P<k>\d+))?$", re.IGNORECASE)
CLASS_PROBLEMS = ("missing_class_folder", "empty_class_folder")
# Reason for a class folder outside the class set: listed as skipped, not warned about.
OTHER_CLASS = "class not in class set"
# Known non-image files at the root (the phantom's parameter record): listed, not warned about.
KNOWN_FILES = {"PHANTOM.json": "phantom parameters (known file)"}


@dataclass(frozen=True)
class BusiEntry:
    """An image file and its mask files (``()`` when none was found); id ``<class>/<stem>``."""

    image: Path
    masks: tuple[Path, ...]
    class_name: str
    id: str


@dataclass(frozen=True)
class Problem:
    """A bad input: its kind, the file and what is wrong."""

    kind: str
    path: str
    detail: str

    @property
    def message(self) -> str:
        return f"{self.path}: {self.detail}"


@dataclass
class ScanResult:
    """Entries in reading order, stray files (path, reason) and problems."""

    root: Path
    class_set: str
    entries: list[BusiEntry]
    skipped: list[tuple[str, str]]
    problems: list[Problem]


def natural_key(name: str) -> tuple:
    """Sort key reading digit runs as numbers: ``b (2)`` before ``b (10)``."""
    parts = re.split(r"(\d+)", unicodedata.normalize("NFC", name).casefold())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def scan_busi(root: str | os.PathLike, class_set: str = "three_class") -> ScanResult:
    """Find each class's image and mask files, decoding nothing; DataError if root is missing."""
    root = Path(root)
    names = class_names(class_set)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataError(f"{root}: BUSI folder {what} (expected {'/, '.join(names)}/ inside)")
    skipped: list[tuple[str, str]] = []
    problems: list[Problem] = []
    entries: list[BusiEntry] = []
    present = sorted(root.iterdir(), key=lambda p: natural_key(p.name))
    for child in (p for p in present if p.name not in names):
        if child.name in KNOWN_FILES:
            skipped.append((str(child), KNOWN_FILES[child.name]))
            continue
        other = child.name in ALL_CLASSES
        skipped.append((str(child), f"{OTHER_CLASS} {class_set!r}" if other else "not a class"))
    for cls in names:
        folder = root / cls
        if not folder.is_dir():
            found = ", ".join(p.name for p in present if p.is_dir()) or "nothing"
            problems.append(Problem(CLASS_PROBLEMS[0], str(folder), f"missing (found: {found})"))
        elif found := _scan_class(folder, cls, skipped, problems):
            entries.extend(found)
        else:
            problems.append(Problem(CLASS_PROBLEMS[1], str(folder), "class folder has no images"))
    return ScanResult(root, class_set, entries, skipped, problems)


def _scan_class(folder: Path, cls: str, skipped: list, problems: list) -> list[BusiEntry]:
    images: dict[str, Path] = {}
    masks: dict[str, list[tuple[int, Path]]] = {}
    for f in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if f.name.startswith("."):
            skipped.append((str(f), "hidden file"))
        elif f.is_dir():
            skipped.append((str(f), "sub-folder"))
        elif f.suffix.lower() != ".png":
            skipped.append((str(f), "not a .png file"))
        elif m := _MASK_RE.match(f.name[:-4]):
            # NFC so that names written on macOS (NFD) pair with masks written elsewhere.
            key = unicodedata.normalize("NFC", m["stem"])
            masks.setdefault(key, []).append((int(m["k"] or 0), f))
        else:
            key = unicodedata.normalize("NFC", f.name[:-4])
            if key in images:  # e.g. "a.png" beside "a.PNG": never drop one silently
                problems.append(Problem("duplicate_image", str(f), f"second image {key!r}"))
            images.setdefault(key, f)
    for key in sorted(set(masks) - set(images), key=natural_key):
        for _, m in masks[key]:
            detail = f"mask without image (no {key + '.png'!r})"
            problems.append(Problem("mask_without_image", str(m), detail))
    entries = []
    for key in sorted(images, key=natural_key):
        found = tuple(p for _, p in sorted(masks.get(key, [])))
        if not found:
            detail = f"image without mask (no {key + '_mask.png'!r})"
            problems.append(Problem("image_without_mask", str(images[key]), detail))
        entries.append(BusiEntry(images[key], found, cls, f"{cls}/{key}"))
    return entries


def decode_entry(entry: BusiEntry) -> tuple[Any, Any, list[Problem], list[Problem]]:
    """Native (grey image or None, OR-merged bool mask, errors, warnings) of one entry; errors
    (``undecodable``, ``size_mismatch``) make it unusable, warnings do not."""
    try:
        image = load_grey_png(entry.image)
    except DataError as e:
        return None, None, [_undecodable(entry.image, e)], []
    errors, warns = [], []
    merged = np.zeros(image.shape, dtype=bool)
    for path in entry.masks:
        try:
            mask, count = load_mask_counted(path)
        except DataError as e:
            errors.append(_undecodable(path, e))
            continue
        if mask.shape != image.shape:
            (h, w), (hi, wi) = mask.shape, image.shape
            detail = f"mask is {w}x{h} px but image {entry.image.name!r} is {wi}x{hi}"
            errors.append(Problem("size_mismatch", str(path), detail))
            continue
        merged |= mask
        if count:
            detail = f"{count} px neither 0 nor 255 (binarised at > 127)"
            warns.append(Problem("nonbinary_mask", str(path), detail))
    if entry.masks and not errors and entry.class_name != "normal" and not merged.any():
        warns.append(Problem("empty_lesion_mask", str(entry.image), "lesion with empty mask"))
    return image, merged, errors, warns


def _undecodable(path: Path, err: DataError) -> Problem:
    return Problem("undecodable", str(path), str(err).removeprefix(f"{path}: "))


def parallel_map(fn: Callable, items: Iterable) -> Iterator:
    """``map`` over threads, in order: Pillow releases the GIL while decoding PNGs."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        yield from pool.map(fn, items)


def _warn(noun: str, items: list[str], after: str = "") -> None:
    """``"N noun(s)after: first five; … k more"`` as one DataWarning (none for no items)."""
    if items:
        shown = "; ".join(items[:5]) + (f"; … {len(items) - 5} more" if len(items) > 5 else "")
        plural = "" if len(items) == 1 else "s"
        warnings.warn(f"{len(items)} {noun}{plural}{after}: {shown}", DataWarning, stacklevel=3)


def _skip_line(path: str, reason: str) -> str:
    """The skipped file, then why, naming it once: a decoding error's reason starts with its
    file; one about the entry's mask starts with the mask's path, shown by name only."""
    if reason.startswith(path):
        return reason
    folder = os.path.dirname(path) + os.sep
    return f"{path}: {reason.removeprefix(folder)}"


def _fail(messages: list[str], root: Path) -> DataError:
    more = f" (+{len(messages) - 1} more; `mtl-bench data check {root}` lists all)"
    return DataError(messages[0] + (more if len(messages) > 1 else ""))


def read_busi(
    root: str | os.PathLike,
    image_size: int | tuple[int, int] = 256,
    class_set: str = "binary",
    *,
    strict: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Decode, OR-merge masks, convert to grey and resize (bilinear; masks nearest) a BUSI folder.

    Ids ``"<class>/<stem>"``: classes in ``CLASS_SETS`` order, names in natural order. Bad files
    raise DataError (``strict``) or are left out, listed in ``Dataset.skipped`` and warned about;
    missing or empty class folders always raise. ``progress(done, total)`` follows decoding.
    """
    hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(hw) != 2 or not all(isinstance(s, int) and s > 0 for s in hw):
        raise DataError(f"image_size {image_size!r}: expected a positive int or (height, width)")
    names = class_names(class_set)
    scan = scan_busi(root, class_set)
    fatal = [p for p in scan.problems if p.kind in CLASS_PROBLEMS]
    if fatal or (strict and scan.problems):
        raise _fail([p.message for p in fatal or scan.problems], scan.root)
    skipped = list(scan.skipped) + [(p.path, p.detail) for p in scan.problems]
    bad = {p.path for p in scan.problems}
    todo = [e for e in scan.entries if str(e.image) not in bad]

    def work(entry: BusiEntry) -> tuple:  # resizes at once, so memory stays bounded
        image, mask, errors, warns = decode_entry(entry)
        if errors:
            return None, errors, warns
        small = resize_pair(image, mask, hw)  # type: ignore[arg-type]
        if entry.class_name != "normal" and mask.any() and not small[1].any():
            warns.append(Problem("empty_lesion_mask", str(entry.image), "mask vanished in resize"))
        return (*small, native_digest(image, mask)), errors, warns

    decoded, errors, warns = [], [], []
    results = zip(todo, parallel_map(work, todo), strict=True)
    for done, (entry, (out, errs, w)) in enumerate(results, 1):
        errors += [(str(entry.image), p.message) for p in errs]  # the message names the mask
        decoded += [(entry, out)] if out is not None else []
        warns += w
        if progress is not None:
            progress(done, len(todo))
    if strict and errors:
        raise _fail([r for _, r in errors], scan.root)
    skipped += errors
    for cls in sorted(set(names) - {e.class_name for e, _ in decoded}):
        raise DataError(f"{scan.root / cls}: no usable images in class {cls!r}")
    for kind in dict.fromkeys(p.kind for p in warns):
        _warn(kind.replace("_", " "), [p.message for p in warns if p.kind == kind])
    quiet = (OTHER_CLASS, *KNOWN_FILES.values())
    _warn("file", [_skip_line(p, r) for p, r in skipped if not r.startswith(quiet)], " skipped")
    return Dataset(
        images=np.stack([out[0] for _, out in decoded]),
        masks=np.stack([out[1] for _, out in decoded]).astype(np.uint8),
        labels=np.array([names.index(e.class_name) for e, _ in decoded], dtype=np.int32),
        ids=[e.id for e, _ in decoded],
        class_names=names,
        skipped=skipped,
        source=f"busi:{scan.root}",
        source_fingerprint=source_fingerprint(
            [e.id for e, _ in decoded], [o[2] for _, o in decoded]
        ),
    )
