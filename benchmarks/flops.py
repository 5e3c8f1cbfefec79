"""FLOPs from layer shapes, read off the jaxpr of a shape-only trace.

Why not XLA's ``cost_analysis()``: on GPU it does not count convolutions that XLA hands to cuDNN,
so MFU from it would be meaningless. Instead the forward function is traced abstractly
(``jax.make_jaxpr`` on ``ShapeDtypeStruct`` inputs: no arrays are allocated, nothing runs) and
every ``conv_general_dilated`` and ``dot_general`` equation is counted as 2 FLOPs per
multiply-accumulate, including those inside nested jaxprs (``jit``/``pjit``, ``custom_jvp_call``,
``custom_vjp_call``, ``remat``; ``scan`` bodies times their length; ``cond``: the costliest
branch; ``while``: the body once, its trip count being unknown at trace time).

Conventions (those of layer-shape FLOP tables such as fvcore's):
- ordinary convolution: MACs = output elements × kernel taps × input channels per group (padded
  border taps are counted, as every such table does);
- input-dilated convolution (a transposed convolution, ``lhs_dilation`` > 1): MACs = input
  elements × kernel taps × output channels per group — the zeros XLA's formulation inserts
  between input pixels are never multiplied by cuDNN or counted by PyTorch's counters;
- dense / matmul: MACs = product of the batch, free and contracted dimensions;
- element-wise work (BatchNorm, activations, pooling, the loss) is not counted: it is memory-bound
  and not what MFU measures.
Training FLOPs are taken as 3 × forward (backward ≈ 2 × forward for conv/matmul layers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

TRAIN_FACTOR = 3  # forward + backward (grad w.r.t. inputs and weights ≈ 2 × forward)


def _conv_macs(eqn: Any) -> int:
    lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
    out = eqn.outvars[0].aval.shape
    dn = eqn.params["dimension_numbers"]
    lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    taps = math.prod(rhs[d] for d in rhs_spec[2:])
    in_per_group = rhs[rhs_spec[1]]
    out_features = rhs[rhs_spec[0]]
    if any(d > 1 for d in eqn.params.get("lhs_dilation") or ()):
        # Transposed convolution: each input pixel is scattered through the kernel once.
        batch = lhs[lhs_spec[0]]
        spatial = math.prod(lhs[d] for d in lhs_spec[2:])
        groups = eqn.params.get("feature_group_count", 1)
        return batch * spatial * in_per_group * groups * taps * (out_features // groups)
    out_elems = out[out_spec[0]] * out[out_spec[1]] * math.prod(out[d] for d in out_spec[2:])
    return out_elems * taps * in_per_group


def _dot_macs(eqn: Any) -> int:
    lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
    (_, rhs_contract), (_, rhs_batch) = eqn.params["dimension_numbers"]
    rhs_free = [d for d in range(len(rhs)) if d not in rhs_contract and d not in rhs_batch]
    # Every lhs element (batch × free × contracted) meets every rhs free element once.
    return math.prod(lhs) * math.prod(rhs[d] for d in rhs_free)


def _sub_jaxprs(value: Any) -> list[Any]:
    """Jaxprs held by one equation parameter (a Jaxpr, a ClosedJaxpr, or a tuple of them)."""
    if hasattr(value, "eqns"):
        return [value]
    if hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
        return [value.jaxpr]
    if isinstance(value, tuple | list):
        return [j for v in value for j in _sub_jaxprs(v)]
    return []


def jaxpr_flops(jaxpr: Any) -> int:
    """FLOPs (2 × MACs) of the conv and matmul equations of ``jaxpr`` (a Jaxpr or ClosedJaxpr),
    nested jaxprs included (see the module docstring for the rules)."""
    jaxpr = jaxpr.jaxpr if hasattr(jaxpr, "jaxpr") and not hasattr(jaxpr, "eqns") else jaxpr
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            total += 2 * _conv_macs(eqn)
            continue
        if name == "dot_general":
            total += 2 * _dot_macs(eqn)
            continue
        if name == "cond":
            total += max((jaxpr_flops(b) for b in eqn.params["branches"]), default=0)
            continue
        inner = sum(jaxpr_flops(j) for v in eqn.params.values() for j in _sub_jaxprs(v))
        total += inner * int(eqn.params["length"]) if name == "scan" else inner
    return total


def count_flops(fn: Callable[..., Any], *args: Any) -> int:
    """Forward FLOPs of ``fn(*args)``; ``args`` may be arrays or ``jax.ShapeDtypeStruct``."""
    return jaxpr_flops(jax.make_jaxpr(fn)(*args))


def forward_jaxpr(
    model: Any,
    image_size: int | tuple[int, int],
    *,
    in_channels: int = 1,
    batch: int = 1,
    train: bool = False,
) -> Any:
    """The jaxpr of a registered-contract NNX model's forward pass on a (batch, H, W, in_channels)
    input. Only shapes are traced (the model's arrays are read for their shapes, not computed on).
    """
    from flax import nnx

    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    graphdef, state = nnx.split(model)
    x = jax.ShapeDtypeStruct((batch, h, w, in_channels), jnp.float32)

    def forward(s, x):
        return nnx.merge(graphdef, s)(x, train=train)

    # make_jaxpr reads only the avals of ``state``: works for concrete and nnx.eval_shape models.
    return jax.make_jaxpr(forward)(state, x)


def model_forward_flops(
    model: Any,
    image_size: int | tuple[int, int],
    *,
    in_channels: int = 1,
    batch: int = 1,
    train: bool = False,
) -> int:
    """Forward FLOPs of a registered-contract NNX model (see :func:`forward_jaxpr`)."""
    jaxpr = forward_jaxpr(model, image_size, in_channels=in_channels, batch=batch, train=train)
    return jaxpr_flops(jaxpr)


def gflops_per_image(model: Any, image_size: int, *, in_channels: int = 1) -> dict[str, float]:
    """{"forward": GFLOPs per image, "train": 3 × forward} at ``image_size``²."""
    fwd = model_forward_flops(model, image_size, in_channels=in_channels) / 1e9
    return {"forward": fwd, "train": TRAIN_FACTOR * fwd}
