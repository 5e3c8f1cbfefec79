"""Train one fold end to end: model, device arrays, epochs, checkpoints, curves, evaluation."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from mtl_bench.batches import fold_arrays, pad_rows
from mtl_bench.config import RunConfig
from mtl_bench.config_checks import check_config
from mtl_bench.data.types import Dataset
from mtl_bench.fold_io import Checkpoints, clear_for_retraining, read_curve, write_curve
from mtl_bench.interrupt import deferred_interrupts as deferred
from mtl_bench.interrupt import stop_if_requested
from mtl_bench.losses import class_weights
from mtl_bench.model_build import build_model
from mtl_bench.parallel import fetch
from mtl_bench.plugins import model_source
from mtl_bench.progress import Bar, log, progress_bar
from mtl_bench.registry import count_params, model_info
from mtl_bench.train import Engine, State, TrainingDiverged
from mtl_bench.validation import best_epoch, check_fold_indices, split_validation, val_score

# Fold arrays are padded to a multiple of this many rows (batches.pad_rows): 647 images make
# folds of 517/518 training and 129/130 test images, one compiled step for all with 32.
ROW_MULTIPLE = 32


@dataclass
class FoldRun:
    """What one fold's training produced (the caller turns it into a result file)."""

    tasks: tuple[str, ...]
    test_eval: dict[str, np.ndarray]
    curve: list[dict[str, float]]
    wall_time_s: float
    train_img_per_s: float
    epochs_run: int
    params: int
    extras: dict[str, Any] = field(default_factory=dict)
    state: State | None = None
    engine: Engine | None = None


def fit_fold(
    cfg: RunConfig,
    dataset: Dataset,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    *,
    fold: int = 0,
    ckpt_dir: Path | None = None,
    curve_path: Path | None = None,
    resume: bool = False,
    quiet: bool = False,
    keep_state: bool = False,
    groups: np.ndarray | None = None,
) -> FoldRun:
    """Train ``cfg.model`` on ``train_idx``; test the final (or best-val) model on ``test_idx``.

    ``groups``: a duplicate-group id per dataset image, which the inner validation split
    (``val_fraction`` > 0) keeps together, and a non-gradient method's own inner selection too
    (``ModelInfo.fit`` gets it); None treats every image as its own group.
    """
    t0 = time.perf_counter()
    # Library callers get cv's checks: a bad value or a leaking fold, not a crash or a run of it.
    check_config(cfg)
    train_idx, test_idx = check_fold_indices(len(dataset.labels), train_idx, test_idx, fold)
    info = model_info(cfg.model)
    if info.fit is not None:  # a non-gradient method (feature classifier): its own fitting
        return info.fit(
            cfg,
            dataset,
            train_idx,
            test_idx,
            fold=fold,
            quiet=quiet,
            groups=groups,
        )
    num_classes = len(dataset.class_names)
    model = build_model(cfg, num_classes)
    n_params = count_params(model)
    # The model file's hash as the fold starts training from it, not as it ends (an edit during
    # a long fold is not this fold's code).
    weights_extras: dict[str, Any] = {"model_source": model_source(cfg.model)}
    if hasattr(model, "weights_source"):  # models that take ImageNet weights say where they start
        from baselines.classifiers.port import weights_note

        note = weights_note(model, cfg.model)
        log(note, quiet=quiet)
        weights_extras.update(weights=note, from_scratch=model.weights_source is None)
    fit_idx, val_idx = split_validation(cfg, dataset.labels, np.asarray(train_idx), groups)
    alpha = None
    if "label" in info.tasks and cfg.class_weights != "none":
        alpha = class_weights(dataset.labels[fit_idx], num_classes)
    steps = max(1, math.ceil(len(fit_idx) / cfg.batch_size))
    engine = Engine(model, info.tasks, cfg, steps_per_epoch=steps, class_alpha=alpha)
    del model  # the engine holds the pure state; the object graph is not used again

    def arrays(idx, for_eval=True):
        host = fold_arrays(dataset.images[idx], dataset.masks[idx], dataset.labels[idx])
        # Rows padded so folds a few images apart share one compiled step (batches.pad_rows).
        return engine.place_data(pad_rows(host, ROW_MULTIPLE), for_eval=for_eval)

    train_data = arrays(fit_idx, for_eval=False)
    state = engine.place_state(engine.initial_state)
    start_epoch, curve, best = 0, [], (-np.inf, None)
    clear_for_retraining(ckpt_dir, resume)
    ckpt = Checkpoints(ckpt_dir, cfg) if ckpt_dir is not None else None
    restored = ckpt.restore(engine.canonical_state(state)) if ckpt is not None and resume else None
    if restored is not None:
        start_epoch, state, best = restored
        state = engine.place_state(state)
        curve = read_curve(curve_path)[:start_epoch]
        log(f"fold {fold}: resumed after epoch {start_epoch}", quiet=quiet)
    lost = lost_epochs(resume and restored is None, curve_path, cfg, f"fold {fold}", quiet)
    val_data = arrays(val_idx) if val_idx is not None else None
    base_key = jax.random.fold_in(jax.random.key(cfg.seed), fold)
    # Where a fold's time goes besides the epochs themselves (the curve has each epoch's rate):
    # benchmarks/protocol_time.py extrapolates a short run to the full protocol from these.
    # checkpoint_s: the saves' blocking part (host copy, and any wait for the save before);
    # checkpoint_first_s: the first save's share, which carries one-time costs (the checksum's
    # compile, orbax's set-up) that a long run pays once, not once per save;
    # checkpoint_close_s: the wait at the end for the last save's background write.
    timing = {"setup_s": time.perf_counter() - t0, "eval_s": 0.0, "checkpoint_s": 0.0}
    timing["checkpoint_close_s"] = 0.0
    saves = 0

    try:
        with progress_bar(cfg.epochs * steps, f"fold {fold}", quiet=quiet) as bar, deferred():
            bar.set_total(cfg.epochs * steps, start_epoch * steps)
            for epoch in range(start_epoch, cfg.epochs):
                te = time.perf_counter()
                state, m = engine.run_epoch(
                    state,
                    train_data,
                    jax.random.fold_in(base_key, epoch),
                    lambda _i: (bar.advance(), stop_if_requested()),
                    rows=len(fit_idx),
                )
                dt = time.perf_counter() - te
                check_finite(m, epoch, steps)
                row = curve_row(cfg, epoch, steps, m, len(fit_idx) / dt)
                if val_data is not None and (
                    (epoch + 1) % max(cfg.eval_every, 1) == 0 or epoch + 1 == cfg.epochs
                ):
                    tv = time.perf_counter()
                    ev = engine.evaluate(
                        engine.canonical_state(state), val_data, np.arange(len(val_idx))
                    )
                    timing["eval_s"] += time.perf_counter() - tv
                    score = val_score(info.tasks, ev, dataset.labels[val_idx], cfg.empty_policy)
                    row["val_score"] = score
                    if score > best[0]:
                        canon = engine.canonical_state(state)
                        best = (score, fetch({"params": canon["params"], "rest": canon["rest"]}))
                curve.append(row)
                _describe(bar, fold, epoch, cfg.epochs, row)
                if curve_path is not None:
                    write_curve(curve_path, curve)
                if ckpt is not None:
                    final = epoch + 1 == cfg.epochs
                    tc = time.perf_counter()
                    if ckpt.maybe_save(epoch + 1, engine.canonical_state(state), best, final=final):
                        spent = time.perf_counter() - tc
                        timing["checkpoint_s"] += spent
                        if not saves:  # one-time costs (the digest's compile) land here
                            timing["checkpoint_first_s"] = spent
                        saves += 1

        eval_state = engine.canonical_state(state)
        if best[1] is not None:
            eval_state = {**eval_state, **engine.place_data(best[1], for_eval=True)}
        tv = time.perf_counter()
        test_eval = engine.evaluate(eval_state, arrays(test_idx), np.arange(len(test_idx)))
        timing["eval_s"] += time.perf_counter() - tv
    finally:
        if ckpt is not None:  # the last save writes in the background: wait for it
            tc = time.perf_counter()
            ckpt.close()
            timing["checkpoint_close_s"] = time.perf_counter() - tc
    timed = [r["img_per_s"] for r in curve[1:]] or [r["img_per_s"] for r in curve]
    return FoldRun(
        tasks=info.tasks,
        test_eval=test_eval,
        curve=curve,
        wall_time_s=time.perf_counter() - t0,
        train_img_per_s=float(np.median(timed)) if timed else float("nan"),
        epochs_run=cfg.epochs,
        params=n_params,
        extras={
            **weights_extras,
            "selected_by_validation": best[1] is not None,
            "best_val_score": best[0] if best[1] is not None else None,
            # The tested weights' epoch (epochs_run counts the epochs trained).
            "selected_epoch": best_epoch(curve) if best[1] is not None else None,
            "train_images": len(fit_idx),
            # > 0 after --resume: wall_time_s and checkpoints_saved then count this run only.
            "resumed_after_epoch": start_epoch,
            "resume_lost_epochs": lost,
            # config.devices=0 means "all": the record says how many the step ran on.
            "devices_used": len(engine.devices or [None]),
            "checkpoints_saved": saves,
            **{k: round(v, 3) for k, v in timing.items()},
        },
        state=eval_state if keep_state else None,
        engine=engine if keep_state else None,
    )


def lost_epochs(
    restarted: bool, curve_path: Path | None, cfg: RunConfig, what: str, quiet: bool
) -> int:
    """Epochs an interrupted earlier run trained (its curve's rows) that a --resume finding no
    checkpoint trains again (``checkpoint_every=0`` saves only at the end): said, and recorded
    (``resume_lost_epochs``), so a restart is not taken for a continuation."""
    lost = len(read_curve(curve_path)) if restarted else 0
    if lost:
        log(
            f"{what}: no checkpoint to resume from (checkpoint_every={cfg.checkpoint_every}): "
            f"the {lost} epoch(s) an earlier run trained are trained again from the start",
            quiet=quiet,
        )
    return lost


def check_finite(m: dict[str, np.ndarray], epoch: int, steps: int) -> None:
    """Raise ``TrainingDiverged`` naming the first step of the epoch whose loss is not finite."""
    bad = np.flatnonzero(~np.isfinite(m["loss"]))
    if bad.size:
        step = int(bad[0])
        raise TrainingDiverged(
            f"loss became {m['loss'][step]} at epoch {epoch + 1}, step {step + 1} of {steps} "
            f"(global step {epoch * steps + step + 1}); no result was written"
        )


def curve_row(cfg: RunConfig, epoch: int, steps: int, m: dict, img_s: float) -> dict:
    """One epoch's learning-curve row: its lr, images/s and mean losses (val_score: NaN until
    a validation fills it)."""
    lr = cfg.lr
    if cfg.lr_decay_every > 0:
        lr = cfg.lr * cfg.lr_decay_factor ** (epoch // cfg.lr_decay_every)
    row = {"epoch": epoch + 1, "lr": lr, "img_per_s": img_s, "val_score": float("nan")}
    for k in ("loss", "dice_loss", "focal_loss"):
        row[k] = float(np.mean(m[k])) if k in m else float("nan")
    return row


def _describe(bar: Bar, fold: int, epoch: int, epochs: int, row: dict) -> None:
    bar.describe(
        f"fold {fold} epoch {epoch + 1}/{epochs} loss {row['loss']:.4f} "
        f"{row['img_per_s']:.0f} img/s"
    )
