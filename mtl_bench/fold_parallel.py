"""Fold-parallel training: all k folds in ONE compiled program (``--set fold_parallel=true``).

Parameters and optimiser states are stacked on a leading fold axis and the engine's step is
``vmap``ped over folds. Every fold draws its batches from its own index table — exactly the table,
keys and step counter sequential training would use — so each fold computes what it computes
alone. Folds differ in size: tables are padded to the longest fold's steps per epoch, and a fold
with fewer steps is *inactive* on the extra ones (its state is carried through unchanged), so no
sample is dropped or counted twice per epoch. At the paper's batch of 16 one fold underfills a GPU;
five side by side fill it.

Supported with ``parallel=none`` (one device); an inner validation split is not supported here.

How the convolutions are batched over folds is ``fold_conv`` (``mtl_bench/fold_conv.py``). Plain
``vmap`` (``grouped``) turns each into one grouped convolution, whose backward pass is slow: on
an H100 at 256², bf16, batch 16 per fold, five folds side by side ran at 0.18× the images/s of
one fold alone (results/README.md; jax-ml/jax#13800), and on a 2-core CPU at 64² with widths
8…128 at 0.38× (fp32). ``unrolled`` (the default) gives each fold its own dense convolutions and
keeps the rest of the step batched: 0.97× (fp32) / 1.04× (bf16) on that CPU, on the H100 (bf16)
0.75× before the up-conv and state fixes and 1.08× after them (1.00× on pipelined steps) — no real
gain, so on GPUs run folds one after another or split them over GPUs (README, "Scale").
"""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mtl_bench.batches import _epoch_table, fold_arrays, gather_batch
from mtl_bench.config import RunConfig
from mtl_bench.config_checks import check_config
from mtl_bench.data.types import Dataset
from mtl_bench.fit import FoldRun, check_finite, curve_row, lost_epochs
from mtl_bench.fold_conv import check_mode, fold_conv_mode
from mtl_bench.fold_io import Checkpoints, clear_for_retraining, read_curve, write_curve
from mtl_bench.interrupt import deferred_interrupts, stop_if_requested
from mtl_bench.losses import class_weights
from mtl_bench.model_build import build_model
from mtl_bench.plugins import model_source
from mtl_bench.progress import log, progress_bar
from mtl_bench.registry import count_params, model_info
from mtl_bench.train import Engine, State
from mtl_bench.validation import check_fold_indices


def check_fold_parallel(cfg: RunConfig) -> None:
    """One-line ValueError for a setting fold-parallel training cannot combine with."""
    if cfg.parallel != "none":
        raise ValueError(
            f"fold_parallel combines with parallel='none' only (got {cfg.parallel!r}); run the "
            "folds sequentially to use data parallelism"
        )
    if cfg.val_fraction > 0:
        raise ValueError("fold_parallel does not support val_fraction > 0 (best-epoch selection)")
    if cfg.state_layout != "leaves":
        raise ValueError(
            f"fold_parallel passes its stacked state as arrays: state_layout={cfg.state_layout!r} "
            "applies to sequential folds only"
        )
    check_mode(cfg.fold_conv)


def _stack(trees: list) -> State:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def fit_folds_parallel(
    cfg: RunConfig,
    dataset: Dataset,
    splits: list[tuple[np.ndarray, np.ndarray]],
    *,
    folds: list[int],
    ckpt_dir: Path | None = None,
    curve_paths: list[Path] | None = None,
    resume: bool = False,
    quiet: bool = False,
    keep_state: bool = False,
) -> list[FoldRun]:
    """Train ``len(splits)`` folds side by side; returns one FoldRun per fold, in order
    (``keep_state``: each with the engine and its fold's slice of the state, as ``fit_fold``)."""
    check_config(cfg)
    check_fold_parallel(cfg)
    if len(splits) != len(folds):
        raise ValueError(f"{len(splits)} splits for {len(folds)} folds ({folds}): one per fold")
    n = len(dataset.labels)
    splits = [check_fold_indices(n, tr, te, f) for (tr, te), f in zip(splits, folds, strict=True)]
    if jax.default_backend() == "gpu":
        measured = {
            "grouped": "measured 0.18× sequential folds on an H100",
            "unrolled": "measured 1.08× sequential folds on an H100 (1.00× pipelined)",
        }.get(
            cfg.fold_conv, "unmeasured on GPUs: compare with `mtl-bench bench --parallel none,fold`"
        )
        log(f"fold_parallel with fold_conv={cfg.fold_conv}: {measured}", quiet=quiet)
    t0 = time.perf_counter()
    source = model_source(cfg.model)
    info = model_info(cfg.model)
    if info.fit is not None:
        raise ValueError(f"{cfg.model} is not trained by gradient descent: no fold_parallel")
    num_classes = len(dataset.class_names)
    model = build_model(cfg, num_classes)
    n_params = count_params(model)
    sizes = [len(tr) for tr, _ in splits]
    steps = [max(1, math.ceil(n / cfg.batch_size)) for n in sizes]
    max_steps = max(steps)
    engine = Engine(model, info.tasks, cfg, steps_per_epoch=max_steps, class_alpha=None)
    del model
    n_folds = len(splits)
    use_alpha = "label" in info.tasks and cfg.class_weights != "none"
    alphas = jnp.asarray(
        np.stack([class_weights(dataset.labels[tr], num_classes) for tr, _ in splits])
        if use_alpha
        else np.ones((n_folds, num_classes), np.float32)
    )
    # Every fold indexes the full dataset; its table maps fold-local rows to dataset rows.
    data = jax.device_put(fold_arrays(dataset.images, dataset.masks, dataset.labels))
    rows = np.zeros((n_folds, max(sizes)), np.int32)
    for f, (tr, _) in enumerate(splits):
        rows[f, : len(tr)] = tr
    rows = jnp.asarray(rows)
    fold_keys = [jax.random.fold_in(jax.random.key(cfg.seed), f) for f in folds]
    state = _stack([engine.initial_state] * n_folds)
    if engine.freeze_epochs:  # the backbone thaws after each fold's own epochs, not the longest's
        from baselines.classifiers import with_freeze_limits

        limits = [engine.freeze_epochs * s for s in steps]
        state["opt_state"] = with_freeze_limits(state["opt_state"], limits)
    state["tick"] = jnp.zeros((), jnp.int32)
    spe = jnp.asarray(steps, jnp.int32)
    start_epoch, curves = 0, [[] for _ in folds]
    clear_for_retraining(ckpt_dir, resume)
    ckpt = Checkpoints(ckpt_dir, cfg) if ckpt_dir is not None else None
    restored = ckpt.restore(state) if ckpt is not None and resume else None
    if restored is not None:
        start_epoch, state, _ = restored
        curves = [read_curve(p)[:start_epoch] for p in curve_paths or [None] * n_folds]
        log(f"folds {folds}: resumed after epoch {start_epoch}", quiet=quiet)
    lost = [
        lost_epochs(resume and restored is None, p, cfg, f"fold {f}", quiet)
        for f, p in zip(folds, curve_paths or [None] * n_folds, strict=True)
    ]

    step_fn = jax.jit(partial(_parallel_step, engine), donate_argnums=0)
    try:
        bar_ = progress_bar(cfg.epochs * max_steps, f"folds {folds}", quiet=quiet)
        with bar_ as bar, deferred_interrupts():  # Ctrl-C stops after a step (interrupt.py)
            bar.set_total(cfg.epochs * max_steps, start_epoch * max_steps)
            for epoch in range(start_epoch, cfg.epochs):
                te = time.perf_counter()
                keys = jnp.stack([jax.random.fold_in(k, epoch) for k in fold_keys])
                table, weights = _tables(keys, sizes, cfg.batch_size, max_steps, rows)
                step_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
                collected = []
                for _ in range(max_steps):
                    state, m = step_fn(state, data, table, weights, step_keys, spe, alphas)
                    collected.append(m)
                    bar.advance()
                    stop_if_requested()
                m = jax.device_get(jax.tree.map(lambda *xs: jnp.stack(xs, 1), *collected))
                dt = time.perf_counter() - te
                for f in range(n_folds):
                    mf = {k: np.asarray(v[f, : steps[f]]) for k, v in m.items()}
                    check_finite(mf, epoch, steps[f])
                    curves[f].append(curve_row(cfg, epoch, steps[f], mf, sum(sizes) / dt))
                    if curve_paths is not None:
                        write_curve(curve_paths[f], curves[f])
                bar.describe(
                    f"folds {folds} epoch {epoch + 1}/{cfg.epochs} "
                    f"{sum(sizes) / dt:.0f} img/s (all folds)"
                )
                if ckpt is not None:
                    ckpt.maybe_save(
                        epoch + 1, state, (-np.inf, None), final=epoch + 1 == cfg.epochs
                    )
    finally:
        if ckpt is not None:  # the last save writes in the background: wait for it
            ckpt.close()

    runs = []
    for f, (_, test_idx) in enumerate(splits):
        one = jax.tree.map(lambda x, f=f: x[f], {k: v for k, v in state.items() if k != "tick"})
        test = jax.device_put(
            fold_arrays(*(a[test_idx] for a in (dataset.images, dataset.masks, dataset.labels)))
        )
        timed = [r["img_per_s"] for r in curves[f][1:]] or [r["img_per_s"] for r in curves[f]]
        runs.append(
            FoldRun(
                tasks=info.tasks,
                test_eval=engine.evaluate(one, test),
                curve=curves[f],
                wall_time_s=time.perf_counter() - t0,
                train_img_per_s=float(np.median(timed)),
                epochs_run=cfg.epochs,
                params=n_params,
                extras={
                    "model_source": source,  # hashed as training started
                    "fold_parallel": True,
                    "folds_trained_together": list(folds),
                    "resumed_after_epoch": start_epoch,
                    "devices_used": 1,  # data parallelism is refused with fold_parallel
                    "resume_lost_epochs": lost[f],
                },
                state=one if keep_state else None,
                engine=engine if keep_state else None,
            )
        )
    return runs


def _tables(keys, sizes: list[int], batch: int, max_steps: int, rows: jax.Array):
    """Each fold's own epoch table (exactly the sequential one: a permutation needs a static
    length, so one small call per fold), mapped to dataset rows and padded to ``max_steps``."""
    tables, weights = [], []
    for f, n in enumerate(sizes):
        steps = max(1, math.ceil(n / batch))
        t, w = _epoch_table(jax.random.fold_in(keys[f], 0), n, batch, steps)
        pad = max_steps - steps
        tables.append(jnp.pad(rows[f][t], ((0, pad), (0, 0))))
        weights.append(jnp.pad(w, ((0, pad), (0, 0))))
    return jnp.stack(tables), jnp.stack(weights)


def _parallel_step(engine: Engine, state, data, table, weights, keys, spe, alphas):
    tick = state["tick"]
    inner = {k: v for k, v in state.items() if k != "tick"}

    def one(st, tab, w, key, steps, alpha):
        row = st["step"] % steps
        active = (tick % tab.shape[0]) < steps
        batch = {**gather_batch(data, tab[row]), "weight": w[row]}
        rng = jax.random.fold_in(key, st["step"])
        aug_key, drop_key = jax.random.split(rng)
        sample_keys = jax.random.split(aug_key, tab.shape[1])
        new, m = engine.steps.step(
            st, batch, sample_keys, drop_key, alpha=alpha, steps_per_epoch=steps
        )
        new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, st)
        return new, m

    # The convolutions' batching over folds is chosen while this is traced (fold_conv.py).
    with fold_conv_mode(engine.cfg.fold_conv):
        new, m = jax.vmap(one)(inner, table, weights, keys, spe, alphas)
    return {**new, "tick": tick + 1}, m
