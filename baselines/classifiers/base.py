"""The shell every transfer-learning classifier shares: input handling, output contract, checks.

Input (the design the engine needs): the engine feeds grey images ``(N, S, S, 1)`` in [0, 1].
Each network keeps the reference's RGB stem (so parameter counts equal torchvision/timm's and
ImageNet first-layer weights apply unchanged); inside the call a 1-channel input is replicated to
3 channels and normalised the way the network's ImageNet weights were trained:

- ``input_norm="imagenet"``: (x − (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225), torchvision's
  ResNet/VGG/DenseNet/MobileNetV2 weights;
- ``"inception"``: (x − 0.5) / 0.5, torchvision's Inception-v3 weights (exactly what its
  ``transform_input=True`` turns ImageNet-normalised input into), timm's Inception-ResNet-v2 and
  ``mobilenetv1_100`` (their ``pretrained_cfg`` mean/std);
- ``"none"``: the input is used as given (parity tests feed the reference's own tensor).

``in_channels`` is what the model *receives* (1: grey, replicated; 3: RGB); any other count is an
error. Replicating grey to RGB through the RGB kernel equals smp's summed-kernel adaptation.

Output: ``{"label": (N, num_classes) float32 logits}``; Inception-v3 built with
``aux_logits=True`` adds ``"label_aux"`` in training mode, as torchvision returns its aux logits,
and ``"label_aux_weight"`` 0.4: the loss adds 0.4 × the aux head's, torchvision's recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtl_bench.model import resolve_dtype
from mtl_bench.registry import register_model
from mtl_bench.weights import TorchTable

# torchvision trains Inception-v3 with loss = main + 0.4 × aux (its reference recipe).
AUX_LOSS_WEIGHT = 0.4

INPUT_NORMS: dict[str, tuple[tuple[float, ...], tuple[float, ...]] | None] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "none": None,
}


def _positive_int(name: str, what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: {what} must be a positive integer, got {value!r}")
    return int(value)


def check_args(
    arch: str,
    *,
    in_channels: int,
    num_classes: int,
    image_size: int | None,
    min_size: int,
    input_norm: str,
    freeze_backbone_epochs: int,
) -> None:
    """Build-time validation shared by the builders: each bad value is a one-line error."""
    if in_channels not in (1, 3) or isinstance(in_channels, bool):
        raise ValueError(
            f"{arch}: in_channels must be 1 (grey, replicated to RGB) or 3, got {in_channels!r}"
        )
    if _positive_int(arch, "num_classes", num_classes) < 2:  # a one-class softmax is always 1
        raise ValueError(f"{arch}: num_classes must be >= 2, got {num_classes}")
    if image_size is not None:
        size = _positive_int(arch, "image_size", image_size)
        if size < min_size:
            raise ValueError(f"{arch} needs image_size >= {min_size}, got {size}")
    if input_norm not in INPUT_NORMS:
        raise ValueError(
            f"{arch}: unknown input_norm {input_norm!r}; use one of {', '.join(INPUT_NORMS)}"
        )
    if isinstance(freeze_backbone_epochs, bool) or not isinstance(freeze_backbone_epochs, int):
        raise ValueError(f"{arch}: freeze_backbone_epochs must be an integer >= 0")
    if freeze_backbone_epochs < 0:
        raise ValueError(
            f"{arch}: freeze_backbone_epochs must be >= 0, got {freeze_backbone_epochs}"
        )


def prepare_input(
    x: jax.Array, arch: str, in_channels: int, input_norm: str, min_size: int
) -> jax.Array:
    """Shape checks, grey → RGB replication and the network's normalisation (float32)."""
    if x.ndim != 4 or x.shape[-1] != in_channels:
        raise ValueError(f"{arch} expects NHWC input with {in_channels} channel(s), got {x.shape}")
    if min(x.shape[1:3]) < min_size:
        raise ValueError(f"{arch} needs H and W >= {min_size}, got {tuple(x.shape[1:3])}")
    x = x.astype(jnp.float32)
    if in_channels == 1:
        x = jnp.broadcast_to(x, (*x.shape[:3], 3))
    stats = INPUT_NORMS[input_norm]
    if stats is not None:
        mean, std = (jnp.asarray(s, jnp.float32) for s in stats)
        x = (x - mean) / std
    return x


def dropout(layer: nnx.Dropout, x: jax.Array, train: bool, rng: jax.Array | None) -> jax.Array:
    """Dropout only in training with a key (the engine passes one; parity calls do not)."""
    return layer(x, deterministic=not train or rng is None, rngs=rng)


class Classifier(nnx.Module):
    """Base of the classifiers. A subclass builds its layers, calls ``_shell`` and defines
    ``forward(x, train, rng)`` (on the prepared RGB input) and ``add_torch(tb)``.

    Flax attributes named in ``head_attrs`` are the layers whose shape depends on
    ``num_classes``: the replaced head when ImageNet weights are loaded and the only layers trained
    while the backbone is frozen. Everything else is the backbone.
    """

    head_attrs: tuple[str, ...] = ("fc",)
    # torch keys a reference checkpoint holds that this configuration has no layer for.
    ignore_torch_prefixes: tuple[str, ...] = ()

    def _shell(
        self,
        arch: str,
        *,
        min_size: int,
        dtype: jnp.dtype,
        in_channels: int = 1,
        input_norm: str = "imagenet",
        freeze_backbone_epochs: int = 0,
    ) -> None:
        """Record the shell's settings; subclasses pass their ``**shell`` keywords through."""
        self.arch = arch
        self.in_channels = in_channels
        self.input_norm = input_norm
        self.min_size = min_size
        self.dtype = dtype
        # Read by the optimiser set-up (``freeze_backbone``), not by the forward pass.
        self.freeze_backbone_epochs = freeze_backbone_epochs
        self.weights_source: str | None = None  # None: trained from scratch

    def forward(self, x: jax.Array, train: bool, rng: jax.Array | None):
        raise NotImplementedError

    def add_torch(self, tb: TorchTable) -> None:
        raise NotImplementedError

    def __call__(
        self, x: jax.Array, train: bool = False, rng: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        h = prepare_input(x, self.arch, self.in_channels, self.input_norm, self.min_size)
        out = self.forward(h.astype(self.dtype), train, rng)
        if isinstance(out, tuple):
            logits, aux = out
            return {
                "label": logits.astype(jnp.float32),
                "label_aux": aux.astype(jnp.float32),
                "label_aux_weight": jnp.float32(AUX_LOSS_WEIGHT),
            }
        return {"label": out.astype(jnp.float32)}

    def torch_table(self) -> TorchTable:
        """The explicit torch key → Flax path table of the whole model (reference names)."""
        tb = TorchTable()
        self.add_torch(tb)
        return tb


def build(
    cls: type[Classifier],
    arch: str,
    *,
    min_size: int,
    rngs: nnx.Rngs,
    in_channels: int,
    num_classes: int,
    image_size: int | None,
    dtype: str | jnp.dtype,
    weights: str | Path | None,
    freeze_backbone_epochs: int,
    input_norm: str,
    **extra: Any,
) -> Classifier:
    """What every registered builder does: validate, construct ``cls(arch, ...)``, then load
    ``weights`` (an imported-weights folder or a .pth/.safetensors file) when given."""
    check_args(
        arch,
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        min_size=min_size,
        input_norm=input_norm,
        freeze_backbone_epochs=freeze_backbone_epochs,
    )
    rate = extra.get("dropout_rate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        raise ValueError(f"{arch}: dropout_rate must be in [0, 1), got {rate!r}")
    model = cls(
        arch,
        in_channels=in_channels,
        num_classes=num_classes,
        input_norm=input_norm,
        dtype=resolve_dtype(dtype),
        freeze_backbone_epochs=freeze_backbone_epochs,
        rngs=rngs,
        **extra,
    )
    if weights is not None:
        from baselines.classifiers.port import load_weights

        load_weights(model, weights)
    return model


def register_classifier(name: str, native_size: int):
    """Register a builder as a label-only classification model; ``image_size`` defaults to the
    network's native input size so configs can read it from ``model_info(name).defaults``."""
    return register_model(name, tasks=("label",), family="classification", image_size=native_size)
