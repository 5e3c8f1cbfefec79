"""Where a number came from: git commit, package versions, device kind, host CPU (in results)."""

from __future__ import annotations

import functools
import os
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


@functools.cache
def host_cpu() -> str:
    """The host CPU: model name, x86 family/model, architecture, usable cores, widest vector ISA.

    Why it is recorded: XLA compiles CPU kernels for the CPU it runs on, so a CPU-trained result
    repeats bit for bit on the same CPU model only. Measured: the phantom folds of five methods
    rerun on an AMD EPYC (Zen 4) VM differed from those committed from another VM by up to 0.2
    in a fold's AUC (0.5 in a near-chance classifier's PRE), with the same code, data, folds and
    package versions (results/README.md). E.g.
    "AMD EPYC (family 25, model 17), x86_64, 2 cores, avx512f".
    """
    fields: dict[str, str] = {}
    try:  # Linux; elsewhere platform.processor() is all there is
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first processor's
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 0
    flags = set(fields.get("flags", "").split())
    isa = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "")
    return ", ".join(x for x in (name, platform.machine(), f"{cores} cores", isa) if x)
