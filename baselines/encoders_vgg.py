"""torchvision VGG-16/19 (with or without BatchNorm) as smp's ``VGGEncoder``.

smp cuts ``vgg.features`` at every max-pool: the six features are the ReLU outputs before each
of the five pools (64 @ H, 128 @ H/2, 256 @ H/4, 512 @ H/8, 512 @ H/16) and the last pool's output
(512 @ H/32). Unlike the ResNet list, the first feature is *not* the input image. Torch key names
follow ``nn.Sequential`` indices of ``features`` (conv, [BN,] ReLU per layer; pools take an index
too), recomputed here from the same configuration list torchvision uses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.layers import (
    KAIMING_FAN_OUT,
    TORCH_DEFAULT,
    batch_norm,
    conv2d,
    max_pool,
    torch_default_bias,
)
from mtl_bench.weights import FlaxPath, TorchTable, sub

# torchvision.models.vgg.cfgs "D" (VGG-16) and "E" (VGG-19); "M" is a 2×2 max-pool.
_CFGS: dict[str, list[int | str]] = {
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}  # fmt: skip
VGGS: dict[str, tuple[str, bool]] = {
    "vgg16": ("D", False),
    "vgg16_bn": ("D", True),
    "vgg19": ("E", False),
    "vgg19_bn": ("E", True),
}


class VGGEncoder(nnx.Module):
    """smp ``VGGEncoder``: VGG ``features`` without the classifier; depth 5, no dilation."""

    first_conv_key = "features.0.weight"
    ignore_prefixes = ("classifier.",)

    def __init__(
        self,
        name: str = "vgg16",
        *,
        in_channels: int = 3,
        output_stride: int = 32,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        if name not in VGGS:
            raise ValueError(f"unknown VGG {name!r}: use one of {', '.join(VGGS)}")
        if output_stride != 32:
            # smp: "'VGG' models do not support dilated mode due to Max Pooling operations".
            raise ValueError(
                f"{name} cannot be dilated (output_stride {output_stride}); smp "
                "rejects VGG for DeepLabV3+ for the same reason"
            )
        cfg, use_bn = VGGS[name]
        self.output_stride = 32
        self.in_channels = in_channels
        self.out_channels = (64, 128, 256, 512, 512, 512)
        convs, bns, stages, torch_idx = [], [], [[]], []
        prev, idx = in_channels, 0
        for v in _CFGS[cfg]:
            if v == "M":
                stages.append([])
                idx += 1
                continue
            first = not convs
            # smp re-initialises a non-RGB first conv with torch's default (weight and bias).
            init = TORCH_DEFAULT if first and in_channels != 3 else KAIMING_FAN_OUT
            b_init = torch_default_bias(in_channels * 9) if init is TORCH_DEFAULT else None
            extra = {"bias_init": b_init} if b_init is not None else {}
            convs.append(
                conv2d(prev, int(v), 3, padding=1, init=init, dtype=dtype, rngs=rngs, **extra)
            )
            if use_bn:
                bns.append(batch_norm(int(v), dtype=dtype, rngs=rngs))
            stages[-1].append(len(convs) - 1)
            torch_idx.append(idx)
            idx += 3 if use_bn else 2
            prev = int(v)
        self.convs = nnx.List(convs)
        self.bns = nnx.List(bns) if use_bn else None
        self.stages = tuple(tuple(s) for s in stages if s)  # conv indices per stage (static)
        self.torch_idx = tuple(torch_idx)

    def __call__(self, x: jax.Array, train: bool = False) -> list[jax.Array]:
        feats = []
        h = x
        for s, stage in enumerate(self.stages):
            if s > 0:
                h = max_pool(h, 2, 2)
            for i in stage:
                h = self.convs[i](h)
                if self.bns is not None:
                    h = self.bns[i](h, use_running_average=not train)
                h = jax.nn.relu(h)
            feats.append(h)
        feats.append(max_pool(h, 2, 2))
        return feats

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        for i, conv in enumerate(self.convs):
            k = self.torch_idx[i]
            tb.conv(sub(t, f"features.{k}"), (*f, "convs", i), conv)
            if self.bns is not None:
                tb.bn(sub(t, f"features.{k + 1}"), (*f, "bns", i))
