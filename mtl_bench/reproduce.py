"""``mtl-bench reproduce``: data, folds, the proposed model and the baselines on the same folds,
then every table and figure — one command, one progress display, resumable.

    mtl-bench reproduce --preset smoke                      # minutes on 2 CPU cores
    mtl-bench reproduce --preset phantom --methods all      # every registered method, ~1 h on CPU
    mtl-bench reproduce --preset paper --data PATH/Dataset_BUSI_with_GT   # a GPU job

What runs is planned by ``mtl_bench.reproduce_plan``. Each (method, fold) is one unit of the
progress bar; under ``--set fold_parallel=true`` a method's unfinished folds train together in
one program. A finished fold (its ``fold_K.json`` exists) is skipped on ``--resume``, an
interrupted one continues from its checkpoint. A method that fails is recorded and the others
go on; the failures are listed at the end and the exit status is 1.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mtl_bench.atomic import atomic_write
from mtl_bench.progress import log, progress_bar
from mtl_bench.provenance import git_commit
from mtl_bench.reproduce_outputs import build_outputs, fold_summary, method_seconds
from mtl_bench.reproduce_plan import PROPOSED, Job, plan
from mtl_bench.reproduce_record import RECORD, check_out, new_record, tables_p_adjust

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Report:
    """What a reproduction produced: tables per folder, figures, failures, seconds per method."""

    out: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _prepare(jobs: list[Job], out: Path, record: dict, quiet: bool) -> dict[str, int]:
    """Data preparation, then the fold manifest of each folder, from its first job (the proposed
    model's config when it runs); {subdir: number of folds}. Bad data fails here, once, before
    anything is written."""
    from mtl_bench.cv_data import dataset_for, shared_manifest

    first: dict[str, Job] = {}
    for job in jobs:
        first.setdefault(job.subdir, job)
    data = {sub: dataset_for(job.cfg, quiet=quiet) for sub, job in first.items()}
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1) + "\n"
    atomic_write(out / RECORD, lambda f: f.write(text), text=True)  # never a half record
    return {
        sub: shared_manifest(first[sub].cfg, ds, out / sub, quiet=quiet).k
        for sub, ds in data.items()
    }


def _run_jobs(
    jobs: list[Job], out: Path, folds: dict[str, int], report: Report, keep: bool, quiet: bool
) -> None:
    from mtl_bench.cv import run_cv
    from mtl_bench.fold_io import folds_checkpoint_name
    from mtl_bench.results_io import FAILED_NAME

    done = {
        (j.method, k)
        for j in jobs
        for k in range(folds[j.subdir])
        if _fold_file(out, j, k).exists()
    }
    units = _units(jobs, folds, done)
    total = sum(folds[j.subdir] for j in jobs)
    if done:
        log(f"resume: {len(done)} of {total} folds finished earlier, not rerun", quiet=quiet)
    failed: set[str] = set()
    with progress_bar(total, "reproduce", quiet=quiet) as bar:
        bar.set_total(total, len(done))
        last = None
        for i, (job, ks) in enumerate(units, 1):
            if last not in (None, job.method):
                _free_compiled()
            last = job.method
            if job.method in failed:  # its other folds would fail alike: count them as handled
                bar.advance(len(ks))
                continue
            n = folds[job.subdir]  # 1-based below, as the tables print folds
            fold = f"fold {ks[0] + 1}/{n}" if len(ks) == 1 else f"folds {_one_based(ks)}/{n}"
            what = f"{job.method} {fold}"
            bar.describe(f"[{i}/{len(units)}] {what}")
            try:
                run_cv(job.cfg, out / job.subdir, folds=ks, resume=True, tag=job.tag, quiet=True)
            except Exception as e:  # one method's failure must not stop the others
                if os.environ.get("MTL_BENCH_DEBUG"):
                    raise
                failed.add(job.method)
                report.failures.append((job.method, f"{fold}: {type(e).__name__}: {e}"))
                log(f"{what}: FAILED — {type(e).__name__}: {e}", quiet=quiet)
                # The tables then say "failed" (and why) for it, not "not run".
                marker = out / job.subdir / job.method / FAILED_NAME
                marker.parent.mkdir(parents=True, exist_ok=True)
                msg = " ".join(f"{fold}: {type(e).__name__}: {e}".split())
                marker.write_text(msg + "\n", "utf-8")
            else:
                (out / job.subdir / job.method / FAILED_NAME).unlink(missing_ok=True)
                for k in ks:
                    log(
                        f"{job.method} fold {k + 1}/{n}: {fold_summary(_fold_file(out, job, k))}",
                        quiet=quiet,
                    )
                # Baselines' checkpoints are large (a VGG's: over 1 GB a fold); predict wants ours.
                if not keep and job.cfg.model != PROPOSED:
                    for name in [f"ckpt_fold_{k}" for k in ks] + [folds_checkpoint_name(ks)]:
                        shutil.rmtree(out / job.subdir / job.method / name, True)
            bar.advance(len(ks))


def _free_compiled() -> None:
    """Drop the programs the method just finished compiled (each method compiles its own, and
    kept they add up: 8 smoke-preset methods ended at 5.2 GB RSS with them, 3.5 GB without,
    with the same results). A method's folds share them, so this runs between methods."""
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


def _units(
    jobs: list[Job], folds: dict[str, int], done: set[tuple[str, int]]
) -> list[tuple[Job, list[int]]]:
    """What one ``run_cv`` call trains: a fold, or under ``fold_parallel`` all of a method's
    unfinished folds at once (side by side in one program, as ``cv --fold-parallel`` does)."""
    from mtl_bench.registry import model_info

    units = []
    for job in jobs:
        todo = [k for k in range(folds[job.subdir]) if (job.method, k) not in done]
        if not todo:
            continue
        if job.cfg.fold_parallel and model_info(job.cfg.model).fit is None:
            units.append((job, todo))
        else:  # one fold at a time (a method without a training loop ignores fold_parallel)
            units += [(job, [k]) for k in todo]
    return units


def _one_based(ks: list[int]) -> str:
    return ",".join(str(k + 1) for k in ks)


def _fold_file(out: Path, job: Job, k: int) -> Path:
    return out / job.subdir / job.method / f"fold_{k}.json"


def reproduce(
    preset: str = "smoke",
    methods: str = "default",
    *,
    data: str | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
    three_class: bool | None = None,
    keep_checkpoints: bool = False,
    p_adjust: str | None = None,
    quiet: bool = False,
) -> Report:
    """Run the reproduction ``preset`` into ``out`` (default ``results/reproduce-<preset>``) and
    build its tables (``OUT/tables/``) and figures (``OUT/figures/``); see the module docstring.

    Bad options, a non-empty ``out`` without ``resume`` and unreadable data raise a one-line
    ValueError/DataError before any training; a method's failure is recorded in the report.
    ``p_adjust``: the tables' multiple-comparison adjustment (``tables.build_tables``; None:
    what the resumed folder's tables were built with, else holm).
    """
    from mtl_bench.stats import P_ADJUST

    if p_adjust is not None and p_adjust not in P_ADJUST:  # before any training
        raise ValueError(f"unknown p adjustment {p_adjust!r}: choose {', '.join(P_ADJUST)}")
    git_commit()  # the code this run imported, recorded in every fold file (read once, now)
    # Each method's settings are checked first, its model built abstractly (shapes only): a
    # few seconds for a DenseNet, ~30 s for --methods all on 2 CPU cores. No line says so:
    # a bad option must print its error alone.
    jobs = plan(preset, methods, data=data, overrides=overrides, three_class=three_class)
    out = Path(out if out is not None else f"results/reproduce-{preset}")
    record = new_record(preset, data, list(overrides), jobs)
    old = check_out(out, resume, record, jobs, quiet)
    p_adjust = tables_p_adjust(p_adjust, old, out, quiet)
    started = {k: v for k, v in (old or record).items() if k not in ("latest", "p_adjust")}
    latest = {"overrides": record["overrides"], "methods": record["methods"]}
    stored = {**started, "latest": latest, "p_adjust": p_adjust}
    report = Report(out)
    folds = _prepare(jobs, out, stored, quiet)
    _run_jobs(jobs, out, folds, report, keep_checkpoints, quiet)
    report.tables, report.figures, failures = build_outputs(jobs, out, p_adjust)
    report.failures += failures
    report.seconds = method_seconds(jobs, out)
    return report
