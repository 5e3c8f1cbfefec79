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


TINY_NET = {"widths": (4, 8, 16, 32, 64), "dense_units": 16}


def _engine(alpha):
    from mtl_bench.config import RunConfig
    from mtl_bench.fit import build_model
    from mtl_bench.train import Engine

    cfg = RunConfig(model_kwargs=TINY_NET, image_size=32, batch_size=8, preprocess="none")
    return Engine(build_model(cfg, 2), ("mask", "label"), cfg, steps_per_epoch=2, class_alpha=alpha)


def _step_program(engine, host, n: int):
    """The lowered training step on ``host`` (its first ``n`` rows real) and its arguments."""
    import jax

    placed = engine.place_data(host)
    table, weights = engine.epoch_table(n, jax.random.key(0))
    assert int(table.max()) < n  # padding rows, if any, are never drawn
    args = (engine.flatten_state(engine.initial_state), placed, table, weights, jax.random.key(1))
    return engine._train_indexed.lower(*args).as_text(), args


def test_folds_with_other_class_weights_share_the_compiled_step():
    # Every fold has its own class weights. As a constant of the step they made each fold a new
    # program, which JAX's persistent cache could not serve (the 2026-11-27 H100 protocol run
    # compiled for 45 s per fold); as an argument, folds of one size share one program.
    import numpy as np

    from mtl_bench.batches import fold_arrays
    from mtl_bench.data.phantom import synth_phantom

    data = synth_phantom(16, image_size=32, seed=3, class_set="binary")
    host = fold_arrays(data.images, data.masks, data.labels)
    programs, focal = [], []
    for alpha in ([0.7, 1.8], [1.2, 0.8]):
        engine = _engine(np.array(alpha))
        program, args = _step_program(engine, host, len(data))
        programs.append(program)
        focal.append(float(engine._train_indexed(*args)[1]["focal_loss"]))
    assert programs[0] == programs[1]
    assert focal[0] != focal[1]  # the weights given are the weights used


def test_folds_a_few_images_apart_share_the_compiled_step():
    # The fit loop pads a fold's arrays to a multiple of fit.ROW_MULTIPLE rows: the paper's 647
    # images make training folds of 517 and 518 images, one program for both once padded.
    from mtl_bench.batches import fold_arrays, pad_rows
    from mtl_bench.data.phantom import synth_phantom
    from mtl_bench.fit import ROW_MULTIPLE

    data = synth_phantom(20, image_size=32, seed=3, class_set="binary")
    engine = _engine(None)

    def program(n: int, pad: bool) -> str:
        host = fold_arrays(data.images[:n], data.masks[:n], data.labels[:n])
        host = pad_rows(host, ROW_MULTIPLE) if pad else host
        assert len(host["labels"]) == (ROW_MULTIPLE if pad else n)
        return _step_program(engine, host, n)[0]

    assert program(19, pad=True) == program(20, pad=True)
    assert program(19, pad=False) != program(20, pad=False)


def test_a_cache_folder_that_cannot_be_written_is_said_and_not_used(tmp_path, monkeypatch, capsys):
    import jax

    from mtl_bench.compile_cache import enable_compile_cache

    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("MTL_BENCH_COMPILE_CACHE_DIR", str(tmp_path / "afile" / "cache"))
    before = jax.config.jax_compilation_cache_dir
    enable_compile_cache()
    err = " ".join(capsys.readouterr().err.split())
    assert f"compile cache {tmp_path / 'afile' / 'cache'} cannot be written" in err
    assert jax.config.jax_compilation_cache_dir == before  # JAX is not pointed at it
