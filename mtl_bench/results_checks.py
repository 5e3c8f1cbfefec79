"""Field checks of one result file (schema 1), for ``results_io.read_result``.

Each wrong JSON type or value raises a one-line ``DataError`` naming the file, the field and, in a
list, the first bad entry: ``<file>: per_image.DC[3] = 5.0: expected null or a number in [0, 1]``.
The per-image values are checked as closely as the fold-level metrics because the pooled values,
CIs and image-level tests are computed from them: a label outside the class set, a DC of 5 or a
null label in a classifier run would otherwise move those numbers without a word.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mtl_bench.data.types import DataError

TASKS = ("mask", "label")
# float32 probabilities written with their shortest decimals (fold_record.float32_list) sum to 1
# within ~1e-7; 1e-3 still catches logits or a wrong column written as probabilities.
PROB_SUM_TOL = 1e-3
_LOST = "the pooled values and image-level tests would cover the other folds only"


def show(value: object, limit: int = 60) -> str:
    """``value`` as the file spells it (JSON), cut short: a 400-digit integer stays one line."""
    text = json.dumps(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text)} characters)"


def is_number(value: object) -> bool:
    """A JSON number (not true/false) that is finite as a float. A JSON integer like 10**400 is
    not: ``math.isfinite`` raises OverflowError on it, and no metric could use it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def metric(path: Path, task: str, name: str, value: object) -> float:
    """A metric fraction in [0, 1], or NaN for null; anything else names the file and key."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{path}: metrics.{task}.{name} must be a number or null, got {value!r}")
    if not is_number(value) or not 0.0 <= value <= 1.0:
        # Catches percentages written where fractions belong (83.4 instead of 0.834). The writer
        # stores an undefined metric as null, so a NaN in the file is refused too.
        shown = value if isinstance(value, float) else show(value)
        raise DataError(f"{path}: metrics.{task}.{name} = {shown} is outside [0, 1]")
    return float(value)


def metrics_object(path: Path, value: object) -> dict:
    """``metrics``: an object (a list used to read as "no metrics", so no rows and no error)."""
    if not isinstance(value, dict):
        raise DataError(f"{path}: metrics = {show(value)}: expected an object")
    return value


def string_list(path: Path, rec: dict, key: str, allowed: tuple[str, ...] = ()) -> tuple:
    """``rec[key]`` (``tasks``, ``class_names``) as a tuple of distinct strings, () for null or
    absent. A string used to be read as its characters ("ab": two classes)."""
    value = rec.get(key)
    if value is None:
        return ()
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    ok = ok and len(set(value)) == len(value) and set(value) <= set(allowed or value)
    if not ok:
        what = f"names from {', '.join(map(show, allowed))}" if allowed else "strings"
        raise DataError(f"{path}: {key} = {show(value)}: expected a list of distinct {what}")
    return tuple(value)


def config(path: Path, value: object) -> dict:
    """``config`` ({} for null or absent): the tables call ``.get`` on it and its
    ``model_kwargs``, which a list or string would turn into a bare traceback."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DataError(f"{path}: config = {show(value)}: expected an object (the run config)")
    kwargs = value.get("model_kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise DataError(
            f"{path}: config.model_kwargs = {show(kwargs)}: expected an object (keyword: value)"
        )
    return value


def needs(tasks: tuple[str, ...], metrics: dict) -> dict[str, str]:
    """{per_image key: task}: what a record's tasks (or, lacking ``tasks``, metrics) need."""
    out = {}
    if "mask" in tasks or metrics.get("segmentation") is not None:
        out.update(JSI="segmentation", DC="segmentation")
    if "label" in tasks or metrics.get("classification") is not None:
        out.update(label="classification", prob="classification")
    return out


def _bad(path: Path, key: str, i: int, value: object, expected: str) -> DataError:
    return DataError(f"{path}: per_image.{key}[{i}] = {show(value)}: expected {expected}")


def per_image(path: Path, per: object, need: dict[str, str], n_classes: int) -> dict:
    """``per_image``, checked entry by entry, with what the run's tasks need (``need``:
    {key: task}). ``n_classes`` is len(class_names), 0 where the file has none: the
    probability rows then set it (labels are only checked to be >= 0 without either)."""
    if per is None and need:
        tasks = " and ".join(dict.fromkeys(need.values()))
        raise DataError(f"{path}: per_image is missing, but the run has {tasks} results: {_LOST}")
    if per is None:
        return {}
    if not isinstance(per, dict) or not isinstance(per.get("id"), list):
        raise DataError(f"{path}: per_image must be an object with an 'id' list")
    n = len(per["id"])
    for key in ("label", "prob", "JSI", "DC"):
        vals = per.get(key)
        if vals is None and key in need:
            raise DataError(
                f"{path}: per_image.{key} is missing or null, but the run has {need[key]} "
                f"results: {_LOST}"
            )
        if vals is not None and (not isinstance(vals, list) or len(vals) != n):
            got = len(vals) if isinstance(vals, list) else type(vals).__name__
            raise DataError(f"{path}: per_image.{key} has {got} entries, per_image.id has {n}")
    _ids(path, per["id"])
    probs = per.get("prob")
    c = n_classes or (len(probs[0]) if probs and isinstance(probs[0], list) else 0)
    if per.get("label") is not None:
        _labels(path, per["label"], c)
    for key in ("JSI", "DC"):  # null: an image the empty-mask policy leaves out
        for i, v in enumerate(per.get(key) or ()):
            if v is not None and not (is_number(v) and 0.0 <= v <= 1.0):
                raise _bad(path, key, i, v, "null or a number in [0, 1]")
    if probs:
        _probs(path, probs, c or 2)
    return per


def _ids(path: Path, ids: list) -> None:
    # An id twice in one fold would count its image twice in the pooled values and tests.
    first: dict[str, int] = {}
    for i, v in enumerate(ids):
        if not isinstance(v, str):
            raise _bad(path, "id", i, v, 'an image id string ("<class>/<stem>")')
        j = first.setdefault(v, i)
        if j != i:
            raise _bad(path, "id", i, v, f"an id used once in the file (per_image.id[{j}] too)")


def _labels(path: Path, labels: list, c: int) -> None:
    expected = f"a class index in [0, {c})" if c else "a class index (an integer >= 0)"
    for i, y in enumerate(labels):
        # type(...) is int: true/false and 1.0 are not class indices.
        if type(y) is not int or y < 0 or (c and y >= c):
            raise _bad(path, "label", i, y, expected)


def _probs(path: Path, probs: list, c: int) -> None:
    for i, p in enumerate(probs):
        if not (isinstance(p, list) and len(p) == c and all(is_number(v) for v in p)):
            raise DataError(
                f"{path}: per_image.prob[{i}] is not a list of {c} probabilities: {show(p)}"
            )
    # All finite numbers in equal rows now: numpy checks ranges and sums at once.
    arr = np.asarray(probs, dtype=float)
    bad = (arr < 0).any(axis=1) | (arr > 1).any(axis=1)
    bad |= np.abs(arr.sum(axis=1) - 1.0) > PROB_SUM_TOL
    if bad.any():
        i = int(np.argmax(bad))
        expected = f"{c} numbers in [0, 1] summing to 1 (within {PROB_SUM_TOL:g})"
        raise _bad(path, "prob", i, probs[i], expected)


# The writer derives both from the same float32 values (fold_record), so they agree to rounding.
AGREE_TOL = 1e-6


def agree(path: Path, row: dict, per: dict) -> None:
    """Refuse a file whose fold metrics disagree with its own per-image values: the Mean ± SD
    columns come from the former, the pooled values and tests beside them from the latter, so a
    hand-edited metric (or per_image pasted from another run) would make one table contradict
    itself. Checked: every classification metric (recomputed from labels and probabilities) and
    the segmentation JSI and DC (means of the per-image values the empty policy kept); ACC, PRE,
    REC and SPE come from pixel counts the file does not keep."""
    from mtl_bench.metrics import classification_metrics

    got: dict[str, float] = {}
    if per.get("prob") and per.get("label") is not None:
        c = len(row["class_names"]) or None
        cls = classification_metrics(per["label"], np.asarray(per["prob"]), num_classes=c)
        got.update({f"classification.{k}": v for k, v in cls.items() if k != "n_samples"})
    for key in ("JSI", "DC"):
        vals = per.get(key)
        if vals:
            kept = [v for v in vals if v is not None]
            got[f"segmentation.{key}"] = float(np.mean(kept)) if kept else math.nan
    for col, want in got.items():
        have = row.get(col, math.nan)
        if math.isnan(have) and math.isnan(want):
            continue
        if math.isnan(have) or math.isnan(want) or abs(have - want) > AGREE_TOL:
            raise DataError(
                f"{path}: metrics.{col} = {_said(have)} disagrees with its per_image values, "
                f"which give {_said(want)} (edited by hand, per_image from another run, or an "
                "older writer?)"
            )


def _said(value: float) -> str:
    return "null" if math.isnan(value) else f"{value:.6g}"
