"""Configs as code: one module per method, ``get_config(preset) -> RunConfig``.

A method without its own module uses its architecture's: an encoder variant of an smp network
(``unet_vgg16``, ``fpn_resnet50``, ``deeplabv3plus_resnet18``, …: Table S1) trains with the recipe
of that network on ResNet-34 (``unet_resnet34``, …), so encoders are compared under one recipe.
Any other uses ``default.get_config`` (the proposed model's) with its name filled in, so every
registered model can run through ``mtl-bench cv`` on any preset.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util

from mtl_bench.config import RunConfig

PRESETS = ("smoke", "phantom", "paper")
# smp architectures whose encoder variants share the ResNet-34 network's config; longest first,
# so "unetplusplus_vgg16" is not read as a "unet" variant.
SMP_ARCHITECTURES = ("deeplabv3plus", "unetplusplus", "unet", "fpn")


def config_module_name(method: str) -> str:
    """The module under ``mtl_bench.configs`` whose ``get_config`` builds ``method``'s config."""
    name = method.replace("-", "_")
    if importlib.util.find_spec(f"mtl_bench.configs.{name}") is not None:
        return name
    for arch in SMP_ARCHITECTURES:
        if name.startswith(f"{arch}_"):
            return f"{arch}_resnet34"
    return "default"


def get_config(method: str, preset: str = "smoke") -> RunConfig:
    """The config of ``method`` (a registered model name) for ``preset``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    module = importlib.import_module(f"mtl_bench.configs.{config_module_name(method)}")
    cfg = module.get_config(preset)
    return dataclasses.replace(cfg, model=method, preset=preset)
