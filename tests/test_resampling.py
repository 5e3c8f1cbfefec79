"""Up- and down-sampling layers written for speed, checked against the Flax layers they replace.

The 2×2 transposed convolution (``layers.UpConv2x2``): both ways of computing it are
``nnx.ConvTranspose`` — values, parameters, initialisation, gradients — and the default one has
no input-dilated convolution left in the training program (the slow H100 weight gradient).
``layers.max_pool2`` (reshape + max) is ``nnx.max_pool``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mtl_bench.layers import UP_CONV_IMPLS, UpConv2x2
from mtl_bench.registry import create_model

TINY = {"widths": (4, 8, 16, 32, 64)}


def _reference(in_ch: int, out_ch: int) -> nnx.ConvTranspose:
    ref = nnx.ConvTranspose(
        in_ch, out_ch, (2, 2), strides=(2, 2), padding="VALID", rngs=nnx.Rngs(0)
    )
    ref.bias[...] = jax.random.normal(jax.random.key(5), (out_ch,))  # zeros would hide a bias bug
    return ref


@pytest.mark.parametrize("impl", UP_CONV_IMPLS)
def test_values_params_and_init_are_convtranspose(impl):
    ref = _reference(6, 4)
    rngs = nnx.Rngs(0)
    ours = UpConv2x2(6, 4, impl=impl, rngs=rngs)
    np.testing.assert_array_equal(ours.kernel[...], ref.kernel[...])
    ours.bias[...] = ref.bias[...]
    # Same parameter names and shapes (checkpoints) and the same keys drawn (later layers' init).
    shapes = lambda m: jax.tree.map(jnp.shape, nnx.state(m, nnx.Param).to_pure_dict())  # noqa: E731
    assert shapes(ours) == shapes(ref)
    after_conv = nnx.Rngs(0)
    nnx.Conv(6, 4, (2, 2), rngs=after_conv)
    np.testing.assert_array_equal(
        jax.random.key_data(rngs.params()), jax.random.key_data(after_conv.params())
    )
    x = jax.random.normal(jax.random.key(2), (2, 5, 7, 6))
    y = ours(x)
    assert y.shape == (2, 10, 14, 4)
    np.testing.assert_allclose(y, ref(x), atol=1e-6)


def test_gradients_agree_between_impls():
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    dy = jax.random.normal(jax.random.key(1), (2, 16, 16, 8))
    grads = {}
    for impl in UP_CONV_IMPLS:
        graphdef, params = nnx.split(UpConv2x2(16, 8, impl=impl, rngs=nnx.Rngs(0)))

        def loss(p, x, graphdef=graphdef):
            return jnp.sum(nnx.merge(graphdef, p)(x) * dy)

        grads[impl] = jax.grad(loss, argnums=(0, 1))(params, x)
    for a, b in zip(*(jax.tree.leaves(g) for g in grads.values()), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_bf16_computes_in_bf16_and_keeps_fp32_params():
    m = UpConv2x2(8, 4, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert m(jnp.ones((1, 4, 4, 8))).dtype == jnp.bfloat16
    assert m.kernel[...].dtype == m.bias[...].dtype == jnp.float32


@pytest.mark.parametrize("model", ["mtl_resunet", "unet"])
def test_unknown_impl_is_one_line_error(model):
    kw = TINY if model == "mtl_resunet" else {"base_width": 4}
    with pytest.raises(ValueError, match="up_conv must be one of matmul, dilated_conv, got 'fft'"):
        create_model(model, rngs=nnx.Rngs(0), up_conv="fft", **kw)


def _train_hlo(model: str, **kw) -> str:
    m = create_model(model, rngs=nnx.Rngs(0), **kw)
    graphdef, params, rest = nnx.split(m, nnx.Param, ...)
    x = jnp.ones((2, 32, 32, 1))

    def loss(params, rest):
        return jnp.sum(nnx.merge(graphdef, params, rest, copy=True)(x, train=True)["mask"])

    return jax.jit(jax.grad(loss)).lower(params, rest).as_text()


@pytest.mark.parametrize(("model", "kw"), [("mtl_resunet", TINY), ("unet", {"base_width": 4})])
def test_default_training_program_has_no_input_dilated_conv(model, kw):
    # lhs_dilation 2 is the up-conv's convolution; its weight gradient is the slow one on an H100.
    assert "lhs_dilate = [2, 2]" not in _train_hlo(model, **kw)
    assert "lhs_dilate = [2, 2]" in _train_hlo(model, up_conv="dilated_conv", **kw)


def test_models_agree_across_impls():
    x = jax.random.normal(jax.random.key(3), (2, 32, 32, 1))
    outs = [
        create_model("mtl_resunet", rngs=nnx.Rngs(0), up_conv=impl, **TINY)(x)
        for impl in UP_CONV_IMPLS
    ]
    for key in ("mask", "label"):
        np.testing.assert_allclose(outs[0][key], outs[1][key], rtol=1e-5, atol=1e-5)


def _tied(shape: tuple[int, ...]) -> jax.Array:
    # Small integers: most 2×2 windows hold a tied maximum (flat patches of 8-bit images do too).
    return jax.random.randint(jax.random.key(0), shape, 0, 3).astype(jnp.float32)


@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "ties"])
def test_max_pool2_is_max_pool(tied):
    # layers.max_pool2 is a reshape + max (faster than reduce_window on GPU and CPU): same values
    # and the same gradient bit for bit, ties included (all to the window's first maximum).
    from mtl_bench.layers import max_pool2

    shape = (2, 8, 6, 3)
    x = _tied(shape) if tied else jax.random.normal(jax.random.key(0), shape)
    ref = lambda x: nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))  # noqa: E731
    np.testing.assert_array_equal(max_pool2(x), ref(x))
    dy = jax.random.normal(jax.random.key(1), (2, 4, 3, 3))
    grads = [jax.grad(lambda x, f=f: jnp.sum(f(x) * dy))(x) for f in (max_pool2, ref)]
    np.testing.assert_array_equal(*grads)
    if tied:  # the case jnp.max's own rule gets otherwise: it shares a tie's gradient
        shared = jax.grad(lambda x: jnp.sum(x.reshape(2, 4, 2, 3, 2, 3).max(axis=(2, 4)) * dy))(x)
        assert not np.array_equal(shared, grads[0])
    with pytest.raises(ValueError, match=r"even height and width, got \(1, 5, 4, 1\)"):
        max_pool2(jnp.ones((1, 5, 4, 1)))


def test_max_pool2_under_jit_vmap_and_bf16():
    # The custom gradient under what the engine applies: jit, vmap over folds, bf16 compute.
    from mtl_bench.layers import max_pool2

    x = _tied((3, 2, 8, 6, 4)).astype(jnp.bfloat16)
    ref = lambda x: nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))  # noqa: E731
    dy = jax.random.normal(jax.random.key(1), (3, 2, 4, 3, 4), jnp.bfloat16)
    grads = [
        jax.jit(jax.vmap(jax.grad(lambda x, d, f=f: jnp.sum(f(x) * d).astype(jnp.float32))))(x, dy)
        for f in (max_pool2, ref)
    ]
    assert grads[0].dtype == jnp.bfloat16
    np.testing.assert_array_equal(*grads)


@pytest.mark.torch
def test_max_pool2_gradient_is_torch_with_ties():
    torch = pytest.importorskip("torch")
    from mtl_bench.layers import max_pool2

    x = np.asarray(_tied((2, 8, 6, 3)))
    dy = np.asarray(jax.random.normal(jax.random.key(1), (2, 4, 3, 3)))
    ours = jax.grad(lambda x: jnp.sum(max_pool2(x) * dy))(jnp.asarray(x))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    out = torch.nn.functional.max_pool2d(xt, 2)
    (out * torch.tensor(dy.transpose(0, 3, 1, 2))).sum().backward()
    np.testing.assert_array_equal(np.asarray(ours), xt.grad.numpy().transpose(0, 2, 3, 1))


@pytest.mark.parametrize(
    ("shape", "kernel", "stride", "padding"),
    [((2, 8, 6, 3), 2, 2, 0), ((2, 7, 9, 3), 2, 2, 0), ((2, 9, 8, 3), 3, 2, 1)],
)
def test_baselines_max_pool_is_torch_pool(shape, kernel, stride, padding):
    # baselines.layers.max_pool takes max_pool2's reshape for VGG's 2×2/2 pools on even sizes and
    # reduce_window otherwise (odd sizes: torch's floor; ResNet/DenseNet's padded 3×3/2): the same
    # values and the same gradient as reduce_window in every case, ties included.
    from baselines.layers import max_pool

    x = _tied(shape)
    pad = ((padding, padding), (padding, padding))
    ref = lambda x: nnx.max_pool(x, (kernel, kernel), strides=(stride, stride), padding=pad)  # noqa: E731
    ours = lambda x: max_pool(x, kernel, stride, padding)  # noqa: E731
    np.testing.assert_array_equal(ours(x), ref(x))
    dy = jax.random.normal(jax.random.key(1), ref(x).shape)
    grads = [jax.grad(lambda x, f=f: jnp.sum(f(x) * dy))(x) for f in (ours, ref)]
    np.testing.assert_array_equal(*grads)


def test_gpu_check_max_pool_gradient_passes_and_can_fail(monkeypatch):
    # benchmarks.gpu_checks runs this on the GPU (the custom backward is unmeasured there); on
    # the CPU it passes, and with jnp.max's own tie rule in place of max_pool2 it fails.
    import mtl_bench.layers as layers
    from benchmarks.gpu_checks import check_max_pool_gradient

    assert "equal to reduce_window with ties" in check_max_pool_gradient()
    shared = lambda x: layers._pool_windows(x).max(axis=(2, 4))  # noqa: E731
    monkeypatch.setattr(layers, "max_pool2", shared)
    with pytest.raises(AssertionError, match="float32: differs from reduce_window"):
        check_max_pool_gradient()
