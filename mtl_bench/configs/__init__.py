"""Configs as code: one module per method, ``get_config(preset) -> RunConfig``.

A method without its own module uses ``default.get_config`` with its name filled in, so every
registered model can run through ``mtl-bench cv`` on any preset.
"""

from __future__ import annotations

import dataclasses
import importlib

from mtl_bench.config import RunConfig

PRESETS = ("smoke", "phantom", "paper")


def get_config(method: str, preset: str = "smoke") -> RunConfig:
    """The config of ``method`` (a registered model name) for ``preset``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    module_name = method.replace("-", "_")
    try:
        module = importlib.import_module(f"mtl_bench.configs.{module_name}")
    except ModuleNotFoundError as e:
        if e.name != f"mtl_bench.configs.{module_name}":
            raise
        module = importlib.import_module("mtl_bench.configs.default")
    cfg = module.get_config(preset)
    return dataclasses.replace(cfg, model=method, preset=preset)
