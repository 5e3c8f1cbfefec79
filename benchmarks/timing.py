"""Time one (model, batch size, precision, image size) configuration on the default device.

What is timed is what ``mtl-bench cv`` runs: the Engine's jitted ``_train_indexed`` step (gather
by index from device-resident uint8 arrays, augmentation, forward, loss, backward, Adam, state
donation) and a jitted eval-mode forward pass. Each program is compiled ahead of time first
(``.lower().compile()``), so compile time is measured apart from run time; then ``warmup`` calls,
then ``steps`` calls each timed to ``jax.block_until_ready``; the median is reported, with the
interquartile range in % of it (``train_iqr_pct``, ``infer_iqr_pct``; ``step_stats.py``).

Input stall: the batch is gathered and converted inside the step, so the host does no data work;
what remains is the device time of that gather, timed alone as a jitted ``gather_batch`` on the
same arrays and reported as a share of the step (``input_stall_pct``). ``host_ms`` is the time a
step call takes to return without blocking (Python dispatch); while it is below the step time the
device never waits for the host.

Memory: ``mem_compiled_gb`` is what the compiled training step needs (arguments + outputs −
donated buffers + temporaries, from XLA's memory analysis; also on CPU); ``peak_mem_gb`` is the
device allocator's peak so far in this process (``memory_stats()``; blank on CPU) — JAX cannot
reset it, so within one process it is the largest configuration measured up to that row.
"""

from __future__ import annotations

import gc
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks.flops import TRAIN_FACTOR, model_forward_flops
from benchmarks.step_clock import (
    compile_cold_warm,
    median_iqr_ms,
    median_ms,
    peak_memory_gb,
    time_train,
)
from mtl_bench.batches import fold_arrays, gather_batch
from mtl_bench.config import RunConfig, apply_overrides
from mtl_bench.fit import build_model
from mtl_bench.registry import count_params, model_info
from mtl_bench.train import Engine


@dataclass(frozen=True)
class BenchSpec:
    """One configuration to measure."""

    model: str
    batch_size: int
    precision: str = "fp32"  # fp32 | bf16
    image_size: int = 256
    model_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    steps: int = 10
    warmup: int = 3
    num_classes: int = 2
    warm_compile: bool = True  # recompile once from the persistent cache (if it is on)
    parallel: str = "none"  # none | jit | pmap (the Engine's) | fold (``timing_folds``)
    devices: int = 1  # devices the strategy spans (0: all)
    profile_dir: str | None = None  # trace a few steps after timing (benchmarks/profile_trace.py)
    config: tuple[str, ...] = ()  # RunConfig KEY=VALUE overrides (bench --config)

    def profile_path(self, suffix: str = "") -> Path | None:
        """This configuration's trace folder under ``profile_dir`` (None: no tracing)."""
        if self.profile_dir is None:
            return None
        name = f"{self.model}-{self.image_size}px-b{self.batch_size}-{self.precision}"
        return Path(self.profile_dir) / f"{name}-{self.parallel}{suffix}"


# {inference program: its first compile's seconds in this process} (see ``measure``).
_INFER_COMPILE_S: dict[tuple, float] = {}


class Skip(Exception):
    """The configuration cannot be measured for a stated reason (not an error of the bench)."""


def accepts_kwarg(name: str, kwarg: str) -> bool:
    """Whether the registered builder of ``name`` takes ``kwarg`` (or any keyword)."""
    params = inspect.signature(model_info(name).builder).parameters
    return kwarg in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def is_oom(err: BaseException) -> bool:
    """An XLA out-of-memory error (compile- or run-time)."""
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


def _synthetic_arrays(n: int, size: int, num_classes: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return fold_arrays(
        rng.integers(0, 256, (n, size, size), dtype=np.uint8),
        rng.integers(0, 2, (n, size, size), dtype=np.uint8),
        rng.integers(0, num_classes, n),
    )


def _step_key(engine: Engine, key: jax.Array) -> jax.Array:
    """The step key placed as ``Engine.run_epoch`` places it for the strategy."""
    from mtl_bench import parallel as par

    if engine.parallel == "pmap":
        return par.stack_for_pmap(key, engine.devices)
    if engine.parallel == "jit":
        return jax.random.wrap_key_data(par.replicate(jax.random.key_data(key), engine.mesh))
    return key


def measure(spec: BenchSpec) -> dict[str, Any]:
    """Measure ``spec``; raises ``Skip`` for unsupported configurations and XLA errors as is."""
    from benchmarks.bench_checks import known_skip

    info = model_info(spec.model)
    why = known_skip(spec.model, spec.precision)
    if why:
        raise Skip(why)
    cfg = RunConfig(
        model=spec.model,
        model_kwargs=dict(spec.model_kwargs),
        image_size=spec.image_size,
        batch_size=spec.batch_size,
        eval_batch_size=spec.batch_size,
        precision=spec.precision,
        parallel=spec.parallel,
        devices=spec.devices,
    )
    cfg = apply_overrides(cfg, list(spec.config))
    if spec.parallel != "none":
        from mtl_bench import parallel as par

        # Before the model is built (seconds to tens of seconds, FLOP counting included): too
        # many devices or a batch they cannot share is known from the spec alone.
        try:
            n_dev = len(par.select_devices(spec.devices))
            par.check_strategy(spec.parallel, spec.batch_size, n_dev)
        except ValueError as e:
            raise Skip(str(e)) from None
    try:
        model = build_model(cfg, spec.num_classes)
    except (ValueError, TypeError) as e:
        raise Skip(f"cannot build at {spec.image_size}²: {e}") from None
    row: dict[str, Any] = {"family": info.family, "params": count_params(model)}
    # Not a CSV column: the time box's measure of this model's size (time_box.param_arrays).
    row["param_arrays"] = len(jax.tree.leaves(nnx.state(model, nnx.Param)))
    # Inference counts the eval-mode graph; training the train-mode one (deep-supervision heads
    # and the like run only there), times 3 for the backward pass.
    row["gflops_per_img"] = model_forward_flops(model, spec.image_size) / 1e9
    train_fwd = model_forward_flops(model, spec.image_size, train=True) / 1e9
    row["train_gflops_per_img"] = TRAIN_FACTOR * train_fwd

    n = 2 * spec.batch_size  # two batches' worth: the gather really selects rows
    alpha = np.ones(spec.num_classes, np.float32) if "label" in info.tasks else None
    engine = Engine(model, info.tasks, cfg, steps_per_epoch=2, class_alpha=alpha)
    del model
    host = _synthetic_arrays(n, spec.image_size, spec.num_classes)
    data = engine.place_data(host)
    table, weights = engine.epoch_table(n, jax.random.key(1))
    key = _step_key(engine, jax.random.key(2))
    state = engine.place_state(engine.initial_state)
    row["devices"] = len(engine.devices or [None])

    leaves = engine.flatten_state(state)  # the step takes and returns the state's leaves
    lower = partial(engine._train_indexed.lower, leaves, data, table, weights, key)
    step, compiled = compile_cold_warm(lower, spec.warm_compile)
    row.update(compiled)
    holder = {"leaves": leaves}

    def train_once():
        holder["leaves"], metrics = step(holder["leaves"], data, table, weights, key)
        return holder["leaves"][engine.step_leaf], metrics["loss"]

    row.update(time_train(train_once, spec.warmup, spec.steps, spec.profile_path()))

    # Input and inference are timed on one device (the first), whatever the strategy.
    one = jax.device_put(host)
    idx = jnp.arange(spec.batch_size, dtype=jnp.int32)
    gather = jax.jit(gather_batch).lower(one, idx).compile()
    row["input_ms"] = median_ms(lambda: gather(one, idx), spec.warmup, spec.steps)
    row["input_stall_pct"] = 100.0 * row["input_ms"] / row["train_ms"]

    graphdef = engine.graphdef
    final = engine.canonical_state(engine.unflatten_state(holder["leaves"]))
    final = jax.device_put(final, jax.devices()[0])

    def forward(params, rest, x):
        return nnx.merge(graphdef, params, rest)(x, train=False)

    shape = (spec.batch_size, spec.image_size, spec.image_size, 1)
    x = jax.random.uniform(jax.random.key(3), shape)
    t = time.perf_counter()
    infer = jax.jit(forward).lower(final["params"], final["rest"], x).compile()
    # Strategies differ only in training: every row of one model, size, batch and precision
    # runs the same inference program, which the persistent cache serves from the second row
    # on. Each such row carries the first (cold) compile's figure, not a cache read's.
    seen = (spec.model, repr(sorted(spec.model_kwargs.items())), spec.config, spec.batch_size,
            spec.image_size, spec.precision, jax.devices()[0].device_kind)  # fmt: skip
    row["infer_compile_s"] = _INFER_COMPILE_S.setdefault(seen, time.perf_counter() - t)
    row["infer_ms"], row["infer_iqr_pct"] = median_iqr_ms(
        lambda: infer(final["params"], final["rest"], x), spec.warmup, spec.steps
    )
    row["peak_mem_gb"] = peak_memory_gb()
    row["train_img_per_s"] = spec.batch_size / (row["train_ms"] / 1e3)
    row["train_pipelined_img_per_s"] = spec.batch_size / (row["train_pipelined_ms"] / 1e3)
    row["infer_img_per_s"] = spec.batch_size / (row["infer_ms"] / 1e3)
    row["achieved_tflops"] = row["train_img_per_s"] * row["train_gflops_per_img"] / 1e3
    return row


def measure_with_backoff(
    spec: BenchSpec, fn: Callable[[BenchSpec], dict[str, Any]] | None = None
) -> tuple[dict[str, Any], str]:
    """``fn`` (default ``measure``); on out-of-memory retry at half the batch (down to 1).

    Returns (measured row, note); the note says which batch sizes ran out of memory, and the row
    holds the batch size actually measured under ``batch_size``.
    """
    batch, failed = spec.batch_size, []
    while True:
        try:
            row = (fn or measure)(replace(spec, batch_size=batch))
            row["batch_size"] = batch
            if not failed:
                return row, ""
            return row, f"OOM at batch {', '.join(map(str, failed))}; measured at {batch}"
        except Exception as e:  # XLA raises its own runtime error type for OOM
            if not is_oom(e) or batch == 1:
                raise
            failed.append(batch)
            batch //= 2
        # Freed only here, out of the except block: while it runs, the exception being handled
        # (its traceback's frames hold the failed attempt's device buffers) is still alive, so a
        # collection there would free nothing and the smaller batch would start with them held.
        gc.collect()
        jax.clear_caches()
