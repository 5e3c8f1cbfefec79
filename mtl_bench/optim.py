"""Optimisers and the learning-rate staircase shared by every model the engine trains."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from mtl_bench.config import RunConfig


def make_optimizer(cfg: RunConfig) -> optax.GradientTransformation:
    """The update direction of Adam (default), AdamW or SGD-momentum, without the learning rate.

    The engine multiplies the result by ``-lr_at(step, steps_per_epoch)``. Keeping the schedule
    outside optax lets fold-parallel training give each fold its own steps per epoch (a traced
    value) while computing exactly what ``optax.adam(schedule)`` computes.
    """
    if cfg.optimizer == "adam":
        tx = optax.scale_by_adam(eps=cfg.adam_eps)
    elif cfg.optimizer == "adamw":
        adam = optax.scale_by_adam(eps=cfg.adam_eps)
        tx = optax.chain(adam, optax.add_decayed_weights(cfg.weight_decay))
    elif cfg.optimizer == "sgd":
        tx = optax.trace(decay=0.9)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}: use adam, adamw or sgd")
    # ``optimizer_flatten``: the same element-wise update on one concatenated vector. XLA then
    # emits a few update kernels instead of one or more per parameter tensor (a step of the
    # proposed model is ~1200 fusions on CPU, ~170 fewer flattened): launch overhead is what
    # a small batch pays on a GPU. The state's layout differs, so checkpoints do not mix.
    return optax.flatten(tx) if cfg.optimizer_flatten else tx


def lr_at(cfg: RunConfig, step: jax.Array, steps_per_epoch: jax.Array | int) -> jax.Array:
    """The paper's staircase: ``lr × factor^(epoch // lr_decay_every)``, epoch = step // spe."""
    if cfg.lr_decay_every <= 0:
        return jnp.float32(cfg.lr)
    epoch = step // steps_per_epoch
    return cfg.lr * jnp.power(jnp.float32(cfg.lr_decay_factor), epoch // cfg.lr_decay_every)
