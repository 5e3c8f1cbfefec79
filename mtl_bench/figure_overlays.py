"""Segmentation overlays like the paper's Figure 3: one row per image; columns: the image (its
case kind, true class and id in the title), its ground truth (green), then each method's predicted
mask (red; from ``fold_<K>_masks.npz``, see ``mtl_bench.pred_masks``), its Dice in the title. A
key above the panels names the colours.

Rows (``select_cases``): for benign and malignant, a typical case (mean Dice across methods
closest to the class median) and the hardest one (lowest mean Dice across methods). Images whose
Dice is undefined for every method (an empty true mask under the "exclude" policy) are never
picked. ``overlay_from_results`` gathers the inputs from a results folder (``build_figures``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mtl_bench.atomic import atomic_write
from mtl_bench.data.types import DataError, Dataset
from mtl_bench.progress import log
from mtl_bench.results_io import per_image

TRUTH_RGB = np.array([0.1, 0.9, 0.2])
PRED_RGB = np.array([0.95, 0.2, 0.1])


def select_cases(dc: pd.DataFrame, classes: tuple[str, ...] = ("benign", "malignant")) -> list:
    """[(id, "typical benign"|"hard benign"|...)] from ``dc`` (index: id; columns: methods;
    values: per-image Dice, NaN where undefined). Ids are ``"<class>/<stem>"``."""
    mean = dc.mean(axis=1, skipna=True).dropna()
    typical, hard = [], []
    for cls in classes:
        scores = mean[[i.split("/", 1)[0] == cls for i in mean.index]]
        if scores.empty:
            continue
        worst = scores.idxmin()
        rest = scores.drop(worst)
        if not rest.empty:
            typical.append((str((rest - rest.median()).abs().idxmin()), f"typical {cls}"))
        hard.append((str(worst), f"hard {cls}"))
    return typical + hard


def image_title(case: str, why: str) -> str:
    """The first column's title: the case kind, the true class and the image id, each named (a
    bare "benign/benign (47)" read as true/predicted)."""
    cls, _, stem = case.partition("/")
    kind = why.removesuffix(f" {cls}")  # "typical benign" → "typical"
    kind = {"typical": "typical case (median DC)", "hard": "hard case (lowest DC)"}.get(kind, kind)
    return f"{kind}\ntrue class: {cls}\nimage: {stem or case}"


def _resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.NEAREST)) > 127


def blend(image: np.ndarray, mask: np.ndarray | None, color: np.ndarray) -> np.ndarray:
    """Grey uint8 image → RGB floats, ``mask`` pixels tinted with ``color`` (45 % opacity)."""
    rgb = np.repeat((image.astype(np.float32) / 255.0)[..., None], 3, axis=-1)
    if mask is not None:
        m = _resize_mask(mask, image.shape)
        rgb[m] = 0.55 * rgb[m] + 0.45 * color
    return rgb


def overlay_figure(
    path: Path,
    dataset: Dataset,
    masks: dict[str, dict[str, np.ndarray]],
    dc: pd.DataFrame,
    cases: list[tuple[str, str]],
) -> Path:
    """Draw ``cases`` (rows) × [image, truth, methods of ``masks``] and save a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    index = {k: i for i, k in enumerate(dataset.ids)}
    methods = list(masks)
    ncol = 2 + len(methods)
    # Constrained layout leaves room for the colour key above the panels (tight_layout does not).
    fig, axes = plt.subplots(
        len(cases),
        ncol,
        figsize=(1.9 * ncol, 2.0 * len(cases) + 0.3),
        squeeze=False,
        layout="constrained",
    )
    for r, (case, why) in enumerate(cases):
        i = index[case]
        image, truth = dataset.images[i], dataset.masks[i].astype(bool)
        panels = [
            (blend(image, None, TRUTH_RGB), image_title(case, why)),
            (blend(image, truth, TRUTH_RGB), "ground truth"),
        ]
        for m in methods:
            pred = masks[m].get(case)
            score = dc.at[case, m] if m in dc.columns and case in dc.index else np.nan
            title = f"{m}\nDC {score:.2f}" if np.isfinite(score) else f"{m}\nDC n/a"
            if pred is None:
                title = f"{m}\n(no mask)"
            panels.append((blend(image, pred, PRED_RGB), title))
        for c, (rgb, title) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(rgb, interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    key = [
        Patch(color=TRUTH_RGB, alpha=0.6, label="ground truth (annotated tumour)"),
        Patch(color=PRED_RGB, alpha=0.6, label="predicted mask (DC: Dice against ground truth)"),
    ]
    fig.legend(handles=key, loc="outside upper center", ncol=2, fontsize=7, frameon=False)
    atomic_write(path, lambda f: fig.savefig(f, dpi=110, format="png"))  # whole, or none
    plt.close(fig)
    return path


def _dataset_for(results_dir: Path, results: pd.DataFrame) -> Dataset:
    """The dataset the results were computed on, from the first result's stored config (read
    as predict reads it: an unknown key or a mistyped value is a DataError naming the file)."""
    from mtl_bench.config import RunConfig
    from mtl_bench.cv_data import dataset_for

    first = results.iloc[0]
    try:
        cfg = RunConfig.from_dict(first["config"])
    except (TypeError, ValueError) as e:
        where = results_dir / first["method"] / f"fold_{first['fold']}.json"
        raise DataError(f"{where}: cannot read the run config for the overlays ({e})") from None
    return dataset_for(cfg, quiet=True)


def overlay_from_results(
    results_dir: Path, results: pd.DataFrame, out: Path, dataset: Dataset | None, max_methods: int
) -> Path | None:
    """The Figure-3 overlay, or None (with the reason logged) when inputs are missing."""
    from mtl_bench.pred_masks import load_method_masks

    masks = {}
    for method in results["method"].unique():
        found = load_method_masks(results_dir / method)
        if found:
            masks[method] = found
    if not masks:
        log("figures: no fold_<K>_masks.npz found: segmentation overlays skipped")
        return None
    dc = pd.DataFrame({m: per_image(results, m).set_index("id")["DC"] for m in masks})
    # The proposed model first, then the others by mean Dice, at most ``max_methods``.
    order = sorted(masks, key=lambda m: (not m.startswith("mtl_resunet"), -dc[m].mean()))
    masks = {m: masks[m] for m in order[:max_methods]}
    cases = select_cases(dc[list(masks)])
    if not cases:
        log("figures: no image with a defined Dice: segmentation overlays skipped")
        return None
    ds = dataset if dataset is not None else _dataset_for(results_dir, results)
    missing = [c for c, _ in cases if c not in set(ds.ids)]
    if missing:
        log(f"figures: image {missing[0]} is not in the dataset: segmentation overlays skipped")
        return None
    return overlay_figure(out / "segmentation_overlays.png", ds, masks, dc, cases)
