"""The engine's state layouts: flattened optimiser, flat/packed step arguments, donation; each
computes what the plain nested layout computes."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from train_fixture import TINY, split, tiny_data

from mtl_bench.batches import fold_arrays
from mtl_bench.fit import build_model, fit_fold
from mtl_bench.optim import make_optimizer
from mtl_bench.train import Engine


@pytest.fixture(scope="module")
def data():
    return tiny_data()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_flattened_optimizer_computes_the_same_update(data, optimizer):
    # optimizer_flatten only changes how the element-wise update is laid out (fewer kernels).
    train, test = split(len(data))
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


def test_adam_eps_reaches_the_update():
    # ε matters where gradients are tiny: Keras's 1e-7 against optax's 1e-8 (the default here).
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([1e-8, 1e-6, 1e-3])}
    got = {}
    for eps in (1e-8, 1e-7):
        tx = make_optimizer(dataclasses.replace(TINY, adam_eps=eps))
        got[eps], _ = tx.update(grads, tx.init(params), params)
        ref, _ = optax.adam(1.0, eps=eps).update(grads, optax.adam(1.0, eps=eps).init(params))
        np.testing.assert_allclose(got[eps]["w"], -ref["w"], rtol=1e-6)  # the engine applies -lr
    assert got[1e-8]["w"][0] > 1.5 * got[1e-7]["w"][0]
