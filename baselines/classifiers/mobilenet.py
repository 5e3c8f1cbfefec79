"""MobileNets: torchvision ``mobilenet_v2`` and timm ``mobilenetv1_100`` (the paper's Keras
``MobileNet``, width 1.0: same layers, ReLU6, no head conv, no dropout).

MobileNetV2 (torchvision): ``features.0`` conv 3×3/2 → 17 inverted residuals (expand 1×1, depthwise
3×3, linear project 1×1; residual when stride 1 and widths match) → ``features.18`` conv 1×1 to
1280 → global pool → ``Dropout(0.2)`` → ``classifier.1``. Convs kaiming fan-out, Linear N(0, 0.01).

MobileNetV1 (timm ``EfficientNet`` with ``dsa`` blocks): ``conv_stem``/``bn1`` → 13 depthwise-
separable blocks ``blocks.i.j`` (``conv_dw``, ``bn1``, ``conv_pw``, ``bn2``; no skip) → global
pool → ``classifier``. timm's "goog" init: convs N(0, 2/fan_out) with fan_out = k²·out/groups,
Linear U(±1/√out), biases 0. Both: BatchNorm eps 1e-5, symmetric padding 1 for 3×3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.classifiers.base import Classifier, build, dropout, register_classifier
from baselines.classifiers.layers import (
    KAIMING_FAN_OUT,
    ZEROS,
    ConvBN,
    goog_conv_init,
    linear,
    normal,
    uniform,
)
from mtl_bench.weights import FlaxPath, TorchTable, sub

MIN_SIZE = 1  # all stride-2 convs pad: any size runs (torchvision's meta "min_size" (1, 1))
# torchvision inverted_residual_setting: expand t, channels c, repeats n, first stride s.
V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
              (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
# timm _gen_mobilenet_v1 arch_def "dsa_r{n}_k3_s{s}_c{c}" per stage.
V1_STAGES = ((1, 1, 64), (2, 2, 128), (2, 2, 256), (6, 2, 512), (2, 2, 1024))


class InvertedResidual(nnx.Module):
    """torchvision ``InvertedResidual``; torch names ``conv.<i>`` (Sequential indices)."""

    def __init__(self, inp: int, oup: int, stride: int, expand: int, *, dtype, rngs) -> None:
        hidden = int(round(inp * expand))
        kw = dict(act="relu6", names=("0", "1"), dtype=dtype, rngs=rngs)
        self.expand = ConvBN(inp, hidden, 1, **kw) if expand != 1 else None
        self.dw = ConvBN(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, **kw)
        i = 2 if expand != 1 else 1  # index of the projection conv; its BN follows
        self.project = ConvBN(
            hidden, oup, 1, act=None, names=(str(i), str(i + 1)), dtype=dtype, rngs=rngs
        )
        self.residual = stride == 1 and inp == oup

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        h = x if self.expand is None else self.expand(x, train)
        h = self.project(self.dw(h, train), train)
        return x + h if self.residual else h

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        t = sub(t, "conv")
        if self.expand is not None:
            self.expand.torch_table(tb, sub(t, 0), (*f, "expand"))
        self.dw.torch_table(tb, sub(t, 1 if self.expand is not None else 0), (*f, "dw"))
        self.project.torch_table(tb, t, (*f, "project"))


class MobileNetV2Classifier(Classifier):
    def __init__(
        self,
        arch: str,
        *,
        num_classes: int,
        dtype: jnp.dtype,
        dropout_rate: float = 0.2,
        rngs: nnx.Rngs,
        **shell: Any,
    ) -> None:
        self._shell(arch, min_size=MIN_SIZE, dtype=dtype, **shell)
        kw = dict(act="relu6", names=("0", "1"), init=KAIMING_FAN_OUT, dtype=dtype, rngs=rngs)
        self.stem = ConvBN(3, 32, 3, stride=2, padding=1, **kw)
        blocks, ch = [], 32
        for t, c, n, s in V2_SETTING:
            for i in range(n):
                blocks.append(
                    InvertedResidual(ch, c, s if i == 0 else 1, t, dtype=dtype, rngs=rngs)
                )
                ch = c
        self.blocks = nnx.List(blocks)
        self.last = ConvBN(ch, 1280, 1, **kw)
        self.drop = nnx.Dropout(dropout_rate)
        self.fc = linear(
            1280, num_classes, init=normal(0.01), bias_init=ZEROS, dtype=dtype, rngs=rngs
        )

    def forward(self, x: jax.Array, train: bool, rng: jax.Array | None) -> jax.Array:
        h = self.stem(x, train)
        for block in self.blocks:
            h = block(h, train)
        h = jnp.mean(self.last(h, train), axis=(1, 2))
        return self.fc(dropout(self.drop, h, train, rng))

    def add_torch(self, tb: TorchTable) -> None:
        self.stem.torch_table(tb, "features.0", ("stem",))
        for i, block in enumerate(self.blocks):
            block.torch_table(tb, f"features.{i + 1}", ("blocks", i))
        self.last.torch_table(tb, f"features.{len(self.blocks) + 1}", ("last",))
        tb.linear("classifier.1", ("fc",), self.fc)


class DepthwiseSeparable(nnx.Module):
    """timm ``DepthwiseSeparableConv`` with ``pw_act=True, noskip=True`` (block type ``dsa``)."""

    def __init__(self, inp: int, oup: int, stride: int, *, dtype, rngs) -> None:
        self.dw = ConvBN(
            inp,
            inp,
            3,
            stride=stride,
            padding=1,
            groups=inp,
            act="relu6",
            init=goog_conv_init(inp),
            dtype=dtype,
            rngs=rngs,
        )
        self.pw = ConvBN(inp, oup, 1, act="relu6", init=goog_conv_init(), dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        return self.pw(self.dw(x, train), train)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        tb.conv(sub(t, "conv_dw"), (*f, "dw", "conv"), self.dw.conv)
        tb.bn(sub(t, "bn1"), (*f, "dw", "bn"))
        tb.conv(sub(t, "conv_pw"), (*f, "pw", "conv"), self.pw.conv)
        tb.bn(sub(t, "bn2"), (*f, "pw", "bn"))


class MobileNetV1Classifier(Classifier):
    def __init__(
        self,
        arch: str,
        *,
        num_classes: int,
        dtype: jnp.dtype,
        rngs: nnx.Rngs,
        **shell: Any,
    ) -> None:
        self._shell(arch, min_size=MIN_SIZE, dtype=dtype, **shell)
        self.stem = ConvBN(
            3,
            32,
            3,
            stride=2,
            padding=1,
            act="relu6",
            init=goog_conv_init(),
            dtype=dtype,
            rngs=rngs,
        )
        stages, ch = [], 32
        for n, s, c in V1_STAGES:
            stage = []
            for i in range(n):
                stage.append(DepthwiseSeparable(ch, c, s if i == 0 else 1, dtype=dtype, rngs=rngs))
                ch = c
            stages.append(nnx.List(stage))
        self.stages = nnx.List(stages)
        bound = 1.0 / num_classes**0.5  # timm: U(±1/√fan_out), fan_out = out_features
        self.fc = linear(
            ch, num_classes, init=uniform(bound), bias_init=ZEROS, dtype=dtype, rngs=rngs
        )

    def forward(self, x: jax.Array, train: bool, rng: jax.Array | None) -> jax.Array:
        h = self.stem(x, train)
        for stage in self.stages:
            for block in stage:
                h = block(h, train)
        return self.fc(jnp.mean(h, axis=(1, 2)))

    def add_torch(self, tb: TorchTable) -> None:
        tb.conv("conv_stem", ("stem", "conv"), self.stem.conv)
        tb.bn("bn1", ("stem", "bn"))
        for i, stage in enumerate(self.stages):
            for j, block in enumerate(stage):
                block.torch_table(tb, f"blocks.{i}.{j}", ("stages", i, j))
        tb.linear("classifier", ("fc",), self.fc)


@register_classifier("mobilenet_v2", 224)
def mobilenet_v2(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int = 2,
    image_size: int | None = None,
    dtype: str = "float32",
    weights: str | Path | None = None,
    freeze_backbone_epochs: int = 0,
    input_norm: str = "imagenet",
    dropout_rate: float = 0.2,
) -> MobileNetV2Classifier:
    """torchvision ``mobilenet_v2(num_classes=...)`` (width 1.0)."""
    return build(
        MobileNetV2Classifier,
        "mobilenet_v2",
        min_size=MIN_SIZE,
        rngs=rngs,
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        dtype=dtype,
        weights=weights,
        freeze_backbone_epochs=freeze_backbone_epochs,
        input_norm=input_norm,
        dropout_rate=dropout_rate,
    )


@register_classifier("mobilenet", 224)
def mobilenet(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int = 2,
    image_size: int | None = None,
    dtype: str = "float32",
    weights: str | Path | None = None,
    freeze_backbone_epochs: int = 0,
    input_norm: str = "inception",
) -> MobileNetV1Classifier:
    """MobileNet v1, width 1.0, as timm ``mobilenetv1_100`` (its weights expect (x−0.5)/0.5)."""
    return build(
        MobileNetV1Classifier,
        "mobilenet",
        min_size=MIN_SIZE,
        rngs=rngs,
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        dtype=dtype,
        weights=weights,
        freeze_backbone_epochs=freeze_backbone_epochs,
        input_norm=input_norm,
    )
