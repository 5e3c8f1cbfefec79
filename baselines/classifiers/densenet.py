"""torchvision ``densenet201`` (growth 32, blocks 6/12/48/32, 64 initial features, bottleneck ×4).

Pre-activation layers (BN → ReLU → conv) as torchvision writes them: dense layer = norm1, conv1
(1×1, 128), norm2, conv2 (3×3, 32), its output concatenated to the block's running features;
transition = norm, conv (1×1, halves the channels), 2×2 average pool; then norm5 → ReLU → global
average pool → ``classifier`` (1920 → ``num_classes``; Flax ``fc``). Convs: kaiming normal
(fan-in, torchvision's rule here), Linear bias 0. torchvision's downloadable checkpoint uses the
legacy names ``norm.1``/``conv.2``; ``port.normalise_keys`` renames them as torchvision does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.classifiers.base import Classifier, build, register_classifier
from baselines.classifiers.layers import KAIMING_FAN_IN, ZEROS, avg_pool, conv, linear
from baselines.layers import batch_norm, max_pool
from mtl_bench.weights import FlaxPath, TorchTable, sub

MIN_SIZE = 29  # torchvision's meta "min_size": the third transition's pool needs a 2×2 map
GROWTH, BN_SIZE, INIT_FEATURES = 32, 4, 64
BLOCKS = {"densenet201": (6, 12, 48, 32)}


class DenseLayer(nnx.Module):
    def __init__(self, in_ch: int, *, dtype, rngs: nnx.Rngs) -> None:
        mid = BN_SIZE * GROWTH
        c = dict(bias=False, init=KAIMING_FAN_IN, dtype=dtype, rngs=rngs)
        self.norm1 = batch_norm(in_ch, dtype=dtype, rngs=rngs)
        self.conv1 = conv(in_ch, mid, 1, **c)
        self.norm2 = batch_norm(mid, dtype=dtype, rngs=rngs)
        self.conv2 = conv(mid, GROWTH, 3, padding=1, **c)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        h = self.conv1(jax.nn.relu(self.norm1(x, use_running_average=not train)))
        return self.conv2(jax.nn.relu(self.norm2(h, use_running_average=not train)))

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        for i in (1, 2):
            tb.bn(sub(t, f"norm{i}"), (*f, f"norm{i}"))
            tb.conv(sub(t, f"conv{i}"), (*f, f"conv{i}"), getattr(self, f"conv{i}"))


class Transition(nnx.Module):
    def __init__(self, in_ch: int, out_ch: int, *, dtype, rngs: nnx.Rngs) -> None:
        self.norm = batch_norm(in_ch, dtype=dtype, rngs=rngs)
        self.conv = conv(in_ch, out_ch, 1, bias=False, init=KAIMING_FAN_IN, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        h = self.conv(jax.nn.relu(self.norm(x, use_running_average=not train)))
        return avg_pool(h, 2, 2)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        tb.bn(sub(t, "norm"), (*f, "norm"))
        tb.conv(sub(t, "conv"), (*f, "conv"), self.conv)


class DenseNetClassifier(Classifier):
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
        c = dict(bias=False, init=KAIMING_FAN_IN, dtype=dtype, rngs=rngs)
        self.conv0 = conv(3, INIT_FEATURES, 7, stride=2, padding=3, **c)
        self.norm0 = batch_norm(INIT_FEATURES, dtype=dtype, rngs=rngs)
        blocks, transitions, ch = [], [], INIT_FEATURES
        for i, n in enumerate(BLOCKS[arch]):
            layers = [DenseLayer(ch + j * GROWTH, dtype=dtype, rngs=rngs) for j in range(n)]
            blocks.append(nnx.List(layers))
            ch += n * GROWTH
            if i < len(BLOCKS[arch]) - 1:
                transitions.append(Transition(ch, ch // 2, dtype=dtype, rngs=rngs))
                ch //= 2
        self.blocks = nnx.List(blocks)
        self.transitions = nnx.List(transitions)
        self.norm5 = batch_norm(ch, dtype=dtype, rngs=rngs)
        self.fc = linear(ch, num_classes, bias_init=ZEROS, dtype=dtype, rngs=rngs)

    def forward(self, x: jax.Array, train: bool, rng: jax.Array | None) -> jax.Array:
        h = jax.nn.relu(self.norm0(self.conv0(x), use_running_average=not train))
        h = max_pool(h, 3, 2, 1)
        for i, block in enumerate(self.blocks):
            feats = [h]
            for layer in block:
                feats.append(layer(jnp.concatenate(feats, axis=-1), train))
            h = jnp.concatenate(feats, axis=-1)
            if i < len(self.transitions):
                h = self.transitions[i](h, train)
        h = jax.nn.relu(self.norm5(h, use_running_average=not train))
        return self.fc(jnp.mean(h, axis=(1, 2)))

    def add_torch(self, tb: TorchTable) -> None:
        tb.conv("features.conv0", ("conv0",), self.conv0)
        tb.bn("features.norm0", ("norm0",))
        for i, block in enumerate(self.blocks):
            for j, layer in enumerate(block):
                t = f"features.denseblock{i + 1}.denselayer{j + 1}"
                layer.torch_table(tb, t, ("blocks", i, j))
        for i, trans in enumerate(self.transitions):
            trans.torch_table(tb, f"features.transition{i + 1}", ("transitions", i))
        tb.bn("features.norm5", ("norm5",))
        tb.linear("classifier", ("fc",), self.fc)


@register_classifier("densenet201", 224)
def densenet201(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int = 2,
    image_size: int | None = None,
    dtype: str = "float32",
    weights: str | Path | None = None,
    freeze_backbone_epochs: int = 0,
    input_norm: str = "imagenet",
) -> DenseNetClassifier:
    """torchvision ``densenet201(num_classes=...)`` (``drop_rate=0``)."""
    return build(
        DenseNetClassifier,
        "densenet201",
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
