"""torchvision ``resnet50`` as a classifier: the segmentation baselines' ``ResNetEncoder`` (same
layers, names and init) → global average pool → ``fc`` (2048 → ``num_classes``).

torch names: ``conv1``, ``bn1``, ``layer1..4``, ``fc``; Flax: ``body`` (the encoder), ``fc``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.classifiers.base import Classifier, build, register_classifier
from baselines.classifiers.layers import linear
from baselines.encoders_resnet import ResNetEncoder
from mtl_bench.weights import TorchTable

# torchvision's meta "min_size" is (1, 1): every stride-2 layer pads, so any size runs.
MIN_SIZE = 1


class ResNetClassifier(Classifier):
    """torchvision ``ResNet`` (``zero_init_residual=False``); ``fc`` keeps torch's default init."""

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
        self.body = ResNetEncoder(arch, in_channels=3, dtype=dtype, rngs=rngs)
        self.fc = linear(self.body.out_channels[-1], num_classes, dtype=dtype, rngs=rngs)

    def forward(self, x: jax.Array, train: bool, rng: jax.Array | None) -> jax.Array:
        h = self.body(x, train)[-1]
        return self.fc(jnp.mean(h, axis=(1, 2)))

    def add_torch(self, tb: TorchTable) -> None:
        self.body.torch_table(tb, "", ("body",))
        tb.linear("fc", ("fc",), self.fc)


@register_classifier("resnet50", 224)
def resnet50(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int = 2,
    image_size: int | None = None,
    dtype: str = "float32",
    weights: str | Path | None = None,
    freeze_backbone_epochs: int = 0,
    input_norm: str = "imagenet",
) -> ResNetClassifier:
    """torchvision ``resnet50(num_classes=...)``; ``weights``: imported folder or checkpoint."""
    return build(
        ResNetClassifier,
        "resnet50",
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
