"""``mtl-bench predict``: masks and class probabilities of new images from a trained fold.

The checkpoint forms it accepts: ``mtl_bench.fold_checkpoint``; the inputs a folder gives and the
outputs' names: ``mtl_bench.predict_files``.

Each input goes through the training pipeline (``predict_image``): ``load_grey_noted``
(``load_grey_png``'s decoding: grey; RGB(A) → luma, 16-bit / 257 or per sBIT; 32-bit pixels are
refused), Pillow bilinear resize to ``image_size``² (the reader's), ``preprocess`` (the run's
method), then the model in eval mode. What is questionable about an image still predicted (a 16-bit
PNG that lost most grey levels, a multi-frame file of which the first frame is used, a strip or
thumbnail, a mask file named as the input, which a folder run would skip) goes in its row's
``note``, summed up on the console when many files share it (``predict_notes``). Outputs under
``out``: ``<stem>_mask.png`` (0/255 at the input's own size: the sigmoid map is resized bilinearly,
then thresholded at 0.5), ``<stem>_overlay.png`` (the input with the mask tinted red), and
``<stem>_prediction.json`` for one image or ``predictions.csv`` for a folder (searched recursively;
outputs mirror its sub-folders; the same columns in every run of a model, ``note`` empty where
there is none), whose input, PNG and checkpoint paths are absolute. A file that cannot be read is
reported in its row and the others are still processed.

``out`` must lie outside the input folder (for one image: not its own folder), checked before
the model is loaded: outputs are named after the inputs, so ``<stem>_mask.png`` written beside
``<stem>.png`` would overwrite its ground-truth mask, and a second run would take the overlays
for new images. A re-run into the same ``out`` replaces the earlier run's outputs and removes
those it does not rewrite; it refuses to overwrite any other file (``predict_files``).
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtl_bench.atomic import atomic_write
from mtl_bench.data.types import DataError
from mtl_bench.fold_checkpoint import load_fold_model
from mtl_bench.fold_record import float32_list
from mtl_bench.predict_files import (
    OUTPUT_KINDS,
    check_overwrites,
    check_rerun,
    earlier_outputs,
    is_mask_name,
    list_inputs,
    output_path,
    output_stems,
    remove_stale,
    stored_file,
)
from mtl_bench.predict_image import prepare_image, write_outputs
from mtl_bench.predict_notes import MASK_NAME_NOTE, console_lines, shape_note


@dataclass
class PredictReport:
    """One row per input file (status "ok", "error: ...", "skipped: ..."), the table file and
    the earlier run's outputs that were removed (``predict_files``). ``notes``: the rows' notes
    by kind (``predict_notes.NOTE_KINDS``) and file; ``levels``: the most grey levels any image
    with a "depth" note kept."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    table: Path | None = None
    removed: list[Path] = field(default_factory=list)
    tasks: tuple[str, ...] = ()
    notes: dict[str, dict[str, str]] = field(default_factory=dict)
    levels: int = 0

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"].startswith("error")]


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


def _make_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        raise DataError(f"--out {out}: cannot write there ({e.strerror or e})") from None


def _columns(tasks: tuple[str, ...], names: tuple[str, ...] | list[str]) -> list[str]:
    """``predictions.csv``'s columns: fixed by the model's tasks and classes, not by the rows
    (a note or an unreadable file in one run only), so runs of one model share a header."""
    label = ["predicted_class", *(f"prob_{n}" for n in names)] if "label" in tasks else []
    mask = ["mask_pixels", "mask_fraction", "mask_png", "overlay_png"] if "mask" in tasks else []
    run = ["note", "model", "method", "checkpoint"]  # model: the architecture; method: the run
    return ["file", "status", *label, "width", "height", *mask, *run]


def predict(inputs: str | Path, checkpoint: str | Path, out: str | Path) -> PredictReport:
    """Predict every image of ``inputs`` (a file or a folder) with the fold ``checkpoint``."""
    import jax
    from flax import nnx

    from mtl_bench.batches import to_input
    from mtl_bench.registry import model_info

    inputs, out = Path(inputs).expanduser(), Path(out).expanduser()
    files, skipped = list_inputs(inputs)
    _check_out(inputs, out)  # before the model loads or anything is written
    single = inputs.is_file()
    root = inputs.parent if single else inputs
    table = out / (f"{inputs.stem}_prediction.json" if single else "predictions.csv")
    check_rerun(table, inputs)
    cfg, names, engine, state, method = load_fold_model(checkpoint)
    report = PredictReport(table=table, tasks=tuple(model_info(cfg.model).tasks))
    stems = output_stems(files, root, out.resolve())
    owned = earlier_outputs(table, out)
    if single:  # its JSON names this image's outputs only
        owned &= {output_path(stems[inputs], k).resolve() for k in OUTPUT_KINDS}
    kinds = OUTPUT_KINDS if "mask" in report.tasks else ()
    planned = [output_path(s, k) for s in stems.values() for k in kinds]
    check_overwrites(planned, owned, table, inputs)
    _make_out(out)

    @jax.jit
    def forward(params, rest, x):
        res = nnx.merge(engine.graphdef, params, rest)(to_input(x), train=False)
        got = {}
        if "mask" in res:
            got["mask"] = jax.nn.sigmoid(res["mask"][..., 0].astype(np.float32))
        if "label" in res:
            got["prob"] = jax.nn.softmax(res["label"].astype(np.float32), -1)
        return got

    written: set[Path] = set()
    for path in files:
        row: dict[str, Any] = {"file": str(path)}
        try:
            grey, x, notes = prepare_image(path, cfg.image_size, cfg.preprocess)
        except (DataError, ValueError, OSError) as e:
            msg = str(e).removeprefix(f"{path}: ")  # the row names the file already
            report.rows.append({**row, "status": f"error: {msg}"})
            continue
        if shaped := shape_note(grey.shape, cfg.image_size):
            notes = {"shape": shaped, **notes}
        if is_mask_name(path):  # only one named as the input gets here (list_inputs)
            notes = {"mask_name": MASK_NAME_NOTE, **notes}
        for kind, text in notes.items():
            report.notes.setdefault(kind, {})[str(path)] = text
        if "depth" in notes:
            report.levels = max(report.levels, int(np.count_nonzero(np.bincount(grey.ravel()))))
        res = jax.device_get(forward(state["params"], state["rest"], x[None]))
        row["status"] = "ok"
        if "prob" in res:
            probs = float32_list(res["prob"][0])  # exact, as the fold records store them
            row["predicted_class"] = names[int(np.argmax(probs))]
            row.update({f"prob_{n}": p for n, p in zip(names, probs, strict=True)})
        row.update(write_outputs(stems[path], grey, res["mask"][0] if "mask" in res else None))
        written.update(Path(row[f"{k}_png"]) for k in kinds)
        report.rows.append({**row, **({"note": "; ".join(notes.values())} if notes else {})})
    report.rows += skipped
    report.removed = remove_stale(owned, written, inputs, out)
    # Resolved, as the file and PNG paths are absolute: a path as typed means nothing once the
    # table is read from elsewhere, and a link (a "latest" folder) would not say which weights.
    checkpoint = str(Path(checkpoint).expanduser().resolve())
    meta = {
        "checkpoint": checkpoint,
        "model": cfg.model,
        "method": method,
        "tasks": list(report.tasks),
        "class_names": list(names),
        "image_size": cfg.image_size,
        "preprocess": cfg.preprocess,
    }
    # The table's file paths are absolute (the rows, and so the console, keep them as given):
    # a relative one would tie a rerun's check (check_rerun) to the directory this one ran in.
    stored = [{**r, "file": stored_file(r["file"])} for r in report.rows]
    if single:
        text = json.dumps({**stored[0], **meta}, indent=1) + "\n"
        atomic_write(table, lambda f: f.write(text), text=True)
    else:
        rows = [
            {**r, "model": cfg.model, "method": method, "checkpoint": checkpoint} for r in stored
        ]
        cols = _columns(report.tasks, names)

        def write(f) -> None:
            w = csv.DictWriter(f, fieldnames=cols, restval="", lineterminator="\n")
            w.writeheader()
            w.writerows(rows)

        atomic_write(table, write, text=True)
    return report


def run_predict(inputs: str | Path, checkpoint: str | Path, out: str | Path) -> int:
    """The CLI's ``predict``: problems and notes on stderr (per file when few, ``predict_notes``),
    a one-line summary on stdout; 1 if any input was unreadable."""
    report = predict(inputs, checkpoint, out)
    ok = sum(r["status"] == "ok" for r in report.rows)
    for line in console_lines(report.rows, report.notes, report.table, report.levels):
        print(line, file=sys.stderr)
    if report.removed:
        print(
            f"mtl-bench: removed {len(report.removed)} output(s) of the earlier run that this "
            f"run did not rewrite (e.g. {report.removed[0]})",
            file=sys.stderr,
        )
    if "mask" not in report.tasks:
        print(
            "mtl-bench: a classifier's checkpoint: class probabilities only, no masks",
            file=sys.stderr,
        )
    elif "label" not in report.tasks:
        print(
            "mtl-bench: a segmentation model's checkpoint: masks only, no class probabilities",
            file=sys.stderr,
        )
    skipped = len(report.rows) - ok - len(report.failed)
    print(f"{ok} predicted, {len(report.failed)} unreadable, {skipped} skipped → {report.table}")
    return 1 if report.failed else 0
