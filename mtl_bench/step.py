"""The pure per-step functions of one model: train step, indexed train step (single device and
pmap), evaluation. ``mtl_bench.train.Engine`` jits them and drives them; fold-parallel training
vmaps :meth:`Steps.step` over folds.

Why a class of its own: these functions close over the model's ``graphdef``, the optimizer and
the static settings, and nothing else — no device placement, no host loop. Keeping them apart
from the engine's drivers keeps what is traced (here) apart from what runs on the host per step
(``train.py``), which is what throughput numbers are sensitive to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from mtl_bench import parallel as par
from mtl_bench.batches import gather_batch
from mtl_bench.config import RunConfig
from mtl_bench.data.augment import AugmentConfig, augment_with_keys
from mtl_bench.losses import joint_loss
from mtl_bench.metrics import confusion_counts
from mtl_bench.optim import lr_at

State = dict[str, Any]


@dataclass(frozen=True)
class StepConfig:
    """Hashable static settings of the jitted steps."""

    tasks: tuple[str, ...]
    batch_size: int
    augment: AugmentConfig
    w_seg: float
    w_cls: float
    focal_gamma: float
    dice_smooth: float

    @classmethod
    def from_run(cls, cfg: RunConfig, tasks: tuple[str, ...]) -> StepConfig:
        return cls(
            tasks=tasks,
            batch_size=cfg.batch_size,
            augment=AugmentConfig(cfg.hflip, cfg.vflip, float(cfg.max_rotation_deg)),
            w_seg=cfg.w_seg,
            w_cls=cfg.w_cls,
            focal_gamma=cfg.focal_gamma,
            dice_smooth=cfg.dice_smooth,
        )


class Steps:
    """``train_step(state, batch, rng) -> (state, metrics)`` and its indexed / eval variants.

    ``state`` is ``{"params", "rest", "opt_state", "step"}`` (``Engine.initial_state``). With a
    ``mesh`` (``parallel="jit"``) batches are constrained to the mesh's data axis;
    ``num_devices`` is the pmap device count (``parallel="pmap"``).
    """

    def __init__(
        self,
        graphdef: nnx.GraphDef,
        tx: optax.GradientTransformation,
        cfg: RunConfig,
        static: StepConfig,
        *,
        alpha: jax.Array | None,
        steps_per_epoch: int,
        mesh: Mesh | None = None,
        num_devices: int = 1,
    ) -> None:
        self.graphdef = graphdef
        self.tx = tx
        self.cfg = cfg
        self.static = static
        self.alpha = alpha
        self.steps_per_epoch = steps_per_epoch
        self.mesh = mesh
        self.num_devices = num_devices

    def train_step(
        self,
        state: State,
        batch: dict[str, jax.Array],
        rng: jax.Array,
        *,
        alpha: jax.Array | None = None,
    ) -> tuple[State, dict[str, jax.Array]]:
        """Pure ``train_step(state, batch, rng) -> (state, metrics)`` on a float batch.

        ``batch`` holds "image" (B,H,W,C), "mask" (B,H,W,1), "label" (B,) and optionally
        "weight" (B,) (0 for padding). Augmentation happens here, from ``rng``. ``alpha``: the
        focal loss's class weights (default: the ones given at construction).
        """
        aug_key, drop_key = jax.random.split(rng)
        sample_keys = jax.random.split(aug_key, batch["image"].shape[0])
        return self.step(state, batch, sample_keys, drop_key, alpha=alpha)

    def step(
        self,
        state: State,
        batch: dict[str, jax.Array],
        sample_keys: jax.Array,
        drop_key: jax.Array,
        axis_name: str | None = None,
        *,
        alpha: jax.Array | None = None,
        steps_per_epoch: jax.Array | int | None = None,
    ) -> tuple[State, dict[str, jax.Array]]:
        """One step with per-sample augmentation keys; ``axis_name`` sums over pmap devices."""
        # alpha / steps_per_epoch are arguments (not only attributes) so fold-parallel training
        # can vmap over folds whose class weights and epoch lengths differ.
        s = self.static
        alpha = self.alpha if alpha is None else alpha
        spe = self.steps_per_epoch if steps_per_epoch is None else steps_per_epoch
        masks = batch["mask"] if "mask" in s.tasks else None
        images, masks = augment_with_keys(sample_keys, batch["image"], masks, s.augment)
        batch = {**batch, "image": images, "mask": masks}
        weight = batch.get("weight")
        if self.mesh is not None:  # sharded jit: every device computes its slice of the batch
            batch = jax.lax.with_sharding_constraint(batch, par.batch_sharding(self.mesh))

        def loss_fn(params):
            # copy=True: fresh Variables at this (grad) trace level, so BatchNorm may update them.
            model = nnx.merge(self.graphdef, params, state["rest"], copy=True)
            out = model(batch["image"], train=True, rng=drop_key)
            loss, aux = joint_loss(
                out,
                batch,
                w_seg=s.w_seg,
                w_cls=s.w_cls,
                alpha=alpha,
                gamma=s.focal_gamma,
                smooth=s.dice_smooth,
                sample_weight=weight,
            )
            if axis_name is not None:
                # This device's weighted mean times its share of the global weight: summing
                # over devices (psum below) gives the global weighted mean exactly.
                local = jnp.sum(weight) if weight is not None else jnp.float32(images.shape[0])
                share = local / jnp.maximum(jax.lax.psum(local, axis_name), 1e-12)
                loss = loss * share
                aux = {k: v * share for k, v in aux.items()}
            _, _, new_rest = nnx.split(model, nnx.Param, ...)
            return loss, (aux, new_rest)

        (loss, (aux, new_rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        if axis_name is not None:
            grads, aux = jax.lax.psum((grads, aux), axis_name)
        updates, opt_state = self.tx.update(grads, state["opt_state"], state["params"])
        lr = lr_at(self.cfg, state["step"], spe)
        updates = jax.tree.map(lambda u: -lr * u, updates)
        params = optax.apply_updates(state["params"], updates)
        new_state = {
            "params": params,
            "rest": new_rest,
            "opt_state": opt_state,
            "step": state["step"] + 1,
        }
        metrics = {k: aux[k] for k in ("loss", "dice_loss", "focal_loss") if k in aux}
        return new_state, metrics

    def train_indexed(
        self,
        state: State,
        data: dict[str, jax.Array],
        table: jax.Array,
        weights: jax.Array,
        key: jax.Array,
    ) -> tuple[State, dict[str, jax.Array]]:
        """The step on the batch that row ``step % steps`` of the epoch's index table names.

        ``data`` may carry the fold's class weights as ``"alpha"`` (``Engine.place_data`` puts
        them there): an argument, not a constant of the program, so every fold of one size runs
        the same compiled step (JAX's persistent cache serves the later folds).
        """
        # The step counter picks the row of this epoch's index table and the step's PRNG key.
        row = state["step"] % table.shape[0]
        idx, w = table[row], weights[row]
        batch = {**gather_batch(data, idx), "weight": w}
        key = jax.random.fold_in(key, state["step"])
        return self.train_step(state, batch, key, alpha=data.get("alpha"))

    def train_indexed_pmap(
        self,
        state: State,
        data: dict[str, jax.Array],
        table: jax.Array,
        weights: jax.Array,
        key: jax.Array,
    ) -> tuple[State, dict[str, jax.Array]]:
        """:meth:`train_indexed` under ``pmap``: each device takes its slice of the batch."""
        # Same global batch, keys and order as the single-device step; each device takes its
        # contiguous slice. Dropout keys differ per device (the only difference from ``none``).
        row = state["step"] % table.shape[0]
        size = table.shape[1] // self.num_devices
        start = jax.lax.axis_index(par.DATA_AXIS) * size
        idx = jax.lax.dynamic_slice_in_dim(table[row], start, size)
        w = jax.lax.dynamic_slice_in_dim(weights[row], start, size)
        aug_key, drop_key = jax.random.split(jax.random.fold_in(key, state["step"]))
        keys = jax.random.split(aug_key, table.shape[1])
        keys = jax.lax.dynamic_slice_in_dim(keys, start, size)
        drop_key = jax.random.fold_in(drop_key, jax.lax.axis_index(par.DATA_AXIS))
        batch = {**gather_batch(data, idx), "weight": w}
        alpha = data.get("alpha")
        return self.step(state, batch, keys, drop_key, axis_name=par.DATA_AXIS, alpha=alpha)

    def evaluate(
        self, state: State, data: dict[str, jax.Array], idx: jax.Array
    ) -> dict[str, jax.Array]:
        """Class probabilities and per-image confusion counts for the rows ``idx``."""
        batch = gather_batch(data, idx)
        if self.mesh is not None and idx.shape[0] % self.num_devices == 0:
            batch = jax.lax.with_sharding_constraint(batch, par.batch_sharding(self.mesh))
        model = nnx.merge(self.graphdef, state["params"], state["rest"])
        out = model(batch["image"], train=False)
        res: dict[str, jax.Array] = {}
        if "label" in out:
            res["prob"] = jax.nn.softmax(out["label"].astype(jnp.float32), axis=-1)
        if "mask" in out:
            pred = out["mask"][..., 0] > 0
            res["counts"] = confusion_counts(pred, batch["mask"][..., 0] > 0.5)
        if self.mesh is not None:  # every process can then read the whole batch's results
            res = jax.lax.with_sharding_constraint(res, par.replicated(self.mesh))
        return res
