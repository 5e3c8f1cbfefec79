"""Builders for the per_fold and comparison tables (hyperparams: ``table_hyperparams``).

Each returns a ``Table`` with a ``display`` frame (formatted strings, as printed) and a ``raw``
frame (plain numbers, written as CSV). Formatting: metric fractions as percent with 2 decimals,
AUC as a fraction with 3 decimals (the paper's style); "—" for a null value; "not run" for a
method without results; "n/a" plus a Note for a method that cannot be reproduced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mtl_bench import stats
from mtl_bench.results_io import per_image

if TYPE_CHECKING:
    from mtl_bench.table_specs import TableSpec

# Metrics with a per-image form, hence a bootstrap CI and an image-level paired test.
IMAGE_METRICS = {"segmentation": ("DC", "JSI"), "classification": ("ACC", "AUC")}
NOT_RUN, NA, DASH, FAILED = "not run", "n/a", "—", "failed"


@dataclass
class Table:
    """A built table: ``display`` (strings, as printed) and ``raw`` (numbers, as in the CSV)."""

    name: str
    title: str
    display: pd.DataFrame
    raw: pd.DataFrame
    notes: list[str]


def fmt_value(metric: str, x: float | None) -> str:
    """A metric fraction as printed: percent with 2 decimals, AUC as 0.xxx; NaN → "—"."""
    if x is None or not math.isfinite(x):
        return DASH
    return f"{x:.3f}" if metric == "AUC" else f"{100 * x:.2f}"


def fmt_p(p: float) -> str:
    """A p value with 3 significant digits, "<0.001" below that, "—" if undefined."""
    if not math.isfinite(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def _header(metric: str) -> str:
    return metric if metric == "AUC" else f"{metric} (%)"


def _units_note(k: int | None) -> str:
    over = f"over the {k} folds" if k else "over folds"
    return (
        f"Metrics in %, AUC as a fraction; Mean ± SD {over} (sample SD, ddof=1); "
        f"{DASH} = not available (null in the results, e.g. the AUC of a one-class fold); "
        "(j/k) after a Mean ± SD: over the j of k folds that define it."
    )


def _fold_values(rows: pd.DataFrame, task: str, metric: str) -> pd.Series:
    return rows.set_index("fold")[f"{task}.{metric}"].astype(float)


def _mean_sd(metric: str, vals: pd.Series) -> str:
    """ "mean ± sd"; just "—" when no fold has the value (e.g. a task the method lacks)."""
    if not np.isfinite(vals.mean()):
        return DASH
    text = f"{fmt_value(metric, vals.mean())} ± {fmt_value(metric, vals.std(ddof=1))}"
    defined = int(np.isfinite(vals).sum())
    return text if defined == len(vals) else f"{text} ({defined}/{len(vals)})"


def _ci(metric: str, lo: float, hi: float) -> str:
    return DASH if not np.isfinite(lo) else f"[{fmt_value(metric, lo)}, {fmt_value(metric, hi)}]"


def _p_pair(p_folds: float, p_images: float) -> str:
    if not (np.isfinite(p_folds) or np.isfinite(p_images)):
        return DASH
    return f"{fmt_p(p_folds)} / {fmt_p(p_images)}"


def unavailable(spec: TableSpec, method: str, res: pd.DataFrame | None = None) -> tuple[str, str]:
    """(cell text, note) for a method without results: fixed reason, "failed" (with the error
    ``reproduce`` recorded, ``res.attrs["failed"]``) or "not run"."""
    reason = spec.fixed_rows.get(method)
    if reason:
        return NA, reason
    failed = (res.attrs.get("failed") or {}).get(method) if res is not None else None
    if failed:
        short = failed if len(failed) <= 160 else failed[:159] + "…"
        return FAILED, f"failed: {short}"
    return NOT_RUN, ""


def with_notes(display: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    # The Note column appears only when some row carries a reason, so usual tables stay narrow.
    if any(notes):
        display["Note"] = notes
    return display


def per_fold(spec: TableSpec, res: pd.DataFrame, reference: str) -> Table:
    """Rows "Fold 1".."Fold k" and "Mean ± SD" for one method; missing folds read "not run"."""
    method = spec.row_methods(reference)[0]
    title = spec.title.replace("{method}", method)
    rows, cols = res[res["method"] == method], spec.columns
    headers = ["Fold", *map(_header, cols)]
    if rows.empty:
        display = pd.DataFrame([["Mean ± SD", *[NOT_RUN] * len(cols)]], columns=headers)
        raw = pd.DataFrame([[NOT_RUN, *[np.nan] * len(cols)]], columns=["row", *cols])
        return Table(spec.name, title, display, raw, [f"{method}: {NOT_RUN}."])
    k = int(rows["n_folds"].iloc[0])
    values = pd.DataFrame({m: _fold_values(rows, spec.task, m) for m in cols}).reindex(range(k))
    present = set(rows["fold"])
    raw = values.copy()
    raw.index = [f"Fold {f + 1}" for f in range(k)]
    raw.loc["mean"], raw.loc["sd"] = values.mean(), values.std(ddof=1)
    disp = [
        [
            f"Fold {f + 1}",
            *(fmt_value(m, values.at[f, m]) if f in present else NOT_RUN for m in cols),
        ]
        for f in range(k)
    ]
    disp.append(["Mean ± SD", *(_mean_sd(m, values[m]) for m in cols)])
    notes = [_units_note(len(present))]
    if len(present) < k:
        notes.append(f"Only {len(present)} of {k} folds have results; Mean ± SD uses those.")
    raw = raw.rename_axis("row").reset_index()
    return Table(spec.name, title, pd.DataFrame(disp, columns=headers), raw, notes)


def comparison(
    spec: TableSpec,
    res: pd.DataFrame,
    reference: str,
    n_boot: int,
    seed: int,
    p_adjust: str = "holm",
) -> Table:
    """One row per method: Mean ± SD per metric, CIs and paired p vs ``reference``.

    The table tests every method against one reference, so its p values (and the * / † marks)
    are adjusted for that (``stats.adjust_p``): per metric and test level, over the methods
    with a test in this table. The CSV keeps both the unadjusted (``_p_folds``, ``_p_images``)
    and the adjusted values (``_adj``).
    """
    cols, main, task = spec.columns, spec.main, spec.task
    ref_rows = res[res["method"] == reference]
    ref_img = per_image(res, reference)
    # First every test, then the adjustment (it needs the whole family), then the cells.
    found: list[tuple[str, dict | None]] = []
    for method in spec.row_methods(reference):
        rows = res[res["method"] == method]
        if rows.empty:
            found.append((method, None))
            continue
        is_ref = method == reference
        vals = {m: _fold_values(rows, task, m) for m in cols}
        p_f = dict.fromkeys(cols, math.nan)
        if not is_ref and not ref_rows.empty:
            for m in cols:
                pair = pd.concat([_fold_values(ref_rows, task, m), vals[m]], axis=1, join="inner")
                p_f[m] = stats.wilcoxon_p(pair.iloc[:, 0], pair.iloc[:, 1])
        img = per_image(res, method)
        st = {
            m: stats.image_level(m, task, img, None if is_ref else ref_img, n_boot, seed)
            for m in main
        }
        found.append((method, {"rows": rows, "vals": vals, "p_f": p_f, "st": st}))
    ran = [f for _, f in found if f is not None]
    for m in cols:
        for f, adj in zip(ran, stats.adjust_p([f["p_f"][m] for f in ran], p_adjust), strict=True):
            f.setdefault("p_f_adj", {})[m] = float(adj)
    for m in main:
        p_img = [f["st"][m]["p_images"] for f in ran]
        for f, adj in zip(ran, stats.adjust_p(p_img, p_adjust), strict=True):
            f["st"][m]["p_images_adj"] = float(adj)

    raws, disp, reasons = [], [], []
    for method, f in found:
        if f is None:
            cell, reason = unavailable(spec, method, res)
            raws.append({"method": method, "status": reason or NOT_RUN, "n_folds": 0})
            disp.append([method, *[cell] * (len(cols) + 2 * len(main))])
            reasons.append(reason)
            continue
        rows, is_ref = f["rows"], method == reference
        k, n_run = int(rows["n_folds"].iloc[0]), len(rows)
        raw: dict[str, object] = {"method": method, "status": "ok", "n_folds": n_run}
        cells, extra = [], {}
        for m in cols:
            vals, p_f = f["vals"][m], f["p_f_adj"][m]
            raw[f"{m}_mean"], raw[f"{m}_sd"] = vals.mean(), vals.std(ddof=1)
            raw[f"{m}_p_folds"], raw[f"{m}_p_folds_adj"] = f["p_f"][m], p_f
            cell = _mean_sd(m, vals)
            if m in main:
                st = f["st"][m]
                raw.update({f"{m}_{key}": v for key, v in st.items()})
                cell += "*" if st["p_images_adj"] < 0.05 else ""
                extra[m] = [
                    _ci(m, st["ci_lo"], st["ci_hi"]),
                    "ref." if is_ref else _p_pair(p_f, st["p_images_adj"]),
                ]
            cells.append(cell + ("†" if p_f < 0.05 else ""))
        raws.append(raw)
        label = method if n_run == k else f"{method} ({n_run}/{k} folds)"
        disp.append([label, *cells, *(x for m in main for x in extra[m])])
        reasons.append("")
    headers = ["Method", *map(_header, cols)]
    for m in main:
        headers += [f"{m} 95% CI", f"p {m} (folds / images)"]
    display = with_notes(pd.DataFrame(disp, columns=headers), reasons)
    raw_cols = ["method", "status", "n_folds"]
    raw_cols += [f"{m}_{key}" for m in cols for key in ("mean", "sd", "p_folds", "p_folds_adj")]
    raw_cols += [
        f"{m}_{key}"
        for m in main
        for key in ("ci_lo", "ci_hi", "p_images", "p_images_adj", "n_images")
    ]
    k_ref = None if ref_rows.empty else int(ref_rows["n_folds"].iloc[0])
    n_tests = 0 if k_ref is None else len(ran) - 1
    notes = _comparison_notes(task, reference, k_ref, n_boot, seed, p_adjust, n_tests)
    return Table(spec.name, spec.title, display, pd.DataFrame(raws, columns=raw_cols), notes)


def _comparison_notes(
    task: str,
    reference: str,
    k_ref: int | None,
    n_boot: int,
    seed: int,
    p_adjust: str,
    n_tests: int,
) -> list[str]:
    k = k_ref or 5  # no reference results: the paper's fold count for the Wilcoxon floor
    image_test = (
        "Wilcoxon signed-rank over per-image DC / JSI pairs"
        if task == "segmentation"
        else f"exact McNemar on per-image correctness (ACC), paired bootstrap (n_boot={n_boot}) "
        "of the AUC difference (AUC)"
    )
    unreachable = ", so it cannot reach 0.05" if stats.min_wilcoxon_p(k) >= 0.05 else ""
    if p_adjust == "holm":
        what = f"{n_tests} method{'' if n_tests == 1 else 's'} against {reference}"
        adjusted = (
            f"p values and marks are Holm-adjusted for testing {what} (within this table, per "
            "metric and test level; a method without that test is not counted); the CSV also "
            "holds the unadjusted p values."
        )
    else:
        adjusted = "p values are not adjusted for multiple comparisons."
    return [
        _units_note(k_ref),
        f"p vs {reference}, two-sided, as folds / images. Folds: Wilcoxon signed-rank over "
        f"paired folds; its smallest attainable p is 2/2^k = {fmt_p(stats.min_wilcoxon_p(k))} "
        f"for k={k}{unreachable}. Images: {image_test}. {adjusted}",
        f"* p(images) < 0.05; † p(folds) < 0.05. 95% CI: percentile bootstrap over test images "
        f"(n_boot={n_boot}, seed={seed}) of the pooled per-image value.",
    ]
