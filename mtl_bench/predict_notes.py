"""What ``predict`` says on the console about its rows, and the notes a row may carry.

A row's ``note`` column says what is questionable about a prediction that was still made (each
note has a kind: ``NOTE_KINDS``); its ``status`` why a file was not predicted. The table has
every file's own row, so the console names files one by one only while a kind of note, or one
status, concerns few of them (``FEW``); past that it gives one line for all of them: a folder of
200 12-bit scans, or a BUSI class folder's 400 masks, would otherwise print a line each.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Past these (the reader's rule, which warns of such images in training data) the prediction is
# still made, with a note.
from mtl_bench.data.reader_entry import MIN_SIDE, odd_shape

# Files a kind of note (or one status) may concern and still be named one by one.
FEW = 3

# Each kind of note, as the console sums up the images that have it.
NOTE_KINDS = {
    # png_depth's note (no sBIT, values < 4096; or few levels left): "{levels}" is filled in.
    "depth": "are 16-bit PNGs left with at most {levels} grey levels in 8 bits (12-bit data "
    "stored unscaled?)",
    "shape": f"are far from square or under {MIN_SIDE} px a side, unlike the training images",
    "frames": "have several frames, of which only the first was predicted",
    # Only an image named on its own has it: a folder run skips such files (predict_files).
    "mask_name": "are named as masks (*_mask.png), not scans",
}

MASK_NAME_NOTE = (
    "its name marks it as a mask (*_mask.png), not a scan: predicted as it was named, though a "
    "folder run skips such files"
)


def shape_note(shape: tuple[int, int], size: int) -> str | None:
    """The note for an image of ``shape`` (H, W) resized to ``size``², or None when it is like
    the training images."""
    if odd_shape(shape) is None:  # the reader's rule, so training data and inputs agree
        return None
    h, w = shape
    aspect = max(h, w) / min(h, w)
    return (
        f"{w}x{h} px resized to {size}x{size} (aspect {aspect:.1f}:1): unlike the training "
        "images, so the prediction may mean little"
    )


def console_lines(
    rows: list[dict[str, Any]],
    notes: Mapping[str, Mapping[str, str]],
    table: Path | None,
    levels: int = 0,
) -> list[str]:
    """The stderr lines for a run's ``rows``: statuses other than "ok", then notes (``notes``:
    kind → file → note, as ``PredictReport.notes``; ``levels``: the most grey levels a
    16-bit image with a "depth" note kept)."""
    lines: list[str] = []
    by_status: dict[str, list[str]] = {}
    for r in rows:
        if r["status"] != "ok":
            by_status.setdefault(r["status"], []).append(r["file"])
    for status, files in by_status.items():
        if len(files) <= FEW:
            lines += [f"{f}: {status}" for f in files]
        else:  # one reason shared by many files: said once, the table names each file
            more = f"{files[0]} and {len(files) - 1} more"
            lines.append(f"{more}: {status} (each has its row in {table})")
    many = {kind for kind, files in notes.items() if len(files) > FEW}
    for r in rows:  # the few, in the rows' order, each file's notes on one line
        texts = [f[r["file"]] for k, f in notes.items() if k not in many and r["file"] in f]
        if texts:
            lines.append(f"mtl-bench: warning: {r['file']}: {'; '.join(texts)}")
    total = sum(r["status"] == "ok" for r in rows)
    for kind in sorted(many, key=list(notes).index):
        what = NOTE_KINDS[kind].format(levels=levels)
        lines.append(
            f"mtl-bench: warning: {len(notes[kind])} of {total} images {what}: see the note "
            f"column of {table}"
        )
    return lines
