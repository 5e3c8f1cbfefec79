"""One registry: every model, proposed or baseline, is built by name.

The registered name is the config value, the result-file key and the table row label. A model is
a Flax NNX module whose call follows one output contract::

    model(x, train=False, rng=None) -> {"mask": logits (N, H, W, 1), "label": logits (N, C)}

``x`` is NHWC float. Single-task models fill only their key. ``rng`` is the dropout key used when
``train`` is true (models without dropout ignore it; ``train=True`` without one runs BatchNorm in
training mode with dropout off, as the FLOP counter traces it); keeping it an argument, not
module state, keeps the training step a pure function of (params, batch, rng). A method fitted
outside the gradient engine (``model_info(name).fit``, e.g. ``moon_features``) is registered for
its name but built by its own fit, not ``create_model``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from mtl_bench.config import MODEL_KWARG_ALIASES  # the options that name a weights file

# Modules that register models when imported. Listed here (not discovered) so that importing the
# registry is cheap and deterministic; a new architecture adds its module to this tuple.
_MODEL_MODULES: tuple[str, ...] = (
    "mtl_bench.model",
    "baselines",
    "baselines.moon_features",
    "baselines.hijab_vgg16",
)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nnx.Module]
    tasks: tuple[str, ...]  # subset of ("mask", "label")
    family: str  # "proposed" | "segmentation" | "classification"
    defaults: dict[str, Any]
    # A method that is not trained by gradient descent (e.g. a scikit-learn feature classifier)
    # supplies its own ``fit(cfg, dataset, train_idx, test_idx, *, fold, quiet, groups) ->
    # FoldRun`` (``groups``: duplicate-group ids for any inner split, as ``fit_fold`` gets them);
    # cv, result files and tables treat it like any other method.
    fit: Callable[..., Any] | None = None
    # Its options' check, ``check(cfg)`` raising a one-line ValueError: run with the config's
    # checks, before any data is read (a feature method's builder builds nothing to check).
    check: Callable[..., Any] | None = None


_REGISTRY: dict[str, ModelInfo] = {}
_LOADED = False


def register_model(
    name: str | None = None,
    *,
    tasks: tuple[str, ...] = ("mask", "label"),
    family: str = "proposed",
    fit: Callable[..., Any] | None = None,
    check: Callable[..., Any] | None = None,
    **defaults: Any,
) -> Callable[[Callable[..., nnx.Module]], Callable[..., nnx.Module]]:
    """Decorator registering ``builder(*, rngs, **kwargs) -> nnx.Module`` under ``name``.

    ``defaults`` are keyword arguments applied before the caller's overrides, so one builder can be
    registered under several names (``unet_resnet34``, ``unet_resnet18`` ...). ``fit`` marks a
    method trained outside the gradient engine (see ``ModelInfo.fit``), ``check`` its options'
    check (``ModelInfo.check``).
    """
    bad = set(tasks) - {"mask", "label"}
    if bad or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of ('mask', 'label'), got {tasks}")

    def wrap(builder: Callable[..., nnx.Module]) -> Callable[..., nnx.Module]:
        key = name or builder.__name__
        old = _REGISTRY[key].builder if key in _REGISTRY else builder
        # The same function defined again (importlib.reload in a notebook) replaces itself.
        if old is not builder and _where(old) != _where(builder):
            raise ValueError(
                f"model name {key!r} is registered twice: by {_where(old)} and {_where(builder)}"
            )
        _REGISTRY[key] = ModelInfo(key, builder, tuple(tasks), family, dict(defaults), fit, check)
        return builder

    return wrap


def _where(builder: Callable[..., Any]) -> str:
    return f"{builder.__module__}.{builder.__qualname__}"


def _load() -> None:
    global _LOADED
    if not _LOADED:
        from mtl_bench.plugins import load_plugins

        for mod in _MODEL_MODULES:
            importlib.import_module(mod)
        load_plugins()  # models of the user's own (MTL_BENCH_MODELS, entry points)
        _LOADED = True


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, sorted; optionally only one family."""
    _load()
    return sorted(k for k, v in _REGISTRY.items() if family is None or v.family == family)


def model_info(name: str) -> ModelInfo:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown model {name!r}; registered models: {', '.join(list_models())} (a model of "
            "your own: name its module in MTL_BENCH_MODELS, see the README)"
        ) from None


def create_model(name: str, *, seed: int = 0, rngs: nnx.Rngs | None = None, **overrides: Any):
    """Build the registered model ``name``; ``overrides`` replace the registered defaults.

    Common overrides: ``in_channels``, ``num_classes``, ``image_size``. An override the builder does
    not accept is an error naming it, never silently ignored.
    """
    info = model_info(name)
    kwargs = {**info.defaults, **overrides}
    check_model_kwargs(name, kwargs)
    return info.builder(rngs=rngs if rngs is not None else nnx.Rngs(seed), **kwargs)


def check_model_kwargs(name: str, kwargs: dict[str, Any], *, types: bool = True) -> None:
    """A TypeError naming the options of ``kwargs`` that model ``name``'s builder does not take,
    then (``types``) a value of the wrong type (``check_option_types``)."""
    params = inspect.signature(model_info(name).builder).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(k for k in kwargs if k not in params)
    if unknown:
        raise TypeError(
            f"model {name!r} does not take {', '.join(unknown)}; "
            f"it takes {', '.join(k for k in params if k != 'rngs')}"
        )
    if types:
        check_option_types(name, kwargs)


def check_option_types(name: str, kwargs: dict[str, Any]) -> None:
    """A TypeError for a value of another type than an option's number or bool default (the
    registered one, else the builder's): ``dropout='abc'`` builds, and would fail only inside
    the first training step, after the data is read. A ValueError for a dropout rate outside
    [0, 1), or an integer option below 1 (below 0 for an ``*_epochs`` count)."""
    info = model_info(name)
    params = inspect.signature(info.builder).parameters
    for key, value in kwargs.items():
        if value is None:  # "not set": builders take it where they take the option at all
            continue
        default = info.defaults.get(key, params[key].default if key in params else None)
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif isinstance(default, float):
            ok, kind = isinstance(value, int | float) and not isinstance(value, bool), "a number"
        elif isinstance(default, tuple | list) and default and all(_is_int(d) for d in default):
            # widths='abc' would otherwise fail deep in the builder as "invalid literal for int()".
            ok = isinstance(value, tuple | list) and all(_is_int(v) for v in value)
            kind = "a list of integers"
        else:
            continue
        if not ok:
            raise TypeError(
                f"{key}={value!r}: model {name!r} takes {kind} for {key} (default {default!r})"
            )
        # Counts and sizes (widths, classes, channels) start at 1, epoch counts at 0: a 0 failed
        # deep in a builder as ZeroDivisionError.
        least = 0 if key.endswith("_epochs") else 1
        if kind == "an integer" and ok and value < least:
            raise ValueError(f"{key}={value!r}: model {name!r} takes an integer >= {least}")
        # nnx.Dropout takes any rate: 1.5 would zero every activation and train on silently.
        if "dropout" in key and kind in ("a number", "an integer") and not 0 <= value < 1:
            raise ValueError(f"{key}={value!r}: model {name!r} takes a rate in [0, 1) for {key}")


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_model_builds(name: str, kwargs: dict[str, Any]) -> None:
    """Build ``name`` with ``kwargs`` abstractly (shapes only, no arrays) so the builder's own
    checks of option values (``merge='bogus'``, too few ``widths``) fail as a one-line
    ValueError before a run reads data or replaces a finished fold's checkpoint.

    With a weights file the model is built for real, reading the file: a file of another
    architecture would otherwise be found only once the data is read and the fold manifest
    written (the run then reads it once more: seconds, against a run of minutes at least).
    """
    files = {k: kwargs[k] for k in MODEL_KWARG_ALIASES if kwargs.get(k)}
    for key, path in files.items():
        if not Path(str(path)).expanduser().exists():
            # `--set weights=...` and `model_kwargs.weights=...` both read as this key.
            raise ValueError(f"{key}={path}: no such file or folder")
    # reproduce checks each method when planning and again in run_cv: build it once per process.
    key = (name, repr(sorted(kwargs.items())))
    if key in _BUILT:
        return
    try:
        if files:
            create_model(name, **kwargs)
        else:
            nnx.eval_shape(lambda: create_model(name, **kwargs))
    except (ValueError, TypeError, KeyError, IndexError, AssertionError, ArithmeticError) as e:
        from mtl_bench.weights_file import WeightPortError

        if isinstance(e, WeightPortError):  # it names the file and what does not fit
            raise ValueError(f"{name}: {e}") from None
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        why = str(e) if isinstance(e, ValueError | TypeError) else f"{type(e).__name__}: {e}"
        why = why.removeprefix(f"{name} ")  # "mtl_resunet needs ...": the line names it already
        raise ValueError(f"model {name!r} cannot be built with {shown}: {why}") from None
    _BUILT.add(key)


_BUILT: set[tuple[str, str]] = set()  # (name, kwargs) that check_model_builds has built


def count_params(model: nnx.Module) -> int:
    """Trainable parameters (nnx.Param leaves); BatchNorm running statistics are not counted."""
    state = nnx.state(model, nnx.Param)
    return int(sum(x.size for x in jax.tree.leaves(state)))
