"""The persistent compilation cache is on by default and a second identical run reuses it."""

import os
import subprocess
import sys

import pytest

ARGS = [
    "train", "--model", "mtl_resunet", "--fold", "0", "--quiet",
    "--set", "synthetic_n=16", "--set", "image_size=32", "--set", "epochs=1",
    "--set", "batch_size=8", "--set", "preprocess=none", "--set", "folds=2",
    "--set", "model_kwargs.widths=(4,8,16,32,64)", "--set", "checkpoint_every=0",
]  # fmt: skip


@pytest.mark.slow
def test_second_run_reuses_the_cache(tmp_path):
    cache = tmp_path / "jax_cache"
    env = {
        **os.environ,
        "MTL_BENCH_COMPILE_CACHE_DIR": str(cache),
        "MTL_BENCH_COMPILE_CACHE_MIN_SECS": "0",
        "MTL_BENCH_CACHE": str(tmp_path / "data"),
    }
    cmd = [sys.executable, "-m", "mtl_bench.cli", *ARGS]

    def run(out: str) -> set[str]:
        proc = subprocess.run([*cmd, "--out", str(tmp_path / out)], env=env,
                              capture_output=True, text=True, timeout=900)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return {p.name for p in cache.rglob("*") if p.is_file()}

    first = run("a")
    assert first, "the first run wrote nothing to the compilation cache"
    second = run("b")
    assert second == first  # every program came from the cache: nothing new was compiled
