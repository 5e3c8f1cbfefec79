"""Building blocks shared by the proposed model and the from-scratch baselines."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from mtl_bench.fold_conv import conv_general_dilated

Merge = Literal["concat", "add"]


class ConvBNReLU(nnx.Module):
    """Conv (no bias: BN supplies the shift) → BatchNorm → ReLU."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        *,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        self.conv = nnx.Conv(
            in_ch,
            out_ch,
            (kernel, kernel),
            strides=(stride, stride),
            padding="SAME",
            use_bias=False,
            dtype=dtype,
            conv_general_dilated=conv_general_dilated,
            rngs=rngs,
        )
        # BN statistics and scale stay fp32 whatever the compute dtype (bf16 training keeps
        # running means accurate); the output is cast back to the compute dtype.
        self.bn = nnx.BatchNorm(out_ch, momentum=0.99, epsilon=1e-3, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        return jax.nn.relu(self.bn(self.conv(x), use_running_average=not train))


class ResidualUnit(nnx.Module):
    """The paper's residual unit (Fig. 1b): three conv, three BN, three ReLU, one merge.

    Main path: conv3×3-BN-ReLU → conv3×3-BN-ReLU; shortcut: conv(k×k)-BN-ReLU; merged by
    concatenation (the paper's wording). With ``merge="concat"`` each path has ``out_ch // 2``
    channels so the unit's output width is ``out_ch`` — the paper does not say how the widths
    split; halving keeps the stage widths 64…1024 and the cost close to a plain U-Net.
    ``merge="add"`` (a deviation, as in ResUNet) gives both paths ``out_ch`` channels and sums them.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        stride: int = 1,
        merge: Merge = "concat",
        shortcut_kernel: int = 1,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        if merge not in ("concat", "add"):
            raise ValueError(f"merge must be 'concat' or 'add', got {merge!r}")
        if merge == "concat" and out_ch % 2:
            raise ValueError(f"merge='concat' needs an even width, got {out_ch}")
        width = out_ch // 2 if merge == "concat" else out_ch
        self.merge = merge
        self.conv1 = ConvBNReLU(in_ch, width, 3, stride, dtype=dtype, rngs=rngs)
        self.conv2 = ConvBNReLU(width, width, 3, 1, dtype=dtype, rngs=rngs)
        self.shortcut = ConvBNReLU(in_ch, width, shortcut_kernel, stride, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        main = self.conv2(self.conv1(x, train), train)
        short = self.shortcut(x, train)
        if self.merge == "concat":
            return jnp.concatenate([main, short], axis=-1)
        return main + short


class Upsample(nnx.Module):
    """×2 upsampling: a learned 2×2 transposed conv (U-Net's up-conv) or nearest neighbour."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        mode: Literal["transpose", "nearest"] = "transpose",
        up_conv: UpConvImpl = "matmul",
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        if mode not in ("transpose", "nearest"):
            raise ValueError(f"upsample must be 'transpose' or 'nearest', got {mode!r}")
        self.mode = mode
        if mode == "transpose":
            self.up = UpConv2x2(in_ch, out_ch, impl=up_conv, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.mode == "transpose":
            return self.up(x)
        # Nearest ×2 as a broadcast + reshape: cheaper than jax.image.resize and exact.
        n, h, w, c = x.shape
        x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c))
        return x.reshape(n, 2 * h, 2 * w, c)


UpConvImpl = Literal["matmul", "dilated_conv"]
UP_CONV_IMPLS: tuple[str, ...] = ("matmul", "dilated_conv")


class UpConv2x2(nnx.Module):
    """U-Net's up-conv, a 2×2 stride-2 transposed convolution (``nnx.ConvTranspose(...,
    padding="VALID")``): the same parameters (``kernel`` (2, 2, in, out), ``bias`` (out,)),
    initialisation and values, computed one of two ways (``impl``):

    - ``"matmul"`` (default): each input pixel's 2×2 output block is one matrix product,
      ``y[n, 2i+a, 2j+b] = x[n, i, j] @ kernel[1-a, 1-b] + bias`` — the blocks do not overlap, so
      this is the whole transposed convolution; forward and both gradients are plain GEMMs.
    - ``"dilated_conv"``: the convolution ``ConvTranspose`` lowers to (input dilated by 2, padded
      by 1, unflipped kernel). On an H100 (2026-11-26 device trace, results/profiles/) XLA gives
      the *weight gradient* of that input-dilated convolution to cuDNN as a forward convolution
      over the full-resolution gradient with a 4×2-block grid: 3.9 ms of a 21.8 ms batch-16 step
      for the top up-conv alone, nearly independent of the batch. Kept to measure against.

    The convolution goes through :mod:`mtl_bench.fold_conv` (fold-parallel batching); the matmul
    needs nothing of it — ``vmap`` over folds makes it a batched GEMM.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        impl: UpConvImpl = "matmul",
        kernel_init: nnx.Initializer | None = None,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        if impl not in UP_CONV_IMPLS:
            raise ValueError(f"up_conv must be one of {', '.join(UP_CONV_IMPLS)}, got {impl!r}")
        init = kernel_init or nnx.initializers.lecun_normal()  # ConvTranspose's default
        # Two keys in nnx.Conv's order (kernel, then bias): every later layer draws as before.
        self.kernel = nnx.Param(init(rngs.params(), (2, 2, in_ch, out_ch), jnp.float32))
        self.bias = nnx.Param(nnx.initializers.zeros(rngs.params(), (out_ch,), jnp.float32))
        self.impl = impl
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        kernel = self.kernel[...].astype(self.dtype)
        bias = self.bias[...].astype(self.dtype)
        if self.impl == "dilated_conv":
            y = conv_general_dilated(
                x,
                kernel,
                (1, 1),
                ((1, 1), (1, 1)),
                lhs_dilation=(2, 2),
                rhs_dilation=(1, 1),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )
            return y + bias
        n, h, w, _ = x.shape
        # (n, h, w, c) · (2, 2, c, out) → (n, h, w, a, b, out): the activation first, so the GEMM
        # is (n·h·w, c) @ (c, 4·out) and its output is pixel-major (jnp.einsum would put the
        # kernel first and leave a transpose over `out`). kernel[::-1, ::-1] because the
        # transposed convolution's block at offset (a, b) uses tap (1-a, 1-b). The remaining
        # interleave (w ↔ a) is an index map XLA can fuse into the consumer (the skip concat).
        k = kernel[::-1, ::-1]
        y = jax.lax.dot_general(x, k, (((3,), (2,)), ((), ())))
        y = y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, k.shape[-1])
        return y + bias


def _pool_windows(x: jax.Array) -> jax.Array:
    """(N, H, W, C) → (N, H/2, 2, W/2, 2, C): each 2×2 window on axes 2 and 4."""
    n, h, w, c = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"max_pool2 needs an even height and width, got {x.shape}")
    return x.reshape(n, h // 2, 2, w // 2, 2, c)


@jax.custom_vjp
def max_pool2(x: jax.Array) -> jax.Array:
    """2×2 max pooling with stride 2 (NHWC), as a reshape and a max over the window axes.

    Why not ``nnx.max_pool``: its ``reduce_window`` forward and select-and-scatter backward took
    ~1 ms of a 18.4 ms batch-16 H100 step (results/profiles/, 2026-11-26). Forward + backward of a
    (16, 128, 128, 32) array on the 2-core VM: 11 ms fp32 / 3.3 ms bf16 here, 43 / 31 ms with
    ``jnp.max``'s own gradient, 83 / 103 ms with ``reduce_window``.

    The gradient is torch's (and ``reduce_window``'s): all of it to the first maximum of the
    window in row-major order. ``jnp.max``'s own rule shares a tie among the tied
    inputs instead: another valid subgradient, and not a rare one — 8-bit images have flat
    patches whose activations tie above zero (0.02 % of the first pool's windows on the phantom),
    enough for a network to train along another path (results/README.md). The backward is
    elementwise on the four window positions (no select-and-scatter), which XLA can fuse.
    """
    return _pool_windows(x).max(axis=(2, 4))


def _max_pool2_fwd(x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    y = max_pool2(x)
    return y, (x, y)


def _max_pool2_bwd(res: tuple[jax.Array, jax.Array], g: jax.Array) -> tuple[jax.Array]:
    x, y = res
    win = _pool_windows(x)
    taken = jnp.zeros(y.shape, dtype=bool)
    rows = []
    for a in (0, 1):
        cols = []
        for b in (0, 1):
            first = (win[:, :, a, :, b] == y) & ~taken
            if (a, b) == (1, 1):
                first = ~taken  # the last takes what is left: only a NaN window, equal to none
            taken = taken | first
            cols.append(jnp.where(first, g, jnp.zeros_like(g)))
        rows.append(jnp.stack(cols, axis=3))
    return (jnp.stack(rows, axis=2).reshape(x.shape).astype(x.dtype),)


max_pool2.defvjp(_max_pool2_fwd, _max_pool2_bwd)


def global_avg_pool(x: jax.Array) -> jax.Array:
    """(N, H, W, C) → (N, C), averaged in fp32 so bf16 features do not lose the mean."""
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2))
