"""The one training engine: every registered model trains and evaluates through this file and
the pure step functions it jits (``mtl_bench/step.py``).

Design (why it looks like this):
- The model is split once into ``graphdef`` (static) and pure state (params, other variables such
  as BatchNorm statistics) so the jitted step is a pure function; Python/NNX object overhead is
  paid at trace time only and never shows in throughput numbers.
- The fold's uint8 arrays are placed on the device once. Each step gathers its batch by index from
  a per-epoch table (shuffled on device from the PRNG), augments it inside the jit, and advances a
  step counter kept in the state — the host does no per-step data work, it only dispatches.
- The last batch of an epoch is padded with repeated samples whose loss weight is zero, so every
  training sample counts exactly once per epoch (no drop_last).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtl_bench import parallel as par
from mtl_bench.batches import _epoch_table
from mtl_bench.config import RunConfig
from mtl_bench.optim import make_optimizer
from mtl_bench.state_pack import StateLayout
from mtl_bench.step import State, StepConfig, Steps

__all__ = ["Engine", "State", "StepConfig", "Steps", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the message names the epoch and step."""


class Engine:
    """Builds the pure train/eval steps for one model and runs epochs over device arrays.

    ``cfg.parallel`` picks the data-parallel strategy (``none``, ``jit``, ``pmap``; see
    ``mtl_bench.parallel``). Callers place arrays with :meth:`place_data` / :meth:`place_state`
    and get a single, host-saveable copy of the state back with :meth:`canonical_state`.
    """

    def __init__(
        self,
        model: nnx.Module,
        tasks: tuple[str, ...],
        cfg: RunConfig,
        *,
        steps_per_epoch: int,
        class_alpha: np.ndarray | None,
    ) -> None:
        self.cfg = cfg
        self.parallel = cfg.parallel
        self.devices = par.select_devices(cfg.devices) if cfg.parallel != "none" else None
        par.check_strategy(cfg.parallel, cfg.batch_size, len(self.devices or [None]))
        if cfg.parallel == "pmap":
            par.sync_batchnorm(model, par.DATA_AXIS)
        self.mesh = par.data_mesh(self.devices) if cfg.parallel == "jit" else None
        self.graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        self.tx = make_optimizer(cfg)
        freeze = int(getattr(model, "freeze_backbone_epochs", 0) or 0)
        self.freeze_epochs = freeze  # fold-parallel sets each fold's own limit in steps
        if freeze:  # fine-tuning: only the new head learns for the first epochs
            from baselines.classifiers import freeze_backbone

            self.tx = freeze_backbone(self.tx, model, freeze * steps_per_epoch)
        self.steps_per_epoch = steps_per_epoch
        self.alpha = None if class_alpha is None else jnp.asarray(class_alpha, jnp.float32)
        self.static = StepConfig.from_run(cfg, tasks)
        self.steps = Steps(
            self.graphdef,
            self.tx,
            cfg,
            self.static,
            alpha=self.alpha,
            steps_per_epoch=steps_per_epoch,
            mesh=self.mesh,
            num_devices=len(self.devices or [None]),
        )
        self.initial_state: State = {
            "params": params,
            "rest": rest,
            "opt_state": self.tx.init(params),
            "step": jnp.zeros((), jnp.int32),
        }
        # The per-step call takes the state as a flat list (mtl_bench/state_pack.py says why).
        pmap_devices = self.devices if self.parallel == "pmap" else None
        self._layout = StateLayout(self.initial_state, cfg.state_layout, pmap_devices)
        self.step_leaf = self._layout.step_index  # the list's array holding the step counter
        # donate_argnums=0: the old state's buffers are reused for the new one (no 2× memory).
        if self.parallel == "pmap":
            self._train_indexed = jax.pmap(
                self._layout.traced(self.steps.train_indexed_pmap),
                axis_name=par.DATA_AXIS,
                devices=self.devices,
                donate_argnums=0,
            )
        else:
            step = self._layout.traced(self.steps.train_indexed)
            self._train_indexed = jax.jit(step, donate_argnums=0)
        self._eval = jax.jit(self.steps.evaluate)
        self.train_step = jax.jit(self.steps.train_step, donate_argnums=0)

    # ---- placement -------------------------------------------------------------------------
    def place_data(self, arrays: dict[str, Any], *, for_eval: bool = False) -> dict[str, Any]:
        """Put a fold's arrays where the strategy needs them (once per fold); training arrays
        carry the fold's class weights (``"alpha"``) as an argument of the step."""
        if not for_eval and self.alpha is not None:
            arrays = {**arrays, "alpha": np.asarray(self.alpha)}
        if self.parallel == "jit":
            return par.replicate(arrays, self.mesh)
        if self.parallel == "pmap" and not for_eval:
            return par.stack_for_pmap(arrays, self.devices)
        return jax.device_put(arrays)

    def place_state(self, state: State) -> State:
        """A copy of ``state`` placed for the strategy. Always a copy: training donates the
        state's buffers, and ``initial_state`` must stay readable (a restore target, a second
        fold, a timing run)."""
        if self.parallel == "jit":
            return par.replicate(state, self.mesh)
        if self.parallel == "pmap":
            return par.stack_for_pmap(state, self.devices)
        return jax.tree.map(jnp.copy, state)

    def flatten_state(self, state: State) -> list[jax.Array]:
        """The state as the flat list of arrays ``_train_indexed`` takes and returns: its leaves,
        or (``state_layout="packed"``) new buffers holding them (``state`` stays valid)."""
        return self._layout.flatten(state)

    def unflatten_state(self, arrays: list[jax.Array]) -> State:
        """Inverse of :meth:`flatten_state`."""
        return self._layout.unflatten(arrays)

    def canonical_state(self, state: State) -> State:
        """One copy of the state (pmap keeps one per device) for saving and evaluation."""
        return par.unstack(state) if self.parallel == "pmap" else state

    # ---- host-side drivers -----------------------------------------------------------------
    def epoch_table(self, n: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """This epoch's (steps, batch) index table and weights, placed for the strategy."""
        table, weights = _epoch_table(key, n, self.cfg.batch_size, self.steps_per_epoch)
        if self.parallel == "jit":
            return par.replicate((table, weights), self.mesh)
        if self.parallel == "pmap":
            return par.stack_for_pmap((table, weights), self.devices)
        return table, weights

    def run_epoch(
        self,
        state: State,
        data: dict[str, jax.Array],
        epoch_key: jax.Array,
        on_step: Callable[[int], None] | None = None,
        *,
        rows: int | None = None,
    ) -> tuple[State, dict[str, np.ndarray]]:
        """One epoch over the first ``rows`` rows of ``data`` (default: all; more are padding,
        ``batches.pad_rows``); returns the new state and per-step metrics fetched once at the
        end."""
        n = int(data["labels"].shape[-1]) if rows is None else rows
        table, weights = self.epoch_table(n, jax.random.fold_in(epoch_key, 0))
        step_key = jax.random.fold_in(epoch_key, 1)
        if self.parallel == "pmap":
            step_key = par.stack_for_pmap(step_key, self.devices)
        elif self.parallel == "jit":
            step_key = par.replicate(jax.random.key_data(step_key), self.mesh)
            step_key = jax.random.wrap_key_data(step_key)
        collected = []
        leaves = self.flatten_state(state)
        for i in range(self.steps_per_epoch):
            leaves, m = self._train_indexed(leaves, data, table, weights, step_key)
            collected.append(m)
            if on_step is not None:
                on_step(i)
        state = self.unflatten_state(leaves)
        stacked = par.fetch(jax.tree.map(lambda *xs: jnp.stack(xs), *collected))
        if self.parallel == "pmap":  # identical on every device after psum
            stacked = {k: v[:, 0] for k, v in stacked.items()}
        return state, {k: np.asarray(v) for k, v in stacked.items()}

    def evaluate(
        self, state: State, data: dict[str, jax.Array], index: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Probabilities (N, C) and per-image confusion counts (N, 4) for rows ``index``.

        ``state`` is the canonical (single-copy) state; ``data`` placed with ``for_eval=True``.
        """
        n = int(data["labels"].shape[0])
        index = np.arange(n) if index is None else np.asarray(index)
        bs = self.cfg.eval_batch_size
        pieces: list[dict[str, np.ndarray]] = []
        for start in range(0, len(index), bs):
            chunk = index[start : start + bs]
            # Pad to a fixed batch so one compiled program serves every chunk.
            pad = np.full(bs - len(chunk), chunk[0])
            idx = jnp.asarray(np.concatenate([chunk, pad]), jnp.int32)
            if self.parallel == "jit":
                idx = par.replicate(idx, self.mesh)
            out = par.fetch(self._eval(state, data, idx))
            pieces.append({k: np.asarray(v)[: len(chunk)] for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]} if pieces else {}
