"""Registry, output contract and structure of the proposed mtl_resunet."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import mtl_bench as mb
from mtl_bench.registry import model_info

NARROW = (8, 16, 32, 64, 128)


def _cbr(i, o, k):  # conv (no bias) + BN scale and bias
    return k * k * i * o + 2 * o


def _unit(i, o):  # concat merge: two half-width paths
    w = o // 2
    return _cbr(i, w, 3) + _cbr(w, w, 3) + _cbr(i, w, 1)


def expected_params(widths, in_ch=1, classes=2, dense=256):
    n, prev = 0, in_ch
    for w in widths:
        n += _unit(prev, w)
        prev = w
    for w in reversed(widths[:-1]):
        n += 4 * prev * w + w  # 2x2 transposed conv with bias
        n += _unit(2 * w, w)
        prev = w
    n += prev + 1  # 1x1 mask head
    gap = widths[3] + widths[4] + widths[3]
    return n + gap * dense + dense + dense * classes + classes


def test_registry_lists_and_builds():
    assert "mtl_resunet" in mb.list_models()
    assert model_info("mtl_resunet").tasks == ("mask", "label")
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        mb.create_model("nope")
    with pytest.raises(TypeError, match="does not take colour"):
        mb.create_model("mtl_resunet", colour=3)


def test_param_count_pinned():
    # The paper's widths: 14,209,731 trainable parameters (BN running stats excluded).
    model = mb.create_model("mtl_resunet")
    assert mb.count_params(model) == 14_209_731 == expected_params((64, 128, 256, 512, 1024))
    narrow = mb.create_model("mtl_resunet", widths=NARROW, num_classes=3, in_channels=3)
    assert mb.count_params(narrow) == expected_params(NARROW, in_ch=3, classes=3)


@pytest.mark.parametrize("shape", [(2, 32, 32, 1), (1, 64, 64, 1), (3, 48, 64, 1)])
def test_output_contract(shape):
    model = mb.create_model("mtl_resunet", widths=NARROW)
    out = model(jnp.ones(shape), train=False)
    assert set(out) == {"mask", "label"}
    assert out["mask"].shape == shape[:3] + (1,)
    assert out["label"].shape == (shape[0], 2)
    assert out["mask"].dtype == jnp.float32


def test_bad_size_is_a_clear_error():
    model = mb.create_model("mtl_resunet", widths=NARROW)
    with pytest.raises(ValueError, match="divisible by 16"):
        model(jnp.ones((1, 40, 40, 1)))
    with pytest.raises(ValueError, match="divisible by 16"):
        mb.create_model("mtl_resunet", widths=NARROW, image_size=100)
    # As every baseline says it, not XLA's feature_group_count or an AttributeError of a list.
    for x, got in ((jnp.ones((1, 32, 32, 3)), r"\(1, 32, 32, 3\)"), ([[0.0]], "list")):
        with pytest.raises(
            ValueError, match=rf"mtl_resunet expects NHWC input with 1 channel\(s\), got {got}"
        ):
            model(x)
    with pytest.raises(ValueError, match=r"divisible by 16, got '32'"):
        mb.create_model("mtl_resunet", widths=NARROW, image_size="32")


def _perturbed(model, path_prefix):
    """A copy of ``model`` whose parameters under ``path_prefix`` are scaled by 3."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    flat = dict(nnx.to_flat_state(params))
    for path, var in flat.items():
        if path[: len(path_prefix)] == path_prefix:
            var.value = var.value * 3.0 + 0.1
    return nnx.merge(graphdef, nnx.from_flat_state(flat), rest)


def test_classifier_reads_stages_4_5_6_only():
    x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 1))
    base = mb.create_model("mtl_resunet", widths=NARROW)
    ref = base(x)
    # Stage 5 (bridge) and stage 6 (first decoder unit) feed the classification branch.
    for prefix in [("encoder", 4), ("decoder", 0), ("encoder", 3)]:
        out = _perturbed(mb.create_model("mtl_resunet", widths=NARROW), prefix)(x)
        assert not np.allclose(out["label"], ref["label"]), prefix
    # Stages 7-9 come after the branch: the label must not move, the mask must.
    for prefix in [("decoder", 1), ("decoder", 3), ("seg_head",)]:
        out = _perturbed(mb.create_model("mtl_resunet", widths=NARROW), prefix)(x)
        np.testing.assert_allclose(out["label"], ref["label"], rtol=1e-6, atol=1e-6)
        assert not np.allclose(out["mask"], ref["mask"]), prefix
    # The dense layer sees GAP(stage 4) + GAP(bridge) + GAP(stage 6) channels.
    assert base.fc1.in_features == 64 + 128 + 64


def test_dropout_only_in_training():
    model = mb.create_model("mtl_resunet", widths=NARROW)
    x = jnp.ones((4, 32, 32, 1))
    a = model(x, train=True, rng=jax.random.key(0))["label"]
    b = model(x, train=True, rng=jax.random.key(1))["label"]
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(model(x)["label"], model(x)["label"])


@pytest.mark.parametrize(
    "kw", [{"merge": "add"}, {"downsample": "stride"}, {"upsample": "nearest"}, {"dtype": "bf16"}]
)
def test_options(kw):
    model = mb.create_model("mtl_resunet", widths=NARROW, **kw)
    out = model(jnp.ones((1, 32, 32, 1)), train=True, rng=jax.random.key(0))
    assert out["mask"].shape == (1, 32, 32, 1) and out["label"].shape == (1, 2)
    assert bool(jnp.isfinite(out["mask"]).all())


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="merge"):
        mb.create_model("mtl_resunet", widths=NARROW, merge="mul")
    with pytest.raises(ValueError, match="widths needs 5"):
        mb.create_model("mtl_resunet", widths=(8, 16))
    for widths in ((4, 8, 8, 8, 0), (4, 8, 8, 8, -2)):  # a ZeroDivisionError, a TypeError
        with pytest.raises(ValueError, match=r"widths needs 5 positive integers"):
            mb.create_model("mtl_resunet", widths=widths)
    for name in ("mtl_resunet", "resnet50"):  # a head of one class: its softmax is always 1
        with pytest.raises(ValueError, match=r"num_classes must be .*>= 2"):
            mb.create_model(name, num_classes=1)
