"""smp 0.6 ``FPN``: feature pyramid (256 ch) → per-level segmentation blocks (128 ch, GroupNorm 32)
→ sum → Dropout2d(0.2) → 1×1 head → bilinear ×4 (``align_corners=True``).

The pyramid uses the last four encoder features (strides 4…32): ``p5 = conv1x1(c5)``, then
``p_k = nearest×2(p_{k+1}) + conv1x1(c_k)``. Level k passes through ``k-2`` (at least one)
Conv3×3-GN-ReLU blocks, each followed by a bilinear ×2 (``align_corners=True``) except at stride 4.
Dropout2d zeroes whole channels: ``broadcast_dims`` over H and W.
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
from baselines.layers import conv2d, group_norm, resize_bilinear, resize_nearest
from mtl_bench.model import resolve_dtype
from mtl_bench.weights import FlaxPath, TorchTable, sub


class Conv3x3GNReLU(nnx.Module):
    def __init__(self, in_ch: int, out_ch: int, upsample: bool, *, dtype, rngs) -> None:
        self.conv = conv2d(in_ch, out_ch, 3, padding=1, bias=False, dtype=dtype, rngs=rngs)
        self.gn = group_norm(out_ch, 32, dtype=dtype, rngs=rngs)
        self.upsample = upsample

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.gn(self.conv(x)))
        if self.upsample:
            x = resize_bilinear(x, x.shape[1] * 2, x.shape[2] * 2, align_corners=True)
        return x

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        tb.conv(sub(t, "block.0"), (*f, "conv"), self.conv)
        tb.gn(sub(t, "block.1"), (*f, "gn"))


class FPNDecoder(nnx.Module):
    def __init__(
        self,
        encoder_channels: Sequence[int],
        *,
        pyramid_channels: int = 256,
        segmentation_channels: int = 128,
        dropout: float = 0.2,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        c5, c4, c3, c2 = list(encoder_channels)[::-1][:4]
        pc, kw = pyramid_channels, dict(dtype=dtype, rngs=rngs)
        self.p5 = conv2d(c5, pc, 1, **kw)
        self.skips = nnx.List([conv2d(c, pc, 1, **kw) for c in (c4, c3, c2)])  # p4, p3, p2
        seg = []
        for n_up in (3, 2, 1, 0):
            blocks = [Conv3x3GNReLU(pc, segmentation_channels, bool(n_up), **kw)]
            blocks += [
                Conv3x3GNReLU(segmentation_channels, segmentation_channels, True, **kw)
                for _ in range(1, n_up)
            ]
            seg.append(nnx.List(blocks))
        self.seg_blocks = nnx.List(seg)
        self.dropout = nnx.Dropout(dropout, broadcast_dims=(1, 2))

    def __call__(self, feats: list[jax.Array], train: bool, rng=None) -> jax.Array:
        c2, c3, c4, c5 = feats[-4:]
        p = [self.p5(c5)]
        for conv, c in zip(self.skips, (c4, c3, c2), strict=True):
            top = p[-1]
            p.append(resize_nearest(top, top.shape[1] * 2, top.shape[2] * 2) + conv(c))
        out = None
        for blocks, level in zip(self.seg_blocks, p, strict=True):
            for block in blocks:
                level = block(level)
            out = level if out is None else out + level
        return self.dropout(out, deterministic=not train or rng is None, rngs=rng)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        tb.conv(sub(t, "p5"), (*f, "p5"), self.p5)
        for i, (name, conv) in enumerate(zip(("p4", "p3", "p2"), self.skips, strict=True)):
            tb.conv(sub(t, f"{name}.skip_conv"), (*f, "skips", i), conv)
        for i, blocks in enumerate(self.seg_blocks):
            for j, block in enumerate(blocks):
                block.torch_table(tb, sub(t, f"seg_blocks.{i}.block.{j}"), (*f, "seg_blocks", i, j))


def build_fpn(
    *,
    rngs: nnx.Rngs,
    encoder: str = "resnet34",
    in_channels: int = 1,
    num_classes: int | None = None,
    image_size: int | None = None,
    dtype: str = "float32",
    encoder_weights: str | Path | None = None,
    dropout: float = 0.2,
) -> EncoderDecoder:
    """smp ``FPN(encoder, classes=1)``; ``num_classes`` is accepted and unused."""
    check_num_classes(num_classes)
    name = f"fpn_{encoder}"
    check_image_size(name, image_size, 32)
    dt = resolve_dtype(dtype)
    enc = build_encoder(encoder, in_channels=in_channels, dtype=dt, rngs=rngs)
    dec = FPNDecoder(enc.out_channels, dropout=dropout, dtype=dt, rngs=rngs)
    head = SegmentationHead(128, 1, 1, upsampling=4, dtype=dt, rngs=rngs)
    model = EncoderDecoder(enc, dec, head, name=name, divisor=32, dtype=dt)
    return maybe_load_encoder(model, encoder_weights)


register_arch("fpn", build_fpn, ENCODERS)
