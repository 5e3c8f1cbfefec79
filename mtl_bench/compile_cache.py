"""JAX's persistent compilation cache for the CLI's training commands (``cv``, ``train``,
``predict``, ``reproduce``; ``bench`` manages its own), set from the environment."""

from __future__ import annotations

import os
from pathlib import Path


def enable_compile_cache() -> None:
    """JAX's persistent compilation cache, on by default: a second identical run skips compiling."""
    if os.environ.get("MTL_BENCH_COMPILE_CACHE", "1") == "0":
        return
    import jax

    path = os.environ.get("MTL_BENCH_COMPILE_CACHE_DIR") or str(
        Path.home() / ".cache" / "mtl_bench" / "jax_compile"
    )
    try:  # JAX would warn at every compile, in a paragraph naming none of our settings
        Path(path).mkdir(parents=True, exist_ok=True)
        writable = os.access(path, os.W_OK | os.X_OK)
    except OSError:
        writable = False
    if not writable:
        from mtl_bench.progress import log

        log(
            f"mtl-bench: warning: compile cache {path} cannot be written: compiling without it "
            "(set MTL_BENCH_COMPILE_CACHE_DIR to a writable folder, or MTL_BENCH_COMPILE_CACHE=0)"
        )
        return
    jax.config.update("jax_compilation_cache_dir", path)
    min_secs = float(os.environ.get("MTL_BENCH_COMPILE_CACHE_MIN_SECS", "1.0"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_secs)
