"""smp 0.6 ``Unet``: encoder + ``UnetDecoder`` (channels 256,128,64,32,16) + 3×3 head.

smp defaults mirrored: ``decoder_use_norm="batchnorm"`` (convs without bias), nearest-neighbour
upsampling to the next skip's size, no attention, a center block (two Conv2dReLU at the bottleneck
width) only for VGG encoders, the first encoder feature (full resolution) not used as a skip, the
last block without a skip. Registered as ``unet_<encoder>`` for every encoder in
``baselines.encoders.ENCODERS``. (The plain name ``unet`` is Ronneberger's, in ``classic_unet``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.encoders import ENCODERS, build_encoder
from baselines.heads import (
    EncoderDecoder,
    SegmentationHead,
    check_image_size,
    check_num_classes,
    maybe_load_encoder,
    register_arch,
)
from baselines.layers import Conv2dReLU, resize_nearest
from mtl_bench.model import resolve_dtype
from mtl_bench.weights import FlaxPath, TorchTable, sub

DECODER_CHANNELS = (256, 128, 64, 32, 16)


class DecoderBlock(nnx.Module):
    """smp ``UnetDecoderBlock``: upsample → concat skip → Conv2dReLU → Conv2dReLU."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, *, dtype, rngs: nnx.Rngs) -> None:
        self.conv1 = Conv2dReLU(in_ch + skip_ch, out_ch, dtype=dtype, rngs=rngs)
        self.conv2 = Conv2dReLU(out_ch, out_ch, dtype=dtype, rngs=rngs)

    def __call__(
        self, x: jax.Array, size: tuple[int, int], skip: jax.Array | None, train: bool
    ) -> jax.Array:
        x = resize_nearest(x, *size)
        if skip is not None:
            x = jnp.concatenate([x, skip], axis=-1)
        return self.conv2(self.conv1(x, train), train)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        self.conv1.torch_table(tb, sub(t, "conv1"), (*f, "conv1"))
        self.conv2.torch_table(tb, sub(t, "conv2"), (*f, "conv2"))


class CenterBlock(nnx.Module):
    """smp's center block (VGG encoders only): two Conv2dReLU at the head width."""

    def __init__(self, ch: int, *, dtype, rngs: nnx.Rngs) -> None:
        self.convs = nnx.List([Conv2dReLU(ch, ch, dtype=dtype, rngs=rngs) for _ in range(2)])

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        for conv in self.convs:
            x = conv(x, train)
        return x

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        for i, conv in enumerate(self.convs):
            conv.torch_table(tb, sub(t, i), (*f, "convs", i))


class UnetDecoder(nnx.Module):
    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int] = DECODER_CHANNELS,
        *,
        center: bool = False,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        enc = list(encoder_channels[1:])[::-1]  # drop the full-resolution feature, deepest first
        if len(decoder_channels) != len(enc):
            raise ValueError(f"decoder_channels needs {len(enc)} entries, got {decoder_channels}")
        in_chs = [enc[0], *decoder_channels[:-1]]
        skip_chs = [*enc[1:], 0]
        self.center = CenterBlock(enc[0], dtype=dtype, rngs=rngs) if center else None
        self.blocks = nnx.List(
            [
                DecoderBlock(i, s, o, dtype=dtype, rngs=rngs)
                for i, s, o in zip(in_chs, skip_chs, decoder_channels, strict=True)
            ]
        )

    def __call__(self, feats: list[jax.Array], train: bool, rng=None) -> jax.Array:
        sizes = [tuple(f.shape[1:3]) for f in feats][::-1]
        rest = feats[1:][::-1]
        x, skips = rest[0], rest[1:]
        if self.center is not None:
            x = self.center(x, train)
        for i, block in enumerate(self.blocks):
            x = block(x, sizes[i + 1], skips[i] if i < len(skips) else None, train)
        return x

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        if self.center is not None:
            self.center.torch_table(tb, sub(t, "center"), (*f, "center"))
        for i, block in enumerate(self.blocks):
            block.torch_table(tb, sub(t, f"blocks.{i}"), (*f, "blocks", i))


def build_unet(
    *,
    rngs: nnx.Rngs,
    encoder: str = "resnet34",
    in_channels: int = 1,
    num_classes: int | None = None,
    image_size: int | None = None,
    dtype: str = "float32",
    encoder_weights: str | Path | None = None,
    decoder_channels: Sequence[int] = DECODER_CHANNELS,
) -> EncoderDecoder:
    """smp ``Unet(encoder, classes=1)``; ``num_classes`` is accepted and unused (mask only)."""
    check_num_classes(num_classes)
    name = f"unet_{encoder}"
    check_image_size(name, image_size, 32)
    dt = resolve_dtype(dtype)
    enc = build_encoder(encoder, in_channels=in_channels, dtype=dt, rngs=rngs)
    dec = UnetDecoder(
        enc.out_channels,
        tuple(decoder_channels),
        center=encoder.startswith("vgg"),
        dtype=dt,
        rngs=rngs,
    )
    head = SegmentationHead(decoder_channels[-1], 1, 3, dtype=dt, rngs=rngs)
    model = EncoderDecoder(enc, dec, head, name=name, divisor=32, dtype=dt)
    return maybe_load_encoder(model, encoder_weights)


register_arch("unet", build_unet, ENCODERS)
