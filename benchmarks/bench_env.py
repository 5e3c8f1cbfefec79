"""The bench's run environment: JAX's persistent compilation cache as ``--compile-cache`` asks,
and the provenance columns every row carries (device, versions, commit, step counts, flags)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any


def setup_compile_cache(mode: str) -> str:
    """Point JAX's persistent cache where asked, before anything compiles; returns a label."""
    import jax

    if mode == "off":
        return "off"
    if mode == "fresh":
        path = tempfile.mkdtemp(prefix="mtl_bench_bench_cache_")
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    else:
        path = mode
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return "fresh" if mode == "fresh" else path


def environment(cache_label: str, steps: int, warmup: int) -> dict[str, Any]:
    """The columns shared by every row of this run."""
    import jax

    from mtl_bench.provenance import device_kind, git_commit, host_cpu, versions

    v = versions()
    try:
        from importlib.metadata import version

        torch_version = version("torch")
    except Exception:  # not installed: the peer column stays empty
        torch_version = ""
    return {
        "device_kind": device_kind(),
        "host_cpu": host_cpu(),
        "platform": jax.devices()[0].platform,
        "jax_version": v.get("jax"),
        "jaxlib_version": v.get("jaxlib"),
        "flax_version": v.get("flax"),
        "torch_version": torch_version,
        "git_commit": git_commit(),
        "timed_steps": steps,
        "warmup_steps": warmup,
        "compile_cache": cache_label,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # tuning runs differ only here
    }
