"""Figures from result files (matplotlib, Agg, PNG under ``RESULTS/figures/``).

``build_figures(results_dir)`` regenerates every figure the files allow, and says which it skipped
and why (a missing input is never an error; a malformed one is):

- ``segmentation_overlays.png`` — the paper's Figure 3 (``figure_overlays``), for methods that
  saved predicted masks (``fold_<K>_masks.npz``);
- ``roc.png`` — ROC per method, test predictions pooled over folds (malignant = positive;
  one-vs-rest for three classes), pooled AUC in the legend;
- ``curves/<method>.png`` — learning curves per fold from ``fold_<K>_curve.csv``;
- ``throughput_<device>.png`` — training images/s vs batch size per model, one panel per
  precision × image size × strategy, from ``throughput/*.csv`` (PyTorch peers dashed).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_bench.data.types import DataError, Dataset, DataWarning
from mtl_bench.progress import log
from mtl_bench.results_io import load_results, per_image

_CURVE = re.compile(r"fold_(\d+)_curve\.csv")
_CURVE_KEYS = ("loss", "dice_loss", "focal_loss", "val_score")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def pooled_roc(results: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """{method: (fpr, tpr, AUC)} from test probabilities pooled over folds (malignant positive;
    methods without probabilities, or whose pooled labels hold one class, are left out)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    out = {}
    for method in sorted(results["method"].unique()):
        rows = per_image(results, method)
        if "prob_0" not in rows:
            continue
        names = tuple(results.loc[results["method"] == method, "class_names"].iloc[0])
        pos = names.index("malignant") if "malignant" in names else len(names) - 1
        y = (rows["label"].astype(int) == pos).to_numpy()
        score = rows[f"prob_{pos}"].to_numpy()
        if y.all() or not y.any():
            log(f"figures: ROC of {method} skipped (one class only)")
            continue
        fpr, tpr, _ = roc_curve(y, score)
        out[method] = (fpr, tpr, float(roc_auc_score(y, score)))
    return out


def roc_figure(results: pd.DataFrame, path: Path) -> Path | None:
    """ROC curves (pooled over folds) of every method with class probabilities."""
    curves = pooled_roc(results)
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for method, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, lw=1.4, label=f"{method} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    # With three classes the curve is malignant vs the rest (the tables' AUC is macro one-vs-rest).
    many = results["class_names"].map(len).max() > 2
    title = "ROC, malignant vs rest (pooled folds)" if many else "ROC (pooled folds)"
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(fontsize=7 if len(curves) > 6 else 8, loc="lower right")
    return _save(fig, path)


def curve_figures(results_dir: Path, out: Path) -> list[Path]:
    """One PNG per method with learning curves: loss (and its parts, validation score) per fold."""
    plt = _plt()
    written = []
    for method_dir in sorted(p for p in results_dir.iterdir() if p.is_dir()):
        curves = {}
        for p in sorted(method_dir.glob("fold_*_curve.csv")):
            m = _CURVE.fullmatch(p.name)
            if m:
                try:
                    c = pd.read_csv(p)
                except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
                    raise DataError(f"{p}: unreadable learning curve ({e})") from None
                # A readable CSV of other columns would otherwise drop out of the figure unsaid.
                if "epoch" not in c or not any(k in c for k in _CURVE_KEYS):
                    warnings.warn(
                        f"{p}: not a learning curve (needs epoch and one of "
                        f"{', '.join(_CURVE_KEYS)}; has {', '.join(map(str, c.columns))}): skipped",
                        DataWarning,
                        stacklevel=2,
                    )
                    continue
                curves[int(m.group(1))] = c
        if not curves:
            continue
        panels = [
            k for k in _CURVE_KEYS if any(k in c and c[k].notna().any() for c in curves.values())
        ]
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
        for ax, key in zip(axes[0], panels, strict=True):
            for fold, c in sorted(curves.items()):
                if key in c:
                    one = len(c) == 1  # a line of one point draws nothing: mark it
                    ax.plot(
                        c["epoch"],
                        c[key],
                        lw=1.2,
                        marker="o" if one else None,
                        label=f"Fold {fold + 1}",  # 1-based, as the tables number folds
                    )
            ax.set(xlabel="epoch", title=key.replace("_", " "))
        axes[0][0].legend(fontsize=7)
        fig.suptitle(method_dir.name, fontsize=10)
        written.append(_save(fig, out / "curves" / f"{method_dir.name}.png"))
    return written


def _dataset_for(results: pd.DataFrame) -> Dataset:
    """The dataset the results were computed on, from the first result's stored config."""
    from mtl_bench.config import RunConfig
    from mtl_bench.cv_data import dataset_for

    names = {f.name for f in dataclasses.fields(RunConfig)}
    stored = results["config"].iloc[0]
    cfg = RunConfig(**{k: v for k, v in stored.items() if k in names})
    return dataset_for(cfg, quiet=True)


def overlay_from_results(
    results_dir: Path, results: pd.DataFrame, out: Path, dataset: Dataset | None, max_methods: int
) -> Path | None:
    """The Figure-3 overlay, or None (with the reason logged) when inputs are missing."""
    from mtl_bench.figure_overlays import overlay_figure, select_cases
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
    ds = dataset if dataset is not None else _dataset_for(results)
    missing = [c for c, _ in cases if c not in set(ds.ids)]
    if missing:
        log(f"figures: image {missing[0]} is not in the dataset: segmentation overlays skipped")
        return None
    return overlay_figure(out / "segmentation_overlays.png", ds, masks, dc, cases)


def build_figures(
    results_dir: str | Path,
    *,
    dataset: Dataset | None = None,
    throughput_dir: str | Path | None = None,
    max_methods: int = 8,
) -> list[Path]:
    """Write every figure the files under ``results_dir`` allow; returns the PNG paths.

    ``dataset`` supplies the images of the overlays (default: re-loaded from the stored config
    through the prepared-data cache). ``throughput_dir`` defaults to ``results_dir/throughput``
    (skipped when absent); one given explicitly must be a folder. ``max_methods`` (>= 1): the
    most methods in the overlay figure.
    """
    # Checked before any file is read or written: a bad value must not pass for missing inputs.
    if max_methods < 1:
        raise ValueError(f"--max-methods must be >= 1, got {max_methods}")
    if throughput_dir is not None and not Path(throughput_dir).is_dir():
        what = "a file, not a folder" if Path(throughput_dir).exists() else "no such folder"
        raise DataError(f"--throughput {throughput_dir}: {what}")
    results_dir = Path(results_dir)
    out = results_dir / "figures"
    results = load_results(results_dir)
    written: list[Path] = []
    if len(results):
        overlay = overlay_from_results(results_dir, results, out, dataset, max_methods)
        roc = roc_figure(results, out / "roc.png")
        written += [p for p in (overlay, roc) if p is not None]
        written += curve_figures(results_dir, out)
    from mtl_bench.figure_throughput import throughput_figures  # it imports this module

    tp = Path(throughput_dir) if throughput_dir is not None else results_dir / "throughput"
    written += throughput_figures(tp, out)
    return written
