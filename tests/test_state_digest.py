"""mtl_bench/state_digest.py: the checksums a checkpoint records of its arrays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_bench.state_digest import digest, first_difference


def _tree(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "params": {
            "w": jnp.asarray(rng.normal(size=(5, 7)), jnp.float32),
            "half": jnp.asarray(rng.normal(size=(9,)), jnp.bfloat16),
            "f16": jnp.asarray(rng.normal(size=(3, 2)), jnp.float16),
        },
        "opt": (jnp.asarray(rng.integers(-(2**31), 2**31 - 1, 11), jnp.int32),),
        "flags": jnp.asarray(rng.integers(0, 2, 6), jnp.bool_),
        "bytes": jnp.asarray(rng.integers(0, 256, 5), jnp.uint8),
        "small": jnp.asarray(rng.integers(-128, 127, 4), jnp.int8),
        "step": jnp.asarray(7, jnp.int32),
        "empty": jnp.zeros((0, 3), jnp.float32),
    }


def test_a_digest_is_stable_and_the_same_on_device_and_host():
    tree = _tree()
    d = digest(tree)
    assert d == digest(_tree()) == digest(jax.tree.map(jnp.copy, tree))
    # The jitted implementation (accelerators; numpy reads CPU arrays in place): the same.
    assert d == digest(tree, jit_cpu=True) == digest(jax.device_get(tree))
    assert list(d)[:2] == ["bytes", "empty"] and d["opt/0"][2:] == ["int32", [11]]
    assert d["params/w"][2:] == ["float32", [5, 7]] and d["step"][3] == []
    assert digest(_tree(1)) != d and first_difference(d, d) is None


def test_large_arrays_wrap_the_sums_alike_on_device_and_host(monkeypatch):
    import mtl_bench.state_digest as sd

    monkeypatch.setattr(sd, "_CHUNK", 1000)  # numpy's chunked sums, offsets included
    x = jnp.asarray(np.random.default_rng(2).integers(0, 2**32, 4321, dtype=np.uint32))
    assert digest({"x": x}, jit_cpu=True) == digest({"x": np.asarray(x)})


def test_eight_byte_arrays_are_digested_alike_with_x64():
    with jax.enable_x64(True):
        tree = {"f": jnp.asarray([1.5, -(2.0**40) + 3]), "i": jnp.asarray([-1, 2**40])}
        assert tree["f"].dtype == jnp.float64
        assert digest(tree, jit_cpu=True) == digest(jax.device_get(tree))


@pytest.mark.parametrize("host", [False, True], ids=["jax", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int32"])
def test_any_single_bit_flip_changes_the_digest(dtype, host):
    x = np.asarray(jnp.asarray(np.random.default_rng(3).normal(size=(2, 3)) * 100, dtype))
    bits = x.view(f"uint{8 * x.dtype.itemsize}")
    base = digest({"a": x} if host else {"a": jnp.asarray(x)}, jit_cpu=True)
    for i in range(bits.size):
        for b in range(8 * x.dtype.itemsize):
            flipped = bits.copy()
            flipped.reshape(-1)[i] ^= flipped.dtype.type(1 << b)
            y = flipped.view(x.dtype)
            d = digest({"a": y} if host else {"a": jnp.asarray(y)}, jit_cpu=True)
            name, why = first_difference(base, d)
            assert name == "a" and "checksum" in why


def test_a_fold_stacked_state_is_digested_whole_and_per_fold_changes_show():
    folds = [_tree(f) for f in range(3)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *folds)
    stacked["tick"] = jnp.zeros((), jnp.int32)
    d = digest(stacked)
    assert d == digest(stacked, jit_cpu=True) == digest(jax.device_get(stacked))
    assert d["params/w"][3] == [3, 5, 7]
    # The same values in another fold's slot are another state: weighted by their position.
    swapped = {**stacked, "params": {**stacked["params"], "w": stacked["params"]["w"][::-1]}}
    assert first_difference(d, digest(swapped))[0] == "params/w"


def test_key_arrays_are_digested_by_their_data():
    tree = {"k": jax.random.key(0), "ks": jax.random.split(jax.random.key(1), 3)}
    d = digest(tree)
    assert d == digest(tree, jit_cpu=True) and d != digest({**tree, "k": jax.random.key(2)})


def test_a_changed_shape_or_a_missing_array_is_named():
    d = digest({"a": jnp.zeros(3), "b": jnp.ones(2)})
    assert first_difference(d, digest({"a": jnp.zeros(4), "b": jnp.ones(2)})) == (
        "a",
        "was saved as float32[3] but restored as float32[4]",
    )
    assert first_difference(d, digest({"a": jnp.zeros(3)})) == ("b", "was not restored")
