"""One BUSI entry, an image and its mask files: decoded, OR-merged, and audited (what is wrong
with it, errors; what is questionable, warnings). Shared by the reader and ``data check``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from mtl_bench.data.png import frame_count, load_grey_noted, load_mask_counted
from mtl_bench.data.reader_scan import MASK_RE, BusiEntry, Problem
from mtl_bench.data.types import DataError

# A 16-bit PNG that lost most of its grey levels in the mapping to 8 bits (png_depth).
SQUEEZED = "squeezed_16bit_png"
MULTI_FRAME = "multi_frame_png"
# Ultrasound frames are near square and hundreds of pixels a side; a strip or a thumbnail
# squashed to the training size is unlike them (kept, warned about; predict notes them too).
MAX_ASPECT = 3.0
MIN_SIDE = 32


def odd_shape(shape: tuple[int, ...]) -> str | None:
    """Why an image of ``shape`` (H, W) is unlike ultrasound frames, or None: the one rule the
    reader warns by and ``predict`` notes by (``predict_notes.shape_note``)."""
    h, w = shape[:2]
    aspect = max(h, w) / max(min(h, w), 1)
    if aspect <= MAX_ASPECT and min(h, w) >= MIN_SIDE:
        return None
    return f"{w}x{h} px (aspect {aspect:.1f}:1): far from square or under {MIN_SIDE} px a side"


def decode_entry(entry: BusiEntry) -> tuple[Any, Any, list[Problem], list[Problem]]:
    """Native (grey image or None, OR-merged bool mask, errors, warnings) of one entry; errors
    (``undecodable``, ``size_mismatch``) make it unusable, warnings do not."""
    try:
        image, note = load_grey_noted(entry.image)
    except DataError as e:
        return None, None, [_undecodable(entry.image, e)], []
    errors, warns = [], []
    if note:
        warns.append(Problem(SQUEEZED, str(entry.image), note))
    if odd := odd_shape(image.shape):
        warns.append(Problem("odd_shape", str(entry.image), odd))
    _note_frames(entry.image, warns)
    if entry.masks and all(_numbered(m) for m in entry.masks):
        # BUSI gives every image NAME_mask.png and a few a _mask_1 / _mask_2 beside it: extra
        # masks alone suggest a lost or renamed main one, whose lesion would be missing here.
        names = ", ".join(repr(m.name) for m in entry.masks)
        detail = f"masks {names} but no {entry.image.stem + '_mask.png'!r}: read as the lesion"
        warns.append(Problem("no_main_mask", str(entry.image), detail))
    if other := _named_for(entry):
        cls = entry.class_name
        detail = f"named like a {other} image but in the {cls} folder: labelled {cls}"
        warns.append(Problem("other_class_name", str(entry.image), detail))
    merged = np.zeros(image.shape, dtype=bool)
    for path in entry.masks:
        try:
            mask, count, note, reading = load_mask_counted(path)
        except DataError as e:
            errors.append(_undecodable(path, e))
            continue
        if mask.shape != image.shape:
            (h, w), (hi, wi) = mask.shape, image.shape
            detail = f"mask is {w}x{h} px but image {entry.image.name!r} is {wi}x{hi}"
            errors.append(Problem("size_mismatch", str(path), detail))
            continue
        merged |= mask
        _note_frames(path, warns)
        if note:
            warns.append(Problem(SQUEEZED, str(path), note))
        if reading:  # read, but not as BUSI's 0/255 masks are: say how
            kind = "label_map_mask" if "label map" in reading else "alpha_mask"
            warns.append(Problem(kind, str(path), reading))
        if count:
            detail = f"{count} px neither 0 nor 255 (binarised at > 127)"
            warns.append(Problem("nonbinary_mask", str(path), detail))
    if entry.masks and not errors:
        if entry.class_name != "normal" and not merged.any():
            warns.append(Problem("empty_lesion_mask", str(entry.image), "lesion with empty mask"))
        elif entry.class_name == "normal" and merged.any():
            detail = f"{int(merged.sum())} px of lesion in the mask of a normal image"
            warns.append(Problem("nonempty_normal_mask", str(entry.image), detail))
        if entry.class_name != "normal" and (inverted := _looks_inverted(merged)):
            warns.append(Problem("inverted_mask", str(entry.image), inverted))
    return image, merged, errors, warns


def _numbered(mask: Path) -> bool:
    """Whether ``mask`` is an extra mask (``NAME_mask_1.png``), not the main ``NAME_mask.png``."""
    m = MASK_RE.match(mask.stem)
    return bool(m and m["k"])


_CLASS_WORD = re.compile(r"^(benign|malignant|normal)\b", re.IGNORECASE)


def _named_for(entry: BusiEntry) -> str | None:
    """The other class an image's name starts with (BUSI names each file by its class,
    ``malignant (12).png``): a file sorted into the wrong folder would train on the wrong label."""
    m = _CLASS_WORD.match(entry.image.name)
    other = m[1].casefold() if m else None
    return other if other not in (None, entry.class_name) else None


def _note_frames(path: Path, warns: list[Problem]) -> None:
    """An animated PNG (a cine loop saved whole, a mask drawn over several frames) is read as
    its first frame: said, as predict says it, since the other frames are data left out."""
    if (n := frame_count(path)) > 1:
        warns.append(Problem(MULTI_FRAME, str(path), f"{n} frames: only the first is used"))


def _looks_inverted(mask: np.ndarray) -> str | None:
    """A note when a lesion mask covers most of the image and nearly all of its border: drawn
    black on white (a tumour does not fill the frame to its edges). Kept, said, not guessed."""
    border = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
    if mask.size == 0 or mask.mean() <= 0.5 or border.mean() < 0.9:
        return None
    return (
        f"lesion covers {mask.mean():.0%} of the image and {border.mean():.0%} of its border: "
        "drawn black on white? (used as it is)"
    )


def _undecodable(path: Path, err: DataError) -> Problem:
    return Problem("undecodable", str(path), str(err).removeprefix(f"{path}: "))
