"""torch state dict → Flax port mechanics, without torch: layouts, BN names, coverage, errors.

State dicts here are written in torch layout (OIHW, (out, in)) from the model's own table, as a
torchvision checkpoint would hold them, and saved as .npz / .safetensors.
"""

import jax
import numpy as np
import pytest
from flax import nnx

from mtl_bench.registry import create_model
from mtl_bench.weights import (
    TorchTable,
    WeightPortError,
    adapt_first_conv,
    load_encoder_weights,
    load_state_dict,
    port_state_dict,
)


def _torch_shape(flax_shape, kind):
    if kind == "conv":  # HWIO -> OIHW
        h, w, i, o = flax_shape
        return (o, i, h, w)
    if kind == "linear":
        return tuple(reversed(flax_shape))
    return tuple(flax_shape)


def _encoder_state_dict(model, rgb=True, seed=0):
    """A torchvision-layout resnet18 state dict (with fc.* and num_batches_tracked)."""
    tb = TorchTable()
    model.encoder.torch_table(tb, "", ("encoder",))
    rng = np.random.default_rng(seed)
    sd = {}
    for key, target in tb.entries.items():
        var = model
        for part in target.path:
            var = var[part] if isinstance(part, int) else getattr(var, part)
        shape = _torch_shape(var.shape, target.kind)
        if rgb and key == "conv1.weight":
            shape = (shape[0], 3, *shape[2:])
        sd[key] = rng.standard_normal(shape).astype(np.float32)
        if key.endswith("running_var"):
            sd[key] = np.abs(sd[key]) + 0.5
    sd.update({k: np.array(7) for k in tb.optional})
    sd["fc.weight"], sd["fc.bias"] = np.zeros((1000, 512), np.float32), np.zeros(1000, np.float32)
    return sd


@pytest.fixture()
def model():
    return nnx.eval_shape(lambda: create_model("unet_resnet18", in_channels=1))


def test_encoder_port_layouts_bn_names_and_first_conv(model, tmp_path):
    sd = _encoder_state_dict(model)
    np.savez(tmp_path / "r18.npz", **sd)
    n = load_encoder_weights(model, tmp_path / "r18.npz")
    assert n == 20 + 20 * 4  # 20 bias-free convs and 20 BatchNorms; fc and counters skipped
    enc = model.encoder
    # conv OIHW -> HWIO, and the RGB first conv summed to one input channel (smp's rule).
    want = sd["conv1.weight"].sum(axis=1, keepdims=True).transpose(2, 3, 1, 0)
    np.testing.assert_allclose(enc.conv1.kernel[...], want, rtol=1e-6)
    k = sd["layer2.0.conv2.weight"].transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(enc.layers[1][0].convs[1].kernel[...], k)
    # BatchNorm: weight->scale, bias->bias, running_mean->mean, running_var->var.
    bn = enc.layers[3][1].bns[0]
    for flax_name, torch_name in (("scale", "weight"), ("bias", "bias"),
                                  ("mean", "running_mean"), ("var", "running_var")):  # fmt: skip
        np.testing.assert_array_equal(getattr(bn, flax_name)[...], sd[f"layer4.1.bn1.{torch_name}"])
    ds = enc.layers[1][0].downsample
    np.testing.assert_array_equal(ds.bn.var[...], sd["layer2.0.downsample.1.running_var"])


def test_port_errors_list_the_offending_keys(model, tmp_path):
    sd = _encoder_state_dict(model)
    bad = dict(sd)
    del bad["layer3.1.bn2.running_mean"]
    bad["layer5.0.conv1.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    bad["layer1.0.conv1.weight"] = np.zeros((64, 64, 1, 1), np.float32)
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(WeightPortError) as err:
        load_encoder_weights(model, tmp_path / "bad.npz")
    msg = str(err.value)
    assert "\n" not in msg and "bad.npz" in msg
    assert "1 keys not in the table: layer5.0.conv1.weight" in msg
    assert "1 expected keys missing: layer3.1.bn2.running_mean" in msg
    assert "layer1.0.conv1.weight (64, 64, 1, 1) vs Flax (3, 3, 64, 64)" in msg
    # Nothing was written (all checks run before any copy): the model is still abstract.
    assert isinstance(model.encoder.conv1.kernel.get_value(), jax.ShapeDtypeStruct)


def test_incomplete_table_is_reported(model):
    sd = _encoder_state_dict(model, rgb=False)
    tb = TorchTable()
    model.encoder.torch_table(tb, "", ("encoder",))
    del tb.entries["bn1.bias"]
    with pytest.raises(WeightPortError, match="1 Flax variables no key fills: encoder/bn1/bias"):
        port_state_dict(model, sd, tb, scope=("encoder",), ignore_prefixes=("fc.",))
    with pytest.raises(ValueError, match="mapped twice"):
        tb.add("conv1.weight", ("encoder", "conv1", "kernel"))


def test_linear_layout_for_classifier_heads():
    class Head(nnx.Module):
        def __init__(self):
            self.fc = nnx.Linear(4, 3, rngs=nnx.Rngs(0))

    head = Head()
    tb = TorchTable()
    tb.linear("fc", ("fc",), head.fc)
    w = np.arange(12, dtype=np.float32).reshape(3, 4)  # torch (out, in)
    assert port_state_dict(head, {"fc.weight": w, "fc.bias": np.ones(3, np.float32)}, tb) == 2
    np.testing.assert_array_equal(head.fc.kernel[...], w.T)
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(head.fc(x), x @ w.T + 1, rtol=1e-6)


def test_load_state_dict_formats_and_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth does not exist"):
        load_state_dict(tmp_path / "nope.pth")
    (tmp_path / "w.ckpt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"unknown format '\.ckpt'"):
        load_state_dict(tmp_path / "w.ckpt")
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(WeightPortError, match="holds no tensors"):
        load_state_dict(tmp_path / "empty.npz")
    np.savez(tmp_path / "dp.npz", **{"module.conv.weight": np.ones((2, 1, 1, 1), np.float32)})
    assert list(load_state_dict(tmp_path / "dp.npz")) == ["conv.weight"]  # DataParallel prefix
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    safetensors_numpy.save_file({"a.weight": np.ones((2, 3), np.float32)}, tmp_path / "w.st")
    (tmp_path / "w.st").rename(tmp_path / "w.safetensors")
    got = load_state_dict(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(got["a.weight"], np.ones((2, 3)))


def test_adapt_first_conv_rules():
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(adapt_first_conv(w, 1), w.sum(1, keepdims=True), rtol=1e-6)
    two = adapt_first_conv(w, 2)
    np.testing.assert_allclose(two, w[:, :2] * 1.5, rtol=1e-6)
    five = adapt_first_conv(w, 5)  # channels cycle R,G,B,R,G and scale by 3/5
    np.testing.assert_allclose(five[:, 3], w[:, 0] * 0.6, rtol=1e-6)
    # With a multiple of 3, a grey image replicated across channels keeps the RGB response.
    np.testing.assert_allclose(adapt_first_conv(w, 6).sum(1), w.sum(1), rtol=1e-5)
    assert adapt_first_conv(w, 3) is w
    with pytest.raises(WeightPortError, match="cannot adapt"):
        adapt_first_conv(w[:, :2], 1)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors", ".npz"])
def test_a_corrupt_weights_file_is_one_line_naming_it(tmp_path, suffix):
    if suffix == ".pth":
        pytest.importorskip("torch")
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    bad = tmp_path / f"garbage{suffix}"
    bad.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)  # a zip's first bytes, then junk
    with pytest.raises(WeightPortError, match=rf"garbage\{suffix}: not a readable") as err:
        load_state_dict(bad)
    assert "\n" not in str(err.value) and "weights_only` set to `False" not in str(err.value)
    # Not the format at all (a text file): said so, not the readers' advice about pickles.
    text = tmp_path / f"notes{suffix}"
    text.write_text("garbage\n")
    says = {".pth": "not a torch file", ".npz": "not an .npz archive"}.get(suffix, "not a readable")
    with pytest.raises(WeightPortError, match=rf"notes\{suffix}: {says}") as err:
        load_state_dict(text)
    assert "allow_pickle" not in str(err.value) and "torch.save(model)" not in str(err.value)


def test_a_whole_pickled_model_or_a_folder_is_named_with_what_to_give_instead(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pth")  # the model, not its state_dict
    with pytest.raises(WeightPortError, match=r"model\.pth: .*save model\.state_dict\(\)") as err:
        load_state_dict(tmp_path / "model.pth")
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)
    with pytest.raises(WeightPortError, match=r"is a folder: give the \.pth"):
        load_state_dict(tmp_path)


def test_a_segmentation_encoder_run_says_where_its_weights_start(model, tmp_path):
    # The fold's log line and result file say it, as a classifier's do: the file, or from scratch.
    from baselines.classifiers.port import weights_note

    path = tmp_path / "r18.npz"
    np.savez(path, **_encoder_state_dict(model))
    loaded = nnx.eval_shape(lambda: create_model("unet_resnet18", encoder_weights=str(path)))
    note = weights_note(loaded, "unet_resnet18")
    assert note == f"unet_resnet18: initialised from {path} (encoder; decoder from scratch)"
    assert weights_note(model, "unet_resnet18").endswith("training from scratch (no weights file)")
