"""RunConfig's field types, read from its annotations: one source for every path that sets fields.

``RunConfig.from_dict`` (fold records read back for predict), ``check_config`` (before a run) and
``apply_overrides`` (the CLI's ``--set``) all check values here, so a value of the wrong type is a
one-line error naming the field, not a failure deep inside a model builder. The rules are
stricter than Python's: a bool is not an integer (``True`` would train 1 epoch), an int is a
number (``lr=1`` means 1.0), and a JSON list stands for a tuple (JSON has no tuples).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Each dataclass field's annotation, resolved (``config.py`` stores them as strings)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    # ``int | None`` and ``Optional[int]`` are different objects with the same meaning.
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` is acceptable for a field annotated ``tp`` (see the module doc)."""
    if tp is Any:
        return True
    if tp is type(None) or tp is None:
        return value is None
    if (args := _union_args(tp)) is not None:
        return any(matches(value, a) for a in args)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return _is_int(value)
    if tp is float:
        return isinstance(value, float) or _is_int(value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return value in args
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):  # either: JSON reads a tuple back as a list
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(matches, value, args))
        return not args or all(matches(v, args[0]) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            return False
        key_tp, value_tp = args or (Any, Any)
        return all(matches(k, key_tp) and matches(v, value_tp) for k, v in value.items())
    if isinstance(tp, type):
        return isinstance(value, tp)
    # A new kind of annotation should be taught here, not waved through unchecked.
    raise TypeError(f"config_types cannot check a field annotated {tp!r}")


def describe(tp: Any) -> str:
    """``tp`` in words, the CLI's way: "an integer", "a number", "true or false", ..."""
    if (args := _union_args(tp)) is not None:
        return " or ".join(describe(a) for a in args)
    if tp is type(None) or tp is None:
        return "None"
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if tp in words:
        return words[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list):
        name = "a tuple" if origin is tuple else "a list"
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"{name} of {len(args)} ({', '.join(describe(a) for a in args)})"
        return f"{name} (each item {describe(args[0])})" if args and args[0] is not Any else name
    if origin is dict or tp is dict:
        return "a dict with string keys" if args and args[0] is str else "a dict"
    return f"a {getattr(tp, '__name__', tp)}"


def normalize(value: Any, tp: Any) -> Any:
    """``value`` (already ``matches``) in the field's own type: an int for a float field as a
    float, a list for a tuple field as a tuple, so a config read back from JSON equals the one
    written."""
    if (args := _union_args(tp)) is not None:
        # The first member the value fits exactly decides (int | float keeps an int an int).
        exact = [a for a in args if isinstance(a, type) and type(value) is a]
        fits = exact or [a for a in args if matches(value, a)]
        return normalize(value, fits[0]) if fits else value
    if tp is float and _is_int(value):
        return float(value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and isinstance(value, (tuple, list)):
        if args and args[-1] is not Ellipsis:
            return tuple(map(normalize, value, args))
        return tuple(normalize(v, args[0]) for v in value) if args else tuple(value)
    if origin is list and isinstance(value, (tuple, list)):
        return [normalize(v, args[0]) for v in value] if args else list(value)
    return value


def lists_to_tuples(value: Any) -> Any:
    """``value`` with every list, at any depth, a tuple: model options read back from JSON as
    the configs (as code) wrote them, so a fold record's config equals the one that ran."""
    if isinstance(value, (list, tuple)):
        return tuple(lists_to_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: lists_to_tuples(v) for k, v in value.items()}
    return value


def check_field_types(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (field name → value; unknown names are the caller's to refuse) normalized, or a
    one-line ValueError: ``config: image_size='big' must be an integer``."""
    types_ = field_types(cls)
    out = dict(values)
    for name, value in values.items():
        tp = types_.get(name)
        if tp is None:
            continue
        if not matches(value, tp):
            raise ValueError(f"config: {name}={value!r} must be {describe(tp)}")
        out[name] = normalize(value, tp)
    return out


def checked_values(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """``d`` (a config as a file or JSON gives it back) ready for ``cls(**...)``, or a one-line
    ValueError naming an unknown key or a value of the wrong type."""
    unknown = sorted(set(d) - set(field_types(cls)))
    if unknown:
        raise ValueError(f"unknown config keys: {', '.join(unknown)}")
    out = check_field_types(cls, d)
    if "model_kwargs" in out:  # typed Any inside: JSON gave back its tuples as lists
        out["model_kwargs"] = lists_to_tuples(out["model_kwargs"])
    return out
