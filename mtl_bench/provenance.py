"""Where a number came from: git commit, package versions, device kind (stored in every result)."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "mtl-bench")


@functools.cache
def git_commit() -> str:
    """HEAD of the checkout this package runs from, '+dirty' if it has uncommitted changes.

    Read once per process and kept: a commit made while a long run goes on (the run keeps the
    code it imported) must not be recorded for the folds written after it. Long-running entry
    points (``run_cv``, ``reproduce``, the throughput bench) call this when they start.
    """
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_kind() -> str:
    """The first device's kind ('cpu', 'NVIDIA H100 80GB HBM3', 'TPU v5 lite', ...)."""
    import jax

    d = jax.devices()[0]
    return "cpu" if d.platform == "cpu" else d.device_kind
