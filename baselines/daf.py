"""Deep Attentive Features (Wang et al., IEEE TMI 2019, "DAF3D"), adapted from 3D to 2D.

The reference network (3D ResNeXt backbone) and how it is adapted here:
- backbone: the smp-style ResNet-34 encoder of ``baselines.encoders`` (ImageNet-loadable with
  ``encoder_weights``) instead of a 3D ResNeXt; its four stages (64/128/256/512 ch at strides
  4…32) feed an FPN-style top-down path: ``down_k`` = 1×1 conv → GroupNorm(32) → PReLU to 128
  channels, each level plus the bilinearly upsampled level above; all four single-layer features
  (SLFs) are then upsampled to stride 4;
- multi-level feature fusion: concat of the four SLFs → 1×1, 3×3, 3×3 conv (64 ch, GN, PReLU);
- attention per level: ``A_k = sigmoid(conv stack(concat(SLF_k, fused)))``; refined
  ``R_k = conv stack(concat(SLF_k, A_k ⊙ fused))`` (64 ch);
- the four refined features → 1×1 conv (64) → ASPP with 3×3 atrous convs at rates 1, 6, 12, 18
  (conv + GN, as the reference) → 1×1 conv + GN → 1×1 conv to one logit → bilinear to input size;
- 3D → 2D: every Conv3d/trilinear becomes Conv2d/bilinear (``align_corners=False``, torch's
  ``F.upsample`` default); the reference's (1, r, r) anisotropic dilation becomes (r, r).

Deep supervision (reference: 9 outputs in training): in train mode the output also carries
``"mask_aux"``, shape (8, N, H, W, 1): the four SLF predictions then the four refined-feature
predictions, levels 1→4 (fine→coarse), all upsampled to the input size. The reference loss weights
them ``AUX_WEIGHTS`` (0.4, 0.5, 0.7, 0.8 per level, for both kinds) against 1.0 for the final
mask; ``deep_supervision_loss`` computes exactly that sum for any per-output mask loss. Eval mode
(and ``deep_supervision=False``) returns only ``"mask"``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.encoders import build_encoder
from baselines.heads import check_image_size, check_num_classes, maybe_load_encoder
from baselines.layers import TORCH_DEFAULT, check_spatial, conv2d, group_norm, resize_bilinear
from baselines.layers import torch_default_bias as _bias
from mtl_bench.model import resolve_dtype
from mtl_bench.registry import register_model

AUX_WEIGHTS: tuple[float, ...] = (0.4, 0.5, 0.7, 0.8, 0.4, 0.5, 0.7, 0.8)
ASPP_RATES = (1, 6, 12, 18)
KAIMING_NORMAL_IN = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def _conv(in_ch: int, out_ch: int, k: int, *, dilation: int = 1, init=TORCH_DEFAULT, dtype, rngs):
    # Reference convs keep torch's default init and bias (except ASPP: kaiming normal).
    return conv2d(
        in_ch,
        out_ch,
        k,
        padding=dilation * (k // 2),
        dilation=dilation,
        init=init,
        bias_init=_bias(in_ch * k * k),
        dtype=dtype,
        rngs=rngs,
    )


class ConvGNPReLU(nnx.Module):
    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        k: int,
        *,
        dilation: int = 1,
        init=TORCH_DEFAULT,
        act: bool = True,
        dtype,
        rngs,
    ) -> None:
        self.conv = _conv(in_ch, out_ch, k, dilation=dilation, init=init, dtype=dtype, rngs=rngs)
        self.gn = group_norm(out_ch, 32, dtype=dtype, rngs=rngs)
        self.act = nnx.PReLU(0.25, dtype=dtype) if act else None

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.gn(self.conv(x))
        return self.act(x) if self.act is not None else x


class Stack3(nnx.Module):
    """1×1 → 3×3 → 3×3 conv (64 ch); GN + PReLU after each, or a bare conv + sigmoid last
    (the attention variant)."""

    def __init__(self, in_ch: int, *, attention: bool, dtype, rngs) -> None:
        kw = dict(dtype=dtype, rngs=rngs)
        self.layers = nnx.List([ConvGNPReLU(in_ch, 64, 1, **kw), ConvGNPReLU(64, 64, 3, **kw)])
        self.last = _conv(64, 64, 3, **kw) if attention else ConvGNPReLU(64, 64, 3, **kw)
        self.attention = attention

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = layer(x)
        x = self.last(x)
        return jax.nn.sigmoid(x) if self.attention else x


class DAF(nnx.Module):
    """2D DAF: ``model(x, train, rng) -> {"mask", ["mask_aux" in train mode]}``."""

    def __init__(
        self,
        *,
        encoder: str = "resnet34",
        in_channels: int = 1,
        deep_supervision: bool = True,
        dtype: str | jnp.dtype = "float32",
        rngs: nnx.Rngs,
    ) -> None:
        dt = resolve_dtype(dtype)
        self.dtype, self.deep_supervision = dt, deep_supervision
        kw = dict(dtype=dt, rngs=rngs)
        self.encoder = build_encoder(encoder, in_channels=in_channels, **kw)
        chans = self.encoder.out_channels[2:6]
        self.down = nnx.List([ConvGNPReLU(c, 128, 1, **kw) for c in chans])  # levels 1..4
        self.fuse = Stack3(512, attention=False, **kw)
        self.attention = nnx.List([Stack3(192, attention=True, **kw) for _ in range(4)])
        self.refine = nnx.List([Stack3(192, attention=False, **kw) for _ in range(4)])
        self.merge = ConvGNPReLU(256, 64, 1, **kw)
        self.aspp = nnx.List(
            [
                ConvGNPReLU(64, 64, 3, dilation=r, init=KAIMING_NORMAL_IN, act=False, **kw)
                for r in ASPP_RATES
            ]
        )
        self.aspp_out = ConvGNPReLU(256, 64, 1, act=False, **kw)
        self.predict_slf = nnx.List([_conv(128, 1, 1, **kw) for _ in range(4)])
        self.predict_alf = nnx.List([_conv(64, 1, 1, **kw) for _ in range(4)])
        self.predict = _conv(64, 1, 1, **kw)

    def __call__(
        self, x: jax.Array, train: bool = False, rng: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        check_spatial(x, self.encoder.in_channels, 32, "daf")
        h, w = x.shape[1:3]
        feats = self.encoder(x.astype(self.dtype), train)[2:6]
        # Top-down: down_4, then each finer level + the upsampled coarser sum.
        tops = [self.down[3](feats[3])]
        for k in (2, 1, 0):
            f = feats[k]
            up = resize_bilinear(tops[-1], f.shape[1], f.shape[2], align_corners=False)
            tops.append(up + self.down[k](f))
        s1 = tops[-1]
        size = s1.shape[1:3]
        slf = [s1] + [resize_bilinear(t, *size, align_corners=False) for t in tops[-2::-1]]
        fused = self.fuse(jnp.concatenate(slf[::-1], axis=-1))  # reference order: 4, 3, 2, 1
        refined = []
        for s, att, ref in zip(slf, self.attention, self.refine, strict=True):
            a = att(jnp.concatenate([s, fused], axis=-1))
            refined.append(ref(jnp.concatenate([s, a * fused], axis=-1)))
        r = self.merge(jnp.concatenate(refined, axis=-1))
        a = self.aspp_out(jnp.concatenate([b(r) for b in self.aspp], axis=-1))

        def full(logit: jax.Array) -> jax.Array:
            return resize_bilinear(logit, h, w, align_corners=False).astype(jnp.float32)

        out = {"mask": full(self.predict(a))}
        if train and self.deep_supervision:
            aux = [p(s) for p, s in zip(self.predict_slf, slf, strict=True)]
            aux += [p(t) for p, t in zip(self.predict_alf, refined, strict=True)]
            out["mask_aux"] = jnp.stack([full(z) for z in aux])
            # The engine's joint loss adds sum_k weight_k * Dice(aux_k) (see mtl_bench.losses).
            out["mask_aux_weight"] = jnp.asarray(AUX_WEIGHTS, jnp.float32)
        return out


def deep_supervision_loss(
    outputs: dict[str, jax.Array], mask_loss: Callable[[jax.Array], jax.Array]
) -> jax.Array:
    """DAF's training objective: ``mask_loss(final) + Σ_k AUX_WEIGHTS[k] · mask_loss(aux_k)``.

    ``mask_loss`` maps (N, H, W, 1) logits to a scalar (e.g. Dice against the batch's masks).
    Without ``"mask_aux"`` (eval mode) it is ``mask_loss(final)``.
    """
    total = mask_loss(outputs["mask"])
    aux = outputs.get("mask_aux")
    if aux is not None:
        if aux.shape[0] != len(AUX_WEIGHTS):
            raise ValueError(f"mask_aux has {aux.shape[0]} outputs, expected {len(AUX_WEIGHTS)}")
        for wk, z in zip(AUX_WEIGHTS, aux, strict=True):
            total = total + wk * mask_loss(z)
    return total


@register_model("daf", tasks=("mask",), family="segmentation")
def build_daf(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int | None = None,
    image_size: int | None = None,
    dtype: str = "float32",
    encoder_weights: str | Path | None = None,
    encoder: str = "resnet34",
    deep_supervision: bool = True,
) -> DAF:
    """2D DAF with a ResNet-34 encoder (mask only); ``num_classes`` is accepted and unused."""
    check_num_classes(num_classes)
    check_image_size("daf", image_size, 32)
    model = DAF(
        encoder=encoder,
        in_channels=in_channels,
        deep_supervision=deep_supervision,
        dtype=dtype,
        rngs=rngs,
    )
    return maybe_load_encoder(model, encoder_weights)
