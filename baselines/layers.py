"""PyTorch-semantics building blocks for the smp-faithful baselines (NHWC, Flax NNX).

Why not ``mtl_bench.layers``: the baselines must compute what the PyTorch reference computes, so
- padding is explicit and symmetric like torch's (Flax "SAME" pads stride-2 convs (0,1), torch
  (1,1): the features would be shifted by a pixel);
- BatchNorm is torch's: epsilon 1e-5, momentum 0.1 (Flax 0.9), two-pass variance;
- resizing follows ``F.interpolate`` exactly: legacy "nearest" and bilinear with either
  ``align_corners`` (smp's heads use ``align_corners=True``);
- initialisers follow the reference's: torchvision (kaiming normal, fan-out) for encoders, smp's
  ``initialize_decoder`` (kaiming uniform, fan-in) and ``initialize_head`` (xavier uniform).
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtl_bench.fold_conv import conv_general_dilated
from mtl_bench.layers import max_pool2
from mtl_bench.weights import FlaxPath, TorchTable, sub

Init = jax.nn.initializers.Initializer
# torchvision ResNet/VGG: kaiming_normal_(mode="fan_out", nonlinearity="relu"), not truncated.
KAIMING_FAN_OUT: Init = jax.nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# smp initialize_decoder: kaiming_uniform_(mode="fan_in", nonlinearity="relu").
KAIMING_UNIFORM: Init = jax.nn.initializers.variance_scaling(2.0, "fan_in", "uniform")
# smp initialize_head: xavier_uniform_.
XAVIER: Init = jax.nn.initializers.xavier_uniform()
# torch's default Conv2d init (kaiming_uniform_(a=sqrt(5))): U(±1/sqrt(fan_in)).
TORCH_DEFAULT: Init = jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_default_bias(fan_in: int) -> Init:
    """torch's default conv bias init, U(±1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def conv2d(
    in_ch: int,
    out_ch: int,
    kernel: int,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = True,
    init: Init = KAIMING_UNIFORM,
    bias_init: Init = jax.nn.initializers.zeros,
    dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
) -> nnx.Conv:
    """``nn.Conv2d`` with torch's symmetric explicit padding, dilation and groups."""
    return nnx.Conv(
        in_ch,
        out_ch,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((padding, padding), (padding, padding)),
        kernel_dilation=(dilation, dilation),
        feature_group_count=groups,
        use_bias=bias,
        kernel_init=init,
        bias_init=bias_init,
        dtype=dtype,
        conv_general_dilated=conv_general_dilated,
        rngs=rngs,
    )


def batch_norm(ch: int, *, dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """``nn.BatchNorm2d`` defaults (eps 1e-5, momentum 0.1 ≡ Flax 0.9); scale 1, bias 0.

    Train mode normalises with the biased batch variance as torch does; the running variance is
    updated with the biased one too (torch uses n/(n-1)) — eval-mode outputs are unaffected.
    """
    return nnx.BatchNorm(
        ch, momentum=0.9, epsilon=1e-5, use_fast_variance=False, dtype=dtype, rngs=rngs
    )


def group_norm(ch: int, groups: int = 32, *, dtype=jnp.float32, rngs: nnx.Rngs) -> nnx.GroupNorm:
    """``nn.GroupNorm(groups, ch)``: eps 1e-5 (Flax's default is 1e-6), two-pass variance."""
    return nnx.GroupNorm(
        ch, num_groups=groups, epsilon=1e-5, use_fast_variance=False, dtype=dtype, rngs=rngs
    )


class Conv2dReLU(nnx.Module):
    """smp ``Conv2dReLU``: conv (bias only without norm) → BatchNorm → ReLU; torch names .0/.1."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        *,
        padding: int = 1,
        use_norm: bool = True,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        self.conv = conv2d(
            in_ch, out_ch, kernel, padding=padding, bias=not use_norm, dtype=dtype, rngs=rngs
        )
        self.bn = batch_norm(out_ch, dtype=dtype, rngs=rngs) if use_norm else None

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x, use_running_average=not train)
        return jax.nn.relu(x)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        tb.conv(sub(t, 0), (*f, "conv"), self.conv)
        if self.bn is not None:
            tb.bn(sub(t, 1), (*f, "bn"))


def max_pool(x: jax.Array, kernel: int, stride: int, padding: int = 0) -> jax.Array:
    """``nn.MaxPool2d``: padding is -inf, as in torch.

    A 2×2 stride-2 unpadded pool over an even height and width (VGG's) is ``max_pool2``'s
    reshape + max: the same values, without ``reduce_window``'s slow select-and-scatter backward
    (``mtl_bench.layers.max_pool2`` says how much; its gradient is torch's, ties included); odd
    sizes keep torch's floor via ``reduce_window``.
    """
    if kernel == stride == 2 and padding == 0 and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0:
        return max_pool2(x)
    pad = ((padding, padding), (padding, padding))
    return nnx.max_pool(x, (kernel, kernel), strides=(stride, stride), padding=pad)


@lru_cache(maxsize=256)
def _interp_matrix(n_in: int, n_out: int, align_corners: bool) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights with torch's source-index formula."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        src = np.maximum((dst + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    m = np.zeros((n_out, n_in), np.float64)
    np.add.at(m, (np.arange(n_out), i0), 1.0 - w1)
    np.add.at(m, (np.arange(n_out), i1), w1)
    return m.astype(np.float32)


def resize_bilinear(x: jax.Array, h: int, w: int, *, align_corners: bool) -> jax.Array:
    """``F.interpolate(mode="bilinear")`` to (h, w) as two small matrix products (exact weights,
    cheap at these sizes, and differentiable without scatter)."""
    mh = jnp.asarray(_interp_matrix(x.shape[1], h, align_corners), x.dtype)
    mw = jnp.asarray(_interp_matrix(x.shape[2], w, align_corners), x.dtype)
    hi = jax.lax.Precision.HIGHEST
    x = jnp.einsum("oh,nhwc->nowc", mh, x, precision=hi)
    return jnp.einsum("pw,nowc->nopc", mw, x, precision=hi)


def resize_nearest(x: jax.Array, h: int, w: int) -> jax.Array:
    """``F.interpolate(mode="nearest")`` (torch's legacy nearest: src = floor(dst · in / out))."""
    n_h, n_w = x.shape[1], x.shape[2]
    if h % n_h == 0 and w % n_w == 0:  # the usual ×2: repeat is exact and gather-free
        return jnp.repeat(jnp.repeat(x, h // n_h, axis=1), w // n_w, axis=2)
    ih = np.floor(np.arange(h) * (n_h / h)).astype(np.int32)
    iw = np.floor(np.arange(w) * (n_w / w)).astype(np.int32)
    return x[:, ih][:, :, iw]


def check_spatial(x: jax.Array, in_channels: int, divisor: int, name: str) -> None:
    """NHWC with the model's channel count and H, W divisible by ``divisor`` — or a clear error."""
    if x.ndim != 4 or x.shape[-1] != in_channels:
        raise ValueError(f"{name} expects NHWC input with {in_channels} channel(s), got {x.shape}")
    if x.shape[1] % divisor or x.shape[2] % divisor:
        raise ValueError(f"{name} needs H and W divisible by {divisor}, got {x.shape[1:3]}")
