"""Test session set-up: a persistent JAX compilation cache shared by the session's tests.

Many tests build an engine for the same tiny model; with the cache, identical programs compile
once per session (the suite's time on 2 cores is mostly XLA compilation otherwise).
"""

import os
import tempfile

import jax

_CACHE = os.environ.get("MTL_BENCH_TEST_COMPILE_CACHE") or os.path.join(
    tempfile.gettempdir(), "mtl_bench_test_jax_cache"
)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
