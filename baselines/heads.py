"""smp's ``SegmentationHead`` and ``SegmentationModel`` (encoder → decoder → head), plus the
registration shared by the ``<arch>_<encoder>`` baselines.

Every model returns the registry's output contract with the mask key only::

    model(x, train=False, rng=None) -> {"mask": (N, H, W, 1) float32 logits}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from baselines.layers import XAVIER, check_spatial, conv2d, resize_bilinear
from mtl_bench.registry import register_model
from mtl_bench.weights import FlaxPath, TorchTable, load_encoder_weights, sub


class SegmentationHead(nnx.Module):
    """smp ``SegmentationHead``: conv k×k (bias, xavier init) → bilinear ×``upsampling``
    (``align_corners=True``, as smp's ``nn.Upsample``)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int = 1,
        kernel: int = 3,
        upsampling: int = 1,
        *,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        self.conv = conv2d(
            in_ch, out_ch, kernel, padding=kernel // 2, init=XAVIER, dtype=dtype, rngs=rngs
        )
        self.upsampling = upsampling

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.conv(x)
        if self.upsampling > 1:
            u = self.upsampling
            x = resize_bilinear(x, x.shape[1] * u, x.shape[2] * u, align_corners=True)
        return x

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None:
        tb.conv(sub(t, 0), (*f, "conv"), self.conv)


class EncoderDecoder(nnx.Module):
    """smp ``SegmentationModel.forward``: features → decoder → head; torch names ``encoder.*``,
    ``decoder.*``, ``segmentation_head.*``."""

    def __init__(
        self,
        encoder: nnx.Module,
        decoder: nnx.Module,
        head: SegmentationHead,
        *,
        name: str,
        divisor: int,
        dtype: jnp.dtype,
    ) -> None:
        self.encoder = encoder
        self.decoder = decoder
        self.head = head
        self.name = name
        self.divisor = divisor
        self.dtype = dtype

    def __call__(
        self, x: jax.Array, train: bool = False, rng: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        check_spatial(x, self.encoder.in_channels, self.divisor, self.name)
        feats = self.encoder(x.astype(self.dtype), train)
        y = self.decoder(feats, train, rng)
        return {"mask": self.head(y).astype(jnp.float32)}

    def torch_table(self) -> TorchTable:
        """The explicit torch → Flax table of the whole model (smp state-dict names)."""
        tb = TorchTable()
        self.encoder.torch_table(tb, "encoder", ("encoder",))
        self.decoder.torch_table(tb, "decoder", ("decoder",))
        self.head.torch_table(tb, "segmentation_head", ("head",))
        return tb


def check_image_size(name: str, image_size: int | None, divisor: int) -> None:
    """smp's ``check_input_shape`` at build time: the side must be a multiple of ``divisor``."""
    if image_size is None:
        return
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0:
        raise ValueError(f"{name}: image_size must be a positive integer, got {image_size!r}")
    if image_size % divisor:
        raise ValueError(f"{name} needs image_size divisible by {divisor}, got {image_size}")


def maybe_load_encoder(model: nnx.Module, encoder_weights: str | Path | None) -> nnx.Module:
    """Load a local ImageNet checkpoint into ``model.encoder`` when a path is given.

    ``model.weights_source`` says where the run starts (the fold's log line and result file,
    as for the classifiers): the file, or None for training from scratch."""
    model.weights_source = None
    if encoder_weights is not None:
        load_encoder_weights(model, encoder_weights)
        model.weights_source = f"{encoder_weights} (encoder; decoder from scratch)"
    return model


def register_arch(arch: str, builder: Callable[..., nnx.Module], encoders: Iterable[str]) -> None:
    """Register ``builder`` as ``<arch>_<encoder>`` for each encoder (mask-only segmentation)."""
    for enc in encoders:
        register_model(f"{arch}_{enc}", tasks=("mask",), family="segmentation", encoder=enc)(
            builder
        )


def check_num_classes(num_classes: int | None) -> None:
    """``num_classes`` is accepted by every builder so the engine can pass it uniformly; a
    mask-only model has no class head, so it is only checked to be sane, then ignored."""
    n = num_classes
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"num_classes must be a positive integer, got {n!r}")
