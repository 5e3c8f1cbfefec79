"""How a convolution runs when the fold-parallel step ``vmap``s it over folds (``fold_conv``).

``vmap`` over the folds' own kernels turns each convolution into ONE grouped convolution
(``feature_group_count = folds``). That is one big op — but grouped convolutions, above all their
weight gradient, run far below dense ones (CPU here; CUDA: jax-ml/jax#13800), which made
fold-parallel training slower than sequential folds. Every convolution in the suite's models is
built with :func:`conv_general_dilated`, a drop-in for ``lax.conv_general_dilated`` that reads the
mode set by :func:`fold_conv_mode` while the fold step is traced:

- ``grouped``: plain ``lax.conv_general_dilated`` (``vmap`` makes it grouped). Outside the fold
  step this is always the mode, so every other program is exactly what it was.
- ``split_wgrad``: forward and input gradient stay grouped; the weight gradient — the slowest
  part — is one dense convolution per fold.
- ``unrolled``: forward, input gradient and weight gradient are one dense convolution per fold.
  Everything else in the step (BatchNorm, activations, losses, Adam) stays batched over folds.

The choice happens at trace time (a ``ContextVar`` read in Python): it costs nothing per step.
The per-fold loops are ``jax.custom_batching.custom_vmap`` rules inside a ``jax.custom_vjp``,
so the same function is an ordinary convolution when nothing is vmapped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

FOLD_CONV_MODES = ("grouped", "split_wgrad", "unrolled")

_MODE: ContextVar[str] = ContextVar("mtl_bench_fold_conv", default="grouped")


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is a known fold-conv mode, else a one-line ValueError naming it."""
    if mode not in FOLD_CONV_MODES:
        raise ValueError(f"fold_conv must be one of {', '.join(FOLD_CONV_MODES)}, got {mode!r}")
    return mode


@contextmanager
def fold_conv_mode(mode: str) -> Iterator[None]:
    """Convolutions traced inside this block use ``mode`` (see the module docstring)."""
    token = _MODE.set(check_mode(mode))
    try:
        yield
    finally:
        _MODE.reset(token)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, *args: Any, **kwargs: Any) -> jax.Array:
    """``lax.conv_general_dilated`` with the fold-conv mode's batching (pass to ``nnx.Conv``)."""
    mode = _MODE.get()
    if mode == "grouped":
        return lax.conv_general_dilated(lhs, rhs, *args, **kwargs)

    def conv(x: jax.Array, w: jax.Array) -> jax.Array:
        return lax.conv_general_dilated(x, w, *args, **kwargs)

    return _fold_aware(conv, mode)(lhs, rhs)


def _fold_aware(conv: Callable[[jax.Array, jax.Array], jax.Array], mode: str) -> Callable:
    def dx(x, w, g):
        return jax.vjp(lambda x_: conv(x_, w), x)[1](g)[0]

    def dw(x, w, g):
        return jax.vjp(lambda w_: conv(x, w_), w)[1](g)[0]

    if mode == "unrolled":
        forward, grad_x = _per_fold(conv), _per_fold(dx)
    else:
        forward, grad_x = conv, dx
    grad_w = _per_fold(dw)

    @jax.custom_vjp
    def f(x, w):
        return forward(x, w)

    def f_fwd(x, w):
        return forward(x, w), (x, w)

    def f_bwd(res, g):
        x, w = res
        return grad_x(x, w, g), grad_w(x, w, g)

    f.defvjp(f_fwd, f_bwd)
    return f


def _per_fold(fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """``fn``, except that under ``vmap`` it runs once per mapped element and stacks the results
    (dense ops per fold instead of one grouped op)."""
    wrapped = jax.custom_batching.custom_vmap(fn)

    @wrapped.def_vmap
    def _rule(axis_size: int, in_batched: list[bool], *args: jax.Array):
        outs = [
            wrapped(*(a[i] if batched else a for a, batched in zip(args, in_batched, strict=True)))
            for i in range(axis_size)
        ]
        return jnp.stack(outs), True

    return wrapped
