"""fold_conv: every mode computes what a grouped (plain vmapped) convolution computes, and the
unrolled mode really leaves no grouped convolution in the fold program."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from mtl_bench.fold_conv import FOLD_CONV_MODES, check_mode, conv_general_dilated, fold_conv_mode
from mtl_bench.layers import UpConv2x2

FOLDS = 3
DN = ("NHWC", "HWIO", "NHWC")
# (kernel, in, out, strides, padding, lhs_dilation, groups): the shapes the suite's models use —
# 3×3 same, strided, 1×1, a transposed 2×2 (input-dilated) and a depthwise-style grouped conv.
LAYERS = [
    (3, 1, 4, (1, 1), "SAME", (1, 1), 1),
    (3, 4, 8, (2, 2), "SAME", (1, 1), 1),
    (1, 8, 8, (1, 1), "SAME", (1, 1), 1),
    (2, 8, 4, (1, 1), ((1, 1), (1, 1)), (2, 2), 1),
    (3, 4, 4, (1, 1), "SAME", (1, 1), 2),
]


def _params(key):
    ws = []
    for k, cin, cout, *_, groups in LAYERS:
        key, sub = jax.random.split(key)
        ws.append(jax.random.normal(sub, (k, k, cin // groups, cout)) * 0.3)
    return ws


def _loss(ws, x):
    for w, (_, _, _, strides, pad, lhs_dil, groups) in zip(ws, LAYERS, strict=True):
        x = jnp.tanh(
            conv_general_dilated(
                x, w, strides, pad, lhs_dilation=lhs_dil, dimension_numbers=DN,
                feature_group_count=groups,
            )
        )  # fmt: skip
    return jnp.mean(x**2)


def _fold_step(mode):
    def step(ws, x):
        with fold_conv_mode(mode):
            return jax.vmap(jax.value_and_grad(_loss))(ws, x)

    return jax.jit(step)


@pytest.fixture(scope="module")
def folds_inputs():
    keys = jax.random.split(jax.random.key(0), FOLDS)
    ws = jax.tree.map(lambda *a: jnp.stack(a), *[_params(k) for k in keys])
    x = jax.random.normal(jax.random.key(1), (FOLDS, 2, 8, 8, 1))
    return ws, x


@pytest.mark.parametrize("mode", ["split_wgrad", "unrolled"])
def test_modes_match_grouped(folds_inputs, mode):
    ws, x = folds_inputs
    loss_ref, grads_ref = _fold_step("grouped")(ws, x)
    loss, grads = _fold_step(mode)(ws, x)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-5)
    for g, r in zip(grads, grads_ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)
    # …and each fold equals that fold trained alone with lax's convolution.
    for f in range(FOLDS):
        alone = jax.grad(_loss)([w[f] for w in ws], x[f])
        for g, a in zip(grads, alone, strict=True):
            np.testing.assert_allclose(g[f], a, rtol=1e-4, atol=1e-6)


def _grouped_convs(mode, ws, x) -> list[int]:
    hlo = _fold_step(mode).lower(ws, x).as_text()
    convs = [line for line in hlo.splitlines() if "stablehlo.convolution" in line]
    assert convs, "no convolution in the lowered program"
    return [int(m) for line in convs for m in re.findall(r"feature_group_count = (\d+)", line)]


def test_unrolled_leaves_no_fold_grouped_convolution(folds_inputs):
    ws, x = folds_inputs
    # Grouped: vmap multiplies every convolution's groups by the fold count.
    assert max(_grouped_convs("grouped", ws, x)) == 2 * FOLDS
    # Unrolled: only the model's own groups (the depthwise-style layer's 2) remain.
    assert max(_grouped_convs("unrolled", ws, x)) == 2


def test_mode_is_scoped_and_checked():
    x = jnp.ones((1, 4, 4, 2))
    w = jnp.ones((3, 3, 2, 2))
    want = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN)
    with fold_conv_mode("unrolled"):
        np.testing.assert_allclose(
            conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN), want
        )
    for mode in FOLD_CONV_MODES:
        assert check_mode(mode) == mode
    with pytest.raises(ValueError, match="fold_conv must be one of .*got 'dense'"):
        with fold_conv_mode("dense"):
            pass


def test_up_conv2x2_is_convtranspose():
    ref = nnx.ConvTranspose(6, 4, (2, 2), strides=(2, 2), padding="VALID", rngs=nnx.Rngs(0))
    ours = UpConv2x2(6, 4, rngs=nnx.Rngs(0))
    assert ours.kernel[...].shape == ref.kernel[...].shape == (2, 2, 6, 4)
    np.testing.assert_array_equal(ours.kernel[...], ref.kernel[...])
    x = jax.random.normal(jax.random.key(2), (2, 5, 7, 6))
    np.testing.assert_allclose(ours(x), ref(x), atol=1e-6)
    assert ours(x).shape == (2, 10, 14, 4)
