"""Read result files ``R/<method>/fold_<K>.json`` (schema 1) into a pandas table.

Every file is validated as it is read, so a table never silently drops or misreads a run: a bad
file, or one without the per-image results its tasks need, raises ``DataError`` with a one-line
message that names it (the field checks, per-image values included: ``results_checks``).
Metric columns are named "<task>.<metric>" (e.g. "segmentation.DC"); null metrics become NaN.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_bench import results_checks as checks
from mtl_bench.claim import fold_lock, in_use
from mtl_bench.data.folds import load_manifest
from mtl_bench.data.types import DataError

METRICS: dict[str, tuple[str, ...]] = {
    "segmentation": ("JSI", "DC", "ACC", "PRE", "REC", "SPE"),
    "classification": ("ACC", "PRE", "REC", "SPE", "F1", "AUC"),
}
_FOLD_FILE = re.compile(r"fold_([0-9]+)\.json")  # ASCII digits: what cv writes
_CURVE_FILE = re.compile(r"fold_([0-9]+)_curve\.csv")  # written each epoch while a fold trains
# A method whose run failed (written by ``reproduce``, removed once it succeeds): its table rows
# read "failed" with this file's first line as the note, not "not run".
FAILED_NAME = "failed.txt"
_REQUIRED = ("schema", "method", "fold", "n_folds", "metrics", "fold_manifest_hash")
# Copied from each file as-is, when present, so tables can report provenance.
_PASSTHROUGH = (
    "model", "family", "dataset_fingerprint", "dataset_source_fingerprint", "git_commit",
    "device_kind", "host_cpu", "from_scratch", "wall_time_s", "train_img_per_s", "epochs_run",
    "finished_utc",
)  # fmt: skip


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
        if not text.strip():  # a write cut short before atomic writes, or a file emptied by hand
            raise DataError(f"{path}: empty result file (0 bytes of JSON)")
        record = json.loads(text)
    except DataError:  # the empty file's own line (a ValueError, not to be wrapped below)
        raise
    except json.JSONDecodeError as err:
        # Some messages end in "at" already ("Invalid control character at"): say it once.
        msg = err.msg.removesuffix(" at")
        raise DataError(
            f"{path}: malformed JSON ({msg} at line {err.lineno}, column {err.colno})"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read result file ({err})") from None
    except ValueError as err:  # an integer of over 4300 digits: Python refuses to parse it
        raise DataError(f"{path}: malformed JSON ({err})") from None
    if not isinstance(record, dict):
        raise DataError(
            f"{path}: a result file must hold a JSON object, got {type(record).__name__}"
        )
    return record


def read_result(path: str | Path) -> dict:
    """One validated result file as a flat row (metrics as "<task>.<metric>" columns)."""
    path = Path(path)
    rec = _read_json(path)
    missing = [k for k in _REQUIRED if k not in rec]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}")
    if type(rec["schema"]) is not int or rec["schema"] != 1:  # not true, which == 1
        raise DataError(f"{path}: unsupported result schema {rec['schema']!r} (this reads 1)")
    match = _FOLD_FILE.fullmatch(path.name)
    if match and match.group(1) != str(int(match.group(1))):
        # cv writes fold_<K>.json; fold_01.json beside fold_1.json would be a second fold 1.
        raise DataError(
            f"{path}: a fold file is named without leading zeros (fold_{int(match.group(1))}.json)"
        )
    if rec["method"] != path.parent.name:
        raise DataError(f"{path}: method {rec['method']!r} differs from its folder name")
    fold, n_folds = rec["fold"], rec["n_folds"]
    if match and int(match.group(1)) != fold:
        raise DataError(f"{path}: file name says fold {match.group(1)}, the file says {fold!r}")
    if not (type(fold) is int and type(n_folds) is int and 0 <= fold < n_folds):
        raise DataError(f"{path}: fold {fold!r} is not in 0..n_folds-1 (n_folds={n_folds!r})")
    if not isinstance(rec["fold_manifest_hash"], str):
        raise DataError(f"{path}: fold_manifest_hash must be a string (tables compare them)")
    row = {"method": rec["method"], "fold": fold, "n_folds": n_folds, "path": str(path)}
    row["fold_manifest_hash"] = rec["fold_manifest_hash"]
    row.update({k: rec.get(k) for k in _PASSTHROUGH})
    row["tasks"] = checks.string_list(path, rec, "tasks", allowed=checks.TASKS)
    row["class_names"] = checks.string_list(path, rec, "class_names")
    metrics = checks.metrics_object(path, rec["metrics"])
    for task, names in METRICS.items():
        block = metrics.get(task)
        if block is not None and not isinstance(block, dict):
            raise DataError(f"{path}: metrics.{task} must be an object or null")
        for name in names:
            row[f"{task}.{name}"] = checks.metric(path, task, name, (block or {}).get(name))
    row["config"] = checks.config(path, rec.get("config"))
    row["params"] = rec.get("params") if isinstance(rec.get("params"), int) else None
    source = rec.get("model_source")  # a hash of a user model's file: compared across folds
    row["model_source"] = source if isinstance(source, dict) and "sha256" in source else None
    need = checks.needs(row["tasks"], metrics)
    row["per_image"] = checks.per_image(path, rec.get("per_image"), need, len(row["class_names"]))
    checks.agree(path, row, row["per_image"])
    return row


def load_results(results_dir: str | Path) -> pd.DataFrame:
    """One row per (method, fold) found under ``results_dir``, sorted by method and fold.

    Folders without ``fold_<K>.json`` files (``tables/``) and other files (curves, folds.json,
    temporary files of an unfinished atomic write) are ignored; a zero-padded ``fold_01.json``
    is refused, naming the file of the same fold beside it if any. ``attrs["failed"]`` maps each
    method with a ``failed.txt`` (``FAILED_NAME``) to its first line; ``attrs["unfinished"]``
    maps each method to its folds that have a learning curve but no result file (interrupted)
    and the epochs that curve holds.
    """
    root = Path(results_dir)
    if not root.is_dir():
        what = "a file, not a results folder" if root.exists() else "results folder does not exist"
        raise DataError(f"{root}: {what}")
    paths = [
        p
        for sub in sorted(root.iterdir())
        if sub.is_dir()
        for p in sorted(sub.iterdir())
        if _FOLD_FILE.fullmatch(p.name)
    ]
    # Two files for one (method, fold) (fold_01.json beside fold_1.json) would make two rows of
    # one fold: refused naming both, before read_result refuses the zero-padded name alone.
    seen: dict[tuple[str, int], Path] = {}
    for p in paths:
        key = (p.parent.name, int(_FOLD_FILE.fullmatch(p.name).group(1)))
        if (first := seen.setdefault(key, p)) != p:
            raise DataError(f"{p}: {first} holds fold {key[1]} of {key[0]} too (keep one file)")
    rows = [read_result(p) for p in paths]
    cols = ["method", "fold", "n_folds", "path", "fold_manifest_hash"]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)
    failed = {
        sub.name: (sub / FAILED_NAME).read_text("utf-8", errors="replace").strip().split("\n")[0]
        for sub in sorted(root.iterdir())
        if (sub / FAILED_NAME).is_file()
    }
    for method, group in frame.groupby("method"):
        if group["n_folds"].nunique() > 1:  # each count with a file that has it, by name
            named = group.sort_values("fold").drop_duplicates("n_folds").sort_values("n_folds")
            pairs = zip(named["n_folds"], named["path"], strict=True)
            said = ", ".join(f"{Path(p).name}: {k}" for k, p in pairs)
            raise DataError(
                f"{root / str(method)}: fold files disagree on n_folds ({said}; files copied in "
                "from a run with other folds?)"
            )
    frame = frame.sort_values(["method", "fold"], ignore_index=True)
    frame.attrs["failed"] = failed
    frame.attrs["unfinished"] = _unfinished(root)
    # Of those, the folds a running cv holds (claim.py): "training", not "stopped".
    frame.attrs["training"] = {
        m: sorted(f for f in folds if in_use(fold_lock(root, m, f)))
        for m, folds in frame.attrs["unfinished"].items()
    }
    return frame


def _unfinished(root: Path) -> dict[str, dict[int, int]]:
    """{method: {fold: epochs in its curve}} for folds that started (a curve) but wrote no
    result: the tables say "unfinished" for them, which "not run" would hide."""
    found: dict[str, dict[int, int]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        for p in sorted(sub.iterdir()):
            m = _CURVE_FILE.fullmatch(p.name)
            if m and not (sub / f"fold_{m.group(1)}.json").exists():
                try:
                    lines = p.read_text("utf-8", errors="replace").strip().splitlines()
                except OSError:
                    lines = []
                found.setdefault(sub.name, {})[int(m.group(1))] = max(len(lines) - 1, 0)
    return found


def check_same_manifest(results: pd.DataFrame, methods: Iterable[str], what: str) -> str | None:
    """None if all rows of ``methods`` share one fold_manifest_hash, else a one-line problem.

    Methods compared in one table must have been evaluated on identical folds; the message names
    each hash (first 12 hex digits) with the methods that used it.
    """
    rows = results[results["method"].isin(list(methods))]
    by_hash = rows.groupby("fold_manifest_hash")["method"].unique()
    if len(by_hash) <= 1:
        return None
    parts = [f"{h[:12]} ({', '.join(sorted(ms))})" for h, ms in by_hash.items()]
    return f"{what}: results come from different fold manifests: {' vs '.join(parts)}"


def per_image(results: pd.DataFrame, method: str) -> pd.DataFrame:
    """Per-image results of ``method`` over all its folds, one row per test image.

    Columns: fold, id, label, JSI, DC (NaN where excluded) and, for a method with class
    probabilities, prob_0..prob_{C-1}, pred (their argmax, the predicted class) and correct
    (pred == label, as 0/1). An id seen in two folds of one method raises DataError: each image
    is tested exactly once.
    """
    parts = []
    for _, row in results[results["method"] == method].iterrows():
        per = row["per_image"]
        if not per:
            continue
        n = len(per["id"])
        part = pd.DataFrame({"fold": row["fold"], "id": per["id"]})
        part["label"] = pd.array(per.get("label") or [None] * n, dtype="Int64")
        for key in ("JSI", "DC"):
            vals = per.get(key)
            part[key] = np.nan if vals is None else np.array(vals, dtype=float)
        if per.get("prob") is not None:
            prob = np.array(per["prob"], dtype=float).reshape(n, -1)
            for c in range(prob.shape[1]):
                part[f"prob_{c}"] = prob[:, c]
            part["pred"] = prob.argmax(axis=1)
            part["correct"] = (part["pred"] == part["label"]).astype(float)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["fold", "id", "label", "JSI", "DC"])
    out = pd.concat(parts, ignore_index=True)
    dup = out["id"][out["id"].duplicated()]
    if not dup.empty:
        raise DataError(f"{method}: image id {dup.iloc[0]!r} appears in more than one test fold")
    return out


def duplicate_groups(results_dir: str | Path) -> dict[str, dict[str, int]]:
    """{fold manifest hash: {image id: duplicate group number}} from ``results_dir/folds.json``,
    the manifest ``cv`` writes beside its results ({} when there is none; a DataError names a
    broken one). Only images in a multi-member group are listed; {hash: {}} means the manifest
    found no near duplicates."""
    path = Path(results_dir) / "folds.json"
    if not path.is_file():
        return {}
    manifest = load_manifest(path)
    ids: dict[str, int] = {}
    for g, group in enumerate(manifest.duplicate_groups):
        # The hash covers the folds the groups shaped, not the groups: check them here.
        members = group.get("ids") if isinstance(group, dict) else None
        if not isinstance(members, list) or not all(isinstance(i, str) for i in members):
            raise DataError(f"{path}: duplicate_groups[{g}] is not {{'ids': [image ids], ...}}")
        for i in members:
            if ids.setdefault(i, g) != g:
                raise DataError(f"{path}: image {i!r} is in two duplicate groups ({ids[i]}, {g})")
    return {manifest.hash(): ids}
