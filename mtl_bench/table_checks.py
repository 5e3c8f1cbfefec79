"""Checks of what a table may show, made before it is built: the reference ran here, each run
classified as many classes as its table, its methods saw the same data, and which rows are over
fewer folds than the table's (``build_tables`` calls them)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mtl_bench.data.types import DataError, DataWarning
from mtl_bench.table_specs import REF, THREE_CLASS_TAG, TableSpec


def by_class_count(
    results: pd.DataFrame, specs: Iterable[TableSpec], reference: str
) -> dict[str, pd.DataFrame]:
    """{table: the results it may show}: a run that classified another number of classes than
    the table's (a three-class run without ``--tag 3class`` in a binary table) is left out, with
    one warning naming it and the tables, rather than shown as if it were comparable."""
    if results.empty:  # no columns either
        return {s.name: results for s in specs}
    counts = results["class_names"].map(len)
    out: dict[str, pd.DataFrame] = {}
    left_out: dict[tuple[str, int], list[str]] = {}
    for s in specs:
        # Row methods too: a hyper-parameter table compares no results, but showing the settings
        # of a run its results table leaves out would contradict it.
        shown = {*s.compared(reference), *s.row_methods(reference)}
        wrong = results["method"].isin(shown) & ~counts.isin((0, s.classes))
        for method in dict.fromkeys(results.loc[wrong, "method"]):
            left_out.setdefault((method, s.classes), []).append(s.name)
        out[s.name] = results[~wrong]
    for (method, classes), names in left_out.items():
        n = "/".join(map(str, sorted(set(counts[results["method"] == method]))))
        warnings.warn(
            f"{method} ran with {n} classes: left out of {', '.join(names)}, which compare "
            f"{classes}-class runs (three-class runs are MODEL@3class: `mtl-bench cv` tags a "
            "class_set=three_class run so)",
            DataWarning,
            stacklevel=3,
        )
    return out


def check_reference_name(reference: str) -> None:
    """A DataError for a three-class ``reference``: the three-class table turns the build's
    reference into ``REF@3class`` itself, and the binary tables compare binary runs."""
    three = f"@{THREE_CLASS_TAG}"
    if reference.endswith(three):
        raise DataError(
            f"--reference {reference!r}: --reference takes a model name without {three} "
            f"({reference.removesuffix(three)!r}); the three-class table then compares its "
            f"{three} run"
        )


def check_reference(
    results: pd.DataFrame, reference: str, specs: Iterable[TableSpec], results_dir: str | Path
) -> None:
    """The reference (or a table's variant of it, e.g. ``REF@3class``) must have run here and be
    multi-task: it stands in for the proposed model."""
    refs = {s.reference_for(reference) for s in specs}
    present = sorted(refs & set(results["method"]))
    if not present:
        have = ", ".join(sorted(set(results["method"]))) or "none"
        raise DataError(
            f"--reference {reference!r} has no results in {results_dir} (methods with results: "
            f"{have})"
        )
    for ref in present:
        tasks = set().union(*results.loc[results["method"] == ref, "tasks"])
        if tasks != {"mask", "label"}:
            raise DataError(
                f"--reference {ref!r} has only {', '.join(sorted(tasks)) or 'no'} outputs: the "
                "reference plays the proposed multi-task model in every table (mtl_resunet, or "
                "a variant such as mtl_resunet@TAG)"
            )


def warn_incomplete(
    results_of: dict[str, pd.DataFrame],
    specs: Iterable[TableSpec],
    reference: str,
    results_dir: str | Path,
) -> None:
    """One warning per method shown in ``specs`` (``results_of``: each table's results) with
    fewer fold files than its manifest's k: its rows are over those folds only, and its pooled
    values and image-level tests over their images only, which a "(j/k)" is easy to miss."""
    folds: dict[str, tuple[int, set[int]]] = {}
    for s in specs:
        rows = results_of[s.name]
        if rows.empty:
            continue
        for method, group in rows[rows["method"].isin(s.compared(reference))].groupby("method"):
            folds[str(method)] = (int(group["n_folds"].iloc[0]), set(group["fold"]))
    for method, (k, present) in sorted(folds.items()):
        if len(present) < k:
            missing = ", ".join(f"fold_{f}.json" for f in range(k) if f not in present)
            warnings.warn(
                f"{method} has results for {len(present)} of {k} folds (no {missing} in "
                f"{Path(results_dir) / method}): its table rows are over those folds only, its "
                "pooled values and image-level tests over their test images only",
                DataWarning,
                stacklevel=3,
            )


def check_same_source(results: pd.DataFrame, methods: Iterable[str], what: str) -> str | None:
    """None if the rows of ``methods`` that record a ``dataset_source_fingerprint`` (the images
    and masks as decoded, whatever the size and pre-processing) share one, else a one-line
    problem naming each fingerprint's methods. One fold manifest means the same image ids in the
    same folds; a folder whose images or masks were edited between two methods' runs keeps the
    ids, and its methods were still scored on different data. Records from before the
    fingerprint existed (null) are not compared."""
    if "dataset_source_fingerprint" not in results:
        return None
    rows = results[results["method"].isin(list(methods))]
    rows = rows[rows["dataset_source_fingerprint"].notna()]
    by_source = rows.groupby("dataset_source_fingerprint")["method"].unique()
    if len(by_source) <= 1:
        return None
    parts = [f"{str(h)[:12]} ({', '.join(sorted(ms))})" for h, ms in by_source.items()]
    return (
        f"{what}: results come from different data under one fold manifest (the images or masks "
        f"changed between runs; dataset_source_fingerprint): {' vs '.join(parts)}"
    )


def warn_unlisted(results: pd.DataFrame, missing: list[str], reference: str) -> None:
    """Warn of results no built table shows (``missing``): they must not vanish silently (the
    CLI prints the warning). A three-class run of a method no table lists there (a segmentation
    model) or under another tag needs no new table entry, and is said so apart."""

    def three(method: str) -> bool:
        names = results.loc[results["method"] == method, "class_names"]
        return bool(len(names)) and len(names.iloc[0]) == 3

    threes = [m for m in missing if three(m)]
    others = [m for m in missing if m not in threes]
    if others:
        warnings.warn(
            f"results not in any table: {', '.join(others)} (a new method goes into "
            "mtl_bench/table_specs.py)",
            DataWarning,
            stacklevel=3,
        )
    if threes:
        warnings.warn(
            f"three-class results not in any table: {', '.join(threes)} (the three-class table "
            f"compares the classification of {reference}@{THREE_CLASS_TAG} and the pretrained "
            f"CNNs' @{THREE_CLASS_TAG} runs; the others are in their fold files only)",
            DataWarning,
            stacklevel=3,
        )


# The output a method needs to be shown in a table of each task.
_TASK_OUTPUT = {"segmentation": "mask", "classification": "label"}


def with_other_methods(
    specs: tuple[TableSpec, ...], results: pd.DataFrame, reference: str
) -> tuple[TableSpec, ...]:
    """``specs`` with each two-class method that no table lists — a model of the user's own
    (``MTL_BENCH_MODELS``), a baseline not yet in ``table_specs.py`` — added to each spec that
    ``takes_unlisted`` of a task it has the output for (Supplementary Table S1 if it segments,
    S2 if it classifies), beside the reference with the same statistics, rather than left out
    of every table."""
    import dataclasses

    from mtl_bench.table_specs import unlisted

    have = set(results["method"])
    rows = results.drop_duplicates("method").set_index("method")
    others = [
        m
        for m in unlisted(have, specs, reference)
        if len(rows.at[m, "class_names"]) == 2 and not m.endswith(f"@{THREE_CLASS_TAG}")
    ]
    out = []
    for spec in specs:
        need = _TASK_OUTPUT[spec.task] if spec.takes_unlisted else None
        extra = tuple(m for m in others if need and need in rows.at[m, "tasks"])
        if extra:  # before the reference and its kin, which close the table
            at = spec.methods.index(REF) if REF in spec.methods else len(spec.methods)
            spec = dataclasses.replace(
                spec,
                title=f"{spec.title}, and methods no other table lists",
                methods=(*spec.methods[:at], *extra, *spec.methods[at:]),
            )
        out.append(spec)
    return tuple(out)
