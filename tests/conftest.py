"""Test session set-up: a persistent JAX compilation cache shared by the session's tests.

Many tests build an engine for the same tiny model; with the cache, identical programs compile
once per session (the suite's time on 2 cores is mostly XLA compilation otherwise).
"""

import os
import tempfile
from pathlib import Path

import jax
import pytest
from busi_fixture import make_busi_tree, standard_spec
from fixtures_results import write_fixture_results

_CACHE = os.environ.get("MTL_BENCH_TEST_COMPILE_CACHE") or os.path.join(
    tempfile.gettempdir(), "mtl_bench_test_jax_cache"
)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# Result folders the table tests share (tests/test_table*.py).
@pytest.fixture
def fx(tmp_path):
    methods = {
        "mtl_resunet": {"seg_quality": 0.85, "cls_quality": 0.9},
        "unet": {"tasks": ("mask",), "seg_quality": 0.7},
        "resnet50": {"tasks": ("label",), "cls_quality": 0.6},
    }
    return tmp_path, write_fixture_results(tmp_path, methods, n_folds=5, n_images=40, seed=0)


@pytest.fixture
def three_seg(tmp_path):
    methods = {
        "mtl_resunet": {"seg_quality": 0.85, "cls_quality": 0.9},
        "unet": {"tasks": ("mask",), "seg_quality": 0.7},
        "fpn": {"tasks": ("mask",), "seg_quality": 0.83},
    }
    write_fixture_results(tmp_path, methods, n_folds=5, n_images=40, seed=0)
    return tmp_path


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict]:
    """A small clean BUSI-layout folder (tests/test_reader*.py): its root and its items."""
    root = tmp_path / "BUSI"
    return root, make_busi_tree(root, standard_spec())


@pytest.fixture
def reproduce_env(tmp_path, monkeypatch):
    """A run's own data cache, and no compile cache of its own (tests/test_reproduce*.py): this
    file already set one up for the session."""
    monkeypatch.setenv("MTL_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTL_BENCH_COMPILE_CACHE", "0")
