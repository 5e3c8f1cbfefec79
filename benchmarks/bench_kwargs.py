"""The bench's model options, ``--set [MODEL:]KEY=VALUE``: parsing, which apply to a model, the
names checked against each selected model's builder, and the CSV cell that records them (no jax
at import, as ``bench_args``)."""

from __future__ import annotations

from typing import Any


def parse_model_kwargs(items: list[str]) -> dict[str, dict[str, Any]]:
    """``KEY=VALUE`` (every model) and ``MODEL:KEY=VALUE`` (one model) → {model or "*": kwargs}."""
    from mtl_bench.config import parse_value

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        model, _, key = key.strip().rpartition(":")
        if not sep or not key.strip():
            raise ValueError(f"--set expects [MODEL:]KEY=VALUE, got {item!r}")
        out.setdefault(model or "*", {})[key.strip()] = parse_value(raw)
    return out


def kwargs_for(kwargs: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """The model kwargs that apply to ``name`` (its own over the shared ones)."""
    return {**kwargs.get("*", {}), **kwargs.get(name, {})}


# Model kwargs --set may not give, and the bench option that sets each: the row's precision and
# image_size columns come from those options, and model_build.builder_kwargs would let a model
# kwarg win over them. ``precision`` is refused too, as the name a user would reach for first.
BENCH_SET_KWARGS = {
    "dtype": "--precision",
    "precision": "--precision",
    "image_size": "--image-size",
}


def check_model_options(models: list[str], kwargs: dict[str, dict[str, Any]]) -> None:
    """One-line errors for ``--set`` options, before anything is measured: ``MODEL:`` naming no
    registered model (KeyError), or an option a selected model's builder does not take
    (ValueError; measured, it would only be a "skipped: ... does not take" row per configuration),
    or a compute dtype or image size, which --precision / --image-size set (ValueError, for every
    model, feature methods too).

    Checked as the training path checks their names (``config_checks.check_config``): the JAX
    builder's own parameters, and not for feature methods (``fit`` set), which the bench skips
    unbuilt and which check their own options. The PyTorch peer is not asked: it maps the kwargs
    to its twin itself and a row's note says which it has no twin for."""
    from mtl_bench.registry import check_model_kwargs, model_info

    for given in kwargs.values():
        for key in sorted(set(given) & set(BENCH_SET_KWARGS)):
            # The row would say one precision or size (its columns) while the model ran at another.
            raise ValueError(
                f"--set {key}={given[key]!r}: the bench sets this itself; use "
                f"{BENCH_SET_KWARGS[key]} instead"
            )
    for name in sorted(set(kwargs) - {"*"}):
        # A MODEL:KEY=VALUE for a model not selected is allowed (gpu_check's dry run gives the
        # same tiny widths to every job), a typo is not: in the model's name or in its option.
        if model_info(name).fit is None and name not in models:
            try:
                check_model_kwargs(name, kwargs[name], types=False)
            except TypeError as e:
                raise ValueError(f"--set: {e}") from None
    shared_hint = " (KEY=VALUE goes to every model in --models; MODEL:KEY=VALUE to one)"
    for name in models:
        if model_info(name).fit is not None:
            continue
        # Its own options first: a shared one it does not take gets the hint, its own do not.
        for given, hint in ((kwargs.get(name, {}), ""), (kwargs_for(kwargs, name), shared_hint)):
            try:
                check_model_kwargs(name, given, types=False)  # values: bench_checks.py
            except TypeError as e:  # ValueError: what both command lines report in one line
                raise ValueError(f"--set: {e}{hint if len(models) > 1 else ''}") from None


def kwargs_cell(kwargs: dict[str, Any]) -> str:
    """The CSV's model_kwargs cell: ``widths=(8, 16)`` style, blank for the registered defaults."""
    return " ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
