"""PyTorch state dict → Flax NNX model, by explicit name tables (no network, files only).

A *table* maps every torch key a model expects to a Flax variable path and a transform:

- ``conv``: Conv2d weight OIHW → Flax kernel HWIO (depthwise too: (C,1,kh,kw) → (kh,kw,1,C));
- ``linear``: Linear weight (out, in) → Flax kernel (in, out);
- ``copy``: biases, BatchNorm weight→scale / bias→bias / running_mean→mean / running_var→var,
  GroupNorm weight→scale / bias→bias.

Tables are written per architecture (each module's ``torch_table(tb, torch_prefix, flax_path)``
names its own children) and checked both ways before anything is written: a torch key the table
does not know, a key the table expects but the file lacks, a Flax variable no key fills, or a shape
mismatch is one ``WeightPortError`` listing the offending names. ``num_batches_tracked`` is
optional (torch bookkeeping, no Flax counterpart).

``load_encoder_weights`` ports an ImageNet torchvision (or smp encoder) checkpoint into a model's
``encoder``; the classification baselines reuse ``port_state_dict`` with their own tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtl_bench.weights_file import WeightPortError, load_state_dict

FlaxPath = tuple[str | int, ...]


def sub(prefix: str, name: str | int) -> str:
    """Torch key of child ``name`` under ``prefix`` (``""`` is the root: no leading dot)."""
    return f"{prefix}.{name}" if prefix else str(name)


@dataclass(frozen=True)
class Target:
    path: FlaxPath
    kind: str  # "conv" | "linear" | "copy"


@dataclass
class TorchTable:
    """Explicit torch key → Flax path table, built block by block."""

    entries: dict[str, Target] = field(default_factory=dict)
    optional: set[str] = field(default_factory=set)

    def add(self, key: str, path: FlaxPath, kind: str = "copy") -> None:
        if key in self.entries:
            raise ValueError(f"torch key {key!r} is mapped twice (table bug)")
        self.entries[key] = Target(tuple(path), kind)

    def conv(self, t: str, f: FlaxPath, module: nnx.Conv) -> None:
        self.add(sub(t, "weight"), (*f, "kernel"), "conv")
        if module.bias is not None:
            self.add(sub(t, "bias"), (*f, "bias"))

    def linear(self, t: str, f: FlaxPath, module: nnx.Linear) -> None:
        self.add(sub(t, "weight"), (*f, "kernel"), "linear")
        if module.bias is not None:
            self.add(sub(t, "bias"), (*f, "bias"))

    def bn(self, t: str, f: FlaxPath) -> None:
        for tk, fk in (("weight", "scale"), ("bias", "bias"), ("running_mean", "mean")):
            self.add(sub(t, tk), (*f, fk))
        self.add(sub(t, "running_var"), (*f, "var"))
        self.optional.add(sub(t, "num_batches_tracked"))

    def gn(self, t: str, f: FlaxPath) -> None:
        self.add(sub(t, "weight"), (*f, "scale"))
        self.add(sub(t, "bias"), (*f, "bias"))


class TorchPortable(Protocol):
    """What ``load_encoder_weights`` needs from an encoder module."""

    first_conv_key: str  # torch key of the first conv's weight (channel adaptation)
    ignore_prefixes: tuple[str, ...]  # classifier keys a torchvision checkpoint also holds

    def torch_table(self, tb: TorchTable, t: str, f: FlaxPath) -> None: ...


def _resolve(model: nnx.Module, path: FlaxPath) -> nnx.Variable:
    node: Any = model
    for part in path:
        node = (
            node[part]
            if isinstance(part, int) or isinstance(node, nnx.Dict)
            else getattr(node, part, None)
        )
        if node is None:
            raise WeightPortError(f"table bug: Flax path {'/'.join(map(str, path))} not in model")
    if not isinstance(node, nnx.Variable):
        raise WeightPortError(f"table bug: {'/'.join(map(str, path))} is not a variable")
    return node


def _transform(value: np.ndarray, kind: str) -> np.ndarray:
    if kind == "conv":
        return np.transpose(value, (2, 3, 1, 0))
    if kind == "linear":
        return np.transpose(value, (1, 0))
    return value


def _listing(what: str, keys: Iterable[str], limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit]) + (f", … (+{len(keys) - limit})" if len(keys) > limit else "")
    return f"{len(keys)} {what}: {shown}"


def port_state_dict(
    model: nnx.Module,
    state_dict: Mapping[str, np.ndarray],
    table: TorchTable,
    *,
    scope: FlaxPath = (),
    ignore_prefixes: tuple[str, ...] = (),
    source: str = "state dict",
) -> int:
    """Copy ``state_dict`` into ``model`` through ``table``; returns the number of tensors set.

    Every Flax Param/BatchStat under ``scope`` must be filled by the table, every table key must
    be in the file, and every file key must be in the table (or start with ``ignore_prefixes``,
    or be optional); otherwise nothing is written and ``WeightPortError`` lists the mismatches.
    """
    unexpected = [
        k
        for k in state_dict
        if k not in table.entries and k not in table.optional and not k.startswith(ignore_prefixes)
    ]
    missing = [k for k in table.entries if k not in state_dict]
    covered = {t.path for t in table.entries.values()}
    uncovered = [
        "/".join(map(str, p))
        for p, v in nnx.iter_graph(model)
        if isinstance(v, nnx.Param | nnx.BatchStat)
        and p[: len(scope)] == scope
        and tuple(p) not in covered
    ]
    problems, values = [], {}
    for key, target in table.entries.items():
        if key not in state_dict:
            continue
        var = _resolve(model, target.path)
        value = _transform(np.asarray(state_dict[key], np.float32), target.kind)
        if value.shape != tuple(var.shape):
            problems.append(f"{key} {tuple(state_dict[key].shape)} vs Flax {tuple(var.shape)}")
        values[key] = (var, value)
    parts = []
    if unexpected:
        parts.append(_listing("keys not in the table", unexpected))
    if missing:
        parts.append(_listing("expected keys missing", missing))
    if uncovered:
        parts.append(_listing("Flax variables no key fills", uncovered))
    if problems:
        parts.append(_listing("shape mismatches", problems))
    if parts:
        raise WeightPortError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))
    for var, value in values.values():
        var.set_value(jnp.asarray(value, dtype=var.dtype))
    return len(values)


def adapt_first_conv(weight: np.ndarray, in_channels: int) -> np.ndarray:
    """smp's ``patch_first_conv`` for pretrained weights: an RGB (O,3,kh,kw) kernel for
    ``in_channels`` inputs — summed over RGB for 1 channel (a grey image then gives the response
    of the same grey RGB image), else channels cycled R,G,B,R,… and scaled by 3/in_channels."""
    if weight.shape[1] == in_channels:
        return weight
    if weight.shape[1] != 3:
        raise WeightPortError(
            f"first conv has {weight.shape[1]} input channels, cannot adapt to {in_channels}"
        )
    if in_channels == 1:
        return weight.sum(axis=1, keepdims=True)
    idx = np.arange(in_channels) % 3
    return weight[:, idx] * (3.0 / in_channels)


def load_torch_weights(model: nnx.Module, path: str | Path) -> int:
    """Port a full model's torch state dict (e.g. an smp model's) via ``model.torch_table()``."""
    if not hasattr(model, "torch_table"):
        raise TypeError(f"{type(model).__name__} has no torch_table(); it cannot load {path}")
    sd = load_state_dict(path)
    return port_state_dict(model, sd, model.torch_table(), source=str(path))


def load_encoder_weights(model: nnx.Module, path: str | Path, *, attr: str = "encoder") -> int:
    """Load a local ImageNet checkpoint (torchvision classifier or smp encoder) into
    ``model.<attr>``; classifier keys (``fc.*`` / ``classifier.*``) are skipped, an ``encoder.``
    prefix (a whole smp model's file) is stripped and its decoder keys ignored, and the first conv
    is adapted to the model's input channels as smp does."""
    encoder: TorchPortable = getattr(model, attr, None)
    if encoder is None or not hasattr(encoder, "torch_table"):
        raise TypeError(f"{type(model).__name__} has no portable .{attr}; cannot load {path}")
    sd = load_state_dict(path)
    if any(k.startswith("encoder.") for k in sd):
        sd = {k.removeprefix("encoder."): v for k, v in sd.items() if k.startswith("encoder.")}
    tb = TorchTable()
    encoder.torch_table(tb, "", (attr,))
    first = encoder.first_conv_key
    if first in sd:
        want_in = _resolve(model, tb.entries[first].path).shape[2]
        sd = {**sd, first: adapt_first_conv(np.asarray(sd[first], np.float32), want_in)}
    return port_state_dict(
        model, sd, tb, scope=(attr,), ignore_prefixes=encoder.ignore_prefixes, source=str(path)
    )
