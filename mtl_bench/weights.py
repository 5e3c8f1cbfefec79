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

FlaxPath = tuple[str | int, ...]


def sub(prefix: str, name: str | int) -> str:
    """Torch key of child ``name`` under ``prefix`` (``""`` is the root: no leading dot)."""
    return f"{prefix}.{name}" if prefix else str(name)


class WeightPortError(ValueError):
    """A state dict does not fit a model; the message lists the keys that do not match."""


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


def _unreadable(path: Path, err: Exception) -> WeightPortError:
    """One line for a weights file its reader rejects. Only the message's first line is kept:
    torch's goes on to suggest ``weights_only=False``, which runs code from an unknown file."""
    first = (str(err).strip().splitlines() or [""])[0]
    if "weights_only" in first:  # torch: the file holds more than tensors, or is not torch's
        first = "not only tensors, or not a torch file; it is never unpickled beyond tensors"
    return WeightPortError(
        f"weights file {path}: not a readable {path.suffix} state dict ({type(err).__name__}: "
        f"{first[:200]})"
    )


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``.pth``/``.pt``/``.bin`` (needs torch), ``.safetensors`` or ``.npz`` as numpy arrays.

    A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a DataParallel ``module.`` prefix
    are removed. Nothing is downloaded: ``path`` must be a local file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights file {p} does not exist (weights are never downloaded)")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ImportError(f"reading {p} needs the 'safetensors' package") from None
        try:
            raw: Mapping[str, Any] = load_file(str(p))
        except Exception as e:  # safetensors' own error type: a truncated or foreign file
            raise _unreadable(p, e) from None
    elif suffix == ".npz":
        try:
            with np.load(p) as z:
                raw = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as e:
            raise _unreadable(p, e) from None
    elif suffix in (".pth", ".pt", ".bin"):
        try:
            import torch
        except ImportError:
            raise ImportError(
                f"reading {p} needs torch (install the [torch] extra) or convert it to .safetensors"
            ) from None
        try:
            raw = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle, zip or torch errors; weights_only refuses code objects
            raise _unreadable(p, e) from None
        for wrapper in ("state_dict", "model"):
            if isinstance(raw, dict) and isinstance(raw.get(wrapper), dict):
                raw = raw[wrapper]
        if not isinstance(raw, dict):
            raise WeightPortError(f"weights file {p} holds a {type(raw).__name__}, not a dict")
        bad = [k for k, v in raw.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise WeightPortError(f"weights file {p}: entries that are not tensors: {bad[:8]}")
        # bf16/fp16 checkpoints become fp32 numpy (numpy has no bfloat16).
        raw = {
            k: v.detach().float().numpy() if v.is_floating_point() else v.numpy()
            for k, v in raw.items()
        }
    else:
        raise ValueError(
            f"weights file {p}: unknown format {suffix!r}; use .pth, .safetensors or .npz"
        )
    if not isinstance(raw, Mapping) or not raw:
        raise WeightPortError(f"weights file {p} holds no tensors")
    return {k.removeprefix("module."): np.asarray(v) for k, v in raw.items()}


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
