"""torchvision ``inception_v3`` (``transform_input=False``; the "inception" input norm does what
``transform_input=True`` does for ImageNet-normalised input), auxiliary classifier off by default.

Flax attribute names are torchvision's (``Conv2d_1a_3x3``, ``Mixed_5b`` … ``Mixed_7c``, and
inside a block ``branch1x1``, ``branch7x7dbl_3`` …), so the torch table is the attribute list.
``BasicConv2d`` = conv (no bias) → BN(eps 1e-3) → ReLU; its branch pools are
``F.avg_pool2d(3, 1, 1)`` *counting* the zero padding. Init: N(0, 0.1) for convs and ``fc``
(``trunc_normal_`` with ±2 absolute bounds), 0.01 for ``AuxLogits.conv1``, 0.001 for its fc.

``aux_logits=True`` adds ``AuxLogits`` (Flax ``AuxLogits`` + head ``aux_fc``): in training the
output gains ``"label_aux"``, as torchvision returns ``InceptionOutputs``. It reads the 17×17 map
of 299 px inputs, so it needs ``image_size >= 299``; the main network needs 75.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.classifiers.base import Classifier, build, dropout, register_classifier
from baselines.classifiers.layers import ConvBN, avg_pool, linear, normal
from baselines.layers import max_pool
from mtl_bench.weights import FlaxPath, TorchTable, sub

MIN_SIZE, MIN_SIZE_AUX = 75, 299


class _Block(nnx.Module):
    """An Inception block: ``ConvBN`` attributes named as torchvision's (listed in ``names``)."""

    names: tuple[str, ...] = ()

    def _convs(self, specs, *, dtype, rngs) -> None:
        for name, cin, cout, k, s, p in specs:
            std = getattr(self, "stds", {}).get(name, 0.1)
            conv = ConvBN(
                cin,
                cout,
                k,
                stride=s,
                padding=p,
                eps=1e-3,
                init=normal(std),
                dtype=dtype,
                rngs=rngs,
            )
            setattr(self, name, conv)
        self.names = tuple(spec[0] for spec in specs)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        for name in self.names:
            getattr(self, name).torch_table(tb, sub(t, name), (*f, name))

    def _pool_branch(self, x: jax.Array, train: bool) -> jax.Array:
        return self.branch_pool(avg_pool(x, 3, 1, 1, count_include_pad=True), train)


class InceptionA(_Block):
    def __init__(self, cin: int, pool: int, *, dtype, rngs) -> None:
        self._convs(
            [
                ("branch1x1", cin, 64, 1, 1, 0),
                ("branch5x5_1", cin, 48, 1, 1, 0),
                ("branch5x5_2", 48, 64, 5, 1, 2),
                ("branch3x3dbl_1", cin, 64, 1, 1, 0),
                ("branch3x3dbl_2", 64, 96, 3, 1, 1),
                ("branch3x3dbl_3", 96, 96, 3, 1, 1),
                ("branch_pool", cin, pool, 1, 1, 0),
            ],
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        b1 = self.branch1x1(x, train)
        b5 = self.branch5x5_2(self.branch5x5_1(x, train), train)
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x, train), train), train)
        return jnp.concatenate([b1, b5, b3, self._pool_branch(x, train)], axis=-1)


class InceptionB(_Block):
    def __init__(self, cin: int, *, dtype, rngs) -> None:
        self._convs(
            [
                ("branch3x3", cin, 384, 3, 2, 0),
                ("branch3x3dbl_1", cin, 64, 1, 1, 0),
                ("branch3x3dbl_2", 64, 96, 3, 1, 1),
                ("branch3x3dbl_3", 96, 96, 3, 2, 0),
            ],
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        b3 = self.branch3x3(x, train)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x, train), train), train)
        return jnp.concatenate([b3, bd, max_pool(x, 3, 2)], axis=-1)


class InceptionC(_Block):
    def __init__(self, cin: int, c7: int, *, dtype, rngs) -> None:
        h, v = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding) of the 1×7 and 7×1 convs
        self._convs(
            [
                ("branch1x1", cin, 192, 1, 1, 0),
                ("branch7x7_1", cin, c7, 1, 1, 0),
                ("branch7x7_2", c7, c7, h[0], 1, h[1]),
                ("branch7x7_3", c7, 192, v[0], 1, v[1]),
                ("branch7x7dbl_1", cin, c7, 1, 1, 0),
                ("branch7x7dbl_2", c7, c7, v[0], 1, v[1]),
                ("branch7x7dbl_3", c7, c7, h[0], 1, h[1]),
                ("branch7x7dbl_4", c7, c7, v[0], 1, v[1]),
                ("branch7x7dbl_5", c7, 192, h[0], 1, h[1]),
                ("branch_pool", cin, 192, 1, 1, 0),
            ],
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        b7 = x
        for i in (1, 2, 3):
            b7 = getattr(self, f"branch7x7_{i}")(b7, train)
        bd = x
        for i in (1, 2, 3, 4, 5):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd, train)
        parts = [self.branch1x1(x, train), b7, bd, self._pool_branch(x, train)]
        return jnp.concatenate(parts, axis=-1)


class InceptionD(_Block):
    def __init__(self, cin: int, *, dtype, rngs) -> None:
        self._convs(
            [
                ("branch3x3_1", cin, 192, 1, 1, 0),
                ("branch3x3_2", 192, 320, 3, 2, 0),
                ("branch7x7x3_1", cin, 192, 1, 1, 0),
                ("branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)),
                ("branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)),
                ("branch7x7x3_4", 192, 192, 3, 2, 0),
            ],
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        b3 = self.branch3x3_2(self.branch3x3_1(x, train), train)
        b7 = x
        for i in (1, 2, 3, 4):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7, train)
        return jnp.concatenate([b3, b7, max_pool(x, 3, 2)], axis=-1)


class InceptionE(_Block):
    def __init__(self, cin: int, *, dtype, rngs) -> None:
        self._convs(
            [
                ("branch1x1", cin, 320, 1, 1, 0),
                ("branch3x3_1", cin, 384, 1, 1, 0),
                ("branch3x3_2a", 384, 384, (1, 3), 1, (0, 1)),
                ("branch3x3_2b", 384, 384, (3, 1), 1, (1, 0)),
                ("branch3x3dbl_1", cin, 448, 1, 1, 0),
                ("branch3x3dbl_2", 448, 384, 3, 1, 1),
                ("branch3x3dbl_3a", 384, 384, (1, 3), 1, (0, 1)),
                ("branch3x3dbl_3b", 384, 384, (3, 1), 1, (1, 0)),
                ("branch_pool", cin, 192, 1, 1, 0),
            ],
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        b3 = self.branch3x3_1(x, train)
        b3 = jnp.concatenate([self.branch3x3_2a(b3, train), self.branch3x3_2b(b3, train)], -1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x, train), train)
        bd = jnp.concatenate([self.branch3x3dbl_3a(bd, train), self.branch3x3dbl_3b(bd, train)], -1)
        parts = [self.branch1x1(x, train), b3, bd, self._pool_branch(x, train)]
        return jnp.concatenate(parts, axis=-1)


class InceptionAux(_Block):
    """``AuxLogits`` without its fc (the fc is the head ``aux_fc``): 5×5/3 average pool → conv0
    (1×1, 128) → conv1 (5×5, 768) → global average."""

    stds = {"conv1": 0.01}

    def __init__(self, cin: int, *, dtype, rngs) -> None:
        self._convs(
            [("conv0", cin, 128, 1, 1, 0), ("conv1", 128, 768, 5, 1, 0)], dtype=dtype, rngs=rngs
        )

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        h = self.conv1(self.conv0(avg_pool(x, 5, 3), train), train)
        return jnp.mean(h, axis=(1, 2))


# (torch/Flax name, constructor, args) in forward order; None marks the two stem max-pools.
_LAYOUT = (
    ("Conv2d_1a_3x3", ConvBN, (3, 32, 3), {"stride": 2}),
    ("Conv2d_2a_3x3", ConvBN, (32, 32, 3), {}),
    ("Conv2d_2b_3x3", ConvBN, (32, 64, 3), {"padding": 1}),
    None,
    ("Conv2d_3b_1x1", ConvBN, (64, 80, 1), {}),
    ("Conv2d_4a_3x3", ConvBN, (80, 192, 3), {}),
    None,
    ("Mixed_5b", InceptionA, (192, 32), {}),
    ("Mixed_5c", InceptionA, (256, 64), {}),
    ("Mixed_5d", InceptionA, (288, 64), {}),
    ("Mixed_6a", InceptionB, (288,), {}),
    ("Mixed_6b", InceptionC, (768, 128), {}),
    ("Mixed_6c", InceptionC, (768, 160), {}),
    ("Mixed_6d", InceptionC, (768, 160), {}),
    ("Mixed_6e", InceptionC, (768, 192), {}),
    ("Mixed_7a", InceptionD, (768,), {}),
    ("Mixed_7b", InceptionE, (1280,), {}),
    ("Mixed_7c", InceptionE, (2048,), {}),
)


class InceptionV3Classifier(Classifier):
    head_attrs = ("fc", "aux_fc")

    def __init__(
        self,
        arch: str,
        *,
        num_classes: int,
        dtype: jnp.dtype,
        aux_logits: bool = False,
        dropout_rate: float = 0.5,
        rngs: nnx.Rngs,
        **shell: Any,
    ) -> None:
        self._shell(arch, min_size=MIN_SIZE_AUX if aux_logits else MIN_SIZE, dtype=dtype, **shell)
        for entry in _LAYOUT:
            if entry is not None:
                name, cls, args, kw = entry
                if cls is ConvBN:
                    kw = {**kw, "eps": 1e-3, "init": normal(0.1)}
                setattr(self, name, cls(*args, **kw, dtype=dtype, rngs=rngs))
        self.AuxLogits = InceptionAux(768, dtype=dtype, rngs=rngs) if aux_logits else None
        self.aux_fc = (
            linear(768, num_classes, init=normal(0.001), dtype=dtype, rngs=rngs)
            if aux_logits
            else None
        )
        self.drop = nnx.Dropout(dropout_rate)
        self.fc = linear(2048, num_classes, init=normal(0.1), dtype=dtype, rngs=rngs)
        # torchvision's ImageNet file always holds AuxLogits.*; without the aux head, skip them.
        self.ignore_torch_prefixes = () if aux_logits else ("AuxLogits.",)

    def forward(self, x: jax.Array, train: bool, rng: jax.Array | None):
        aux = None
        for entry in _LAYOUT:
            if entry is None:
                x = max_pool(x, 3, 2)
                continue
            x = getattr(self, entry[0])(x, train)
            if entry[0] == "Mixed_6e" and self.AuxLogits is not None and train:
                aux = self.aux_fc(self.AuxLogits(x, train))
        logits = self.fc(dropout(self.drop, jnp.mean(x, axis=(1, 2)), train, rng))
        return logits if aux is None else (logits, aux)

    def add_torch(self, tb: TorchTable) -> None:
        for entry in _LAYOUT:
            if entry is not None:
                getattr(self, entry[0]).torch_table(tb, entry[0], (entry[0],))
        if self.AuxLogits is not None:
            self.AuxLogits.torch_table(tb, "AuxLogits", ("AuxLogits",))
            tb.linear("AuxLogits.fc", ("aux_fc",), self.aux_fc)
        tb.linear("fc", ("fc",), self.fc)


@register_classifier("inception_v3", 299)
def inception_v3(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int = 2,
    image_size: int | None = None,
    dtype: str = "float32",
    weights: str | Path | None = None,
    freeze_backbone_epochs: int = 0,
    input_norm: str = "inception",
    aux_logits: bool = False,
    dropout_rate: float = 0.5,
) -> InceptionV3Classifier:
    """torchvision ``inception_v3(num_classes=..., aux_logits=False)``."""
    if not isinstance(aux_logits, bool):
        raise ValueError(f"inception_v3: aux_logits must be true or false, got {aux_logits!r}")
    return build(
        InceptionV3Classifier,
        "inception_v3",
        min_size=MIN_SIZE_AUX if aux_logits else MIN_SIZE,
        rngs=rngs,
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        dtype=dtype,
        weights=weights,
        freeze_backbone_epochs=freeze_backbone_epochs,
        input_norm=input_norm,
        aux_logits=aux_logits,
        dropout_rate=dropout_rate,
    )
