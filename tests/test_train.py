"""The training engine: batching, loss falls, resume equality, NaN stop, determinism."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_bench.batches import _epoch_table, fold_arrays
from mtl_bench.config import RunConfig
from mtl_bench.cv import run_cv
from mtl_bench.data.phantom import synth_phantom
from mtl_bench.fit import build_model, fit_fold
from mtl_bench.metrics import segmentation_metrics_from_counts
from mtl_bench.optim import make_optimizer
from mtl_bench.train import Engine, TrainingDiverged

TINY = RunConfig(
    model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16},
    synthetic_n=24,
    image_size=32,
    folds=2,
    epochs=2,
    batch_size=8,
    lr=3e-3,
    lr_decay_every=0,
    preprocess="none",
    checkpoint_every=1,
    eval_batch_size=8,
)


@pytest.fixture(scope="module")
def data():
    return synth_phantom(24, image_size=32, seed=3, class_set="binary")


def test_epoch_table_covers_every_sample_once():
    table, weight = _epoch_table(jax.random.key(0), 21, 8, 3)
    table, weight = np.asarray(table), np.asarray(weight)
    assert table.shape == weight.shape == (3, 8)
    real = table.ravel()[weight.ravel() > 0]
    assert sorted(real.tolist()) == list(range(21))  # each once; 3 padded slots weigh 0
    assert weight.sum() == 21
    other, _ = _epoch_table(jax.random.key(1), 21, 8, 3)
    assert not np.array_equal(table, np.asarray(other))  # reshuffled per epoch key


def _split(n):
    # The phantom is ordered by class: shuffle so both classes are in train and test.
    idx = np.random.default_rng(0).permutation(n)
    return np.sort(idx[: n - 8]), np.sort(idx[n - 8 :])


def test_resume_gives_identical_metrics(data, tmp_path):
    train, test = _split(len(data))
    full = fit_fold(TINY, data, train, test, ckpt_dir=tmp_path / "a", quiet=True)
    again = fit_fold(TINY, data, train, test, quiet=True)
    # Same seed and config: identical numbers on CPU (determinism).
    np.testing.assert_array_equal(full.test_eval["counts"], again.test_eval["counts"])
    np.testing.assert_array_equal(full.test_eval["prob"], again.test_eval["prob"])
    # "Interrupted" after epoch 1, then resumed to 2 epochs.
    half = dataclasses.replace(TINY, epochs=1)
    fit_fold(half, data, train, test, ckpt_dir=tmp_path / "b", quiet=True)
    resumed = fit_fold(TINY, data, train, test, ckpt_dir=tmp_path / "b", resume=True, quiet=True)
    assert resumed.epochs_run == 2 and resumed.extras["resumed_after_epoch"] == 1
    assert full.extras["resumed_after_epoch"] == 0
    np.testing.assert_array_equal(full.test_eval["counts"], resumed.test_eval["counts"])
    np.testing.assert_allclose(full.test_eval["prob"], resumed.test_eval["prob"], rtol=0, atol=0)
    # Resuming under other settings would record a run that did not happen: refused.
    for other, says in [
        (dataclasses.replace(TINY, lr=TINY.lr * 2), "lr: "),
        (dataclasses.replace(TINY, epochs=1), "epochs: 2 trained already → 1"),
        (dataclasses.replace(TINY, optimizer_flatten=True), "optimizer_flatten: False → True"),
    ]:
        with pytest.raises(ValueError, match="other settings") as err:
            fit_fold(other, data, train, test, ckpt_dir=tmp_path / "b", resume=True, quiet=True)
        assert says in str(err.value)


def test_eval_batching_does_not_change_results(data):
    train, test = _split(len(data))
    cfg = dataclasses.replace(TINY, epochs=1, checkpoint_every=0)
    run = fit_fold(cfg, data, train, test, quiet=True, keep_state=True)
    engine = run.engine
    arrays = engine.place_data(fold_arrays(data.images, data.masks, data.labels), for_eval=True)
    a = engine.evaluate(run.state, arrays, test)
    engine.cfg = dataclasses.replace(cfg, eval_batch_size=3)  # 8 = 3 + 3 + 2 (padded)
    engine._eval = jax.jit(engine.steps.evaluate)
    b = engine.evaluate(run.state, arrays, test)
    np.testing.assert_array_equal(a["counts"], b["counts"])
    np.testing.assert_allclose(a["prob"], b["prob"], rtol=1e-6)


@pytest.mark.slow
def test_loss_falls_and_dice_beats_background():
    ds = synth_phantom(48, image_size=32, seed=5, class_set="binary", difficulty=0.2)
    cfg = dataclasses.replace(
        TINY, epochs=12, checkpoint_every=0, lr=1e-2, model_kwargs={"widths": (8, 16, 32, 64, 128)}
    )
    train, test = _split(48)
    run = fit_fold(cfg, ds, train, test, quiet=True)
    losses = [r["loss"] for r in run.curve]
    assert losses[-1] < 0.8 * losses[0]
    seg = segmentation_metrics_from_counts(run.test_eval["counts"])
    # Predicting all background scores Dice 0 on every lesion image.
    assert seg["DC"] > 0.1


def test_nan_loss_stops_cleanly_and_writes_nothing(tmp_path, monkeypatch):
    import mtl_bench.cv

    # A NaN weight diverges at once; check_config would refuse it, so it is bypassed here.
    monkeypatch.setattr(mtl_bench.cv, "check_config", lambda cfg: None)
    cfg = dataclasses.replace(TINY, w_seg=float("nan"), epochs=1)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1 of"):
        run_cv(cfg, tmp_path, folds=[0], quiet=True)
    assert not (tmp_path / "mtl_resunet" / "fold_0.json").exists()


def test_cv_writes_schema_and_resume_skips(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_BENCH_CACHE", str(tmp_path / "cache"))
    cfg = dataclasses.replace(TINY, epochs=1, checkpoint_every=0)
    paths = run_cv(cfg, tmp_path / "res", quiet=True)
    assert sorted(paths) == [0, 1]
    rec = json.loads(paths[0].read_text())
    assert rec["schema"] == 1 and rec["method"] == "mtl_resunet" and rec["fold"] == 0
    manifest = json.loads((tmp_path / "res" / "folds.json").read_text())
    assert rec["fold_manifest_hash"] == manifest["hash"]
    assert set(rec["metrics"]["segmentation"]) >= {"JSI", "DC", "ACC", "PRE", "REC", "SPE"}
    assert set(rec["metrics"]["classification"]) >= {"ACC", "PRE", "REC", "SPE", "F1", "AUC"}
    assert rec["per_image"]["id"] == manifest["fold_ids"][0]
    assert rec["config"]["epochs"] == 1 and rec["train_img_per_s"] > 0
    mtime = paths[0].stat().st_mtime_ns
    run_cv(cfg, tmp_path / "res", resume=True, quiet=True)  # finished folds are not rerun
    assert paths[0].stat().st_mtime_ns == mtime
    # ... unless they ran with other settings: skipping them would mix two protocols.
    with pytest.raises(ValueError, match=r"fold_0.json: finished with other settings \(epochs"):
        run_cv(dataclasses.replace(cfg, epochs=2), tmp_path / "res", resume=True, quiet=True)
    # The folder's manifest decides the folds: a different fold_seed is recorded as used.
    again = run_cv(
        dataclasses.replace(cfg, fold_seed=7), tmp_path / "res", folds=[0], resume=True, quiet=True
    )
    assert again[0].stat().st_mtime_ns == mtime


def test_bf16_trains_with_fp32_master_weights(data):
    train, test = _split(len(data))
    cfg = dataclasses.replace(TINY, epochs=1, checkpoint_every=0, precision="bf16")
    run = fit_fold(cfg, data, train, test, quiet=True, keep_state=True)
    assert np.isfinite(run.curve[0]["loss"])
    dtypes = {x.dtype for x in jax.tree.leaves(run.state["params"])}
    assert dtypes == {np.dtype("float32")}  # master weights stay fp32
    stats = {x.dtype for x in jax.tree.leaves(run.state["rest"])}
    assert stats == {np.dtype("float32")}  # BatchNorm statistics too
    assert run.test_eval["prob"].dtype == np.float32
    assert np.isfinite(run.test_eval["prob"]).all()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_flattened_optimizer_computes_the_same_update(data, optimizer):
    # optimizer_flatten only changes how the element-wise update is laid out (fewer kernels).
    train, test = _split(len(data))
    cfg = dataclasses.replace(TINY, epochs=1, checkpoint_every=0, optimizer=optimizer)
    plain = fit_fold(cfg, data, train, test, quiet=True, keep_state=True)
    flat_cfg = dataclasses.replace(cfg, optimizer_flatten=True)
    flat = fit_fold(flat_cfg, data, train, test, quiet=True, keep_state=True)
    # The flattened state really is flat: one vector per moment instead of one per tensor.
    n_opt = [len(jax.tree.leaves(r.engine.initial_state["opt_state"])) for r in (plain, flat)]
    assert n_opt[1] <= 3 < n_opt[0], n_opt
    # The two layouts compile to different fusions, which may round apart by an ulp on some CPUs,
    # and Adam's m / sqrt(v) turns an ulp in a near-zero gradient into a visible fraction of a
    # step: seen 1.4e-6 on one of 9216 weights on an AMD EPYC VM (not on the earlier VMs), lr
    # 3e-3. So the weights must agree to 1/1000 of one step (the update on identical gradients is
    # checked to float precision in the test below).
    leaves = [jax.tree.leaves(r.state["params"]) for r in (plain, flat)]
    for a, b in zip(*leaves, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3 * cfg.lr)
    np.testing.assert_allclose(flat.test_eval["prob"], plain.test_eval["prob"], atol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_flattened_optimizer_update_equals_per_tensor_update(optimizer):
    # Same gradients in, same updates out: the flat layout changes no arithmetic, only layout.
    cfg = dataclasses.replace(TINY, optimizer=optimizer, weight_decay=1e-2)
    txs = [make_optimizer(dataclasses.replace(cfg, optimizer_flatten=f)) for f in (False, True)]
    rng = np.random.default_rng(0)
    params = {"conv": rng.normal(size=(3, 3, 2, 4)), "bias": rng.normal(size=(4,)) * 1e-3}
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    states = [tx.init(params) for tx in txs]
    for _ in range(3):
        grads = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
        out = [jax.jit(tx.update)(grads, st, params) for tx, st in zip(txs, states, strict=True)]
        states = [st for _, st in out]
        a, b = (jax.tree.leaves(u) for u, _ in out)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("layout", ["leaves", "packed"])
def test_jitted_step_takes_the_state_as_flat_arrays(data, layout):
    # The per-step call gets a plain list (cheap to flatten on the host): the state's leaves, or
    # a few flat buffers holding them (fewer runtime arguments). Either way one step is the pure
    # train step on the nested state, bit for bit.
    cfg = dataclasses.replace(TINY, state_layout=layout)
    model = build_model(cfg, num_classes=2)
    engine = Engine(model, ("mask", "label"), cfg, steps_per_epoch=3, class_alpha=np.ones(2))
    state = engine.initial_state
    arrays = engine.flatten_state(state)
    assert isinstance(arrays, list) and all(isinstance(x, jax.Array) for x in arrays)
    n_leaves = len(jax.tree.leaves(state))
    # packed: one float32 and one int32 buffer (the step counters) for 300-odd leaves
    assert len(arrays) == (n_leaves if layout == "leaves" else 2), len(arrays)
    assert int(engine.unflatten_state(arrays)["step"]) == 0
    assert arrays[engine.step_leaf].dtype == jnp.int32
    placed = engine.place_data(fold_arrays(data.images, data.masks, data.labels))
    table, weights = engine.epoch_table(len(data), jax.random.key(0))
    key = jax.random.key(1)
    copy = jax.tree.map(lambda x: x.copy(), arrays)  # the step donates its input
    new_arrays, m = engine._train_indexed(copy, placed, table, weights, key)
    new_state, m_ref = jax.jit(engine.steps.train_indexed)(state, placed, table, weights, key)
    back = engine.unflatten_state(new_arrays)
    assert int(back["step"]) == 1
    assert jax.tree.structure(back) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(new_state), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)  # the same program
    np.testing.assert_array_equal(m["loss"], m_ref["loss"])


def test_unknown_state_layout_is_one_clear_error():
    cfg = dataclasses.replace(TINY, state_layout="flat")
    with pytest.raises(ValueError, match="state_layout 'flat': use packed or leaves"):
        Engine(build_model(cfg, 2), ("mask", "label"), cfg, steps_per_epoch=1, class_alpha=None)


def test_initial_state_survives_training(data):
    # Training donates the state's buffers; place_state copies, so the engine's initial state
    # stays readable after an epoch (it is the restore target and the start of every fold).
    model = build_model(TINY, num_classes=2)
    engine = Engine(model, ("mask", "label"), TINY, steps_per_epoch=2, class_alpha=np.ones(2))
    # copies: a zero-copy view held on the CPU would stop the donation this test is about
    before = [np.array(x, copy=True) for x in jax.tree.leaves(engine.initial_state)]
    placed = engine.place_data(fold_arrays(data.images, data.masks, data.labels))
    state, _ = engine.run_epoch(engine.place_state(engine.initial_state), placed, jax.random.key(0))
    assert int(state["step"]) == 2
    assert not any(x.is_deleted() for x in jax.tree.leaves(engine.initial_state))
    for a, b in zip(before, jax.tree.leaves(engine.initial_state), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))
