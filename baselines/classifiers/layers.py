"""PyTorch-semantics layers the classifiers need beyond ``baselines.layers`` (NHWC, Flax NNX).

- ``ConvBN``: conv (no bias) → BatchNorm with the reference's epsilon → optional ReLU/ReLU6, with
  rectangular kernels and symmetric explicit padding (Inception's 1×7 / 7×1 convs);
- pooling with torch's rules: ``avg_pool`` with or without ``count_include_pad`` (torchvision's
  ``F.avg_pool2d`` counts the padding, timm's ``AvgPool2d(count_include_pad=False)`` does not) and
  ``adaptive_avg_pool`` with torch's window bounds (VGG's 7×7 pool of a 2×2 map replicates cells);
- the initialisers of each reference, so training from scratch starts where PyTorch would.
"""

from __future__ import annotations

import math
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from baselines.layers import KAIMING_FAN_OUT, TORCH_DEFAULT, torch_default_bias
from mtl_bench.fold_conv import conv_general_dilated
from mtl_bench.weights import FlaxPath, TorchTable, sub

Init = jax.nn.initializers.Initializer
Pair = int | tuple[int, int]
ZEROS: Init = jax.nn.initializers.zeros
# DenseNet: kaiming_normal_ with torch's default mode (fan_in).
KAIMING_FAN_IN: Init = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")

__all__ = [
    "KAIMING_FAN_IN",
    "KAIMING_FAN_OUT",
    "TORCH_DEFAULT",
    "ZEROS",
    "ConvBN",
    "adaptive_avg_pool",
    "avg_pool",
    "conv",
    "goog_conv_init",
    "linear",
    "normal",
    "torch_default_bias",
    "uniform",
]


def _pair(v: Pair) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def normal(std: float) -> Init:
    """N(0, std²). Also stands in for torchvision Inception's ``trunc_normal_(std, a=-2, b=2)``:
    the bounds are absolute, i.e. ≥ 20 standard deviations away, so nothing is truncated."""
    return jax.nn.initializers.normal(std)


def uniform(bound: float) -> Init:
    """U(±bound)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def goog_conv_init(groups: int = 1) -> Init:
    """timm's ``_init_weight_goog`` conv rule: N(0, 2 / fan_out) with fan_out = k·k·out / groups
    (a depthwise 3×3 gets fan_out 9, unlike Flax's variance_scaling)."""

    def init(key, shape, dtype=jnp.float32):
        fan_out = shape[0] * shape[1] * shape[3] // groups
        return jax.random.normal(key, shape, dtype) * math.sqrt(2.0 / fan_out)

    return init


def conv(
    in_ch: int,
    out_ch: int,
    kernel: Pair,
    *,
    stride: Pair = 1,
    padding: Pair = 0,
    groups: int = 1,
    bias: bool = True,
    init: Init = KAIMING_FAN_OUT,
    bias_init: Init = ZEROS,
    dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
) -> nnx.Conv:
    """``nn.Conv2d`` with (possibly rectangular) kernel and torch's symmetric padding."""
    ph, pw = _pair(padding)
    return nnx.Conv(
        in_ch,
        out_ch,
        _pair(kernel),
        strides=_pair(stride),
        padding=((ph, ph), (pw, pw)),
        feature_group_count=groups,
        use_bias=bias,
        kernel_init=init,
        bias_init=bias_init,
        dtype=dtype,
        conv_general_dilated=conv_general_dilated,
        rngs=rngs,
    )


def linear(
    in_f: int,
    out_f: int,
    *,
    init: Init = TORCH_DEFAULT,
    bias_init: Init | None = None,
    dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
) -> nnx.Linear:
    """``nn.Linear``; by default torch's own init (weight and bias U(±1/√in))."""
    return nnx.Linear(
        in_f,
        out_f,
        kernel_init=init,
        bias_init=bias_init if bias_init is not None else torch_default_bias(in_f),
        dtype=dtype,
        rngs=rngs,
    )


class ConvBN(nnx.Module):
    """Conv (no bias) → BatchNorm(eps, torch momentum 0.1 ≡ Flax 0.9) → ``act``.

    ``names`` are the torch child names of the conv and the norm (``("conv", "bn")`` for
    Inception's ``BasicConv2d`` / timm's ``ConvNormAct``, ``("0", "1")`` for torchvision's
    ``Conv2dNormActivation``).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: Pair,
        *,
        stride: Pair = 1,
        padding: Pair = 0,
        groups: int = 1,
        eps: float = 1e-5,
        act: str | None = "relu",
        init: Init = KAIMING_FAN_OUT,
        names: tuple[str, str] = ("conv", "bn"),
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        if act not in ("relu", "relu6", None):
            raise ValueError(f"act must be 'relu', 'relu6' or None, got {act!r}")
        self.conv = conv(
            in_ch,
            out_ch,
            kernel,
            stride=stride,
            padding=padding,
            groups=groups,
            bias=False,
            init=init,
            dtype=dtype,
            rngs=rngs,
        )
        self.bn = nnx.BatchNorm(
            out_ch, momentum=0.9, epsilon=eps, use_fast_variance=False, dtype=dtype, rngs=rngs
        )
        self.act = act
        self.names = names

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = self.bn(self.conv(x), use_running_average=not train)
        if self.act == "relu":
            return jax.nn.relu(x)
        if self.act == "relu6":
            return jax.nn.relu6(x)
        return x

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        tb.conv(sub(t, self.names[0]), (*f, "conv"), self.conv)
        tb.bn(sub(t, self.names[1]), (*f, "bn"))


def avg_pool(
    x: jax.Array, kernel: int, stride: int, padding: int = 0, *, count_include_pad: bool = True
) -> jax.Array:
    """``F.avg_pool2d`` / ``nn.AvgPool2d`` (floor mode); zero padding, counted or not."""
    pad = ((padding, padding), (padding, padding))
    window, strides = (kernel, kernel), (stride, stride)
    return nnx.avg_pool(x, window, strides, pad, count_include_pad=count_include_pad)


@lru_cache(maxsize=128)
def _adaptive_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) averaging weights of torch's adaptive pool: window
    [floor(i·in/out), ceil((i+1)·in/out))."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        lo = (i * n_in) // n_out
        hi = -((-(i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def adaptive_avg_pool(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """``F.adaptive_avg_pool2d(x, size)`` on NHWC; (1, 1) is a plain mean."""
    h, w = size
    if (h, w) == (1, 1):
        return jnp.mean(x, axis=(1, 2), keepdims=True)
    if x.shape[1:3] == (h, w):
        return x
    mh = jnp.asarray(_adaptive_matrix(x.shape[1], h), x.dtype)
    mw = jnp.asarray(_adaptive_matrix(x.shape[2], w), x.dtype)
    hi = jax.lax.Precision.HIGHEST
    x = jnp.einsum("oh,nhwc->nowc", mh, x, precision=hi)
    return jnp.einsum("pw,nowc->nopc", mw, x, precision=hi)
