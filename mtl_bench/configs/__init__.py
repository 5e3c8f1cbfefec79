"""Configs as code: one module per method, ``get_config(preset) -> RunConfig``.

A method without its own module uses its architecture's: an encoder variant of an smp network
(``unet_vgg16``, ``fpn_resnet50``, ``deeplabv3plus_resnet18``, …: Table S1) trains with the recipe
of that network on ResNet-34 (``unet_resnet34``, …), so encoders are compared under one recipe.
Any other uses ``default.get_config`` (the proposed model's) with its name filled in, with a
warning, so every registered model can run through ``mtl-bench cv`` on any preset.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util

from mtl_bench.config import RunConfig
from mtl_bench.progress import log

PRESETS = ("smoke", "phantom", "paper")


def config_module_name(method: str) -> str:
    """The module under ``mtl_bench.configs`` whose ``get_config`` builds ``method``'s config:
    its own; for an encoder variant of a registered architecture (``register_arch``: the
    registry records its encoder) the architecture's ResNet-34 module; else ``default``."""
    name = method.replace("-", "_")
    if importlib.util.find_spec(f"mtl_bench.configs.{name}") is not None:
        return name
    from mtl_bench.registry import model_info

    try:
        enc = model_info(method).defaults.get("encoder")
    except KeyError:  # not registered: the config check names the unknown model later
        return "default"
    if isinstance(enc, str) and name.endswith(f"_{enc}"):
        sibling = f"{name[: -len(enc) - 1]}_resnet34"
        if importlib.util.find_spec(f"mtl_bench.configs.{sibling}") is not None:
            return sibling
    if name != "mtl_resunet":
        _warn_default(method)
    return "default"


@functools.cache
def _warn_default(method: str) -> None:
    # Once per method and process: a new model without a config still runs, but with the
    # proposed model's recipe, which is seldom what its authors used.
    log(
        f"mtl-bench: warning: {method} has no config module (mtl_bench/configs/{method}.py): "
        "it trains with the proposed model's recipe (configs/default.py); change a setting with "
        "--set KEY=VALUE (lr=3e-4, batch_size=8, ...)"
    )


def get_config(method: str, preset: str = "smoke") -> RunConfig:
    """The config of ``method`` (a registered model name) for ``preset``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    module = importlib.import_module(f"mtl_bench.configs.{config_module_name(method)}")
    cfg = module.get_config(preset)
    return dataclasses.replace(cfg, model=method, preset=preset)
