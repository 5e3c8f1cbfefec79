"""Time the fold-parallel step (``--parallel fold``): k folds' training steps in one program.

What is timed is what ``mtl-bench cv --fold-parallel`` runs: ``fold_parallel._parallel_step`` —
the Engine's step ``vmap``ped over a leading fold axis of stacked parameters and optimiser states,
each fold gathering its own batch from its own index table, with state donation. One call trains
every fold one step, so its images/s is ``folds × batch / step time``: the figure to set against
the ``none`` row at the same per-fold batch (five sequential folds run at that row's rate). The
throughput driver adds ``x_sequential`` = fold rate / none rate to the fold row.

Inference is not timed here (it is the ``none`` row's: evaluation runs one fold at a time).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks.flops import TRAIN_FACTOR, model_forward_flops
from benchmarks.step_clock import compile_cold_warm, peak_memory_gb, time_train
from benchmarks.timing import BenchSpec, Skip, _synthetic_arrays
from mtl_bench.config import RunConfig, apply_overrides
from mtl_bench.fit import build_model
from mtl_bench.fold_parallel import _parallel_step, _stack, _tables
from mtl_bench.registry import count_params, model_info
from mtl_bench.train import Engine

DEFAULT_FOLDS = 5


def measure_folds(
    spec: BenchSpec, folds: int = DEFAULT_FOLDS, fold_conv: str = "unrolled"
) -> dict[str, Any]:
    """Measure ``folds`` folds side by side at ``spec.batch_size`` per fold (one device), their
    convolutions batched as ``fold_conv`` says (``mtl_bench/fold_conv.py``)."""
    info = model_info(spec.model)
    if info.fit is not None:
        raise Skip("not trained by gradient descent (no step to time)")
    if spec.devices not in (0, 1):
        raise Skip("fold-parallel runs on one device (combine with data parallel: unsupported)")
    if folds < 2:
        raise ValueError(f"fold-parallel needs at least 2 folds, got {folds}")
    cfg = RunConfig(
        model=spec.model, model_kwargs=dict(spec.model_kwargs), image_size=spec.image_size,
        batch_size=spec.batch_size, eval_batch_size=spec.batch_size, precision=spec.precision,
        fold_conv=fold_conv,
    )  # fmt: skip
    cfg = apply_overrides(cfg, list(spec.config))
    if cfg.state_layout != "leaves":  # fold-parallel's own step takes the stacked state as is
        raise Skip(f"state_layout={cfg.state_layout!r}: fold-parallel takes leaves only")
    try:
        model = build_model(cfg, spec.num_classes)
    except (ValueError, TypeError) as e:
        raise Skip(f"cannot build at {spec.image_size}²: {e}") from None
    row: dict[str, Any] = {"family": info.family, "params": count_params(model), "devices": 1}
    row["folds"], row["fold_conv"] = folds, fold_conv
    row["gflops_per_img"] = model_forward_flops(model, spec.image_size) / 1e9
    train_fwd = model_forward_flops(model, spec.image_size, train=True) / 1e9
    row["train_gflops_per_img"] = TRAIN_FACTOR * train_fwd

    n, steps = 2 * spec.batch_size, 2
    engine = Engine(model, info.tasks, cfg, steps_per_epoch=steps, class_alpha=None)
    del model
    data = jax.device_put(_synthetic_arrays(n, spec.image_size, spec.num_classes))
    # Every fold sees the same rows in its own order: the shapes and the work are a real run's.
    rows = jnp.tile(jnp.arange(n, dtype=jnp.int32), (folds, 1))
    keys = jnp.stack([jax.random.fold_in(jax.random.key(1), f) for f in range(folds)])
    table, weights = _tables(keys, [n] * folds, spec.batch_size, steps, rows)
    step_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    spe = jnp.full((folds,), steps, jnp.int32)
    alphas = jnp.ones((folds, spec.num_classes), jnp.float32)
    state = _stack([engine.initial_state] * folds)
    state["tick"] = jnp.zeros((), jnp.int32)
    args = (data, table, weights, step_keys, spe, alphas)

    fn = jax.jit(partial(_parallel_step, engine), donate_argnums=0)
    step, compiled = compile_cold_warm(partial(fn.lower, state, *args), spec.warm_compile)
    row.update(compiled)
    holder = {"state": state}

    def train_once():
        holder["state"], metrics = step(holder["state"], *args)
        return holder["state"]["tick"], metrics["loss"]

    row.update(
        time_train(train_once, spec.warmup, spec.steps, spec.profile_path(f"{folds}-{fold_conv}"))
    )
    row["peak_mem_gb"] = peak_memory_gb()
    row["train_img_per_s"] = folds * spec.batch_size / (row["train_ms"] / 1e3)
    row["train_pipelined_img_per_s"] = folds * spec.batch_size / (row["train_pipelined_ms"] / 1e3)
    row["achieved_tflops"] = row["train_img_per_s"] * row["train_gflops_per_img"] / 1e3
    return row
