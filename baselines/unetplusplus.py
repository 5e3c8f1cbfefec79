"""smp 0.6 ``UnetPlusPlus``: nested, densely skip-connected decoder (Zhou et al. 2018).

Node ``x_{d}_{l}`` (smp's names) upsamples ``x_{d}_{l-1}`` ×2 (nearest) and concatenates every
earlier node of its row plus the encoder feature of that depth, then two Conv2dReLU. Decoder
channels 256,128,64,32,16; 3×3 head; no deep supervision (smp has none).

smp quirk kept for parameter parity: with VGG encoders smp *creates* a center block
(``decoder.center``, ~4.7 M parameters) but its ``forward`` never calls it — the weights exist,
count and load, and receive no gradient. We reproduce that exactly (``center`` is built and
skipped) so counts and ported state dicts match; say so when quoting UNet++/VGG sizes.
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
from baselines.unet import DECODER_CHANNELS, CenterBlock, DecoderBlock
from mtl_bench.model import resolve_dtype
from mtl_bench.weights import FlaxPath, TorchTable, sub


class UnetPlusPlusDecoder(nnx.Module):
    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int] = DECODER_CHANNELS,
        *,
        center: bool = False,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        enc = list(encoder_channels[1:])[::-1]
        if len(decoder_channels) != len(enc):
            raise ValueError(f"decoder_channels needs {len(enc)} entries, got {decoder_channels}")
        in_chs = [enc[0], *decoder_channels[:-1]]
        skip_chs = [*enc[1:], 0]
        out_chs = list(decoder_channels)
        self.center = CenterBlock(enc[0], dtype=dtype, rngs=rngs) if center else None  # unused
        blocks = {}
        for layer in range(len(in_chs) - 1):
            for depth in range(layer + 1):
                if depth == 0:
                    in_ch, skip_ch, out_ch = (
                        in_chs[layer],
                        skip_chs[layer] * (layer + 1),
                        (out_chs[layer]),
                    )
                else:
                    out_ch = skip_chs[layer]
                    skip_ch = skip_chs[layer] * (layer + 1 - depth)
                    in_ch = skip_chs[layer - 1]
                blocks[f"x_{depth}_{layer}"] = DecoderBlock(
                    in_ch, skip_ch, out_ch, dtype=dtype, rngs=rngs
                )
        self.depth = len(in_chs) - 1
        blocks[f"x_0_{self.depth}"] = DecoderBlock(
            in_chs[-1], 0, out_chs[-1], dtype=dtype, rngs=rngs
        )
        self.blocks = nnx.Dict(blocks)

    def _node(self, key: str, x: jax.Array, skip: jax.Array | None, train: bool) -> jax.Array:
        size = (x.shape[1] * 2, x.shape[2] * 2)  # smp: scale_factor=2
        return self.blocks[key](x, size, skip, train)

    def __call__(self, feats: list[jax.Array], train: bool, rng=None) -> jax.Array:
        f = feats[1:][::-1]
        dense: dict[str, jax.Array] = {}
        for layer in range(self.depth):
            for depth in range(self.depth - layer):
                if layer == 0:
                    dense[f"x_{depth}_{depth}"] = self._node(
                        f"x_{depth}_{depth}", f[depth], f[depth + 1], train
                    )
                else:
                    li = depth + layer
                    cat = [dense[f"x_{i}_{li}"] for i in range(depth + 1, li + 1)]
                    cat = jnp.concatenate([*cat, f[li + 1]], axis=-1)
                    dense[f"x_{depth}_{li}"] = self._node(
                        f"x_{depth}_{li}", dense[f"x_{depth}_{li - 1}"], cat, train
                    )
        return self._node(f"x_0_{self.depth}", dense[f"x_0_{self.depth - 1}"], None, train)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        if self.center is not None:
            self.center.torch_table(tb, sub(t, "center"), (*f, "center"))
        for key, block in self.blocks.items():
            block.torch_table(tb, sub(t, f"blocks.{key}"), (*f, "blocks", key))


def build_unetplusplus(
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
    """smp ``UnetPlusPlus(encoder, classes=1)``; ``num_classes`` is accepted and unused."""
    check_num_classes(num_classes)
    name = f"unetplusplus_{encoder}"
    check_image_size(name, image_size, 32)
    dt = resolve_dtype(dtype)
    enc = build_encoder(encoder, in_channels=in_channels, dtype=dt, rngs=rngs)
    dec = UnetPlusPlusDecoder(
        enc.out_channels,
        tuple(decoder_channels),
        center=encoder.startswith("vgg"),
        dtype=dt,
        rngs=rngs,
    )
    head = SegmentationHead(decoder_channels[-1], 1, 3, dtype=dt, rngs=rngs)
    model = EncoderDecoder(enc, dec, head, name=name, divisor=32, dtype=dt)
    return maybe_load_encoder(model, encoder_weights)


register_arch("unetplusplus", build_unetplusplus, ENCODERS)
