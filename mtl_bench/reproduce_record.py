"""A ``reproduce`` folder's record (``reproduce.json``): what it was started with (preset, data,
``--set``, methods), checked on ``--resume`` and never rewritten; the latest call's ``--set`` and
methods; and the p adjustment its tables were built with, which a ``--resume`` or a later
``mtl-bench tables`` without ``--p-adjust`` keeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mtl_bench.atomic import check_out_folder
from mtl_bench.progress import log

if TYPE_CHECKING:
    from mtl_bench.reproduce_plan import Job

# What a reproduction folder was started with (preset, data, --set, methods: checked on
# --resume and never rewritten), the latest call's --set and methods ("latest"), and the tables'
# p adjustment, which a --resume without --p-adjust keeps.
RECORD = "reproduce.json"


def new_record(preset: str, data: str | None, overrides: list[str], jobs: list[Job]) -> dict:
    """The record of a run started now (``check_out`` compares a resumed folder's with it)."""
    return {
        "preset": preset,
        "data": data or "synthetic",
        "overrides": list(overrides),
        "methods": [j.method for j in jobs],
    }


def check_out(out: Path, resume: bool, record: dict, jobs: list[Job], quiet: bool) -> dict | None:
    """A fresh folder (None), or with ``resume`` one started with the same preset and data whose
    finished folds match this run's settings (a failed method may be resumed with a fixed
    ``--set``; a finished one may not change): its record, as it was started."""
    check_out_folder(out)
    if not out.is_dir() or not any(out.iterdir()):
        return None
    if not resume:
        raise ValueError(f"{out} is not empty: pass --resume to continue it, or a new --out")
    path = out / RECORD
    if not path.exists():
        raise ValueError(f"{out} holds no {RECORD}: not a reproduce folder; choose a new --out")
    try:
        old = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: unreadable ({e}); choose a new --out") from None
    for key in ("preset", "data"):
        if old.get(key) != record[key]:
            raise ValueError(
                f"{out} was started with {key} {old.get(key)!r}, not {record[key]!r}: resume "
                "with the same --preset/--data, or choose a new --out"
            )
    from mtl_bench.cv import check_finished_match

    for job in jobs:  # other --set values: fine where no fold has finished under the old ones
        folder = out / job.subdir / job.method
        # reproduce refuses a non-empty folder without --resume, so "drop --resume" (cv's
        # advice) would lead in a circle: retraining means clearing that method's results.
        fix = (
            f"--resume would mix them in one method's folds: to retrain {job.method} with the "
            f"new settings, delete {folder} and resume; or use another --out"
        )
        check_finished_match(job.cfg, sorted(folder.glob("fold_*.json")), fix=fix)
    if old.get("overrides") != record["overrides"]:
        log(
            f"resuming {out} with --set {record['overrides']} (started with "
            f"{old.get('overrides')}): finished folds were checked against their settings",
            quiet=quiet,
        )
    return old


def folder_p_adjust(results: Path) -> str:
    """The p adjustment a ``reproduce`` folder's tables were built with (its ``reproduce.json``),
    for ``mtl-bench tables`` without ``--p-adjust`` (which says so): a rebuild must not quietly
    change them. Holm for any other folder; an unreadable record is said, and Holm used."""
    from mtl_bench.stats import P_ADJUST

    path = Path(results) / RECORD
    if not path.is_file():
        return "holm"
    try:
        kept = json.loads(path.read_text("utf-8")).get("p_adjust", "holm")
    except (OSError, ValueError, AttributeError) as e:
        log(f"{path}: unreadable ({type(e).__name__}): --p-adjust holm")
        return "holm"
    if kept not in P_ADJUST:
        log(f"{path}: p_adjust {kept!r} is not one of {', '.join(P_ADJUST)}: --p-adjust holm")
        return "holm"
    return kept


def tables_p_adjust(given: str | None, old: dict | None, out: Path, quiet: bool) -> str:
    """The tables' p adjustment: ``given``, else the one the folder's tables were built with
    (a --resume that adds a method keeps them as they were), else holm."""
    kept = (old or {}).get("p_adjust", "holm")
    if given is None:
        if kept != "holm":
            log(f"tables of {out}: --p-adjust {kept}, as before", quiet=quiet)
        return kept
    if old is not None and given != kept:
        log(f"tables of {out}: --p-adjust {given} (built with {kept} before)", quiet=quiet)
    return given
