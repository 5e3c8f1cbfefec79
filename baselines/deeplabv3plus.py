"""smp 0.6 ``DeepLabV3Plus``: dilated encoder (output stride 16) → ASPP with depthwise-separable
atrous convs (rates 12, 24, 36) + image pooling → separable 3×3 → bilinear ×4
(``align_corners=True``) → concat with 48-channel projection of the stride-4 feature → separable
3×3 → 1×1 head → bilinear ×4.

smp defaults mirrored: ``decoder_channels=256``, ``decoder_aspp_separable=True``,
``decoder_aspp_dropout=0.5`` (after the ASPP projection), BatchNorm everywhere (including the
image-pooling branch, whose 1×1 map is broadcast back). Only dilatable encoders (the ResNets) are
registered: smp raises for VGG. Input sides must be multiples of 16 (smp's check uses the encoder's
output stride).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.encoders import DILATABLE, build_encoder
from baselines.heads import (
    EncoderDecoder,
    SegmentationHead,
    check_image_size,
    check_num_classes,
    maybe_load_encoder,
    register_arch,
)
from baselines.layers import batch_norm, conv2d, resize_bilinear
from mtl_bench.model import resolve_dtype
from mtl_bench.weights import FlaxPath, TorchTable, sub


class SepConvBNReLU(nnx.Module):
    """smp ``SeparableConv2d`` (depthwise k×k, dilated; pointwise 1×1; no biases) → BN → ReLU.

    Torch names: ``{t}.{sep}.0`` depthwise, ``{t}.{sep}.1`` pointwise, ``{t}.{bn}`` BN; smp nests
    them as ``.0.0/.0.1/.1`` in ASPP branches and decoder block2, but flat (``aspp.1``/``aspp.2``)
    after the ASPP, hence the arguments.
    """

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1, *, dtype, rngs) -> None:
        kw = dict(bias=False, dtype=dtype, rngs=rngs)
        self.depthwise = conv2d(
            in_ch, in_ch, 3, padding=dilation, dilation=dilation, groups=in_ch, **kw
        )
        self.pointwise = conv2d(in_ch, out_ch, 1, **kw)
        self.bn = batch_norm(out_ch, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = self.pointwise(self.depthwise(x))
        return jax.nn.relu(self.bn(x, use_running_average=not train))

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath, *, sep: str, bn: str) -> None:
        tb.conv(sub(t, f"{sep}.0"), (*f, "depthwise"), self.depthwise)
        tb.conv(sub(t, f"{sep}.1"), (*f, "pointwise"), self.pointwise)
        tb.bn(sub(t, bn), (*f, "bn"))


class ConvBNReLU(nnx.Module):
    def __init__(self, in_ch: int, out_ch: int, *, dtype, rngs) -> None:
        self.conv = conv2d(in_ch, out_ch, 1, bias=False, dtype=dtype, rngs=rngs)
        self.bn = batch_norm(out_ch, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        return jax.nn.relu(self.bn(self.conv(x), use_running_average=not train))

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath, *, conv: str, bn: str) -> None:
        tb.conv(sub(t, conv), (*f, "conv"), self.conv)
        tb.bn(sub(t, bn), (*f, "bn"))


class ASPP(nnx.Module):
    def __init__(
        self, in_ch: int, out_ch: int, rates: Sequence[int], dropout: float, *, dtype, rngs
    ) -> None:
        kw = dict(dtype=dtype, rngs=rngs)
        self.branch1x1 = ConvBNReLU(in_ch, out_ch, **kw)
        self.atrous = nnx.List([SepConvBNReLU(in_ch, out_ch, r, **kw) for r in rates])
        self.pooling = ConvBNReLU(in_ch, out_ch, **kw)
        self.project = ConvBNReLU((2 + len(rates)) * out_ch, out_ch, **kw)
        self.dropout = nnx.Dropout(dropout)

    def __call__(self, x: jax.Array, train: bool, rng) -> jax.Array:
        res = [self.branch1x1(x, train), *(b(x, train) for b in self.atrous)]
        pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(x.dtype)
        res.append(jnp.broadcast_to(self.pooling(pooled, train), res[0].shape))
        y = self.project(jnp.concatenate(res, axis=-1), train)
        return self.dropout(y, deterministic=not train or rng is None, rngs=rng)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        self.branch1x1.torch_table(tb, sub(t, "convs.0"), (*f, "branch1x1"), conv="0", bn="1")
        for i, b in enumerate(self.atrous):
            b.torch_table(tb, sub(t, f"convs.{i + 1}"), (*f, "atrous", i), sep="0", bn="1")
        n = len(self.atrous) + 1
        self.pooling.torch_table(tb, sub(t, f"convs.{n}"), (*f, "pooling"), conv="1", bn="2")
        self.project.torch_table(tb, sub(t, "project"), (*f, "project"), conv="0", bn="1")


class DeepLabV3PlusDecoder(nnx.Module):
    def __init__(
        self,
        encoder_channels: Sequence[int],
        out_ch: int = 256,
        rates: Sequence[int] = (12, 24, 36),
        dropout: float = 0.5,
        *,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        kw = dict(dtype=dtype, rngs=rngs)
        self.aspp = ASPP(encoder_channels[-1], out_ch, rates, dropout, **kw)
        self.aspp_sep = SepConvBNReLU(out_ch, out_ch, **kw)
        self.block1 = ConvBNReLU(encoder_channels[2], 48, **kw)
        self.block2 = SepConvBNReLU(48 + out_ch, out_ch, **kw)

    def __call__(self, feats: list[jax.Array], train: bool, rng=None) -> jax.Array:
        x = self.aspp_sep(self.aspp(feats[-1], train, rng), train)
        x = resize_bilinear(x, x.shape[1] * 4, x.shape[2] * 4, align_corners=True)
        high = self.block1(feats[2], train)
        return self.block2(jnp.concatenate([x, high], axis=-1), train)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        self.aspp.torch_table(tb, sub(t, "aspp.0"), (*f, "aspp"))
        # smp lays the post-ASPP separable conv flat: aspp.1 = SeparableConv2d, aspp.2 = BN.
        self.aspp_sep.torch_table(tb, sub(t, "aspp"), (*f, "aspp_sep"), sep="1", bn="2")
        self.block1.torch_table(tb, sub(t, "block1"), (*f, "block1"), conv="0", bn="1")
        self.block2.torch_table(tb, sub(t, "block2"), (*f, "block2"), sep="0", bn="1")


def build_deeplabv3plus(
    *,
    rngs: nnx.Rngs,
    encoder: str = "resnet34",
    in_channels: int = 1,
    num_classes: int | None = None,
    image_size: int | None = None,
    dtype: str = "float32",
    encoder_weights: str | Path | None = None,
    dropout: float = 0.5,
) -> EncoderDecoder:
    """smp ``DeepLabV3Plus(encoder, classes=1)`` (output stride 16); ``num_classes`` unused."""
    check_num_classes(num_classes)
    name = f"deeplabv3plus_{encoder}"
    if encoder not in DILATABLE:
        raise ValueError(
            f"{name}: DeepLabV3+ needs a dilatable encoder ({', '.join(DILATABLE)}); "
            f"smp rejects {encoder!r} too"
        )
    check_image_size(name, image_size, 16)
    dt = resolve_dtype(dtype)
    enc = build_encoder(encoder, in_channels=in_channels, output_stride=16, dtype=dt, rngs=rngs)
    dec = DeepLabV3PlusDecoder(enc.out_channels, dropout=dropout, dtype=dt, rngs=rngs)
    head = SegmentationHead(256, 1, 1, upsampling=4, dtype=dt, rngs=rngs)
    model = EncoderDecoder(enc, dec, head, name=name, divisor=16, dtype=dt)
    return maybe_load_encoder(model, encoder_weights)


register_arch("deeplabv3plus", build_deeplabv3plus, DILATABLE)
