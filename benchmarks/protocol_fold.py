"""One fold's measured time, as ``benchmarks/protocol_time.py`` reads and scales it: the
components the fit loop records in ``fold_K.json`` (and the learning curve's per-epoch rates),
one fold's extrapolation to a longer run, and which of a protocol's folds compile."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path
from typing import Any

TIMING_KEYS = ("setup_s", "eval_s", "checkpoint_s", "checkpoints_saved", "train_images")


class ProtocolError(ValueError):
    """A results folder this tool cannot read (the message names the file)."""


def fold_timing(method_dir: Path, fold_json: Path) -> dict[str, Any]:
    """One fold's measured components (seconds) from its result file and learning curve."""
    try:
        res = json.loads(fold_json.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ProtocolError(f"{fold_json}: not a readable result file ({e})") from None
    missing = [k for k in TIMING_KEYS if k not in res]
    if missing:
        raise ProtocolError(
            f"{fold_json}: no {', '.join(missing)} (an older mtl-bench or a fold-parallel run: "
            "rerun the fold sequentially)"
        )
    curve_path = method_dir / f"{fold_json.stem}_curve.csv"
    try:
        with open(curve_path, newline="") as f:
            rates = [float(r["img_per_s"]) for r in csv.DictReader(f)]
    except (OSError, KeyError, ValueError) as e:
        raise ProtocolError(f"{curve_path}: no readable img_per_s curve ({e})") from None
    if len(rates) < 2:
        raise ProtocolError(f"{curve_path}: {len(rates)} epoch(s); run at least 2 (better 5)")
    n = res["train_images"]
    epochs_s = [n / r for r in rates]
    saves = res["checkpoints_saved"]
    # A save's background write slows the epoch after it (2026-11-29 H200: 611-941 img/s against
    # 1370), which a median over the later epochs leaves out: those epochs are told apart by the
    # run's checkpoint_every (a save after epoch e, 1-based, when e % every == 0), and their
    # extra time is charged to each save that has an epoch after it.
    every = int((res.get("config") or {}).get("checkpoint_every", 0) or 0)
    after = [i for i in range(1, len(epochs_s)) if every > 0 and i % every == 0]
    clean = [epochs_s[i] for i in range(1, len(epochs_s)) if i not in after]
    epoch_s = statistics.median(clean or epochs_s[1:])
    next_s = 0.0
    if after and clean:  # with a save after every epoch, no clean epoch to measure it against
        next_s = max(statistics.mean(epochs_s[i] for i in after) - epoch_s, 0.0)
    # The first save carries one-time costs (the checksum's compile: 4 s on the 2026-11-29 H200
    # against 0.3 s a save), which the mean over a short run's 3 saves would charge 50 times.
    first = res.get("checkpoint_first_s")
    if first is not None and saves >= 2:
        save_s = (res["checkpoint_s"] - first) / (saves - 1)
        once_s = max(first - save_s, 0.0)
    else:  # older files, or one save: every save as the mean (see report for the fallback)
        save_s, once_s = (res["checkpoint_s"] / saves if saves else 0.0), 0.0
    return {
        "fold": res["fold"],
        "device_kind": res.get("device_kind", ""),
        "git_commit": res.get("git_commit", ""),
        "train_images": n,
        "epochs_run": len(rates),
        "setup_s": res["setup_s"],
        "first_epoch_s": epochs_s[0],
        "epoch_s": epoch_s,
        "save_s": save_s,
        "save_next_s": next_s,
        "save_once_s": once_s,
        "save_split": first is not None and saves >= 2,
        "saves": saves,
        "checkpoint_s": res["checkpoint_s"],
        # Older files saved synchronously: their checkpoint_s holds the whole writes.
        "close_s": res.get("checkpoint_close_s", 0.0),
        "eval_s": res["eval_s"],
        "wall_s": res.get("wall_time_s", float("nan")),
        "val_fraction": float((res.get("config") or {}).get("val_fraction", 0.0) or 0.0),
    }


def extrapolate(t: dict[str, Any], epochs: int, checkpoint_every: int) -> float:
    """Seconds for one fold of ``epochs`` epochs from one short fold's components."""
    saves = math.ceil(epochs / checkpoint_every) if checkpoint_every > 0 else 1
    return (
        t["setup_s"]
        + t["first_epoch_s"]
        + (epochs - 1) * t["epoch_s"]
        + saves * t["save_s"]
        + max(saves - 1, 0) * t.get("save_next_s", 0.0)  # the last save has no epoch after it
        + t.get("save_once_s", 0.0)
        + t["close_s"]
        + t["eval_s"]
    )


def split_first_saves(cold: list[dict], warm: list[dict]) -> list[dict]:
    """For compiling folds whose file lacks ``checkpoint_first_s`` (mtl-bench before
    2026-11-29), split their saves with the cached folds' rate: saves cost the same in every fold
    (one model, one state), so what a compiling fold spent beyond that rate was one-time. Returns
    the folds changed (in place)."""
    rates = [t["save_s"] for t in warm if t["saves"]]
    if not rates:
        return []
    rate = statistics.mean(rates)
    changed = []
    for t in cold:
        if not t["save_split"] and t["saves"] and t["checkpoint_s"] > t["saves"] * rate:
            t["save_s"], t["save_once_s"] = rate, t["checkpoint_s"] - t["saves"] * rate
            changed.append(t)
    return changed


def fold_plan(results: Path, folds: int, val_fraction: float = 0.0) -> list[bool] | None:
    """For each of the protocol's ``folds``: whether it compiles — the first fold of its shape in
    ``results/folds.json``, a shape being its training and test row counts as the fit loop pads
    them (``fit.ROW_MULTIPLE``). None without a manifest of that many folds, or with an inner
    validation split (``val_fraction`` > 0): the fit loop draws it by duplicate group, so the
    training rows of a fold the run did not reach are not known from the manifest."""
    from mtl_bench import fit
    from mtl_bench.data.folds import load_manifest

    path = results / "folds.json"
    if not path.exists():
        return None
    try:
        manifest = load_manifest(path)
    except (OSError, ValueError) as e:
        raise ProtocolError(f"{path}: not a readable fold manifest ({e})") from None
    if manifest.k != folds or val_fraction > 0:
        return None
    tests = [len(ids) for ids in manifest.fold_ids]
    shapes = [(math.ceil((sum(tests) - t) / fit.ROW_MULTIPLE), math.ceil(t / fit.ROW_MULTIPLE))
              for t in tests]  # fmt: skip
    return [shape not in shapes[:i] for i, shape in enumerate(shapes)]
