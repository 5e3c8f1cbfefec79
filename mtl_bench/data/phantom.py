"""Synthetic B-mode breast-ultrasound phantom: the default dataset when real BUSI is absent.

Public API: :func:`synth_phantom` (in memory), :func:`write_phantom` (BUSI's folder layout),
:func:`phantom_counts`. Image formation is in :mod:`mtl_bench.data.phantom_tissue` (tissue
layers, attenuation and TGC, speckle, display) and lesions in
:mod:`mtl_bench.data.phantom_shapes` (benign: oval, smooth, wider-than-tall, posterior
enhancement; malignant: irregular/spiculated, taller-than-wide, heterogeneous, shadowing).

``difficulty`` in [0, 1] (default 0.5) changes, for the same random draws:
speckle ``alpha = 0.55 + 0.45 d``; glandular texture amplitude ``3 + 3 d`` dB; lesion contrast
scaled by ``1 - 0.45 d``; class overlap: the spread of the latent malignancy score
``0.06 + 0.30 d`` (so more benign lesions are lobulated, tall or shadowing and more malignant
ones nearly oval, smooth or enhancing).

Determinism: image K of a class comes from ``SeedSequence(seed, spawn_key=(class, K))``, so it
does not depend on ``n``, the class set, or the other classes. Images with K = 2 (mod 40) have a
second, smaller lesion (17 of the 647 at BUSI counts), written by :func:`write_phantom` as a
separate ``_mask_1.png``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from mtl_bench.data.phantom_tissue import STREAM, render_image
from mtl_bench.data.types import ALL_CLASSES, DataError, Dataset, class_names, source_fingerprint

BUSI_COUNTS: dict[str, int] = {"benign": 437, "malignant": 210, "normal": 133}
MARKER = "PHANTOM.json"
_FILE_RE = re.compile(r"^(benign|malignant|normal) \(\d+\)(_mask(_\d+)?)?\.png$")


def phantom_counts(
    n: int | None = None, class_set: str = "three_class", counts: dict[str, int] | None = None
) -> dict[str, int]:
    """Images per class: BUSI's 437:210:133 (over the classes of ``class_set``) scaled to ``n``.

    Rounding: largest remainder (floor each share, then give the leftover images to the largest
    fractional parts, ties to the earlier class); then, when ``n`` >= the number of classes, a
    class left at 0 takes one image from the currently largest class. ``counts`` overrides the
    ratio (classes not named get 0); given with ``n`` the totals must agree.
    """
    names = class_names(class_set)
    if n is not None:
        n = _integer("n", n, 1)
    if counts is not None:
        if not isinstance(counts, Mapping):
            raise DataError(f"phantom counts must map class names to counts, got {counts!r}")
        bad = [k for k in counts if k not in names]
        if bad:
            raise DataError(f"phantom counts: class {bad[0]!r} is not in class set {class_set!r}")
        out = {c: _integer(f"counts[{c!r}]", counts.get(c, 0), 0) for c in names}
        total = sum(out.values())
        if total == 0:
            raise DataError(f"phantom counts {dict(counts)} ask for no images at all")
        if n is not None and n != total:
            raise DataError(f"phantom counts {out} total {total}, but n={n}")
        return out
    weights = np.array([BUSI_COUNTS[c] for c in names], dtype=np.float64)
    if n is None:
        return {c: int(w) for c, w in zip(names, weights, strict=True)}
    share = n * weights / weights.sum()
    got = np.floor(share).astype(int)
    order = sorted(range(len(names)), key=lambda i: (-(share[i] - got[i]), i))
    for i in order[: n - int(got.sum())]:
        got[i] += 1
    if n >= len(names):
        for i in np.flatnonzero(got == 0):
            got[int(np.argmax(got))] -= 1
            got[i] = 1
    return {c: int(g) for c, g in zip(names, got, strict=True)}


def _integer(name: str, value: object, minimum: int) -> int:
    """``value`` as an int (numpy integers too, bools not) >= minimum, else a DataError."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise DataError(f"phantom {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_args(image_size: int, seed: int, difficulty: float) -> tuple[int, int, float]:
    image_size = _integer("image_size", image_size, 16)  # a lesion needs a few pixels
    seed = _integer("seed", seed, 0)
    if isinstance(difficulty, bool) or not isinstance(difficulty, Real):
        raise DataError(f"phantom difficulty must be a number in [0, 1], got {difficulty!r}")
    if not 0.0 <= float(difficulty) <= 1.0:  # also rejects NaN
        raise DataError(f"phantom difficulty must be a number in [0, 1], got {difficulty!r}")
    return image_size, seed, float(difficulty)


def synth_phantom(
    n: int | None = None,
    *,
    image_size: int = 256,
    seed: int = 0,
    difficulty: float = 0.5,
    class_set: str = "three_class",
    counts: dict[str, int] | None = None,
) -> Dataset:
    """The phantom in memory: ``n`` images (default 780, or 647 for "binary") of ``image_size``².

    ``n`` counts the returned images, so with ``class_set="binary"`` (no normals) it is split
    437:210. Class counts follow :func:`phantom_counts`; ids are "<class>/<class> (K)" with K
    from 1, in label order then K, matching the files :func:`write_phantom` writes.
    """
    image_size, seed, difficulty = _check_args(image_size, seed, difficulty)
    names = class_names(class_set)
    per_class = phantom_counts(n, class_set, counts)
    total = sum(per_class.values())
    images = np.empty((total, image_size, image_size), np.uint8)
    masks = np.empty((total, image_size, image_size), np.uint8)
    labels = np.empty(total, np.int32)
    ids: list[str] = []
    i = 0
    for label, name in enumerate(names):
        for k in range(1, per_class[name] + 1):
            img, lab = render_image(seed, ALL_CLASSES.index(name), k, image_size, difficulty)
            images[i], masks[i], labels[i] = img, lab > 0, label
            ids.append(f"{name}/{name} ({k})")
            i += 1
    source = f"phantom(seed={seed}, difficulty={difficulty}, image_size={image_size})"
    # The raw data is the generator's scene: the same at every size (rendered, not resized).
    scene = [f"phantom seed={seed} difficulty={difficulty}"] * len(ids)
    fp = source_fingerprint(ids, scene)
    return Dataset(images, masks, labels, ids, names, source=source, source_fingerprint=fp)


def _prepare_dir(out: Path) -> None:
    """Refuse a foreign non-empty folder; clear our files out of a previous phantom output."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: phantom output path exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / MARKER).is_file():
        raise DataError(
            f"{out}: refusing to write the phantom into a non-empty folder without {MARKER}"
        )
    ours: list[Path] = []
    for entry in out.iterdir():
        if entry.name == MARKER:
            continue
        if entry.name not in ALL_CLASSES or not entry.is_dir():
            raise DataError(f"{entry}: unexpected entry in a phantom folder; remove it first")
        for f in entry.iterdir():
            if not (f.is_file() and _FILE_RE.match(f.name) and f.name.startswith(entry.name)):
                raise DataError(f"{f}: unexpected file in a phantom folder; remove it first")
            ours.append(f)
    for f in ours:  # only after the whole folder is known to be ours
        f.unlink()


def _write_marker(out: Path, info: dict) -> None:
    tmp = out / (MARKER + ".tmp")
    tmp.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, out / MARKER)  # atomic: a crash never leaves a half-written marker


def write_phantom(
    out_dir: str | os.PathLike,
    n: int | None = None,
    *,
    image_size: int = 256,
    seed: int = 0,
    difficulty: float = 0.5,
    counts: dict[str, int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the three-class phantom in BUSI's layout and return ``out_dir``.

    ``OUT/<class>/<class> (K).png`` is an RGB PNG with R = G = B (as BUSI's are);
    ``<class> (K)_mask.png`` a single-channel 0/255 PNG (all 0 for normal images), plus
    ``<class> (K)_mask_1.png`` for the second lesion of two-lesion images, so that the union
    of an image's masks is :func:`synth_phantom`'s mask. ``OUT/PHANTOM.json`` records the
    parameters (``complete`` turns true at the end); it lets a later call overwrite this
    folder, whereas a non-empty folder without it is refused. ``progress(done, total)`` is
    called after each image.
    """
    from PIL import Image

    image_size, seed, difficulty = _check_args(image_size, seed, difficulty)
    per_class = phantom_counts(n, "three_class", counts)
    out = Path(out_dir)
    _prepare_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    info = {
        "generator": "mtl_bench.data.phantom",
        "stream": STREAM,
        "image_size": image_size,
        "seed": seed,
        "difficulty": difficulty,
        "counts": per_class,
        "complete": False,
    }
    _write_marker(out, info)
    total, done = sum(per_class.values()), 0
    for cls, name in enumerate(ALL_CLASSES):
        (out / name).mkdir(exist_ok=True)
        for k in range(1, per_class[name] + 1):
            img, lab = render_image(seed, cls, k, image_size, difficulty)
            stem = out / name / f"{name} ({k})"
            # zlib level 3: a third of the default's time and, on speckle, no larger files.
            rgb = np.repeat(img[:, :, None], 3, axis=2)
            Image.fromarray(rgb).save(f"{stem}.png", compress_level=3)
            for suffix, value in (("_mask", 1), ("_mask_1", 2)):
                if value == 1 or (lab == value).any():
                    mask = (lab == value).astype(np.uint8) * 255
                    Image.fromarray(mask).save(f"{stem}{suffix}.png", compress_level=3)
            done += 1
            if progress is not None:
                progress(done, total)
    _write_marker(out, {**info, "complete": True})
    return out
