"""``mtl-bench predict``: masks and class probabilities of new images from a trained fold.

Checkpoint contract. ``checkpoint`` names one trained fold, as ``mtl-bench cv`` leaves it:

- ``RESULTS/<method>/ckpt_fold_<K>`` (or its ``last`` folder, or ``last/<step>``): the orbax
  checkpoint written by ``fold_io.Checkpoints`` (state = params, rest, opt_state, step; plus the
  best-validation weights when validation selection ran — those are used, as for the test
  metrics), and
- ``RESULTS/<method>/fold_<K>.json`` beside it: the finished fold's result file, whose ``config``
  gives the model name, model_kwargs, image_size, preprocess and precision, and whose
  ``class_names`` name the probabilities. Passing the ``fold_<K>.json`` itself also works.
- Folds trained side by side (``cv --fold-parallel``) share one checkpoint,
  ``RESULTS/<method>/ckpt_folds_<A>_<B>...`` (stacked on a leading fold axis): pass the fold's
  ``fold_<K>.json``, whose ``folds_trained_together`` names that folder; fold K's slice is used.

Each input goes through the training pipeline: ``load_grey_png`` (grey; RGB(A) → luma), Pillow
bilinear resize to ``image_size``² (the reader's), ``preprocess`` (the run's method), then the
model in eval mode. Outputs under ``out``: ``<stem>_mask.png`` (0/255 at the input's own size:
the sigmoid map is resized bilinearly, then thresholded at 0.5), ``<stem>_overlay.png`` (the
input with the mask tinted red), and ``<stem>_prediction.json`` for one image or
``predictions.csv`` for a folder (searched recursively; outputs mirror its sub-folders). A file
that cannot be read is reported in its row and the others are still processed.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mtl_bench.data.types import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
_MASK_NAME = re.compile(r".+_mask(_\d+)?$", re.IGNORECASE)
_CKPT = re.compile(r"ckpt_fold_(\d+)")
_CKPT_FOLDS = re.compile(r"ckpt_folds_(\d+(?:_\d+)*)")


@dataclass
class PredictReport:
    """One row per input file (status "ok", "error: ...", "skipped: ...") and the table file."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    table: Path | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"].startswith("error")]


def _trained_together(record: Path) -> list[int] | None:
    """The folds a result file's fold was trained beside (``--fold-parallel``), else None."""
    try:
        rec = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{record}: cannot read the result file ({e})") from None
    if not isinstance(rec, dict) or not rec.get("fold_parallel"):
        return None
    return [int(f) for f in rec.get("folds_trained_together") or []] or None


def resolve_checkpoint(checkpoint: str | Path) -> tuple[Path, Path, int | None]:
    """(checkpoint folder, the fold's ``fold_K.json``, the fold's position on a side-by-side
    checkpoint's fold axis or None) for any accepted form."""
    p = Path(checkpoint).expanduser()
    if not p.exists():
        raise DataError(f"{p}: checkpoint not found")
    if p.is_file() and re.fullmatch(r"fold_\d+\.json", p.name):
        together = _trained_together(p)
        if together is not None:
            from mtl_bench.fold_io import folds_checkpoint_name

            shared = p.with_name(folds_checkpoint_name(together))
            if not (shared / "last").is_dir():
                raise DataError(
                    f"{shared}: missing, so {checkpoint} (folds {together} trained side by "
                    "side) has no weights to predict with"
                )
            return shared, p, together.index(int(p.stem.split("_")[1]))
        p = p.with_name(f"ckpt_{p.stem}")
        if not (p / "last").is_dir():
            raise DataError(
                f"{p}: missing, so {checkpoint} has no weights to predict with (reproduce deletes "
                "baselines' checkpoints unless --keep-checkpoints; cv keeps them)"
            )
    elif p.parent.name == "last" and p.name.isdigit():
        p = p.parent.parent
    elif p.name == "last":
        p = p.parent
    side = _CKPT_FOLDS.fullmatch(p.name)
    if side and (p / "last").is_dir():
        folds = ", ".join(side.group(1).split("_"))
        raise DataError(
            f"{checkpoint}: folds {folds} trained side by side in one checkpoint; pass the "
            f"fold_K.json of the fold to predict with (in {p.parent})"
        )
    m = _CKPT.fullmatch(p.name)
    if not m or not (p / "last").is_dir():
        raise DataError(
            f"{checkpoint}: not a fold checkpoint (expected RESULTS/<method>/ckpt_fold_K with a "
            "'last' folder, or the fold_K.json beside it)"
        )
    record = p.parent / f"fold_{m.group(1)}.json"
    if not record.is_file():
        raise DataError(
            f"{record}: missing; predict reads the finished fold's config from it (an "
            "interrupted fold has a checkpoint but no result file: finish it with --resume)"
        )
    if _trained_together(record) is not None:  # then this folder is an earlier run's
        raise DataError(
            f"{record} was trained side by side with other folds, not from {p}: pass {record}"
        )
    return p, record, None


def load_fold_model(checkpoint: str | Path):
    """(RunConfig, class names, engine, eval state) of a trained fold (see the module doc)."""
    from mtl_bench.config import RunConfig
    from mtl_bench.fit import build_model
    from mtl_bench.fold_io import Checkpoints
    from mtl_bench.registry import model_info
    from mtl_bench.train import Engine

    ckpt_dir, record_path, index = resolve_checkpoint(checkpoint)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        cfg = RunConfig.from_dict(record["config"])
        names = tuple(record["class_names"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{record_path}: cannot read the run config ({e})") from None
    cfg = dataclasses.replace(cfg, parallel="none")
    info = model_info(cfg.model)
    model = build_model(cfg, len(names))
    engine = Engine(model, info.tasks, cfg, steps_per_epoch=1, class_alpha=None)
    like = engine.canonical_state(engine.initial_state)
    if index is not None:  # fit_folds_parallel's layout: stacked over folds, plus its tick
        import jax
        import jax.numpy as jnp

        n = len(record["folds_trained_together"])  # what resolve_checkpoint named it by
        like = {**jax.tree.map(lambda x: jnp.stack([x] * n), like), "tick": jnp.zeros((), "int32")}
    restored = Checkpoints(ckpt_dir, cfg).restore(like)
    if restored is None:
        raise DataError(f"{ckpt_dir / 'last'}: holds no saved step")
    _, state, best = restored
    if index is not None:
        state = jax.tree.map(lambda x: x[index], {k: v for k, v in state.items() if k != "tick"})
    if best[1] is not None:  # validation selection ran: the selected weights were tested
        state = {**state, **best[1]}
    return cfg, names, engine, state


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


def predict(inputs: str | Path, checkpoint: str | Path, out: str | Path) -> PredictReport:
    """Predict every image of ``inputs`` (a file or a folder) with the fold ``checkpoint``."""
    import jax
    from flax import nnx

    from mtl_bench.batches import to_input

    inputs, out = Path(inputs).expanduser(), Path(out)
    files, skipped = _list_inputs(inputs)
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
        res = jax.device_get(forward(state["params"], state["rest"], x[None]))
        stem = out / path.relative_to(root).with_suffix("")
        if stem in used:  # a.png and a.jpg side by side
            stem = stem.with_name(f"{stem.name}_{path.suffix.lstrip('.').lower()}")
        used.add(stem)
        row["status"] = "ok"
        if "prob" in res:
            probs = np.asarray(res["prob"][0], dtype=float)
            row["predicted_class"] = names[int(np.argmax(probs))]
            row.update({f"prob_{n}": round(float(p), 6) for n, p in zip(names, probs, strict=True)})
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
