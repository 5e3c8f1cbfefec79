"""``mtl-bench predict``: masks and class probabilities of new images from a trained fold.

The checkpoint forms it accepts: ``mtl_bench.fold_checkpoint``.

Each input goes through the training pipeline: ``load_grey_png`` (grey; RGB(A) → luma), Pillow
bilinear resize to ``image_size``² (the reader's), ``preprocess`` (the run's method), then the
model in eval mode. Outputs under ``out``: ``<stem>_mask.png`` (0/255 at the input's own size:
the sigmoid map is resized bilinearly, then thresholded at 0.5), ``<stem>_overlay.png`` (the
input with the mask tinted red), and ``<stem>_prediction.json`` for one image or
``predictions.csv`` for a folder (searched recursively; outputs mirror its sub-folders). A file
that cannot be read is reported in its row and the others are still processed.

``out`` must lie outside the input folder (for one image: not its own folder), checked before
the model is loaded: outputs are named after the inputs, so ``<stem>_mask.png`` written beside
``<stem>.png`` would overwrite its ground-truth mask, and a second run would take the overlays
for new images. Outside that tree no output path can be an input, and a re-run into the same
``out`` overwrites only the earlier run's outputs (expected), so no per-file guard is kept.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mtl_bench.data.types import DataError
from mtl_bench.fold_checkpoint import load_fold_model
from mtl_bench.fold_record import float32_list

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
_MASK_NAME = re.compile(r".+_mask(_\d+)?$", re.IGNORECASE)


@dataclass
class PredictReport:
    """One row per input file (status "ok", "error: ...", "skipped: ...") and the table file."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    table: Path | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"].startswith("error")]


def _list_inputs(inputs: Path) -> tuple[list[Path], list[dict[str, Any]]]:
    """Image files to predict and rows for files that are skipped (masks, other files)."""
    if inputs.is_file():
        return [inputs], []
    if not inputs.is_dir():
        raise DataError(f"{inputs}: no such file or folder")
    files, skipped = [], []
    for p in sorted(q for q in inputs.rglob("*") if q.is_file()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append({"file": str(p), "status": f"skipped: not an image ({p.suffix or '?'})"})
        elif _MASK_NAME.fullmatch(p.stem):
            skipped.append({"file": str(p), "status": "skipped: a mask file (*_mask.png)"})
        else:
            files.append(p)
    if not files:
        raise DataError(f"{inputs}: no image files ({', '.join(IMAGE_SUFFIXES)}) found")
    return files, skipped


def _check_out(inputs: Path, out: Path) -> None:
    """Refuse an ``out`` that is a file, the input folder or inside it (see the module doc)."""
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file, not a folder")
    src, dst = inputs.resolve(), out.resolve()  # symlinks, "..", relative forms
    if src.is_file():
        # One image's outputs go straight into out: only its own folder can clash.
        if dst == src.parent:
            raise DataError(
                f"--out {out} is the folder of the input {inputs}: predictions there would "
                "overwrite its files (such as <stem>_mask.png); choose another output folder"
            )
    elif dst.is_relative_to(src):
        where = "is" if dst == src else "is inside"
        raise DataError(
            f"--out {out} {where} the input folder {inputs}: predictions there would overwrite "
            "its masks (<stem>_mask.png) and be read as inputs next time; choose a folder "
            "outside it"
        )


def _prepare(path: Path, size: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(original grey image, model input (size, size) uint8): the training pipeline."""
    from mtl_bench.data.png import load_grey_png, resize_image
    from mtl_bench.data.preprocess import preprocess

    grey = load_grey_png(path)
    small = resize_image(grey, (size, size))  # the reader's own resize
    return grey, preprocess(small[None], method)[0]


def _write_outputs(path: Path, stem: Path, grey: np.ndarray, prob_map: np.ndarray | None) -> dict:
    from mtl_bench.figure_overlays import PRED_RGB, blend

    if prob_map is None:
        return {}
    h, w = grey.shape
    prob = Image.fromarray(np.asarray(prob_map, dtype=np.float32))
    up = np.asarray(prob.resize((w, h), Image.Resampling.BILINEAR))
    mask = up > 0.5
    stem.parent.mkdir(parents=True, exist_ok=True)
    mask_png, overlay_png = Path(f"{stem}_mask.png"), Path(f"{stem}_overlay.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_png)
    rgb = np.clip(np.rint(blend(grey, mask, PRED_RGB) * 255), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(overlay_png)
    return {
        "mask_fraction": round(float(mask.mean()), 6),
        "mask_png": str(mask_png),
        "overlay_png": str(overlay_png),
    }


# Past these the prediction is still made, with a note: ultrasound frames are near square and
# hundreds of pixels a side; a strip or a thumbnail squashed to the model's size is unlike them.
MAX_ASPECT = 3.0
MIN_SIDE = 32


def _shape_note(shape: tuple[int, int], size: int) -> str | None:
    h, w = shape
    aspect = max(h, w) / min(h, w)
    if aspect <= MAX_ASPECT and min(h, w) >= MIN_SIDE:
        return None
    return (
        f"{w}x{h} px resized to {size}x{size} (aspect {aspect:.1f}:1): unlike the training "
        "images, so the prediction may mean little"
    )


def predict(inputs: str | Path, checkpoint: str | Path, out: str | Path) -> PredictReport:
    """Predict every image of ``inputs`` (a file or a folder) with the fold ``checkpoint``."""
    import jax
    from flax import nnx

    from mtl_bench.batches import to_input

    inputs, out = Path(inputs).expanduser(), Path(out).expanduser()
    files, skipped = _list_inputs(inputs)
    _check_out(inputs, out)  # before the model loads or anything is written
    cfg, names, engine, state = load_fold_model(checkpoint)

    @jax.jit
    def forward(params, rest, x):
        res = nnx.merge(engine.graphdef, params, rest)(to_input(x), train=False)
        got = {}
        if "mask" in res:
            got["mask"] = jax.nn.sigmoid(res["mask"][..., 0].astype(np.float32))
        if "label" in res:
            got["prob"] = jax.nn.softmax(res["label"].astype(np.float32), -1)
        return got

    report, used = PredictReport(), set()
    root = inputs if inputs.is_dir() else inputs.parent
    for path in files:
        row: dict[str, Any] = {"file": str(path)}
        try:
            grey, x = _prepare(path, cfg.image_size, cfg.preprocess)
        except (DataError, ValueError) as e:
            msg = str(e).removeprefix(f"{path}: ")  # the row names the file already
            report.rows.append({**row, "status": f"error: {msg}"})
            continue
        if note := _shape_note(grey.shape, cfg.image_size):
            row["note"] = note
        res = jax.device_get(forward(state["params"], state["rest"], x[None]))
        stem = out / path.relative_to(root).with_suffix("")
        if stem in used:  # a.png and a.jpg side by side
            stem = stem.with_name(f"{stem.name}_{path.suffix.lstrip('.').lower()}")
        used.add(stem)
        row["status"] = "ok"
        if "prob" in res:
            probs = float32_list(res["prob"][0])  # exact, as the fold records store them
            row["predicted_class"] = names[int(np.argmax(probs))]
            row.update({f"prob_{n}": p for n, p in zip(names, probs, strict=True)})
        row.update(_write_outputs(path, stem, grey, res["mask"][0] if "mask" in res else None))
        report.rows.append(row)
    report.rows += skipped
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "checkpoint": str(checkpoint),
        "model": cfg.model,
        "class_names": list(names),
        "image_size": cfg.image_size,
        "preprocess": cfg.preprocess,
    }
    if inputs.is_file():
        report.table = out / f"{inputs.stem}_prediction.json"
        report.table.write_text(json.dumps({**report.rows[0], **meta}, indent=1) + "\n")
    else:
        report.table = out / "predictions.csv"
        cols = list(dict.fromkeys(k for r in report.rows for k in r))
        with open(report.table, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, restval="")
            w.writeheader()
            w.writerows(report.rows)
    return report


def run_predict(inputs: str | Path, checkpoint: str | Path, out: str | Path) -> int:
    """The CLI's ``predict``: problems per file on stderr, a one-line summary; 1 if any input
    was unreadable."""
    report = predict(inputs, checkpoint, out)
    ok = sum(r["status"] == "ok" for r in report.rows)
    for r in report.rows:
        if r["status"] != "ok":
            print(f"{r['file']}: {r['status']}", file=sys.stderr)
        elif "note" in r:
            print(f"mtl-bench: warning: {r['file']}: {r['note']}", file=sys.stderr)
    skipped = len(report.rows) - ok - len(report.failed)
    print(f"{ok} predicted, {len(report.failed)} unreadable, {skipped} skipped → {report.table}")
    return 1 if report.failed else 0
