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
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_bench.data.types import DataError, Dataset
from mtl_bench.progress import log
from mtl_bench.results_io import load_results, per_image

_CURVE = re.compile(r"fold_(\d+)_curve\.csv")


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
                    curves[int(m.group(1))] = pd.read_csv(p)
                except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
                    raise DataError(f"{p}: unreadable learning curve ({e})") from None
        if not curves:
            continue
        panels = [
            k
            for k in ("loss", "dice_loss", "focal_loss", "val_score")
            if any(k in c and c[k].notna().any() for c in curves.values())
        ]
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
        for ax, key in zip(axes[0], panels, strict=True):
            for fold, c in sorted(curves.items()):
                if key in c and "epoch" in c:
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


def throughput_figures(throughput_dir: Path, out: Path) -> list[Path]:
    """Training images/s vs batch size per model, one PNG per device kind."""
    files = sorted(throughput_dir.glob("*.csv")) if throughput_dir.is_dir() else []
    if not files:
        return []
    frames = []
    for f in files:
        df = pd.read_csv(f)
        if not {"model", "batch_size", "status", "train_img_per_s", "device_kind"} <= set(df):
            raise DataError(f"{f}: not a throughput CSV (missing model/batch_size/... columns)")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df = df[df["status"] == "ok"]
    for col, default in (("strategy", "none"), ("devices", 1), ("image_size", 0)):
        if col not in df:
            df[col] = default
    # Rows that differ in how they ran (fold convolutions, model or config overrides, XLA flags)
    # are separate lines, never one median.
    variant_cols = [
        c for c in ("fold_conv", "model_kwargs", "config_overrides", "xla_flags") if c in df
    ]
    df["line"] = df["model"].astype(str)
    for c in variant_cols:
        v = df[c].fillna("").astype(str)
        df["line"] = df["line"].where(v == "", df["line"] + " [" + v + "]")
    plt = _plt()
    written = []
    for kind, dev in df.groupby("device_kind"):
        # Runs of different code on one device are separate lines too ("model @commit"): the
        # committed H100 CSVs span the fixes of three sessions, and one median would hide them.
        if "git_commit" in dev and dev["git_commit"].fillna("").nunique() > 1:
            commit = dev["git_commit"].fillna("?").astype(str).str[:7]
            dev = dev.assign(line=dev["line"] + " @" + commit)
        # One panel per model and run kind: several models' variants and commits in one panel
        # were past reading by the fourth H100 run.
        keys = ["precision", "image_size", "strategy", "devices", "model"]
        groups = list(dev.groupby(keys))
        cols = min(3, len(groups))
        rows = -(-len(groups) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4.2 * rows), squeeze=False)
        for ax in axes.flat[len(groups) :]:
            fig.delaxes(ax)
        for ax, ((prec, size, strat, ndev, name), g) in zip(
            axes.flat[: len(groups)], groups, strict=True
        ):
            lines = sorted(g.groupby("line"), key=lambda t: t[0])
            palette = "tab10" if len(lines) <= 10 else "tab20"
            for i, (label, m) in enumerate(lines):
                m = m.groupby("batch_size").median(numeric_only=True).sort_index()
                color = plt.get_cmap(palette)(i % 20)
                ax.plot(m.index, m["train_img_per_s"], "o-", c=color, label=label)
                peer = "torch_eager_train_img_per_s"
                if peer in m and m[peer].notna().any():
                    ax.plot(m.index, m[peer], "x--", c=color, alpha=0.7, label=f"{label} (torch)")
            ax.set_xscale("log", base=2)
            sizes = sorted(g["batch_size"].unique())
            ax.set_xticks(sizes, [str(int(b)) for b in sizes])
            ax.minorticks_off()
            ax.set(xlabel="batch size", ylabel="training images/s")
            ax.set_title(f"{name}: {prec}, {size}², {strat} × {ndev}", fontsize=9)
            ax.legend(fontsize=6)
        fig.suptitle(str(kind), fontsize=10)
        slug = re.sub(r"[^a-z0-9]+", "-", str(kind).lower()).strip("-")
        written.append(_save(fig, out / f"throughput_{slug}.png"))
    return written


def _dataset_for(results: pd.DataFrame) -> Dataset:
    """The dataset the results were computed on, from the first result's stored config."""
    from mtl_bench.config import RunConfig
    from mtl_bench.cv import dataset_for

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
    through the prepared-data cache). ``throughput_dir`` defaults to ``results_dir/throughput``.
    """
    results_dir = Path(results_dir)
    out = results_dir / "figures"
    results = load_results(results_dir)
    written: list[Path] = []
    if len(results):
        overlay = overlay_from_results(results_dir, results, out, dataset, max_methods)
        roc = roc_figure(results, out / "roc.png")
        written += [p for p in (overlay, roc) if p is not None]
        written += curve_figures(results_dir, out)
    tp = Path(throughput_dir) if throughput_dir is not None else results_dir / "throughput"
    written += throughput_figures(tp, out)
    return written
