"""Find the files of a BUSI folder without decoding: ``ROOT/<class>/NAME.png`` + masks.

Class folders match their names in any case (``Benign/``), as they do on a case-insensitive
file system anyway; two that differ only in case are an error. Ids keep the lower-case class.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from mtl_bench.data.types import ALL_CLASSES, DataError, class_names

MASK_RE = re.compile(r"^(?P<stem>.+)_mask(?:_(?P<k>\d+))?$", re.IGNORECASE)
CLASS_PROBLEMS = ("missing_class_folder", "empty_class_folder", "ambiguous_class_folder")
# Reason for a class folder outside the class set: listed as skipped, not warned about.
OTHER_CLASS = "class not in class set"
# Hidden files (.DS_Store, macOS's ._NAME resource forks): listed as skipped, not warned about.
HIDDEN = "hidden file"
# Known non-image files at the root (the phantom's parameter record): listed, not warned about.
KNOWN_FILES = {"PHANTOM.json": "phantom parameters (known file)"}
# Images the reader does not read (it reads PNG only, as BUSI ships): skipped, and the skip says
# so, as does ``data check``'s warning ``unread_images``: an image pair in JPEG and a sub-folder
# of PNGs were dropped while the check said OK.
OTHER_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF", ".webp": "WebP", ".dcm": "DICOM",
                 ".heic": "HEIC", ".jp2": "JPEG 2000", ".avif": "AVIF"}  # fmt: skip
UNREAD = "not read:"


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


def class_folders(root: str | os.PathLike) -> dict[str, list[Path]]:
    """The sub-folders of ``root`` named after each class in any case (exact name first)."""
    found: dict[str, list[Path]] = {c: [] for c in ALL_CLASSES}
    root = Path(root)
    if root.is_dir():
        for p in sorted(root.iterdir(), key=lambda p: (p.name.casefold() != p.name, p.name)):
            if p.name.casefold() in found and p.is_dir():
                found[p.name.casefold()].append(p)
    return found


def scan_busi(root: str | os.PathLike, class_set: str = "three_class") -> ScanResult:
    """Find each class's image and mask files, decoding nothing; DataError if root is missing."""
    if not str(root).strip():  # Path("") is the working folder: an unset variable, not a choice
        raise DataError("BUSI folder '': empty path (an unset variable?)")
    root = Path(root).expanduser()  # a quoted "~/BUSI" (a config, a script) as the shell would
    names = class_names(class_set)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataError(f"{root}: BUSI folder {what} (expected {'/, '.join(names)}/ inside)")
    skipped: list[tuple[str, str]] = []
    problems: list[Problem] = []
    entries: list[BusiEntry] = []
    folders = class_folders(root)
    present = sorted(root.iterdir(), key=lambda p: natural_key(p.name))
    for child in present:
        cls = child.name.casefold()
        if child.name in KNOWN_FILES:
            skipped.append((str(child), KNOWN_FILES[child.name]))
        elif child.name.startswith("."):
            skipped.append((str(child), HIDDEN))
        elif child in folders.get(cls, []):
            if cls not in names:
                skipped.append((str(child), f"{OTHER_CLASS} {class_set!r}"))
        elif child.name not in names:
            skipped.append((str(child), "not a class"))
    here = root.resolve()  # resolved: `--data .` from inside a class folder
    if (
        not any(folders[c] for c in names)
        and here.name.casefold() in ALL_CLASSES  # any class: normal/ in a binary run too
        and any(p.suffix.lower() == ".png" for p in present)
    ):  # one line on the folder given, not one per class missing inside it
        detail = f"{here.name!r} is a class folder: give the folder that holds it ({here.parent})"
        problems.append(Problem(CLASS_PROBLEMS[0], str(root), detail))
        return ScanResult(root, class_set, entries, skipped, problems)
    for cls in names:
        found = folders[cls]
        if not found:
            seen = ", ".join(p.name for p in present if p.is_dir()) or "nothing"
            files = [p.name for p in present if p.name.casefold() == cls and not p.is_dir()]
            why = f"; {files[0]!r} is a file, not a folder" if files else ""
            if (root / "dataset_info.json").is_file():  # data prepare's output, not its input
                why += "; this is a TFDS build: give the BUSI folder it was built from"
            detail = f"missing (found: {seen}){why}{_inner_hint(present, names)}"
            problems.append(Problem(CLASS_PROBLEMS[0], str(root / cls), detail))
            continue
        for extra in found[1:]:
            detail = f"second {cls!r} class folder beside {found[0].name!r} (merge them)"
            problems.append(Problem(CLASS_PROBLEMS[2], str(extra), detail))
        if got := _scan_class(found[0], cls, skipped, problems):
            entries.extend(got)
        else:
            problems.append(Problem(CLASS_PROBLEMS[1], str(found[0]), "class folder has no images"))
    return ScanResult(root, class_set, entries, skipped, problems)


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _inner_hint(present: list[Path], names: tuple[str, ...]) -> str:
    """Where a sub-folder holds the classes (the parent of ``Dataset_BUSI_with_GT`` was given)."""
    for p in present:
        if p.is_dir() and all(class_folders(p)[c] for c in names):
            return f"; {p.name!r} holds the class folders: give that folder"
    return ""


# "mask" not followed by a letter: "_mask1", "_mask (1)", " mask" look like masks; "masking" not.
_LOOSE_MASK_RE = re.compile(r"^(?P<stem>.+?)[ _-]*mask(?![a-z])", re.IGNORECASE)


def _odd_mask(stem: str) -> str:
    """A hint when an unpaired "image" is named like a mask the reader does not recognise, as a
    file manager's copy ``benign (5)_mask (1).png`` or ``benign (5) mask.png``."""
    m = _LOOSE_MASK_RE.match(stem)
    if not m:
        return ""
    known = "masks are named NAME_mask.png or NAME_mask_K.png"
    return f"; it looks like a mask of {m['stem']!r}: {known}"


def folder_images(folder: Path, limit: int = 5000) -> int:
    """Image files (PNG or ``OTHER_FORMATS``, not hidden) in ``folder`` and the folders under it,
    looking at no more than ``limit`` entries; a linked folder one level only (a link to a disk
    of scans must not slow every read); 0 if it cannot be read."""

    def images(names: list[str]) -> int:
        suffixes = [Path(n).suffix.lower() for n in names if n[:1] != "."]
        return sum(x == ".png" or x in OTHER_FORMATS for x in suffixes)

    try:
        if folder.is_symlink():
            return images(os.listdir(folder))
        n = seen = 0
        for _, dirs, names in os.walk(folder):  # links below are not followed
            dirs[:] = [d for d in dirs if d[:1] != "."]
            n, seen = n + images(names), seen + len(names) + len(dirs)
            if seen > limit:
                break
        return n
    except OSError:
        return 0


def _sub_folder(folder: Path) -> str:
    """A class folder's sub-folder's skip reason: whether it holds images (then unread)."""
    if not (n := folder_images(folder)):
        return "sub-folder"
    return f"sub-folder of {n} image file(s), {UNREAD} the reader reads the class folder itself"


def unread_images(skipped: list[tuple[str, str]]) -> list[Problem]:
    """The skipped files that are images the reader cannot read where they are, as warnings."""
    return [Problem("unread_images", p, r) for p, r in skipped if UNREAD in r]


def _scan_class(folder: Path, cls: str, skipped: list, problems: list) -> list[BusiEntry]:
    images: dict[str, Path] = {}
    masks: dict[str, list[tuple[int, Path]]] = {}
    others: dict[tuple[str, bool], str] = {}  # (NFC stem, is a mask) -> a non-PNG file's name
    for f in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        # NFC so that names written on macOS (NFD) pair with masks written elsewhere.
        m = MASK_RE.match(Path(f.name).stem)
        key = unicodedata.normalize("NFC", m["stem"] if m else Path(f.name).stem)
        if f.name.startswith("."):
            skipped.append((str(f), HIDDEN))
        elif f.is_dir():
            skipped.append((str(f), _sub_folder(f)))
        elif f.exists() and not f.is_file():  # a pipe or device: opening it would block forever
            skipped.append((str(f), "not a regular file (a pipe, socket or device)"))
        elif f.suffix.lower() != ".png":
            fmt = OTHER_FORMATS.get(f.suffix.lower())
            why = f"a {fmt} image, {UNREAD} the reader reads PNG only (convert it)" if fmt else ""
            skipped.append((str(f), why or "not a .png file"))
            others.setdefault((key, bool(m)), f.name)
        elif m:
            # "_mask.png" beside "_MASK.png" (an old and a redone drawing?): one is read, the other
            # named, as for images; OR-merging both would hide that they disagree.
            same = [p for _, p in masks.get(key, []) if _fold(p.name) == _fold(f.name)]
            if same:
                detail = f"second mask {f.name!r} beside {same[0].name!r} (the one read)"
                problems.append(Problem("duplicate_mask", str(f), detail))
            else:
                masks.setdefault(key, []).append((int(m["k"] or 0), f))
        else:
            if key in images:  # e.g. "a.png" beside "a.PNG": never drop one silently
                detail = f"second image {key!r} beside {images[key].name!r} (the one read)"
                problems.append(Problem("duplicate_image", str(f), detail))
            images.setdefault(key, f)

    # "benign (9).png" beside "Benign (9).png": one file on a case-insensitive file system, so
    # the same folder copied there would be another dataset. The second is named, with its masks.
    first_of: dict[str, str] = {}
    for key in list(images):
        first = first_of.setdefault(key.casefold(), key)
        if first != key:
            detail = (
                f"second image {images[key].name!r} beside {images[first].name!r} (the one read): "
                "names differing only in case are one file on macOS and Windows"
            )
            problems.append(Problem("duplicate_image", str(images.pop(key)), detail))
            masks.pop(key, None)

    def but(key: str, mask: bool) -> str:  # a same-named file that is not a PNG, or differs
        other = others.get((key, mask))  # only in case from its pair, said
        if other:
            return f"; {other!r} is not a .png file"
        pairs = masks if mask else images
        near = [k for k in pairs if k.casefold() == key.casefold() and k != key]
        if near:
            name = masks[near[0]][0][1].name if mask else images[near[0]].name
            return f"; {name!r} differs in case"
        return ""

    for key in sorted(set(masks) - set(images), key=natural_key):
        for _, m in masks[key]:
            detail = f"mask without image (no {key + '.png'!r}{but(key, False)})"
            problems.append(Problem("mask_without_image", str(m), detail))
    entries = []
    for key in sorted(images, key=natural_key):
        found = tuple(p for _, p in sorted(masks.get(key, [])))
        if not found:
            hint = but(key, True) + _odd_mask(key)
            detail = f"image without mask (no {key + '_mask.png'!r}{hint})"
            problems.append(Problem("image_without_mask", str(images[key]), detail))
        entries.append(BusiEntry(images[key], found, cls, f"{cls}/{key}"))
    return entries
