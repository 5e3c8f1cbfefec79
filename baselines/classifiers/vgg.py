"""torchvision ``vgg16`` / ``vgg19`` (no BatchNorm) as classifiers.

``features`` is the segmentation baselines' ``VGGEncoder`` (its last feature is the fifth pool),
then torchvision's ``AdaptiveAvgPool2d((7, 7))`` — below 224 px it *replicates* cells (a 2×2 map
at 64 px becomes 7×7), exactly as torch does — and the classifier
``Linear(25088, 4096) → ReLU → Dropout(0.5) → Linear(4096, 4096) → ReLU → Dropout(0.5) →
Linear(4096, num_classes)`` (torch ``classifier.0/3/6``; Flax ``fc6``, ``fc7``, ``fc``). The pooled
map is flattened in torch's channel-major order so ``classifier.0`` ports by a plain transpose.
Only ``fc`` is the replaceable head: ``fc6``/``fc7`` keep their ImageNet weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.classifiers.base import Classifier, build, dropout, register_classifier
from baselines.classifiers.layers import ZEROS, adaptive_avg_pool, linear, normal
from baselines.encoders_vgg import VGGEncoder
from mtl_bench.weights import TorchTable

MIN_SIZE = 32  # five 2×2 max-pools (torchvision's meta "min_size")


class VGGClassifier(Classifier):
    """torchvision ``VGG``: Linear layers N(0, 0.01) with zero bias, convs kaiming fan-out."""

    def __init__(
        self,
        arch: str,
        *,
        num_classes: int,
        dtype: jnp.dtype,
        dropout_rate: float = 0.5,
        rngs: nnx.Rngs,
        **shell: Any,
    ) -> None:
        self._shell(arch, min_size=MIN_SIZE, dtype=dtype, **shell)
        self.body = VGGEncoder(arch, in_channels=3, dtype=dtype, rngs=rngs)
        dense = dict(init=normal(0.01), bias_init=ZEROS, dtype=dtype, rngs=rngs)
        self.fc6 = linear(512 * 7 * 7, 4096, **dense)
        self.fc7 = linear(4096, 4096, **dense)
        self.fc = linear(4096, num_classes, **dense)
        self.drop6 = nnx.Dropout(dropout_rate)
        self.drop7 = nnx.Dropout(dropout_rate)

    def forward(self, x: jax.Array, train: bool, rng: jax.Array | None) -> jax.Array:
        h = adaptive_avg_pool(self.body(x, train)[-1], (7, 7))
        h = jnp.transpose(h, (0, 3, 1, 2)).reshape(h.shape[0], -1)  # torch.flatten of NCHW
        r6, r7 = jax.random.split(rng) if rng is not None else (None, None)
        h = dropout(self.drop6, jax.nn.relu(self.fc6(h)), train, r6)
        h = dropout(self.drop7, jax.nn.relu(self.fc7(h)), train, r7)
        return self.fc(h)

    def add_torch(self, tb: TorchTable) -> None:
        self.body.torch_table(tb, "", ("body",))
        for idx, name in ((0, "fc6"), (3, "fc7"), (6, "fc")):
            tb.linear(f"classifier.{idx}", (name,), getattr(self, name))


def _build(arch: str, **kwargs) -> VGGClassifier:
    return build(VGGClassifier, arch, min_size=MIN_SIZE, **kwargs)


@register_classifier("vgg16", 224)
def vgg16(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int = 2,
    image_size: int | None = None,
    dtype: str = "float32",
    weights: str | Path | None = None,
    freeze_backbone_epochs: int = 0,
    input_norm: str = "imagenet",
    dropout_rate: float = 0.5,
) -> VGGClassifier:
    """torchvision ``vgg16(num_classes=...)`` (configuration "D", 13 convs)."""
    return _build(
        "vgg16",
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


@register_classifier("vgg19", 224)
def vgg19(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int = 2,
    image_size: int | None = None,
    dtype: str = "float32",
    weights: str | Path | None = None,
    freeze_backbone_epochs: int = 0,
    input_norm: str = "imagenet",
    dropout_rate: float = 0.5,
) -> VGGClassifier:
    """torchvision ``vgg19(num_classes=...)`` (configuration "E", 16 convs)."""
    return _build(
        "vgg19",
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
