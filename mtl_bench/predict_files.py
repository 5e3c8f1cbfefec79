"""``predict``'s files: which inputs a folder holds, what each output is called, and what an
earlier run left in ``--out``.

Inputs: a folder is searched recursively; hidden files and folders (``.DS_Store``, macOS's
``._NAME.png``, ``.ipynb_checkpoints``), masks (``*_mask.png``, ``*_mask_1.png``) and non-image
files are skipped, links to folders are not followed (each said in its row); a broken link or a
folder that cannot be listed is an unreadable input. Nothing found is left out without a row.

Outputs: ``<stem>_mask.png`` and ``<stem>_overlay.png`` per image, the stem mirroring the input's
place in the folder; an image whose name clashes with one before it (``a.png`` beside ``a.jpg``,
or ``A.png`` beside ``a.png`` on a case-insensitive disk) gets its suffix appended (``a_png``).

An earlier run: the run's table (``predictions.csv``, or ``<stem>_prediction.json`` for one
image) lists the outputs it wrote. A new run replaces that table, so those outputs may be
overwritten, and those it does not rewrite (an image now unreadable or gone) are removed. Any
other file an output would overwrite (another run's, an interrupted run's, or not predict's) is
refused, naming it, before anything is written; when another table in ``--out`` lists it (one
image predicted into a folder run's ``--out``, or the reverse) the refusal names that table.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

from mtl_bench.data.types import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
_MASK_NAME = re.compile(r".+_mask(_\d+)?$", re.IGNORECASE)
OUTPUT_KINDS = ("mask", "overlay")


def _skip_reason(p: Path) -> str | None:
    if p.name.startswith("."):
        return "skipped: a hidden file"
    if p.is_symlink() and not p.exists():
        return f"error: a broken link (to {os.readlink(p)})"
    if not p.is_file():
        return "skipped: not a regular file"
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        return f"skipped: not an image ({p.suffix or 'no suffix'})"
    if is_mask_name(p):
        return "skipped: a mask file (*_mask.png)"
    return None


def is_mask_name(p: Path) -> bool:
    """Whether ``p``'s name marks it as a BUSI mask (``*_mask.png``, ``*_mask_1.png``)."""
    return _MASK_NAME.fullmatch(p.stem) is not None


def list_inputs(inputs: Path) -> tuple[list[Path], list[dict[str, Any]]]:
    """Image files to predict, sorted, and a row for every other entry found (see the module
    doc); DataError for a missing input or a folder without images."""
    if inputs.is_file():
        return [inputs], []
    if not inputs.is_dir():
        if inputs.exists():  # /dev/zero, a pipe: reading it would never end
            raise DataError(f"{inputs}: not a regular file or folder (a device, pipe or socket)")
        broken = inputs.is_symlink()
        raise DataError(f"{inputs}: {'a broken link' if broken else 'no such file or folder'}")
    files, rows = [], []

    def unreadable(e: OSError) -> None:  # os.walk would pass over such a folder in silence
        rows.append({"file": e.filename, "status": f"error: cannot list it ({e.strerror})"})

    # Links to folders are listed, never entered.
    for folder, dirs, names in os.walk(inputs, onerror=unreadable):
        here = Path(folder)
        for name in sorted(dirs):
            if name.startswith("."):
                rows.append({"file": str(here / name), "status": "skipped: a hidden folder"})
            elif (here / name).is_symlink():
                why = "skipped: a link to a folder (not followed; pass it as an input of its own)"
                rows.append({"file": str(here / name), "status": why})
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (here / d).is_symlink()]
        for name in names:
            p = here / name
            if reason := _skip_reason(p):
                rows.append({"file": str(p), "status": reason})
            else:
                files.append(p)
    if not files:
        first = f"; skipped {len(rows)}, such as {rows[0]['file']}" if rows else ""
        why = rows[0]["status"].split(": ", 1)[-1] if rows else ""
        raise DataError(
            f"{inputs}: no image files ({', '.join(IMAGE_SUFFIXES)}) found"
            + (f"{first} ({why})" if rows else "")
        )
    return sorted(files), sorted(rows, key=lambda r: Path(r["file"]))


def output_stems(files: list[Path], root: Path, out: Path) -> dict[Path, Path]:
    """Each input's output stem under ``out``, unique even on a case-insensitive disk."""
    stems, used = {}, set()
    for path in files:
        stem = out / path.relative_to(root).with_suffix("")
        while str(stem).casefold() in used:  # a.png beside a.jpg
            stem = stem.with_name(f"{stem.name}_{path.suffix.lstrip('.').lower()}")
        used.add(str(stem).casefold())
        stems[path] = stem
    return stems


def output_path(stem: Path, kind: str) -> Path:
    return Path(f"{stem}_{kind}.png")


def _earlier_rows(table: Path) -> list[dict[str, Any]] | None:
    """The rows of a table predict wrote; [] when there is none, None when ``table`` is
    something else (unreadable, or no file/status rows)."""
    if not table.exists() and not table.is_symlink():
        return []
    try:
        if table.suffix == ".json":
            rows = [json.loads(table.read_text(encoding="utf-8"))]
        else:
            with open(table, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
    except (OSError, ValueError):
        return None
    ours = rows and all(isinstance(r, dict) and isinstance(r.get("file"), str) for r in rows)
    return rows if ours else None


def earlier_outputs(table: Path, out: Path) -> set[Path]:
    """The outputs inside ``out`` that an earlier run's ``table`` lists (resolved)."""
    base, owned = out.resolve(), set()
    for row in _earlier_rows(table) or []:
        for kind in OUTPUT_KINDS:
            value = row.get(f"{kind}_png")
            if isinstance(value, str) and value.endswith(f"_{kind}.png"):
                p = Path(value).resolve()  # relative: to the directory predict runs in
                if p.is_relative_to(base):
                    owned.add(p)
    return owned


def stored_file(path: str) -> str:
    """``path`` as a table stores it: absolute, its folders resolved, its own name kept (a link
    stays the name the user gave, as its outputs' names do), so that a rerun from another
    working directory still recognises the table as its own."""
    p = Path(path).absolute()
    return str(p.parent.resolve() / p.name)


def check_rerun(table: Path, inputs: Path) -> None:
    """Refuse to replace a ``table`` that predict did not write, or that holds the predictions
    of another image or folder."""
    rows = _earlier_rows(table)
    if rows is None:
        raise DataError(
            f"{table} is in the way: not a table predict wrote, and this run would replace it; "
            "choose another --out, or remove it"
        )
    src = inputs.resolve()
    # Tables store absolute paths (stored_file); an older one's relative paths can only be read
    # against the directory this run is in, which is the one it ran in if the user went back.
    files = [Path(r["file"]).resolve() for r in rows]
    if not files or any(f == src or f.is_relative_to(src) for f in files):
        return
    if inputs.is_file():  # a JSON: its one row is the other image
        other = f"another image ({files[0]})"
    else:
        # The table does not store the folder a run was given, and a row's file is no folder:
        # the deepest folder holding every row is that folder, or one inside it when all its
        # entries lay in one sub-folder; "all under" stays true either way.
        under = Path(os.path.commonpath([f.parent for f in files]))
        other = f"another folder's images (all under {under})"
    older = not Path(rows[0]["file"]).is_absolute()
    hint = " (relative paths of an older run: rerun from the folder it ran in)" if older else ""
    raise DataError(
        f"{table} holds the predictions of {other}{hint}, which predicting {inputs} there would "
        "replace: choose another --out, or remove that file"
    )


def _listing_table(path: Path, table: Path) -> Path | None:
    """The table of another predict run in ``table``'s folder (a folder run's, or one image's)
    that lists ``path`` as its output, if any."""
    out = table.parent
    for other in [out / "predictions.csv", *sorted(out.glob("*_prediction.json"))]:
        if other != table and path.resolve() in earlier_outputs(other, out):
            return other
    return None


def check_overwrites(planned: list[Path], owned: set[Path], table: Path, inputs: Path) -> None:
    """Refuse outputs that would overwrite a file that is no output of ``table``'s run."""
    src = inputs.resolve() if inputs.is_dir() else None
    clash = [p for p in planned if (p.exists() or p.is_symlink()) and p.resolve() not in owned]
    inside = [p for p in planned if src is not None and p.resolve().is_relative_to(src)]
    if inside:
        raise DataError(
            f"--out: {inside[0]} would be written inside the input folder {inputs}; choose an "
            "output folder that holds no input"
        )
    if clash:
        more = f" (and {len(clash) - 1} more)" if len(clash) > 1 else ""
        # Another run's table in --out lists it (one image beside a folder run, or the
        # reverse): still refused, as that table's row would then describe outputs this run
        # made (another checkpoint's, perhaps), and a rerun of either would remove the other's.
        if (other := _listing_table(clash[0], table)) is not None:
            folder = other.name == "predictions.csv"
            who = "an earlier folder run" if folder else "an earlier run on one image"
            raise DataError(
                f"{clash[0]}{more} would be overwritten: {who} wrote it (listed in "
                f"{other.name}), whose row would then describe outputs it did not make; choose "
                f"another --out, or rerun {'that folder' if folder else 'that image'} there"
            )
        raise DataError(
            f"{clash[0]}{more} would be overwritten, and no earlier {table.name} in --out lists "
            "it (another run's output, an interrupted run's, or not predict's): choose another "
            "--out, or remove it"
        )


def remove_stale(owned: set[Path], written: set[Path], protect: Path, out: Path) -> list[Path]:
    """Delete the earlier run's outputs this run did not rewrite (and folders of ``out`` that
    leaves empty), never ``protect`` (the input image or folder) or a file inside it, whatever
    a table says; the paths removed."""
    done, src, top = {w.resolve() for w in written}, protect.resolve(), out.resolve()
    stale = sorted(p for p in owned - done if p.is_file() and not p.is_relative_to(src))
    for p in stale:
        p.unlink()
        for folder in p.parents:
            if folder == top or not folder.is_relative_to(top) or any(folder.iterdir()):
                break
            folder.rmdir()
    return stale
