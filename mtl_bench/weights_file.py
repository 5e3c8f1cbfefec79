"""Reading a local weights file (``.pth``/``.pt``/``.bin`` through torch, ``.safetensors``,
``.npz``) as numpy arrays, with one-line errors for a file that is not a state dict. Nothing is
ever downloaded, and a torch file is never unpickled beyond tensors (``weights_only=True``)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


class WeightPortError(ValueError):
    """A state dict does not fit a model, or a file is not one; the message says which keys or
    what is wrong."""


def _unreadable(path: Path, err: Exception) -> WeightPortError:
    """One line for a weights file its reader rejects. Only the message's first line is kept:
    torch's goes on to suggest ``weights_only=False``, which runs code from an unknown file."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()  # torch colours its message
    first = (text.splitlines() or [""])[0]
    if "weights only" in text.lower() or "weights_only" in text:
        # torch: more than tensors (a whole pickled model?), or not a torch file at all
        first = (
            "holds more than tensors, e.g. a whole model saved with torch.save(model): save "
            "model.state_dict() instead (a file is never unpickled beyond tensors)"
        )
    return WeightPortError(
        f"weights file {path}: not a readable {path.suffix} state dict ({type(err).__name__}: "
        f"{first[:200]})"
    )


def _not_the_format(path: Path, suffix: str) -> WeightPortError | None:
    """An error for a file whose first bytes are not its format's (a text file, an HTML page
    saved as .pth): the readers' own reasons (torch's "weights only" advice, numpy's about
    pickles) point elsewhere. torch files are zip archives or, before torch 1.6, pickles."""
    with open(path, "rb") as f:
        head = f.read(4)
    if suffix == ".npz" and head[:2] != b"PK":
        return WeightPortError(f"weights file {path}: not an .npz archive (not a zip file)")
    if suffix in (".pth", ".pt", ".bin") and head[:2] != b"PK" and head[:1] != b"\x80":
        return WeightPortError(
            f"weights file {path}: not a torch file (neither a zip archive nor a pickle)"
        )
    return None


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``.pth``/``.pt``/``.bin`` (needs torch), ``.safetensors`` or ``.npz`` as numpy arrays.

    A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a DataParallel ``module.`` prefix
    are removed. Nothing is downloaded: ``path`` must be a local file.
    """
    p = Path(path)
    if p.is_dir():
        raise WeightPortError(
            f"weights file {p} is a folder: give the .pth/.safetensors/.npz file (an imported "
            "folder from `mtl-bench weights import` is for the classifiers' `weights` option)"
        )
    if not p.is_file():
        raise FileNotFoundError(f"weights file {p} does not exist (weights are never downloaded)")
    suffix = p.suffix.lower()
    if wrong := _not_the_format(p, suffix):
        raise wrong
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
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # a damaged archive
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
            f"weights file {p}: unknown format {suffix!r}; use .pth (.pt, .bin), .safetensors "
            "or .npz"
        )
    if not isinstance(raw, Mapping) or not raw:
        raise WeightPortError(f"weights file {p} holds no tensors")
    return {k.removeprefix("module."): np.asarray(v) for k, v in raw.items()}
