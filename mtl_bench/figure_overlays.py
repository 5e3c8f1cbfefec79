"""Segmentation overlays like the paper's Figure 3: one row per image; columns: the image, its
ground truth, then each method's predicted mask (from ``fold_<K>_masks.npz``, see
``mtl_bench.pred_masks``), its Dice in the title.

Rows (``select_cases``): for benign and malignant, a typical case (mean Dice across methods
closest to the class median) and the hardest one (lowest mean Dice across methods). Images whose
Dice is undefined for every method (an empty true mask under the "exclude" policy) are never
picked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mtl_bench.data.types import Dataset

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

    index = {k: i for i, k in enumerate(dataset.ids)}
    methods = list(masks)
    ncol = 2 + len(methods)
    fig, axes = plt.subplots(
        len(cases), ncol, figsize=(1.9 * ncol, 2.0 * len(cases)), squeeze=False
    )
    for r, (case, why) in enumerate(cases):
        i = index[case]
        image, truth = dataset.images[i], dataset.masks[i].astype(bool)
        panels = [
            (blend(image, None, TRUTH_RGB), f"{why}\n{case}"),
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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
