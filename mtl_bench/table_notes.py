"""Notes a table carries when its numbers were not made alike: other machines, other settings,
other inputs.

A table's rows are only comparable when they were produced the same way. These functions look at
the result files behind a table's methods and return a sentence for the table's notes (None when
there is nothing to say); ``tables.build_tables`` appends them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

# Config fields that change what a metric counts, not how a method trains: methods scored under
# different values are not compared on the same images.
EVALUATION_KEYS = ("empty_policy",)


def machines_note(results: pd.DataFrame, methods: Iterable[str]) -> str | None:
    """None if all rows of ``methods`` ran on one kind of machine, else a note naming each.

    A machine is (device kind, host CPU); a file written before ``host_cpu`` was recorded counts
    as "CPU not recorded". Why a table says so: XLA compiles for the machine it runs on, so the
    same run rounds differently elsewhere (phantom folds rerun on another x86 CPU moved by up to
    0.2 in AUC, 0.5 in a near-chance classifier's PRE) — a difference between methods run apart
    includes that.
    """
    rows = results[results["method"].isin(list(methods))]
    if rows.empty or "device_kind" not in rows:
        return None
    cpu = rows["host_cpu"] if "host_cpu" in rows else pd.Series("", index=rows.index)
    cpu = cpu.fillna("").astype(str).replace("", "CPU not recorded")
    device = rows["device_kind"].fillna("unknown device").astype(str)
    machine = device + " (" + cpu + ")"
    by_machine = rows.groupby(machine)["method"].unique()
    if len(by_machine) <= 1:
        return None
    parts = [f"{m}: {', '.join(sorted(ms))}" for m, ms in by_machine.items()]
    # An unrecorded CPU may be the same machine: say only what the files show.
    unknown = cpu.eq("CPU not recorded").any()
    which = "different machines" + (" (or a CPU not recorded)" if unknown else "")
    return (
        f"Results from {which}, which may round differently (compare with care): "
        + "; ".join(parts)
        + "."
    )


def _fitted_apart(config: dict | None) -> bool:
    """Whether the run's model is fitted outside the gradient engine (``moon_features``: its
    coefficients, hence its parameter count, depend on the fold's selected features)."""
    from mtl_bench.registry import model_info

    try:
        return model_info((config or {}).get("model", "")).fit is not None
    except (KeyError, ImportError):  # not registered here: another version, a plugin absent
        return False


def settings_note(results: pd.DataFrame, methods: Iterable[str]) -> str | None:
    """None if each of ``methods`` ran all its folds with one config, else a note naming the
    fields that differ between its folds and their values per fold.

    A mean ± sd over folds trained differently (a fold rerun with another image size, say) mixes
    two protocols; fields that only say how a run was executed (``config.EXECUTION_KEYS``) are
    not compared, nor fields that some of its files (older ones) lack.
    """
    from mtl_bench.config import EXECUTION_KEYS

    parts = []
    rows = results[results["method"].isin(list(methods))]
    for method, group in rows.groupby("method", sort=True):
        # The network's size too: a model whose code changed between folds (a model of the
        # user's own, edited under the same name) shows in no config field.
        sizes = group["params"] if "params" in group else [None] * len(group)
        if _fitted_apart(group["config"].iloc[0]):  # a feature method's size follows its data
            sizes = [None] * len(group)
        # And the model file's hash (a model of the user's own), which sees an edit that kept
        # the size: compared where every fold recorded one, as other fields.
        sources = group["model_source"] if "model_source" in group else [None] * len(group)
        configs = [
            (
                int(f),
                {
                    **c,
                    **({"params": int(p)} if p is not None and p == p else {}),
                    **({"model_source": s["sha256"]} if isinstance(s, dict) else {}),
                },
            )
            for f, c, p, s in zip(group["fold"], group["config"], sizes, sources, strict=True)
            if c
        ]
        shared = set.intersection(*(set(c) for _, c in configs)) if configs else set()
        keys = sorted(shared - EXECUTION_KEYS)  # a field newer than some files: not compared
        differ = []
        for key in keys:
            values = [(f, json.dumps(c.get(key), sort_keys=True)) for f, c in configs]
            if len({v for _, v in values}) > 1:
                per = ", ".join(f"{v} (Fold {f + 1})" for f, v in values)  # as table rows
                differ.append(f"{key} {per}")
        if differ:
            parts.append(f"{method}: {'; '.join(differ)}")
    if not parts:
        return None
    return (
        "Folds of one method ran with different settings, so its mean ± sd mixes them: "
        + " | ".join(parts)
        + "."
    )


def evaluation_note(results: pd.DataFrame, methods: Iterable[str]) -> str | None:
    """None if ``methods`` were all scored under one value of each ``EVALUATION_KEYS`` field,
    else a note naming the values and their methods (``empty_policy=match`` scores normal images
    that ``exclude`` leaves out, so the segmentation metrics cover different images)."""
    rows = results[results["method"].isin(list(methods))]
    if rows.empty:
        return None
    parts = []
    for key in EVALUATION_KEYS:
        by_value: dict[str, set[str]] = {}
        for method, config in zip(rows["method"], rows["config"], strict=True):
            if config and key in config:
                by_value.setdefault(json.dumps(config[key]), set()).add(method)
        if len(by_value) > 1:
            per = "; ".join(f"{v}: {', '.join(sorted(ms))}" for v, ms in sorted(by_value.items()))
            parts.append(f"{key} {per}")
    if not parts:
        return None
    return (
        "Methods were scored under different evaluation settings, so their metrics do not "
        "cover the same images: " + " | ".join(parts) + "."
    )


# Config fields that say what a method's input image was; name: how a value is shown.
INPUT_KEYS = {"image_size": "Input size", "preprocess": "Pre-processing"}


def inputs_note(results: pd.DataFrame, methods: Iterable[str], task: str) -> str | None:
    """None if ``methods`` all ran at one image size and one pre-processing, else a note naming
    the values and their methods.

    Not a refusal: some methods are defined at their own input size (Inception at 299²), and a
    hand-crafted classifier may skip the pre-processing. But a segmentation metric is counted in
    pixels at each method's own resolution, and every metric is of images prepared differently,
    so a table that compares them says so. Files that lack a field (older ones) are not counted.
    """
    rows = results[results["method"].isin(list(methods))]
    if rows.empty or "config" not in rows:  # an empty folder's frame has no columns
        return None
    parts, differ = [], set()
    for key, label in INPUT_KEYS.items():
        of: dict[str, set[str]] = {}  # method -> its values (several if its folds differ)
        for method, config in zip(rows["method"], rows["config"], strict=True):
            if config and config.get(key) is not None:
                value = config[key]
                of.setdefault(method, set()).add(f"{value}²" if key == "image_size" else str(value))
        by_value: dict[str, list[str]] = {}
        for method, values in sorted(of.items()):
            by_value.setdefault("/".join(sorted(values, key=_natural)), []).append(method)
        if len(by_value) > 1:
            ordered = sorted(by_value.items(), key=_first)
            per = "; ".join(f"{v}: {', '.join(ms)}" for v, ms in ordered)
            parts.append(f"{label} differs: {per}")
            differ.add(key)
    if not parts:
        return None
    # The resolution is named only where the sizes differ: a pre-processing alone changes the
    # images, not the pixels a mask is counted in.
    if task == "segmentation" and "image_size" in differ:
        why = "pixel metrics are at each method's own resolution"
    elif task == "segmentation":
        why = "each method segmented images prepared its own way"
    else:
        why = "each method classified images prepared its own way"
    return " | ".join(parts) + f" — {why} (compare with care)."


def _natural(text: str) -> tuple[int, str]:
    """Sort "75²" before "299²" (sizes by value), words alphabetically."""
    digits = text.split("/")[0].rstrip("²")
    return (int(digits), text) if digits.isdigit() else (1 << 30, text)


def _first(item: tuple[str, list[str]]) -> tuple[int, str]:
    return _natural(item[0])


def three_class_segmentation_note(results: pd.DataFrame, methods: Iterable[str]) -> str | None:
    """For the three-class table: no table has three-class segmentation (normal images' empty
    masks and all), so say where the compared runs' DC / JSI are rather than leave them out."""
    if "segmentation.DC" not in results:
        return None
    both = results[results["method"].isin(list(methods)) & results["segmentation.DC"].notna()]
    if both.empty:
        return None
    names = ", ".join(sorted(set(both["method"])))
    where = "see metrics.segmentation in their fold files"
    return f"The segmentation results of {names} are in no table: {where}."
