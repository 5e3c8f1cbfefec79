"""The paper's tables, regenerated from result files only (no cell is ever typed by hand).

Each table is one declarative ``TableSpec``; ``build_tables`` loads ``R/<method>/fold_K.json``,
checks that every method of a table ran on the same fold manifest, builds the tables and writes
``R/tables/<name>.{md,tex,csv}``. Display conventions, stated in each table's notes:
metrics in percent with 2 decimals, except AUC as a fraction with 3 decimals (as the paper
prints it); "Mean ± SD" uses the sample SD (ddof=1); "—" marks a value that is null in the
results; a method without results reads "not run", never a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_bench import stats
from mtl_bench.data.types import DataError
from mtl_bench.results_io import (
    METRICS,
    check_same_manifest,
    load_results,
    per_image,
)

__all__ = [
    "DEFAULT_SPECS",
    "Table",
    "TableSpec",
    "build_table",
    "build_tables",
    "load_results",
    "per_image",
    "render_latex",
    "render_markdown",
]

KINDS = ("per_fold", "comparison", "hyperparams")
# Metrics that have a per-image form, hence a bootstrap CI and an image-level paired test.
IMAGE_METRICS = {"segmentation": ("DC", "JSI"), "classification": ("ACC", "AUC")}
NOT_RUN, NA, DASH = "not run", "n/a", "—"
FORMAT_ALIASES = {"md": "md", "markdown": "md", "tex": "tex", "latex": "tex", "csv": "csv"}


@dataclass(frozen=True)
class TableSpec:
    """One table. ``title`` is the line printed above it ("{method}" is filled in for per_fold).

    methods: rows in order (per_fold: at most one; empty = the reference method).
    metrics: columns (empty = all of ``task``'s metrics). main_metrics: comparison columns that
    get a bootstrap CI and image-level p (empty = DC, JSI or ACC, AUC). fixed_rows: {method:
    reason} shown instead of numbers for methods that cannot be run (results, if any, win).
    """

    name: str
    title: str
    kind: str
    task: str = "segmentation"
    methods: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    main_metrics: tuple[str, ...] = ()
    fixed_rows: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"table spec {self.name!r}"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: unknown kind {self.kind!r}; choose one of {KINDS}")
        if self.task not in METRICS:
            raise ValueError(f"{where}: unknown task {self.task!r}; choose one of {tuple(METRICS)}")
        for m in self.metrics:
            if m not in METRICS[self.task]:
                raise ValueError(f"{where}: {m!r} is not a {self.task} metric {METRICS[self.task]}")
        for m in self.main_metrics:
            if m not in IMAGE_METRICS[self.task]:
                raise ValueError(
                    f"{where}: main metric {m!r} has no per-image form; "
                    f"choose from {IMAGE_METRICS[self.task]}"
                )
        if self.kind == "per_fold" and len(self.methods) > 1:
            raise ValueError(f"{where}: a per_fold table shows one method, got {self.methods}")

    @property
    def columns(self) -> tuple[str, ...]:
        return self.metrics or METRICS[self.task]

    @property
    def main(self) -> tuple[str, ...]:
        return self.main_metrics or tuple(
            m for m in IMAGE_METRICS[self.task] if m in self.columns
        )

    def row_methods(self, reference: str) -> list[str]:
        if self.kind == "per_fold":
            return [self.methods[0] if self.methods else reference]
        return list(self.methods) + [m for m in self.fixed_rows if m not in self.methods]


DEFAULT_SPECS: tuple[TableSpec, ...] = (
    TableSpec(
        "table1",
        "Table 1: Segmentation results reported by the proposed model ({method}), per fold",
        "per_fold",
        task="segmentation",
    ),
    TableSpec(
        "table2",
        "Table 2: Classification results reported by the proposed model ({method}), per fold",
        "per_fold",
        task="classification",
    ),
)


@dataclass
class Table:
    """A built table: ``display`` (formatted strings, as printed) and ``raw`` (numbers, as CSV)."""

    spec: TableSpec
    title: str
    display: pd.DataFrame
    raw: pd.DataFrame
    notes: list[str]


def fmt_value(metric: str, x: float) -> str:
    """A metric fraction as printed: percent with 2 decimals, AUC as 0.xxx; NaN → "—"."""
    if x is None or not math.isfinite(x):
        return DASH
    return f"{x:.3f}" if metric == "AUC" else f"{100 * x:.2f}"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def _header(metric: str) -> str:
    return metric if metric == "AUC" else f"{metric} (%)"


def _units_note(k: int | None) -> str:
    over = f"over the {k} folds" if k else "over folds"
    return (
        f"Metrics in %, AUC as a fraction; Mean ± SD {over} (sample SD, ddof=1); "
        f"{DASH} = not available (null in the results)."
    )


def _fold_values(rows: pd.DataFrame, task: str, metric: str) -> pd.Series:
    return rows.set_index("fold")[f"{task}.{metric}"].astype(float)


def _per_fold(spec: TableSpec, res: pd.DataFrame, reference: str) -> Table:
    method = spec.row_methods(reference)[0]
    title = spec.title.replace("{method}", method)
    rows = res[res["method"] == method].sort_values("fold")
    cols = spec.columns
    if rows.empty:
        display = pd.DataFrame([["Mean ± SD"] + [NOT_RUN] * len(cols)])
        raw = pd.DataFrame([[NOT_RUN] + [np.nan] * len(cols)], columns=["row", *cols])
        display.columns = ["Fold", *map(_header, cols)]
        return Table(spec, title, display, raw, [f"{method}: {NOT_RUN}."])
    k = int(rows["n_folds"].max())
    values = pd.DataFrame({m: _fold_values(rows, spec.task, m) for m in cols}).reindex(range(k))
    mean, sd = values.mean(), values.std(ddof=1)
    raw = values.copy()
    raw.index = [f"Fold {f + 1}" for f in range(k)]
    raw.loc["mean"], raw.loc["sd"] = mean, sd
    raw = raw.rename_axis("row").reset_index()
    present = set(rows["fold"])
    disp_rows = []
    for f in range(k):
        cells = [fmt_value(m, values.at[f, m]) for m in cols] if f in present else [NOT_RUN] * len(
            cols
        )
        disp_rows.append([f"Fold {f + 1}", *cells])
    disp_rows.append(["Mean ± SD", *(f"{fmt_value(m, mean[m])} ± {fmt_value(m, sd[m])}" for m in cols)])
    display = pd.DataFrame(disp_rows, columns=["Fold", *map(_header, cols)])
    notes = [_units_note(len(present))]
    if len(present) < k:
        notes.append(f"Only {len(present)} of {k} folds have results; Mean ± SD uses those.")
    return Table(spec, title, display, raw, notes)


def _image_stats(metric, task, img, ref_img, same, n_boot, seed) -> dict[str, float]:
    """Bootstrap CI (over ``img``) and image-level paired p vs ``ref_img`` for one main metric."""
    out: dict[str, float] = {}
    if task == "segmentation" or metric == "ACC":
        col = metric if task == "segmentation" else "correct"
        vals = img[col].to_numpy(float) if col in img else np.array([])
        out["n_images"] = float(np.isfinite(vals).sum())
        out["ci_lo"], out["ci_hi"] = stats.mean_ci(vals, n_boot=n_boot, seed=seed)
        if not same and col in ref_img and col in img:
            pair = ref_img[["id", col]].merge(img[["id", col]], on="id").dropna()
            a, b = pair[f"{col}_x"].to_numpy(float), pair[f"{col}_y"].to_numpy(float)
            out["p_images"] = stats.wilcoxon_p(a, b) if col != "correct" else stats.mcnemar_p(a, b)
        return out
    # AUC: pooled over all test images of the method's folds.
    def auc(frame):
        probs = frame.filter(like="prob_").to_numpy(float)
        labels = frame["label"].to_numpy(int)
        return lambda idx: stats.auc_from_probs(probs, labels, idx)

    img = img.dropna(subset=["label"]) if "prob_0" in img else img.iloc[:0]
    out["n_images"] = float(len(img))
    out["ci_lo"], out["ci_hi"] = stats.bootstrap_ci(auc(img), len(img), n_boot=n_boot, seed=seed)
    if not same and "prob_0" in ref_img and len(img):
        pair = ref_img.merge(img, on=["id", "label"], suffixes=("", "_other"))
        ref_part = pair[[c for c in pair if c.startswith("prob_") and "_other" not in c]]
        oth_part = pair[[c for c in pair if c.startswith("prob_") and c.endswith("_other")]]
        y = pair["label"].to_numpy(int)
        out["p_images"] = stats.paired_bootstrap_p(
            lambda idx: stats.auc_from_probs(ref_part.to_numpy(float), y, idx),
            lambda idx: stats.auc_from_probs(oth_part.to_numpy(float), y, idx),
            len(pair),
            n_boot=n_boot,
            seed=seed,
        )
    return out


def _comparison(spec: TableSpec, res: pd.DataFrame, reference: str, n_boot: int, seed: int):
    cols, main, task = spec.columns, spec.main, spec.task
    ref_rows = res[res["method"] == reference]
    ref_img = per_image(res, reference)
    raw_rows, disp_rows = [], []
    for method in spec.row_methods(reference):
        rows = res[res["method"] == method]
        raw: dict[str, object] = {"method": method}
        if rows.empty:
            status = spec.fixed_rows.get(method, NOT_RUN)
            raw.update(status=status, n_folds=0)
            cell = NOT_RUN if status == NOT_RUN else NA
            raw_rows.append(raw)
            disp_rows.append([method, *[cell] * (len(cols) + 2 * len(main))])
            continue
        same = method == reference
        img = per_image(res, method)
        k, n_run = int(rows["n_folds"].max()), len(rows)
        raw.update(status="ok", n_folds=n_run)
        label = method if n_run == k else f"{method} ({n_run}/{k} folds)"
        cells, extra = [], []
        for m in cols:
            vals = _fold_values(rows, task, m)
            raw[f"{m}_mean"], raw[f"{m}_sd"] = vals.mean(), vals.std(ddof=1)
            p_f = math.nan
            if not same and not ref_rows.empty:
                pair = pd.concat([_fold_values(ref_rows, task, m), vals], axis=1, join="inner")
                p_f = stats.wilcoxon_p(pair.iloc[:, 0], pair.iloc[:, 1])
            raw[f"{m}_p_folds"] = p_f
            cell = f"{fmt_value(m, vals.mean())} ± {fmt_value(m, vals.std(ddof=1))}"
            if m in main:
                st = _image_stats(m, task, img, ref_img, same, n_boot, seed)
                raw.update({f"{m}_{key}": st.get(key, math.nan) for key in
                            ("ci_lo", "ci_hi", "p_images", "n_images")})
                p_i = raw[f"{m}_p_images"]
                cell += "*" if p_i < 0.05 else ""
                ci = f"[{fmt_value(m, st['ci_lo'])}, {fmt_value(m, st['ci_hi'])}]"
                ps = "ref." if same else f"{fmt_p(p_f)} / {fmt_p(p_i)}"
                extra += [ci, ps]
            cells.append(cell + ("†" if p_f < 0.05 else ""))
        raw_rows.append(raw)
        disp_rows.append([label, *cells, *extra])
    headers = ["Method", *map(_header, cols)]
    for m in main:
        headers += [f"{m} 95% CI", f"p {m} (folds / images)"]
    display = pd.DataFrame(disp_rows, columns=headers)
    notes_rows = [(m, r) for m, r in spec.fixed_rows.items() if res[res["method"] == m].empty]
    if notes_rows:
        display["Note"] = [spec.fixed_rows.get(m, "") if (m, spec.fixed_rows.get(m)) in notes_rows
                           else "" for m in spec.row_methods(reference)]
    k = int(ref_rows["n_folds"].max()) if not ref_rows.empty else None
    notes = [
        _units_note(k),
        f"p vs {reference}, two-sided. Folds: Wilcoxon signed-rank over paired folds; with k "
        f"folds the smallest attainable p is 2/2^k ({fmt_p(stats.min_wilcoxon_p(k or 5))} for "
        f"k={k or 5}), so p < 0.05 over folds is impossible with 5 folds. Images: "
        + ("Wilcoxon signed-rank over per-image DC/JSI pairs." if task == "segmentation" else
           "exact McNemar test on per-image correctness (ACC); paired bootstrap of the AUC "
           f"difference (n_boot={n_boot}) for AUC."),
        "* p(images) < 0.05; † p(folds) < 0.05. 95% CI: percentile bootstrap over test images "
        f"(n_boot={n_boot}, seed={seed}) of the pooled per-image "
        + ("mean." if task == "segmentation" else "accuracy / AUC."),
    ]
    return Table(spec, spec.title, display, pd.DataFrame(raw_rows), notes)


HYPERPARAMS = ("batch_size", "optimizer", "lr", "epochs", "lr_decay_every", "lr_decay_factor")


def _schedule(cfg: dict) -> str:
    every, factor = cfg.get("lr_decay_every"), cfg.get("lr_decay_factor")
    if every is None and factor is None:
        return str(cfg["schedule"]) if cfg.get("schedule") else DASH
    if not every or factor in (None, 1):
        return "constant"
    return f"×{factor:g} every {every} epochs"


def _hyperparams(spec: TableSpec, res: pd.DataFrame, reference: str) -> Table:
    raw_rows, disp_rows = [], []
    for method in spec.row_methods(reference):
        rows = res[res["method"] == method]
        if rows.empty:
            status = spec.fixed_rows.get(method, NOT_RUN)
            raw_rows.append({"method": method, "status": status})
            disp_rows.append([method] + [NOT_RUN if status == NOT_RUN else status] * 5)
            continue
        # Folds of one run share a config; differing folds are shown, joined, not hidden.
        cfgs = list(rows["config"])
        def val(key):
            seen = list(dict.fromkeys(json_str(c.get(key)) for c in cfgs))
            return " / ".join(seen)
        raw_rows.append({"method": method, "status": "ok", **{k: val(k) for k in HYPERPARAMS}})
        scheds = " / ".join(dict.fromkeys(_schedule(c) for c in cfgs))
        disp_rows.append([method, val("batch_size"), val("optimizer"), val("lr"), val("epochs"), scheds])
    headers = ["Method", "Batch size", "Optimizer", "Learning rate", "Epochs", "LR schedule"]
    display = pd.DataFrame(disp_rows, columns=headers)
    notes = ["From each method's recorded run config (fold files); — = not recorded."]
    return Table(spec, spec.title, display, pd.DataFrame(raw_rows), notes)


def json_str(value) -> str:
    if value is None:
        return DASH
    return f"{value:g}" if isinstance(value, float) else str(value)
