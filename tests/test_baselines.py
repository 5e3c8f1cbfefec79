"""Segmentation baselines: registered names, output contract, sizes, train/eval behaviour, and
forward/backward through the one training engine. (Parity with smp: test_parity_smp.py.)

Models are built abstractly (``nnx.eval_shape``) and filled by ``_fill`` where only the graph
matters: JAX's per-shape compile of the random initialisers costs ~20 s per large model on 2 CPU
cores, which the engine tests pay once for real.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from baselines.daf import AUX_WEIGHTS, deep_supervision_loss
from baselines.deeplabv3plus import build_deeplabv3plus
from mtl_bench.config import RunConfig
from mtl_bench.data.phantom import synth_phantom
from mtl_bench.fit import fit_fold
from mtl_bench.registry import count_params, create_model, list_models, model_info

ARCHS = ("unet", "unetplusplus", "fpn")
ENCODERS = ("resnet18", "resnet34", "resnet50", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")


def _fill(model, seed=0):
    """Give an abstract model concrete, well-scaled values (BN stats 0/1) without JAX init."""
    rng = np.random.default_rng(seed)
    constant = {"bias": 0.0, "mean": 0.0, "scale": 1.0, "var": 1.0, "negative_slope": 0.25}
    for path, var in nnx.iter_graph(model):
        if not isinstance(var, nnx.Param | nnx.BatchStat):
            continue
        shape, name = tuple(var.shape), str(path[-1])
        if name in constant:
            value = np.full(shape, constant[name])
        else:  # conv kernels (kh, kw, in, out): He-normal keeps activations O(1)
            value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
        var.set_value(jnp.asarray(value, jnp.float32))
    return model


def _abstract(name, **kw):
    return _fill(nnx.eval_shape(lambda: create_model(name, **kw)))


def test_registered_names_and_contract_metadata():
    seg = set(list_models("segmentation"))
    want = {f"{a}_{e}" for a in ARCHS for e in ENCODERS}
    want |= {f"deeplabv3plus_{e}" for e in ("resnet18", "resnet34", "resnet50")}
    want |= {"unet", "daf"}
    assert seg == want
    for name in seg:
        info = model_info(name)
        assert info.tasks == ("mask",) and info.family == "segmentation"
    assert "mtl_resunet" in list_models()  # the proposed model is still there


def test_deeplab_rejects_vgg_like_smp():
    assert "deeplabv3plus_vgg16" not in list_models()
    with pytest.raises(ValueError, match="dilatable encoder"):
        build_deeplabv3plus(rngs=nnx.Rngs(0), encoder="vgg16")


@pytest.mark.parametrize(
    "name,size,bad",
    [("unet_resnet34", 64, 48), ("fpn_vgg16", 64, 80), ("deeplabv3plus_resnet18", 48, 40),
     ("unet", 48, 40), ("daf", 64, 48)],
)  # fmt: skip
def test_image_size_divisibility(name, size, bad):
    m = nnx.eval_shape(lambda: create_model(name, image_size=size))
    assert count_params(m) > 0
    with pytest.raises(ValueError, match=f"divisible by .*got {bad}"):
        create_model(name, image_size=bad)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown encoder 'resnet101'"):
        create_model("unet_resnet18", encoder="resnet101")
    with pytest.raises(ValueError, match="in_channels=0: .* takes an integer >= 1"):
        create_model("unet_resnet18", in_channels=0)
    with pytest.raises(ValueError, match="unknown dtype"):
        create_model("fpn_resnet18", dtype="float16x")
    with pytest.raises(ValueError, match="no ImageNet encoder"):
        create_model("unet", encoder_weights="x.pth")
    with pytest.raises(TypeError, match="does not take widths"):
        create_model("unet_resnet18", widths=(1, 2))


@pytest.mark.parametrize(
    "name,kw,shape",
    [
        ("unet_resnet18", {}, (2, 64, 64, 1)),
        ("unet_vgg16_bn", {}, (1, 64, 96, 1)),
        ("unetplusplus_resnet18", {}, (1, 64, 64, 1)),
        ("fpn_resnet18", {}, (2, 96, 64, 1)),
        ("deeplabv3plus_resnet18", {}, (2, 48, 48, 1)),
        ("unet", {"base_width": 8}, (2, 48, 64, 1)),
        ("daf", {}, (1, 64, 64, 1)),
        ("unet_resnet18", {"in_channels": 3}, (1, 64, 64, 3)),
    ],
)
def test_output_contract(name, kw, shape):
    model = _abstract(name, **kw)
    x = jnp.asarray(np.random.default_rng(1).random(shape, np.float32))
    out = model(x)
    assert set(out) == {"mask"}
    assert out["mask"].shape == (*shape[:3], 1) and out["mask"].dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(out["mask"])))
    with pytest.raises(ValueError, match="channel"):
        model(jnp.zeros((*shape[:3], shape[3] + 1)))


def test_train_mode_updates_bn_stats_and_dropout_uses_rng():
    model = _abstract("fpn_resnet18")
    x = jnp.asarray(np.random.default_rng(2).random((2, 64, 64, 1), np.float32))
    before = np.asarray(model.encoder.bn1.mean[...])
    ev1, ev2 = model(x)["mask"], model(x)["mask"]
    np.testing.assert_array_equal(ev1, ev2)  # eval: deterministic, stats untouched
    np.testing.assert_array_equal(before, model.encoder.bn1.mean[...])
    model(x, train=True, rng=jax.random.key(0))
    assert not np.array_equal(before, model.encoder.bn1.mean[...])  # momentum 0.1 update
    b = model(x, train=True, rng=jax.random.key(0))["mask"]
    c = model(x, train=True, rng=jax.random.key(1))["mask"]
    assert not np.allclose(b, c)  # Dropout2d(0.2) draws from the rng


def test_daf_deep_supervision_outputs_and_loss():
    model = _abstract("daf")
    x = jnp.asarray(np.random.default_rng(3).random((2, 64, 64, 1), np.float32))
    out = model(x, train=True, rng=jax.random.key(0))
    assert out["mask_aux"].shape == (8, 2, 64, 64, 1)
    assert set(model(x)) == {"mask"}  # eval: final prediction only

    def mean_logit(z):
        return jnp.mean(z)

    want = mean_logit(out["mask"]) + sum(
        w * mean_logit(z) for w, z in zip(AUX_WEIGHTS, out["mask_aux"], strict=True)
    )
    np.testing.assert_allclose(deep_supervision_loss(out, mean_logit), want, rtol=1e-6)
    off = _abstract("daf", deep_supervision=False)
    assert set(off(x, train=True, rng=jax.random.key(0))) == {"mask"}


def test_classic_unet_widths_and_bn_option():
    with_bn = nnx.eval_shape(lambda: create_model("unet"))
    without = nnx.eval_shape(lambda: create_model("unet", batch_norm=False))
    # BN adds scale+shift per channel of 18 convs but removes those convs' biases.
    widths = [64, 128, 256, 512, 1024, 512, 256, 128, 64]
    assert count_params(with_bn) - count_params(without) == sum(2 * w - w for w in widths) * 2
    # Hand-summed from the 2015 layer list (3x3 convs, 2x2 up-convs, 1x1 head), 1 in / 1 out.
    assert count_params(without) == 31_030_593


def test_bf16_compute_keeps_fp32_params_and_output():
    model = _abstract("unet_resnet18", dtype="bfloat16")
    assert model.encoder.conv1.kernel[...].dtype == jnp.float32
    out = model(jnp.ones((1, 64, 64, 1)))["mask"]
    assert out.dtype == jnp.float32


def _engine_run(model, kwargs):
    ds = synth_phantom(n=12, image_size=64, class_set="binary")
    cfg = RunConfig(
        model=model, model_kwargs=kwargs, image_size=64, epochs=1, batch_size=4, lr_decay_every=0,
        preprocess="none", checkpoint_every=0, eval_batch_size=4, lr=1e-3,
    )  # fmt: skip
    idx = np.random.default_rng(0).permutation(12)
    return cfg, fit_fold(cfg, ds, np.sort(idx[:8]), np.sort(idx[8:]), quiet=True, keep_state=True)


def _moved(cfg, run):
    """Per parameter: did one epoch of training change it from its initial value?"""
    fresh = create_model(cfg.model, seed=cfg.seed, in_channels=1, **cfg.model_kwargs)
    init = nnx.state(fresh, nnx.Param)
    return jax.tree.map(lambda a, b: bool(jnp.any(a != b)), init, run.state["params"])


def test_engine_trains_classic_unet():
    cfg, run = _engine_run("unet", {"base_width": 8})
    assert run.tasks == ("mask",) and run.params == count_params(create_model("unet", base_width=8))
    assert run.test_eval["counts"].shape == (4, 4) and "prob" not in run.test_eval
    assert np.isfinite(run.curve[0]["loss"]) and run.curve[0]["focal_loss"] == 0.0
    # Backward reached every weight: Adam moves any parameter whose gradient is non-zero.
    assert all(jax.tree.leaves(_moved(cfg, run)))


@pytest.mark.slow
def test_engine_trains_unet_resnet18():
    cfg, run = _engine_run("unet_resnet18", {})
    assert run.test_eval["counts"].shape == (4, 4) and np.isfinite(run.curve[0]["loss"])
    assert all(jax.tree.leaves(_moved(cfg, run)))


@pytest.mark.slow
def test_engine_trains_daf():
    cfg, run = _engine_run("daf", {})
    assert np.isfinite(run.curve[0]["loss"])
    moved = _moved(cfg, run)
    # Every parameter moves, the deep-supervision heads included: the joint loss adds their
    # weighted Dice terms ("mask_aux", "mask_aux_weight").
    assert all(jax.tree.leaves(moved))
