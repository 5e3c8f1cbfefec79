"""``throughput_<device>.png``: training images/s against batch size, from the throughput CSVs
that ``mtl-bench bench`` writes (``figures.build_figures`` calls it).

One PNG per device kind; in it one panel per host CPU (CPU runs only: a GPU's host barely moves
its rate) × precision × image size, so that every model and parallel strategy measured under the
same conditions can be compared in one panel. A line is a model run (model, its variant columns,
and its commit where the device's rows span several); its colour is the run, its marker the
strategy, and its PyTorch peers (eager, ``torch.compile``) are dashed in the same colour. A panel
whose runs would need more than ``MAX_RUNS`` colours is split between models.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pandas as pd

from mtl_bench.data.types import DataError
from mtl_bench.figures import _plt, _save
from mtl_bench.progress import log

# Colours one panel may use before its models are split over panels (tab10 stays distinct).
MAX_RUNS = 8
# A y axis whose values span more than this factor is logarithmic: a full-size and a narrow
# model on one linear axis flattened the slower one near 0.
LOG_RATIO = 4.0
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">")
_PEERS = (("torch_eager_train_img_per_s", "x", "eager"),
          ("torch_compile_train_img_per_s", "+", "torch.compile"))  # fmt: skip


def _text(col: pd.Series) -> pd.Series:
    # Via "string": fillna("") on an all-blank (float) column is deprecated in pandas.
    return col.astype("string").fillna("").astype(str)


def _checked(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``df`` with its measured rows' batch and images/s as numbers; DataError naming the file
    for a cell that is no number >= 0 (pandas then failed on "median" of text, or drew a
    negative rate)."""
    ok = df["status"] == "ok"
    for col in ("batch_size", "train_img_per_s"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = ok & (values.isna() | (values < 0))
        if bad.any():
            row = int(bad.idxmax())
            cell = str(df.at[row, col])
            raise DataError(f"{path}: {col} {cell!r} in row {row + 2} is no number >= 0")
        df[col] = values
    return df


def _read(throughput_dir: Path) -> pd.DataFrame:
    files = sorted(throughput_dir.glob("*.csv")) if throughput_dir.is_dir() else []
    frames = []
    for f in files:
        try:
            df = pd.read_csv(f)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
            raise DataError(f"{f}: not a throughput CSV ({' '.join(str(e).split())})") from None
        if not {"model", "batch_size", "status", "train_img_per_s", "device_kind"} <= set(df):
            raise DataError(f"{f}: not a throughput CSV (missing model/batch_size/... columns)")
        if df.empty:  # a bench writes its header first: still running, or stopped before a row
            log(f"figures: {f}: a header and no rows yet (a bench still running?): not drawn")
            continue
        frames.append(_checked(df, f))
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df = df[df["status"] == "ok"].copy()
    for col, default in (("strategy", "none"), ("devices", 1), ("image_size", 0)):
        if col not in df:
            df[col] = default
    # Rows that differ in how they ran (model or config overrides, XLA flags) are separate runs,
    # never one median.
    df["run"] = df["model"].astype(str)
    for c in ("model_kwargs", "config_overrides", "xla_flags"):
        if c in df:
            v = _text(df[c])
            df["run"] = df["run"].where(v == "", df["run"] + " [" + v + "]")
    # The strategy, with how fold-parallel convolutions ran and how many devices took part.
    df["how"] = _text(df["strategy"]).replace("", "none")
    if "fold_conv" in df:
        conv = _text(df["fold_conv"])
        df["how"] = df["how"].where(conv == "", df["how"] + " (" + conv + ")")
    ndev = pd.to_numeric(df["devices"], errors="coerce").fillna(1).astype(int)
    df["how"] = df["how"].where(ndev == 1, df["how"] + " ×" + ndev.astype(str))
    df["host"] = _text(df["host_cpu"]) if "host_cpu" in df else ""
    return df


def _panels(dev: pd.DataFrame, is_cpu: bool) -> list[tuple[str, pd.DataFrame]]:
    """[(title, rows)]: one per host (CPUs) × precision × size, split between models when its
    runs would need more than ``MAX_RUNS`` colours (models kept whole, in name order)."""
    keys = (["host"] if is_cpu else []) + ["precision", "image_size"]
    out = []
    for key, g in dev.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        *host, prec, size = key
        title = f"{prec}, {size}²"
        if is_cpu:
            cpu = host[0] or "not recorded"
            title = textwrap.fill(f"host CPU: {cpu}", 90) + "\n" + title
        chunks: list[list[str]] = [[]]
        used = 0
        for model, m in g.groupby("model", sort=True):
            n = m["run"].nunique()
            if chunks[-1] and used + n > MAX_RUNS:
                chunks.append([])
                used = 0
            chunks[-1].append(model)
            used += n
        for models in chunks:
            named = f" — {', '.join(models)}" if len(chunks) > 1 else ""
            out.append((title + named, g[g["model"].isin(models)]))
    return out


def _draw(ax, rows: pd.DataFrame, plt) -> None:
    runs = sorted(rows["run"].unique())
    palette = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20")
    hows = sorted(rows["how"].unique(), key=lambda h: (h != "none", h))
    marker = {h: _MARKERS[i % len(_MARKERS)] for i, h in enumerate(hows)}
    values = []
    for i, run in enumerate(runs):
        color = palette(i % palette.N)
        mine = rows[rows["run"] == run]
        for how in hows:
            g = mine[mine["how"] == how]
            if g.empty:
                continue
            m = g.groupby("batch_size")["train_img_per_s"].median().sort_index()
            ax.plot(m.index, m, "-", marker=marker[how], c=color, label=f"{run} — {how}")
            values += list(m)
        for col, mark, name in _PEERS:
            peer = mine.groupby("batch_size")[col].median() if col in mine else None
            if peer is not None and peer.notna().any():
                peer = peer.dropna().sort_index()
                ax.plot(peer.index, peer, "--", marker=mark, c=color, alpha=0.8,
                        label=f"{run} — PyTorch peer, {name}")  # fmt: skip
                values += list(peer)
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > LOG_RATIO:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_yscale("log")
        # Plain numbers at 1-2-5 steps: "6 × 10²" ticks had to be decoded.
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(bottom=0, top=1.08 * max(values, default=1))  # a difference keeps its size
    ax.set_xscale("log", base=2)
    sizes = sorted(rows["batch_size"].unique())
    ax.set_xticks(sizes, [str(int(b)) for b in sizes])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    # The rows' train_img_per_s: each the median of blocked steps, not the pipelined rate.
    ax.set(xlabel="batch size", ylabel="training images/s (median of blocked steps)")
    ax.grid(True, alpha=0.3)
    # Outside the axes: inside, a legend of a dozen runs covered the data.
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)


def throughput_figures(throughput_dir: Path, out: Path) -> list[Path]:
    """Training images/s vs batch size, models × strategies per panel, one PNG per device kind."""
    df = _read(throughput_dir)
    if df.empty:
        return []
    plt = _plt()
    written = []
    for kind, dev in df.groupby("device_kind"):
        # Runs of different code on one device are separate lines too ("model @commit"): the
        # committed H100 CSVs span the fixes of several sessions, and one median would hide them.
        commit = _text(dev["git_commit"]) if "git_commit" in dev else pd.Series([""])
        if commit.nunique() > 1:
            dev = dev.assign(run=dev["run"] + " @" + commit.replace("", "?").str[:7])
        is_cpu = str(kind).lower() == "cpu"
        panels = _panels(dev, is_cpu)
        cols = 1 if len(panels) <= 3 else 2
        rows = -(-len(panels) // cols)
        # Constrained layout places the suptitle and the outside legends (tight_layout did not).
        fig, axes = plt.subplots(
            rows, cols, figsize=(9 * cols, 3.9 * rows), squeeze=False, layout="constrained"
        )
        for ax in axes.flat[len(panels) :]:
            fig.delaxes(ax)
        for ax, (title, g) in zip(axes.flat, panels, strict=False):
            _draw(ax, g, plt)
            ax.set_title(title, fontsize=9)
        name = "CPU" if is_cpu else str(kind)
        fig.suptitle(
            f"Training throughput on {name}\nlegend: model run — parallel strategy (none, jit, "
            "pmap, fold); dashed: the run's PyTorch peer",
            fontsize=10,
        )
        slug = re.sub(r"[^a-z0-9]+", "-", str(kind).lower()).strip("-")
        written.append(_save(fig, out / f"throughput_{slug}.png"))
    return written
