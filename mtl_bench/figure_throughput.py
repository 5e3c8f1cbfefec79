"""``throughput_<device>.png``: training images/s against batch size, per model and run kind,
from the throughput CSVs that ``mtl-bench bench`` writes (``figures.build_figures`` calls it)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mtl_bench.data.types import DataError
from mtl_bench.figures import _plt, _save


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
