"""The registered model as a run builds it: the builder's keyword arguments from the run's config
(input channels, classes, image size, options, precision), and the output contract checked once
per builder and setting. Training, fold-parallel training, predict and the benches build here."""

from __future__ import annotations

from typing import Any

from mtl_bench.config import RunConfig
from mtl_bench.registry import create_model, model_info


def builder_kwargs(cfg: RunConfig, num_classes: int) -> dict[str, Any]:
    """What the run passes the model's builder: input/class overrides, options and precision."""
    kwargs: dict[str, Any] = {"in_channels": 1, "num_classes": num_classes, **cfg.model_kwargs}
    kwargs.setdefault("image_size", cfg.image_size)
    if cfg.precision != "fp32":
        kwargs.setdefault("dtype", cfg.precision)
    return kwargs


def build_model(cfg: RunConfig, num_classes: int):
    """The registered model with the run's input/class overrides and precision, its outputs
    checked against the contract (``contract.check_outputs``) once per process and setting."""
    from mtl_bench.contract import check_outputs

    kwargs = builder_kwargs(cfg, num_classes)
    model = create_model(cfg.model, seed=cfg.seed, **kwargs)
    # The builder's identity too: a module reloaded in a notebook brings a new one to check.
    key = (cfg.model, id(model_info(cfg.model).builder), repr(sorted(kwargs.items())))
    if key not in _CHECKED:  # an abstract trace: ~1 s for a large model, once
        check_outputs(model, cfg.model, model_info(cfg.model).tasks, cfg.image_size, num_classes)
        _CHECKED.add(key)
    return model


_CHECKED: set[tuple[str, int, str]] = set()  # (model, id(builder), kwargs): outputs checked
