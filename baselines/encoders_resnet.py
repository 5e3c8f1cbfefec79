"""torchvision ResNet-18/34/50 as smp's ``ResNetEncoder`` (same layout, names and features).

``encoder(x, train)`` returns smp's six features ``[x, /2, /4, /8, /16, /32]`` (the input itself
first). ``output_stride`` 16 or 8 dilates the last stage(s) exactly as smp's ``make_dilated``:
*every* conv of a dilated stage gets stride 1 and dilation ``stage_stride // output_stride``
(torchvision's own ``replace_stride_with_dilation`` keeps the first block's dilation lower; smp
does not, and smp is the reference here).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.layers import KAIMING_FAN_OUT, TORCH_DEFAULT, batch_norm, conv2d, max_pool
from mtl_bench.weights import FlaxPath, TorchTable, sub

# name: (block, blocks per stage)
RESNETS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}


class _Downsample(nnx.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, *, dtype, rngs: nnx.Rngs) -> None:
        self.conv = conv2d(
            in_ch,
            out_ch,
            1,
            stride=stride,
            bias=False,
            init=KAIMING_FAN_OUT,
            dtype=dtype,
            rngs=rngs,
        )
        self.bn = batch_norm(out_ch, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        return self.bn(self.conv(x), use_running_average=not train)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        tb.conv(sub(t, 0), (*f, "conv"), self.conv)
        tb.bn(sub(t, 1), (*f, "bn"))


class ResBlock(nnx.Module):
    """torchvision ``BasicBlock`` (two 3×3) or ``Bottleneck`` (1×1, 3×3 with the stride, 1×1 ×4)."""

    def __init__(
        self, kind: str, in_ch: int, planes: int, stride: int, dilation: int, *, dtype, rngs
    ) -> None:
        exp = 4 if kind == "bottleneck" else 1
        out_ch = planes * exp
        conv = dict(bias=False, init=KAIMING_FAN_OUT, dtype=dtype, rngs=rngs)
        s = 1 if dilation > 1 else stride  # a dilated stage keeps its resolution
        # torchvision decides the shortcut from the *undilated* stride; smp dilates afterwards.
        self.downsample = (
            _Downsample(in_ch, out_ch, s, dtype=dtype, rngs=rngs)
            if stride != 1 or in_ch != out_ch
            else None
        )
        if kind == "basic":
            convs = [
                conv2d(in_ch, planes, 3, stride=s, padding=dilation, dilation=dilation, **conv),
                conv2d(planes, planes, 3, padding=dilation, dilation=dilation, **conv),
            ]
        else:
            convs = [
                conv2d(in_ch, planes, 1, **conv),
                conv2d(planes, planes, 3, stride=s, padding=dilation, dilation=dilation, **conv),
                conv2d(planes, out_ch, 1, **conv),
            ]
        self.convs = nnx.List(convs)
        self.bns = nnx.List([batch_norm(c.out_features, dtype=dtype, rngs=rngs) for c in convs])

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        h = x
        last = len(self.convs) - 1
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            h = bn(conv(h), use_running_average=not train)
            if i < last:
                h = jax.nn.relu(h)
        short = x if self.downsample is None else self.downsample(x, train)
        return jax.nn.relu(h + short)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        for i, conv in enumerate(self.convs):
            tb.conv(sub(t, f"conv{i + 1}"), (*f, "convs", i), conv)
            tb.bn(sub(t, f"bn{i + 1}"), (*f, "bns", i))
        if self.downsample is not None:
            self.downsample.torch_table(tb, sub(t, "downsample"), (*f, "downsample"))


class ResNetEncoder(nnx.Module):
    """smp ``ResNetEncoder`` (torchvision ResNet without avgpool/fc)."""

    first_conv_key = "conv1.weight"
    ignore_prefixes = ("fc.",)

    def __init__(
        self,
        name: str = "resnet34",
        *,
        in_channels: int = 3,
        output_stride: int = 32,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        if name not in RESNETS:
            raise ValueError(f"unknown ResNet {name!r}: use one of {', '.join(RESNETS)}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        kind, depths = RESNETS[name]
        exp = 4 if kind == "bottleneck" else 1
        self.output_stride = output_stride
        self.in_channels = in_channels
        self.out_channels = (in_channels, 64, 64 * exp, 128 * exp, 256 * exp, 512 * exp)
        # smp patches a 3-channel first conv with torch's default init when not pretrained.
        init = KAIMING_FAN_OUT if in_channels == 3 else TORCH_DEFAULT
        self.conv1 = conv2d(
            in_channels, 64, 7, stride=2, padding=3, bias=False, init=init, dtype=dtype, rngs=rngs
        )
        self.bn1 = batch_norm(64, dtype=dtype, rngs=rngs)
        layers, in_ch = [], 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            stage_stride = 4 * 2**i  # output stride after this stage: 4, 8, 16, 32
            dilation = max(1, stage_stride // output_stride)
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(
                    ResBlock(
                        kind,
                        in_ch,
                        planes,
                        stride if j == 0 else 1,
                        dilation,
                        dtype=dtype,
                        rngs=rngs,
                    )
                )
                in_ch = planes * exp
            layers.append(nnx.List(blocks))
        self.layers = nnx.List(layers)

    def __call__(self, x: jax.Array, train: bool = False) -> list[jax.Array]:
        feats = [x]
        h = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=not train))
        feats.append(h)
        h = max_pool(h, 3, 2, 1)
        for stage in self.layers:
            for block in stage:
                h = block(h, train)
            feats.append(h)
        return feats

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        tb.conv(sub(t, "conv1"), (*f, "conv1"), self.conv1)
        tb.bn(sub(t, "bn1"), (*f, "bn1"))
        for i, stage in enumerate(self.layers):
            for j, block in enumerate(stage):
                block.torch_table(tb, sub(t, f"layer{i + 1}.{j}"), (*f, "layers", i, j))
