"""Ronneberger et al. 2015 U-Net, registered as ``unet`` (the one the paper cites).

Four 2×2 max-pool downsamplings and four 2×2 up-convolutions that halve the channels, each level
two 3×3 conv + ReLU, widths ``base_width`` × (1, 2, 4, 8, 16) = 64 … 1024, skip concatenation and
a final 1×1 conv to one logit. Weights drawn from N(0, 2/fan_in) as in the paper.

Deviations from the 2015 network, each a constructor argument:
- ``padding="same"`` convolutions (the original's unpadded convs shrink 572→388 and need
  overlap-tile inference; same-size output is what every comparison on BUSI uses);
- ``batch_norm=True`` [default]: Conv-BN-ReLU (BN after each conv, convs then have no bias), the
  form modern re-implementations train with; ``batch_norm=False`` is the original (biased convs,
  no normalisation);
- ``dropout`` on the bottleneck output [0.0]; the original used dropout "at the end of the
  contracting path" without stating the rate.
Input sides must be multiples of 16.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.heads import check_image_size, check_num_classes
from baselines.layers import batch_norm, check_spatial, conv2d
from mtl_bench.fold_conv import conv_general_dilated
from mtl_bench.layers import UpConv2x2, UpConvImpl, max_pool2
from mtl_bench.model import resolve_dtype
from mtl_bench.registry import register_model

# Ronneberger: "standard deviation of sqrt(2/N), where N is the number of incoming nodes".
HE_NORMAL = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")


class DoubleConv(nnx.Module):
    """(3×3 conv [→ BN] → ReLU) × 2."""

    def __init__(self, in_ch: int, out_ch: int, batch_norm_: bool, *, dtype, rngs) -> None:
        kw = dict(padding=1, bias=not batch_norm_, init=HE_NORMAL, dtype=dtype, rngs=rngs)
        self.convs = nnx.List([conv2d(in_ch, out_ch, 3, **kw), conv2d(out_ch, out_ch, 3, **kw)])
        self.bns = (
            nnx.List([batch_norm(out_ch, dtype=dtype, rngs=rngs) for _ in range(2)])
            if batch_norm_
            else None
        )

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.bns is not None:
                x = self.bns[i](x, use_running_average=not train)
            x = jax.nn.relu(x)
        return x


class ClassicUNet(nnx.Module):
    """``model(x, train, rng) -> {"mask": (N, H, W, 1) logits}``."""

    def __init__(
        self,
        *,
        in_channels: int = 1,
        base_width: int = 64,
        batch_norm: bool = True,
        dropout: float = 0.0,
        up_conv: UpConvImpl = "matmul",
        dtype: str | jnp.dtype = "float32",
        rngs: nnx.Rngs,
    ) -> None:
        if isinstance(base_width, bool) or not isinstance(base_width, int) or base_width < 1:
            raise ValueError(f"base_width must be a positive integer, got {base_width!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        dt = resolve_dtype(dtype)
        self.dtype, self.in_channels = dt, in_channels
        widths = [base_width * 2**i for i in range(5)]
        kw = dict(dtype=dt, rngs=rngs)
        down, prev = [], in_channels
        for w in widths:
            down.append(DoubleConv(prev, w, batch_norm, **kw))
            prev = w
        self.down = nnx.List(down)
        ups, dec = [], []
        for w in reversed(widths[:-1]):
            ups.append(UpConv2x2(prev, w, impl=up_conv, kernel_init=HE_NORMAL, dtype=dt, rngs=rngs))
            dec.append(DoubleConv(2 * w, w, batch_norm, **kw))
            prev = w
        self.ups = nnx.List(ups)
        self.up_convs = nnx.List(dec)
        self.drop = nnx.Dropout(dropout)
        self.head = nnx.Conv(
            prev,
            1,
            (1, 1),
            kernel_init=HE_NORMAL,
            dtype=dt,
            conv_general_dilated=conv_general_dilated,
            rngs=rngs,
        )

    def __call__(
        self, x: jax.Array, train: bool = False, rng: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        check_spatial(x, self.in_channels, 16, "unet")
        h, skips = x.astype(self.dtype), []
        for i, block in enumerate(self.down):
            if i:
                h = max_pool2(h)  # torch's MaxPool2d(2) values; faster than reduce_window
            h = block(h, train)
            skips.append(h)
        h = self.drop(h, deterministic=not train or rng is None, rngs=rng)
        for up, block, skip in zip(self.ups, self.up_convs, reversed(skips[:-1]), strict=True):
            h = block(jnp.concatenate([skip, up(h)], axis=-1), train)
        return {"mask": self.head(h).astype(jnp.float32)}


@register_model("unet", tasks=("mask",), family="segmentation")
def build_classic_unet(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int | None = None,
    image_size: int | None = None,
    dtype: str = "float32",
    encoder_weights: str | None = None,
    base_width: int = 64,
    batch_norm: bool = True,
    dropout: float = 0.0,
    up_conv: UpConvImpl = "matmul",
) -> ClassicUNet:
    """Ronneberger U-Net (mask only); ``num_classes`` is accepted and unused."""
    check_num_classes(num_classes)
    if encoder_weights is not None:
        raise ValueError(
            "unet (Ronneberger) has no ImageNet encoder: encoder_weights must be None,"
            f" got {encoder_weights!r}"
        )
    check_image_size("unet", image_size, 16)
    return ClassicUNet(
        in_channels=in_channels,
        base_width=base_width,
        batch_norm=batch_norm,
        dropout=dropout,
        up_conv=up_conv,
        dtype=dtype,
        rngs=rngs,
    )
