"""Transfer-learning classification baselines (the paper's Table 7): Flax NNX networks that match
torchvision 0.29 (``resnet50``, ``vgg16``, ``vgg19``, ``densenet201``, ``inception_v3``,
``mobilenet_v2``) and timm 1.0 (``mobilenet`` = ``mobilenetv1_100``, ``inception_resnet_v2``)
layer for layer, so that a reference ImageNet checkpoint ports exactly (``port.py``).

All are registered with ``tasks=("label",)``, ``family="classification"`` and their native input
size as the ``image_size`` default (224; 299 for the Inception family). Builders take
``in_channels`` (1: grey replicated to RGB, see ``base``), ``num_classes`` (2, the paper's
n_units), ``image_size`` (checked against each network's minimum), ``dtype``, ``weights`` (an
imported folder or a .pth/.safetensors file; None trains from scratch), ``input_norm`` and
``freeze_backbone_epochs``.

Freezing lives in the optimiser, not the forward pass: ``freeze_backbone(tx, model, steps)``
wraps the run's optax transformation so backbone parameters get zero updates (and their
optimiser state does not advance) for the first ``steps`` steps, while the head (the model's
``head_attrs``) trains from the start. BatchNorm statistics of the backbone still update in
training mode, as in PyTorch when parameters are frozen with ``requires_grad=False``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from baselines.classifiers import (  # noqa: F401  (importing registers the models)
    densenet,
    inception_resnet_v2,
    inception_v3,
    mobilenet,
    resnet,
    vgg,
)

CLASSIFIERS: tuple[str, ...] = (
    "resnet50",
    "vgg16",
    "vgg19",
    "densenet201",
    "inception_v3",
    "mobilenet_v2",
    "mobilenet",
    "inception_resnet_v2",
)


def _top(path: tuple) -> Any:
    first = path[0]
    return getattr(first, "key", getattr(first, "name", first))


def _labels(head_attrs: tuple[str, ...], params: Any) -> Any:
    return jax.tree_util.tree_map_with_path(
        lambda p, _: "head" if _top(p) in head_attrs else "backbone", params
    )


def backbone_mask(model: nnx.Module) -> Any:
    """``nnx.state(model, nnx.Param)``-shaped pytree of bools: True for head parameters (the
    layers sized by ``num_classes``), False for the backbone."""
    heads = tuple(model.head_attrs)
    return jax.tree_util.tree_map_with_path(
        lambda p, _: _top(p) in heads, nnx.state(model, nnx.Param)
    )


class FrozenState(NamedTuple):
    """``_frozen_for``'s state: updates done, the first one that applies, ``inner``'s state.

    ``limit`` is state, not a constant baked into the step, so that fold-parallel training
    (one program for folds of different steps per epoch) can give each fold its own
    (``with_freeze_limits``)."""

    count: jax.Array
    limit: jax.Array
    inner: Any


def _frozen_for(inner: optax.GradientTransformation, steps: int) -> optax.GradientTransformation:
    """``inner`` whose updates are zero, and whose state is held at its initial value, for the
    first ``steps`` updates: after unfreezing, Adam's moments and bias correction start fresh,
    as torch's Adam creates a parameter's state at its first gradient (``requires_grad`` turned
    back on). A learning-rate schedule applied outside (``Engine`` uses the global step) is not
    delayed."""

    def init(params):
        limit = jnp.asarray(steps, jnp.int32)
        return FrozenState(jnp.zeros((), jnp.int32), limit, inner.init(params))

    def update(updates, state, params=None):
        new_updates, new_state = inner.update(updates, state.inner, params)
        frozen = state.count < state.limit
        new_updates = jax.tree.map(lambda u: jnp.where(frozen, jnp.zeros_like(u), u), new_updates)
        new_state = jax.tree.map(lambda a, b: jnp.where(frozen, a, b), state.inner, new_state)
        return new_updates, FrozenState(
            jnp.minimum(state.count + 1, state.limit), state.limit, new_state
        )

    return optax.GradientTransformation(init, update)


def with_freeze_limits(opt_state: Any, limits: jax.Array) -> Any:
    """``opt_state`` with every ``FrozenState.limit`` replaced by ``limits`` (e.g. one per fold,
    stacked as the state is); unchanged when nothing is frozen."""
    return jax.tree.map(
        lambda s: (
            s._replace(limit=jnp.asarray(limits, jnp.int32)) if isinstance(s, FrozenState) else s
        ),
        opt_state,
        is_leaf=lambda s: isinstance(s, FrozenState),
    )


def freeze_backbone(
    tx: optax.GradientTransformation, model: nnx.Module, steps: int
) -> optax.GradientTransformation:
    """``tx`` for the head from step 0 and for the backbone from step ``steps`` (``steps`` <= 0:
    ``tx`` unchanged). The label function follows ``Engine``'s params pytree (``nnx.split(model,
    nnx.Param, ...)``), so the result drops into ``Engine.tx``."""
    if steps <= 0:
        return tx
    heads = tuple(model.head_attrs)
    return optax.multi_transform(
        {"head": tx, "backbone": _frozen_for(tx, int(steps))},
        lambda params: _labels(heads, params),
    )
