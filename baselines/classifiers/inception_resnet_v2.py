"""timm ``inception_resnet_v2`` (Szegedy et al. 2016; timm 1.0 layout and names).

Stem ``conv2d_1a`` … ``conv2d_4a`` with two 3×3/2 max-pools → ``mixed_5b`` → ``repeat`` (10 ×
Block35, scale 0.17) → ``mixed_6a`` → ``repeat_1`` (20 × Block17, 0.10) → ``mixed_7a`` →
``repeat_2`` (9 × Block8, 0.20) → ``block8`` (scale 1, no ReLU) → ``conv2d_7b`` (1×1, 1536) →
global average pool → ``classif`` (Flax ``fc``; timm's ``drop_rate`` is 0). Every ``ConvNormAct``
is conv (no bias) → BN(eps 1e-3) → ReLU; a residual block's ``conv2d`` (1×1) has a bias; the
Mixed_5b pool branch is ``AvgPool2d(3, 1, 1, count_include_pad=False)``. timm sets no custom init,
so every layer has torch's default: U(±1/√fan_in) for weights and biases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.classifiers.base import Classifier, build, register_classifier
from baselines.classifiers.layers import TORCH_DEFAULT, ConvBN, avg_pool, conv, linear
from baselines.classifiers.layers import torch_default_bias as default_bias
from baselines.layers import max_pool
from mtl_bench.weights import FlaxPath, TorchTable, sub

MIN_SIZE = 75  # the 3×3/2 convs of mixed_7a need a 3×3 map


def _cbr(cin: int, cout: int, k, s: int = 1, p=0, *, dtype, rngs) -> ConvBN:
    return ConvBN(
        cin, cout, k, stride=s, padding=p, eps=1e-3, init=TORCH_DEFAULT, dtype=dtype, rngs=rngs
    )


class _Branches(nnx.Module):
    """Parallel branches (``branch0`` … ``branchN``), each a ``ConvBN`` or a list of them (a torch
    ``Sequential``); concatenated on channels. ``pool`` marks the branch that starts with a pool
    (torch index 0 of that Sequential is the pool, so its convs start at index 1)."""

    def __init__(self, branches: list, *, pool: dict[int, str] | None = None) -> None:
        self.branches = nnx.List([nnx.List(b) if isinstance(b, list) else b for b in branches])
        self.pool = dict(pool or {})

    def _branch(self, i: int, x: jax.Array, train: bool) -> jax.Array:
        kind = self.pool.get(i)
        if kind == "avg":
            x = avg_pool(x, 3, 1, 1, count_include_pad=False)
        elif kind == "max":
            return max_pool(x, 3, 2)
        b = self.branches[i]
        for layer in b if isinstance(b, nnx.List) else [b]:
            x = layer(x, train)
        return x

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        return jnp.concatenate([self._branch(i, x, train) for i in range(len(self.branches))], -1)

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        for i, b in enumerate(self.branches):
            if self.pool.get(i) == "max":
                continue
            tb_t, tb_f = sub(t, f"branch{i}"), (*f, "branches", i)
            if isinstance(b, nnx.List):
                off = 1 if self.pool.get(i) == "avg" else 0
                for j, layer in enumerate(b):
                    layer.torch_table(tb, sub(tb_t, j + off), (*tb_f, j))
            else:
                b.torch_table(tb, tb_t, tb_f)


class _Residual(nnx.Module):
    """Block35/17/8: branches → 1×1 ``conv2d`` (bias) → ×scale + input → ReLU (unless last)."""

    def __init__(
        self, mixed: _Branches, cin: int, cmix: int, scale: float, relu: bool, *, dtype, rngs
    ) -> None:
        self.mixed = mixed
        self.conv2d = conv(
            cmix, cin, 1, init=TORCH_DEFAULT, bias_init=default_bias(cmix), dtype=dtype, rngs=rngs
        )
        self.scale, self.relu = scale, relu

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        out = self.conv2d(self.mixed(x, train)) * self.scale + x
        return jax.nn.relu(out) if self.relu else out

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        self.mixed.torch_table(tb, t, (*f, "mixed"))
        tb.conv(sub(t, "conv2d"), (*f, "conv2d"), self.conv2d)


def block35(kw) -> _Residual:
    m = _Branches(
        [
            _cbr(320, 32, 1, **kw),
            [_cbr(320, 32, 1, **kw), _cbr(32, 32, 3, p=1, **kw)],
            [_cbr(320, 32, 1, **kw), _cbr(32, 48, 3, p=1, **kw), _cbr(48, 64, 3, p=1, **kw)],
        ]
    )
    return _Residual(m, 320, 128, 0.17, True, **kw)


def block17(kw) -> _Residual:
    m = _Branches(
        [
            _cbr(1088, 192, 1, **kw),
            [
                _cbr(1088, 128, 1, **kw),
                _cbr(128, 160, (1, 7), p=(0, 3), **kw),
                _cbr(160, 192, (7, 1), p=(3, 0), **kw),
            ],
        ]
    )
    return _Residual(m, 1088, 384, 0.10, True, **kw)


def block8(kw, scale: float = 0.20, relu: bool = True) -> _Residual:
    m = _Branches(
        [
            _cbr(2080, 192, 1, **kw),
            [
                _cbr(2080, 192, 1, **kw),
                _cbr(192, 224, (1, 3), p=(0, 1), **kw),
                _cbr(224, 256, (3, 1), p=(1, 0), **kw),
            ],
        ]
    )
    return _Residual(m, 2080, 448, scale, relu, **kw)


class InceptionResNetV2Classifier(Classifier):
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
        kw = dict(dtype=dtype, rngs=rngs)
        self.conv2d_1a = _cbr(3, 32, 3, 2, **kw)
        self.conv2d_2a = _cbr(32, 32, 3, **kw)
        self.conv2d_2b = _cbr(32, 64, 3, p=1, **kw)
        self.conv2d_3b = _cbr(64, 80, 1, **kw)
        self.conv2d_4a = _cbr(80, 192, 3, **kw)
        self.mixed_5b = _Branches(
            [
                _cbr(192, 96, 1, **kw),
                [_cbr(192, 48, 1, **kw), _cbr(48, 64, 5, p=2, **kw)],
                [_cbr(192, 64, 1, **kw), _cbr(64, 96, 3, p=1, **kw), _cbr(96, 96, 3, p=1, **kw)],
                [_cbr(192, 64, 1, **kw)],
            ],
            pool={3: "avg"},
        )
        self.repeat = nnx.List([block35(kw) for _ in range(10)])
        self.mixed_6a = _Branches(
            [
                _cbr(320, 384, 3, 2, **kw),
                [_cbr(320, 256, 1, **kw), _cbr(256, 256, 3, p=1, **kw), _cbr(256, 384, 3, 2, **kw)],
                [],
            ],
            pool={2: "max"},
        )
        self.repeat_1 = nnx.List([block17(kw) for _ in range(20)])
        self.mixed_7a = _Branches(
            [
                [_cbr(1088, 256, 1, **kw), _cbr(256, 384, 3, 2, **kw)],
                [_cbr(1088, 256, 1, **kw), _cbr(256, 288, 3, 2, **kw)],
                [
                    _cbr(1088, 256, 1, **kw),
                    _cbr(256, 288, 3, p=1, **kw),
                    _cbr(288, 320, 3, 2, **kw),
                ],
                [],
            ],
            pool={3: "max"},
        )
        self.repeat_2 = nnx.List([block8(kw) for _ in range(9)])
        self.block8 = block8(kw, scale=1.0, relu=False)
        self.conv2d_7b = _cbr(2080, 1536, 1, **kw)
        self.fc = linear(1536, num_classes, dtype=dtype, rngs=rngs)

    def forward(self, x: jax.Array, train: bool, rng: jax.Array | None) -> jax.Array:
        for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b"):
            x = getattr(self, name)(x, train)
        x = self.conv2d_4a(self.conv2d_3b(max_pool(x, 3, 2), train), train)
        x = self.mixed_5b(max_pool(x, 3, 2), train)
        for stage, mixed in ((self.repeat, self.mixed_6a), (self.repeat_1, self.mixed_7a)):
            for block in stage:
                x = block(x, train)
            x = mixed(x, train)
        for block in self.repeat_2:
            x = block(x, train)
        x = self.conv2d_7b(self.block8(x, train), train)
        return self.fc(jnp.mean(x, axis=(1, 2)))

    def add_torch(self, tb: TorchTable) -> None:
        for name in (
            "conv2d_1a",
            "conv2d_2a",
            "conv2d_2b",
            "conv2d_3b",
            "conv2d_4a",
            "mixed_5b",
            "mixed_6a",
            "mixed_7a",
            "block8",
            "conv2d_7b",
        ):
            getattr(self, name).torch_table(tb, name, (name,))
        for name in ("repeat", "repeat_1", "repeat_2"):
            for i, block in enumerate(getattr(self, name)):
                block.torch_table(tb, f"{name}.{i}", (name, i))
        tb.linear("classif", ("fc",), self.fc)


@register_classifier("inception_resnet_v2", 299)
def inception_resnet_v2(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int = 2,
    image_size: int | None = None,
    dtype: str = "float32",
    weights: str | Path | None = None,
    freeze_backbone_epochs: int = 0,
    input_norm: str = "inception",
) -> InceptionResNetV2Classifier:
    """timm ``inception_resnet_v2(num_classes=...)`` (its weights expect (x−0.5)/0.5)."""
    return build(
        InceptionResNetV2Classifier,
        "inception_resnet_v2",
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
