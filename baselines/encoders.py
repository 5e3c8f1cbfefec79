"""Encoders in smp's convention: ``encoder(x, train) -> [f0, f1, ..., f5]`` (six NHWC features).

ResNet-18/34/50 (``encoders_resnet``) and VGG-16/19 with or without BN (``encoders_vgg``). Every
encoder exposes ``out_channels`` (channels of the six features, smp's ``encoder.out_channels``),
``output_stride``, ``in_channels`` and the weight-port protocol of ``mtl_bench.weights``
(``torch_table``, ``first_conv_key``, ``ignore_prefixes``), so an ImageNet checkpoint loads with
``load_encoder_weights``.

Features (channels @ stride) for an input with C channels::

    resnet18/34   C@1   64@2   64@4   128@8   256@16   512@32
    resnet50      C@1   64@2  256@4   512@8  1024@16  2048@32
    vgg16/19[_bn] 64@1 128@2  256@4   512@8   512@16   512@32

Decoders use them as smp does: U-Net/U-Net++ skip the first (full-resolution) one, FPN takes the
last four, DeepLabV3+ the last (at stride 16 once its encoder is dilated) and the stride-4 one.
``pretrained`` is never implied: ImageNet weights come only from a local file
(``mtl_bench.weights.load_encoder_weights``); the random init matches torchvision's.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from baselines.encoders_resnet import RESNETS, ResNetEncoder
from baselines.encoders_vgg import VGGS, VGGEncoder

ENCODERS: tuple[str, ...] = (*RESNETS, *VGGS)
# smp's DeepLabV3+ dilates its encoder (output stride 16); VGG cannot be dilated.
DILATABLE: tuple[str, ...] = tuple(RESNETS)


def build_encoder(
    name: str,
    *,
    in_channels: int = 3,
    output_stride: int = 32,
    dtype: jnp.dtype = jnp.float32,
    rngs: nnx.Rngs,
) -> ResNetEncoder | VGGEncoder:
    """The encoder ``name`` (one of ``ENCODERS``), randomly initialised as torchvision does."""
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    if name in RESNETS:
        return ResNetEncoder(
            name, in_channels=in_channels, output_stride=output_stride, dtype=dtype, rngs=rngs
        )
    if name in VGGS:
        return VGGEncoder(
            name, in_channels=in_channels, output_stride=output_stride, dtype=dtype, rngs=rngs
        )
    raise ValueError(f"unknown encoder {name!r}: use one of {', '.join(ENCODERS)}")
