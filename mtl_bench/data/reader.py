"""Read ``ROOT/{benign,malignant,normal}/NAME.png`` + ``NAME_mask[_k].png`` into a Dataset.

Questionable inputs give one ``DataWarning`` (``warnings.warn``) per kind, naming the files; bad
inputs raise ``DataError`` naming the file, or with ``strict=False`` are skipped and listed (one
warning line for them, another for stray files). Finding the files: ``reader_scan``; decoding
and auditing one image with its masks: ``reader_entry``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mtl_bench.data.png import resize_pair
from mtl_bench.data.reader_entry import decode_entry
from mtl_bench.data.reader_scan import (
    CLASS_PROBLEMS,
    HIDDEN,
    KNOWN_FILES,
    OTHER_CLASS,
    UNREAD,
    BusiEntry,
    Problem,
    ScanResult,
    class_folders,
    natural_key,
    scan_busi,
)
from mtl_bench.data.types import (
    DataError,
    Dataset,
    DataWarning,
    class_names,
    native_digest,
    source_fingerprint,
)

# The scanning half lives in reader_scan; its names are re-exported here.
__all__ = [
    "CLASS_PROBLEMS",
    "HIDDEN",
    "KNOWN_FILES",
    "OTHER_CLASS",
    "BusiEntry",
    "DataWarning",
    "Problem",
    "ScanResult",
    "class_folders",
    "decode_entry",
    "natural_key",
    "parallel_map",
    "read_busi",
    "scan_busi",
]


def parallel_map(fn: Callable, items: Iterable) -> Iterator:
    """``map`` over threads, in order: Pillow releases the GIL while decoding PNGs."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        yield from pool.map(fn, items)


def _warn(noun: str, items: list[str], after: str = "") -> None:
    """``"N noun(s)after: first five; … k more"`` as one DataWarning (none for no items); the
    rest are listed by ``mtl-bench data check`` (and skipped files in each fold's record)."""
    if items:
        more = f"; … {len(items) - 5} more (`mtl-bench data check` lists them)"
        shown = "; ".join(items[:5]) + (more if len(items) > 5 else "")
        plural = "" if len(items) == 1 else "s"
        warnings.warn(f"{len(items)} {noun}{plural}{after}: {shown}", DataWarning, stacklevel=3)


def _skip_line(path: str, reason: str) -> str:
    """The skipped file, then why, naming it once: a decoding error's reason starts with its
    file; one about the entry's mask starts with the mask's path, shown by name only."""
    if reason.startswith(path):
        return reason
    folder = os.path.dirname(path) + os.sep
    return f"{path}: {reason.removeprefix(folder)}"


def _fail(messages: list[str], root: Path, before_decoding: bool = False) -> DataError:
    """The first problem, and how many more were found. Layout problems stop the read before
    any file is decoded, so files that would not decode are not counted then: ``data check``,
    which decodes every file, lists all."""
    if len(messages) == 1:
        return DataError(messages[0])
    when = " found before decoding any file" if before_decoding else ""
    more = f" (+{len(messages) - 1} more{when}; `mtl-bench data check {root}` lists all)"
    return DataError(messages[0] + more)


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
    one = not isinstance(image_size, tuple | list)  # 32.0 or "32": said below, not a TypeError
    hw = (image_size, image_size) if one else tuple(image_size)
    if len(hw) != 2 or not all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and s > 0 for s in hw
    ):
        raise DataError(f"image_size {image_size!r}: expected a positive int or (height, width)")
    names = class_names(class_set)
    scan = scan_busi(root, class_set)
    fatal = [p for p in scan.problems if p.kind in CLASS_PROBLEMS]
    if fatal or (strict and scan.problems):
        raise _fail([p.message for p in fatal or scan.problems], scan.root, before_decoding=True)
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
    # Bad inputs first, in a line of their own: they are data left out, unlike stray files.
    _warn("file", [_skip_line(p, r) for p, r in skipped[len(scan.skipped) :]], " skipped")
    quiet = (OTHER_CLASS, HIDDEN, *KNOWN_FILES.values())
    stray = [(p, r) for p, r in scan.skipped if not r.startswith(quiet)]
    # Images where the reader does not look (a JPEG, a sub-folder of PNGs): data left out.
    _warn("unread image", [_skip_line(p, r) for p, r in stray if UNREAD in r], " skipped")
    _warn("stray file", [_skip_line(p, r) for p, r in stray if UNREAD not in r], " skipped")
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
