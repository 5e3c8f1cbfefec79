"""Reference checkpoints → classifiers, with head replacement, on ``mtl_bench.weights``' port.

Each architecture writes its explicit torch-name table in its own module (``add_torch``, the
``torch_table`` convention of the encoders); this module adds what transfer learning needs:

- **head replacement**: a layer named in the model's ``head_attrs`` (the last dense layer, and
  Inception's aux classifier) is loaded only when the file's tensors have its shape; otherwise
  (1000 ImageNet classes into a 2-class model, or a headless file) it keeps its fresh init and
  the file's head keys are skipped. Every other layer must be filled exactly, or the whole port
  fails with ``WeightPortError`` listing the keys (nothing is half-written);
- **torchvision's legacy DenseNet names** (``denselayer1.norm.1.weight`` in the downloadable
  files), renamed with torchvision's own pattern;
- a ``PortReport`` and ``weights_note`` so a run can say where its weights came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flax import nnx

from mtl_bench.weights import TorchTable, WeightPortError, load_state_dict, port_state_dict

# torchvision.models.densenet._load_state_dict: old checkpoints name "norm.1" what is now "norm1"
# (its pattern, plus num_batches_tracked, which a re-saved legacy file may carry).
_DENSENET_LEGACY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
    r"((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


@dataclass(frozen=True)
class PortReport:
    source: str
    tensors: int
    head: str  # "loaded" or why it was not: "replaced (file: 1000 classes)", "initialised ..."


def normalise_keys(sd: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename legacy torchvision DenseNet keys (``...norm.1.weight`` → ``...norm1.weight``)."""
    out = {}
    for key, value in sd.items():
        m = _DENSENET_LEGACY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


def _flax_shape(shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
    if kind == "conv":
        return (shape[2], shape[3], shape[1], shape[0])
    if kind == "linear":
        return tuple(reversed(shape))
    return tuple(shape)


class _View(nnx.Module):
    """The model without its replaced head layers (same submodule objects), so the port's
    "every Flax variable is filled" check covers exactly the layers the file must provide."""

    def __init__(self, parts: dict[str, nnx.Module]) -> None:
        for name, part in parts.items():
            setattr(self, name, part)


def _file_layer(entries: Mapping[str, object]) -> str:
    """The file's name of a head layer (``classifier.1`` for torchvision's MobileNetV2, ``fc``
    in an imported folder): the common prefix of its keys, which is what a user finds there."""
    split = [re.split(r"[./]", k)[:-1] for k in entries]
    return ".".join(os.path.commonprefix(split)) or "head"  # commonprefix works on lists too


def port_with_head(
    model: nnx.Module,
    sd: Mapping[str, np.ndarray],
    table: TorchTable,
    *,
    source: str,
    ignore_prefixes: Iterable[str] = (),
) -> PortReport:
    """Port ``sd`` through ``table``; head layers whose shapes differ (or that the file lacks)
    keep their init. Raises ``WeightPortError`` on any other mismatch."""
    variables = {
        tuple(p): v for p, v in nnx.iter_graph(model) if isinstance(v, nnx.Param | nnx.BatchStat)
    }
    heads = [a for a in model.head_attrs if getattr(model, a, None) is not None]
    dropped: dict[str, str] = {}
    for attr in heads:
        entries = {k: t for k, t in table.entries.items() if t.path[0] == attr}
        present = [k for k in entries if k in sd]
        fits = len(present) == len(entries) and all(
            _flax_shape(np.shape(sd[k]), t.kind) == tuple(variables[t.path].shape)
            for k, t in entries.items()
        )
        if fits:
            continue
        if present:
            # A head's bias has one entry per class in torch and Flax layouts alike.
            biases = [k for k in present if table.entries[k].path[-1] == "bias"]
            n = np.shape(sd[biases[0]])[0] if biases else "?"
            name = _file_layer(entries)
            whose = "file" if name == attr else f"file's {name}"
            dropped[attr] = f"replaced ({whose}: {n} classes)"
        else:
            dropped[attr] = f"initialised (the file has no {_file_layer(entries)})"
    tb = TorchTable(
        {k: t for k, t in table.entries.items() if t.path[0] not in dropped}, set(table.optional)
    )
    skip = tuple(ignore_prefixes) + tuple(
        k for k, t in table.entries.items() if t.path[0] in dropped
    )
    top = dict.fromkeys(p[0] for p in variables)
    view = _View({a: getattr(model, a) for a in top if a not in dropped})
    try:
        n = port_state_dict(view, sd, tb, ignore_prefixes=skip, source=source)
    except WeightPortError as e:  # name the model, not the view, in the one-line message
        msg = str(e).replace(
            f"does not fit {_View.__name__}", f"does not fit {type(model).__name__}"
        )
        raise WeightPortError(msg) from None
    head = "loaded" if not dropped else "; ".join(f"{a} {why}" for a, why in dropped.items())
    return PortReport(source, n, head)


def load_classifier_weights(model: nnx.Module, path: str | Path) -> PortReport:
    """Port a torchvision/timm ``.pth``/``.safetensors`` file into ``model`` (head replaced when
    ``num_classes`` differs). Keys of layers this configuration lacks (Inception's aux head when
    ``aux_logits=False``) are skipped."""
    sd = normalise_keys(load_state_dict(path))
    return port_with_head(
        model,
        sd,
        model.torch_table(),
        source=str(path),
        ignore_prefixes=model.ignore_torch_prefixes,
    )


def load_weights(model: nnx.Module, weights: str | Path) -> PortReport:
    """``weights`` is an imported folder (``mtl-bench weights import``) or a checkpoint file."""
    path = Path(weights)
    if path.is_dir():
        from mtl_bench.weights_cli import load_imported

        report = load_imported(model, path)
    elif path.is_file():
        report = load_classifier_weights(model, path)
    else:
        raise FileNotFoundError(
            f"weights {path} does not exist (give an imported-weights folder or a .pth/"
            ".safetensors file; nothing is downloaded)"
        )
    model.weights_source = f"{report.source} (head {report.head})"
    return report


def weights_note(model: nnx.Module, name: str | None = None) -> str:
    """One line for the run's output and result file: where the weights of ``name`` (default:
    the classifier's arch) came from."""
    name = name or model.arch
    src = getattr(model, "weights_source", None)
    if src is None:
        return f"{name}: training from scratch (no weights file)"
    return f"{name}: initialised from {src}"


def export_state_dict(model: nnx.Module) -> dict[str, np.ndarray]:
    """The model's variables under the reference's torch names and layouts (the port's inverse):
    what ``torch_model.load_state_dict`` would accept, e.g. to check a port or hand weights back."""
    variables = {tuple(p): v for p, v in nnx.iter_graph(model) if isinstance(v, nnx.Variable)}
    out = {}
    for key, t in model.torch_table().entries.items():
        v = np.asarray(variables[t.path][...])
        if t.kind == "conv":
            v = np.transpose(v, (3, 2, 0, 1))
        elif t.kind == "linear":
            v = v.T
        # Contiguous: safetensors.numpy.save_file writes a transposed view's buffer unpermuted.
        out[key] = np.ascontiguousarray(v)
    return out
