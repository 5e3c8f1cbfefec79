"""``check_config``: a run configuration refused before any data or results are touched, with
a one-line error naming the field and its value (the choices and ranges each field takes)."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from mtl_bench.config_types import check_field_types

if TYPE_CHECKING:
    from mtl_bench.config import RunConfig

OPTIMIZERS = ("adam", "adamw", "sgd")
STATE_LAYOUTS = ("leaves", "packed")
CLASS_WEIGHTS = ("inverse_frequency", "none")
PRECISIONS = ("fp32", "bf16")
SEED_FIELDS = ("seed", "fold_seed", "synthetic_seed")


def check_config(cfg: RunConfig) -> None:
    """Refuse a config that cannot run as meant, before any data or results are touched.

    One-line error naming the field and value — a ValueError for a type its annotation refuses
    (``config_types``), an unknown choice, a count or rate out of range or a value the model's
    builder refuses (built abstractly: ``registry.check_model_builds``); as ``create_model``
    raises them, a KeyError for an unknown model and a TypeError for a model option it does
    not take (the CLI prints each as one line). (Errors found only later would
    come after a rerun has already replaced a finished fold's checkpoint.)
    """
    from mtl_bench.data.preprocess import PREPROCESS_METHODS
    from mtl_bench.data.types import CLASS_SETS
    from mtl_bench.fold_conv import FOLD_CONV_MODES
    from mtl_bench.metrics import EMPTY_POLICIES
    from mtl_bench.parallel import STRATEGIES
    from mtl_bench.registry import check_model_builds, check_model_kwargs, model_info

    check_field_types(type(cfg), vars(cfg))  # first: the checks below compare values
    choices = {
        "class_set": tuple(CLASS_SETS), "preprocess": PREPROCESS_METHODS,
        "optimizer": OPTIMIZERS, "state_layout": STATE_LAYOUTS, "class_weights": CLASS_WEIGHTS,
        "empty_policy": EMPTY_POLICIES, "parallel": STRATEGIES, "fold_conv": FOLD_CONV_MODES,
        "precision": PRECISIONS,
    }  # fmt: skip
    for key, allowed in choices.items():
        if getattr(cfg, key) not in allowed:
            raise ValueError(f"{key}={getattr(cfg, key)!r}: choose one of {', '.join(allowed)}")
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{f.name}={value!r}: must be a finite number")
    if not str(cfg.data).strip():  # Path("") is the working folder: never what was meant
        raise ValueError("data='': give 'synthetic' or a BUSI-layout folder")
    info = model_info(cfg.model)
    trained = info.fit is None  # a feature method runs no epochs (its configs say epochs=0)
    bounds = [
        ("epochs", cfg.epochs >= 1 or not trained, ">= 1"),
        ("batch_size", cfg.batch_size >= 1, ">= 1"),
        ("eval_batch_size", cfg.eval_batch_size >= 1, ">= 1"),
        ("folds", cfg.folds >= 2, ">= 2"),
        ("image_size", cfg.image_size >= 8, ">= 8"),
        ("lr", cfg.lr > 0 or not trained, "> 0"),
        ("lr_decay_every", cfg.lr_decay_every >= 0, ">= 0 (0 keeps the rate constant)"),
        ("lr_decay_factor", cfg.lr_decay_factor > 0, "> 0"),
        ("weight_decay", cfg.weight_decay >= 0, ">= 0"),
        ("adam_eps", cfg.adam_eps > 0, "> 0"),
        ("w_seg", cfg.w_seg >= 0, ">= 0"),
        ("w_cls", cfg.w_cls >= 0, ">= 0"),
        ("focal_gamma", cfg.focal_gamma >= 0, ">= 0"),
        ("dice_smooth", cfg.dice_smooth >= 0, ">= 0"),
        ("max_rotation_deg", 0 <= cfg.max_rotation_deg <= 180, "in [0, 180]"),
        ("val_fraction", 0 <= cfg.val_fraction < 1, "in [0, 1)"),
        ("eval_every", cfg.eval_every >= 1, ">= 1"),
        ("checkpoint_every", cfg.checkpoint_every >= 0, ">= 0 (0 saves only at the end)"),
        ("devices", cfg.devices >= 0, ">= 0 (0 = all)"),
        ("synthetic_n", cfg.synthetic_n is None or cfg.synthetic_n >= 1, ">= 1 (or none)"),
        ("synthetic_difficulty", 0 <= cfg.synthetic_difficulty <= 1, "in [0, 1]"),
        # numpy's and scikit-learn's generators take seeds in [0, 2**32): refused now, not
        # after the data is read (the inner validation split is the first to see ``seed``).
        *((k, 0 <= getattr(cfg, k) < 2**32, "in [0, 2**32)") for k in SEED_FIELDS),
    ]
    for key, ok, rule in bounds:
        if not ok:
            raise ValueError(f"{key}={getattr(cfg, key)!r}: must be {rule}")
    weights = {"mask": cfg.w_seg, "label": cfg.w_cls}
    if trained and not any(weights[t] for t in info.tasks if t in weights):
        names = " and ".join(f"w_{'seg' if t == 'mask' else 'cls'}=0" for t in info.tasks)
        raise ValueError(f"{names}: {cfg.model}'s loss would be zero, nothing to train")
    # The run's own fields win: builder_kwargs would let these model kwargs override them, and
    # the results would record one precision or size while the network ran at another.
    owned = {"dtype": ("precision", cfg.precision), "image_size": ("image_size", cfg.image_size)}
    for key, (field_name, value) in owned.items():
        if key in cfg.model_kwargs and (key == "dtype" or cfg.model_kwargs[key] != value):
            raise ValueError(
                f"model_kwargs.{key}={cfg.model_kwargs[key]!r}: set {field_name} instead "
                f"(the run's {field_name} is {value!r})"
            )
    if info.check is not None:  # a feature method's options (baselines/moon_features.py)
        info.check(cfg)
    if trained:
        check_model_kwargs(cfg.model, cfg.model_kwargs)
        # Option values are the builder's to check; the registered defaults are known to build.
        if cfg.model_kwargs or cfg.image_size != info.defaults.get("image_size"):
            from mtl_bench.model_build import builder_kwargs

            n_classes = len(CLASS_SETS[cfg.class_set])
            check_model_builds(cfg.model, builder_kwargs(cfg, n_classes))
    if trained:  # devices exist and share the batch (a feature method uses none of them)
        from mtl_bench.parallel import check_placement

        check_placement(cfg.parallel, cfg.devices, cfg.batch_size)
    if cfg.fold_parallel and trained:  # its combinations (a feature method runs folds in turn)
        from mtl_bench.fold_parallel import check_fold_parallel

        check_fold_parallel(cfg)
