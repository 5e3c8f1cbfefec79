"""The ``Table`` type, cell formatting shared by every table kind, and the per_fold tables
(comparison: ``table_comparison``; hyperparams: ``table_hyperparams``).

Each builder returns a ``Table`` with a ``display`` frame (formatted strings, as printed) and a
``raw`` frame (plain numbers, written as CSV). Formatting: metric fractions as percent with 2
decimals, AUC as a fraction with 3 decimals (the paper's style); "—" for a null value; "not run"
for a method without results; "n/a" plus a Note for a method that cannot be reproduced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mtl_bench.table_specs import TableSpec

# Metrics with a per-image form, hence a bootstrap CI and an image-level paired test.
IMAGE_METRICS = {"segmentation": ("DC", "JSI"), "classification": ("ACC", "AUC")}
NOT_RUN, NA, DASH, FAILED, UNFINISHED = "not run", "n/a", "—", "failed", "unfinished"


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
    """A p value with 3 significant digits, "<0.001" below that, "—" if undefined; more digits
    where 3 would round across 0.05 or 0.01 (0.04996 as "0.05" beside a significance mark)."""
    if not math.isfinite(p):
        return DASH
    if p < 0.001:
        return "<0.001"
    for digits in range(3, 7):
        text = f"{p:.{digits}g}"
        if all((float(text) < level) == (p < level) for level in (0.05, 0.01)):
            break
    return text


def header(metric: str) -> str:
    return metric if metric == "AUC" else f"{metric} (%)"


def units_note(k: int | None, task: str = "") -> str:
    """The units and conventions every table states (``task`` "classification" adds the
    zero-division rule, which shows there as a fold's 0.00: ``metrics``)."""
    over = (f"over the {k} folds" if k != 1 else "over the 1 fold") if k else "over folds"
    zero = (
        " PRE, REC, SPE or F1 with a zero denominator (e.g. the PRE of a class no test image "
        f"was predicted as) is 0, not {DASH} (scikit-learn's zero_division=0)."
        if task == "classification"
        else ""
    )
    return (
        f"Metrics in % (fractions in the CSV), AUC as a fraction; Mean ± SD {over} (sample SD, "
        f"ddof=1); {DASH} = not available (null in the results, e.g. the AUC of a one-class fold);"
        f" (j/k) after a Mean ± SD: over the j of k folds that define it.{zero}"
    )


def fold_values(rows: pd.DataFrame, task: str, metric: str) -> pd.Series:
    return rows.set_index("fold")[f"{task}.{metric}"].astype(float)


def mean_sd(metric: str, vals: pd.Series) -> str:
    """ "mean ± sd"; just "—" when no fold has the value (e.g. a task the method lacks)."""
    if not np.isfinite(vals.mean()):
        return DASH
    text = f"{fmt_value(metric, vals.mean())} ± {fmt_value(metric, vals.std(ddof=1))}"
    defined = int(np.isfinite(vals).sum())
    return text if defined == len(vals) else f"{text} ({defined}/{len(vals)})"


def unavailable(spec: TableSpec, method: str, res: pd.DataFrame | None = None) -> tuple[str, str]:
    """(cell text, note) for a method without results: fixed reason, "failed" (with the error
    ``reproduce`` recorded, ``res.attrs["failed"]``), "unfinished" (folds started, none
    finished: ``res.attrs["unfinished"]``) or "not run"."""
    reason = spec.fixed_rows.get(method)
    if reason:
        return NA, reason
    failed = (res.attrs.get("failed") or {}).get(method) if res is not None else None
    if failed:
        short = failed if len(failed) <= 160 else failed[:159] + "…"
        return FAILED, f"failed: {short}"
    started = unfinished_folds(res, method)
    if started:
        return UNFINISHED, f"unfinished: {_said(started, training_folds(res, method))}"
    return NOT_RUN, ""


def unfinished_folds(res: pd.DataFrame | None, method: str) -> dict[int, int]:
    """{fold: epochs its curve holds} of ``method``'s folds that started and wrote no result."""
    return dict((res.attrs.get("unfinished") or {}).get(method, {})) if res is not None else {}


def training_folds(res: pd.DataFrame | None, method: str) -> set[int]:
    """Of ``unfinished_folds``, those a running ``cv`` is training now."""
    return set((res.attrs.get("training") or {}).get(method, ())) if res is not None else set()


def _said(started: dict[int, int], training: set[int]) -> str:
    """Each unfinished fold (1-based): training now, or stopped (then: how to finish it)."""
    said = [
        f"fold {f + 1} is training (epoch {e} so far)"
        if f in training
        else f"fold {f + 1} stopped after epoch {e}"
        for f, e in sorted(started.items())
    ]
    stopped = any(f not in training for f in started)
    return ", ".join(said) + ("; rerun with --resume to finish" if stopped else "")


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
    headers = ["Fold", *map(header, cols)]
    if rows.empty:
        cell, reason = unavailable(spec, method, res)
        display = pd.DataFrame([["Mean ± SD", *[cell] * len(cols)]], columns=headers)
        raw = pd.DataFrame([[cell, *[np.nan] * len(cols)]], columns=["row", *cols])
        return Table(spec.name, title, display, raw, [f"{method}: {reason or cell}."])
    k = int(rows["n_folds"].iloc[0])
    values = pd.DataFrame({m: fold_values(rows, spec.task, m) for m in cols}).reindex(range(k))
    present = set(rows["fold"])
    started = {f: e for f, e in unfinished_folds(res, method).items() if f not in present}
    raw = values.copy()
    raw.index = [f"Fold {f + 1}" for f in range(k)]
    raw.loc["mean"], raw.loc["sd"] = values.mean(), values.std(ddof=1)
    disp = [
        [
            f"Fold {f + 1}",
            *(
                fmt_value(m, values.at[f, m])
                if f in present
                else (UNFINISHED if f in started else NOT_RUN)
                for m in cols
            ),
        ]
        for f in range(k)
    ]
    disp.append(["Mean ± SD", *(mean_sd(m, values[m]) for m in cols)])
    notes = [units_note(len(present), spec.task)]
    if len(present) < k:
        have = "has" if len(present) == 1 else "have"
        notes.append(f"Only {len(present)} of {k} folds {have} results; Mean ± SD uses those.")
    if started:
        notes.append(f"Unfinished: {_said(started, training_folds(res, method))}.")
    raw = raw.rename_axis("row").reset_index()
    return Table(spec.name, title, pd.DataFrame(disp, columns=headers), raw, notes)
