"""The comparison tables (4, 6, 7, S1, S2, three-class): one row per method against a reference.

Each cell is Mean ± SD over folds; the main metrics also get the value pooled over every test
image with its bootstrap CI, and paired tests against the reference at fold and image level,
adjusted for testing many methods at once (``stats.adjust_p``). ``table_kinds`` holds the
shared formatting and the per-fold tables, ``table_comparison_notes`` these tables' notes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mtl_bench import image_stats, stats
from mtl_bench.results_io import per_image
from mtl_bench.table_comparison_notes import comparison_notes, duplicates_note, incomplete_note
from mtl_bench.table_kinds import (
    DASH,
    NOT_RUN,
    Table,
    fmt_p,
    fmt_value,
    fold_values,
    header,
    mean_sd,
    unavailable,
    with_notes,
)

if TYPE_CHECKING:
    from mtl_bench.table_specs import TableSpec


def comparison(
    spec: TableSpec,
    res: pd.DataFrame,
    reference: str,
    n_boot: int,
    seed: int,
    p_adjust: str = "holm",
    duplicates: dict[str, dict[str, int]] | None = None,
) -> Table:
    """One row per method: Mean ± SD per metric, CIs and paired p vs ``reference``.

    The table tests every method against one reference, so its p values (and the * / † marks)
    are adjusted for that (``stats.adjust_p``): per metric and test level, over the methods
    with a test in this table. The CSV keeps both the unadjusted (``_p_folds``, ``_p_images``)
    and the adjusted values (``_adj``). ``duplicates``: {fold manifest hash: {image id: group}}
    (``results_io.duplicate_groups``); a group's images are one unit at image level.

    A method with fewer fold files than the manifest's k is labelled "(j/k folds)", its cells
    carry "(j/k)" as in Tables 1-2, the CSV gives j (``n_folds``) and k (``n_folds_expected``),
    and a note says what its pooled values and paired tests cover.
    """
    cols, main, task = spec.columns, spec.main, spec.task
    ref_rows = res[res["method"] == reference]
    ref_img = per_image(res, reference)
    listed = res[res["method"].isin(spec.row_methods(reference))]
    hashes = listed["fold_manifest_hash"].unique()  # one (build_tables checks), or none ran
    groups = None if duplicates is None or len(hashes) != 1 else duplicates.get(hashes[0])
    # First every test, then the adjustment (it needs the whole family), then the cells.
    found: list[tuple[str, dict | None]] = []
    tested_ids: set[str] = set()
    for method in spec.row_methods(reference):
        rows = res[res["method"] == method]
        if rows.empty:
            found.append((method, None))
            continue
        is_ref = method == reference
        vals = {m: fold_values(rows, task, m) for m in cols}
        p_f = dict.fromkeys(cols, math.nan)
        if not is_ref and not ref_rows.empty:
            for m in cols:
                pair = pd.concat([fold_values(ref_rows, task, m), vals[m]], axis=1, join="inner")
                p_f[m] = stats.wilcoxon_p(pair.iloc[:, 0], pair.iloc[:, 1])
        img = per_image(res, method)
        test_ref = None if is_ref else ref_img
        st = {
            m: image_stats.image_level(m, task, img, test_ref, n_boot, seed, groups) for m in main
        }
        tested_ids.update(img["id"])
        found.append((method, {"rows": rows, "vals": vals, "p_f": p_f, "st": st}))
    ran = [f for _, f in found if f is not None]
    run_methods = [m for m, f in found if f is not None]
    for m in cols:
        for f, adj in zip(ran, stats.adjust_p([f["p_f"][m] for f in ran], p_adjust), strict=True):
            f.setdefault("p_f_adj", {})[m] = float(adj)
    for m in main:
        p_img = [f["st"][m]["p_images"] for f in ran]
        for f, adj in zip(ran, stats.adjust_p(p_img, p_adjust), strict=True):
            f["st"][m]["p_images_adj"] = float(adj)

    raws, disp, reasons, incomplete = [], [], [], []
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
        raw["n_folds_expected"] = k
        cells, extra = [], {}
        for m in cols:
            vals, p_f = f["vals"][m], f["p_f_adj"][m]
            raw[f"{m}_mean"], raw[f"{m}_sd"] = vals.mean(), vals.std(ddof=1)
            raw[f"{m}_n_folds"] = int(np.isfinite(vals).sum())  # the display's (j/k)
            raw[f"{m}_p_folds"], raw[f"{m}_p_folds_adj"] = f["p_f"][m], p_f
            cell = mean_sd(m, vals.reindex(range(k)))  # a missing fold: (j/k), as Tables 1-2
            if m in main:
                st = f["st"][m]
                raw.update({f"{m}_{key}": v for key, v in st.items()})
                cell += "*" if st["p_images_adj"] < 0.05 else ""
                extra[m] = [
                    _pooled_ci(m, st),
                    "ref." if is_ref else _p_pair(p_f, st["p_images_adj"]),
                ]
            cells.append(cell + ("†" if p_f < 0.05 else ""))
        raws.append(raw)
        label = method if n_run == k else f"{method} ({n_run}/{k} folds)"
        if n_run < k:
            incomplete.append(label)
        disp.append([label, *cells, *(x for m in main for x in extra[m])])
        reasons.append(_input_note(rows))
    headers = ["Method", *map(header, cols)]
    for m in main:
        headers += [f"{m} pooled [95% CI]", f"p {m} (folds / images)"]
    display = with_notes(pd.DataFrame(disp, columns=headers), reasons)
    raw_cols = ["method", "status", "n_folds", "n_folds_expected"]
    raw_cols += [
        f"{m}_{key}" for m in cols for key in ("mean", "sd", "n_folds", "p_folds", "p_folds_adj")
    ]
    raw_cols += [
        f"{m}_{key}"
        for m in main
        for key in ("pooled", "ci_lo", "ci_hi", "p_images", "p_images_adj", "n_images", "n_units")
    ]
    ran_rows = res[res["method"].isin(run_methods)]
    # The folds of the table's runs (the reference's; else any method's: one manifest).
    k = int((ref_rows if not ref_rows.empty else ran_rows)["n_folds"].iloc[0]) if ran else None
    n_tests = 0 if ref_rows.empty else sum(m != reference for m in run_methods)
    tested = not ref_rows.empty
    table_ids = pd.DataFrame({"id": sorted(tested_ids)})
    n_groups, n_grouped = image_stats.duplicate_units(table_ids, groups)
    notes = comparison_notes(
        task, reference, k, n_boot, seed, p_adjust, n_tests, tested=tested, grouped=n_groups > 0
    )
    manifests = list(duplicates or {})  # the hash of the folds.json beside the results
    for note in (
        incomplete_note(incomplete, reference),
        duplicates_note(n_groups, n_grouped, groups, list(hashes), manifests),
    ):
        if note is not None:
            notes.append(note)
    raw_frame = pd.DataFrame(raws, columns=raw_cols)
    if k is not None:  # a row without results: the table's k
        raw_frame["n_folds_expected"] = raw_frame["n_folds_expected"].fillna(k)
    for col in [
        c for c in raw_cols if c.endswith(("n_folds", "n_folds_expected", "n_images", "n_units"))
    ]:  # 3, not 3.0
        raw_frame[col] = raw_frame[col].astype("Int64")
    n_classes = max((len(c) for c in ran_rows.get("class_names", [])), default=2)
    if task == "classification" and n_classes > 2:
        notes.append(
            f"{n_classes} classes: PRE, REC, SPE, F1 and AUC are unweighted means over the classes "
            "of each class against the rest (F1: the mean of the per-class F1s); ACC is the "
            "fraction of images classified right."
        )
    return Table(spec.name, spec.title, display, raw_frame, notes)


def _pooled_ci(metric: str, st: dict[str, float]) -> str:
    """ "pooled [lo, hi]": the value over every test image and its bootstrap CI."""
    if not np.isfinite(st["ci_lo"]):
        return fmt_value(metric, st["pooled"])
    lo, hi = fmt_value(metric, st["ci_lo"]), fmt_value(metric, st["ci_hi"])
    return f"{fmt_value(metric, st['pooled'])} [{lo}, {hi}]"


def _p_pair(p_folds: float, p_images: float) -> str:
    if not (np.isfinite(p_folds) or np.isfinite(p_images)):
        return DASH
    return f"{fmt_p(p_folds)} / {fmt_p(p_images)}"


def _input_note(rows: pd.DataFrame) -> str:
    """A note for a method that saw more at test time than the image (else "")."""
    # moon_features' default is the ground truth: a config without the key used it too.
    sources = {
        (c.get("model_kwargs") or {}).get(
            "mask_source", "ground_truth" if c.get("model") == "moon_features" else None
        )
        for c in rows["config"]
    }
    if "ground_truth" in sources:  # moon_features' default, as Moon et al.
        return (
            "classifies each test image's ground-truth lesion mask (mask_source=ground_truth); "
            "the other methods get the image only"
        )
    return ""
