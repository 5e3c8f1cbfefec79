"""Faithfulness to segmentation_models_pytorch (the [torch] extra): parameter counts, ported
weights giving the same eval outputs (relative error < 1e-5, fp32, CPU), train-mode BatchNorm, and
torchvision ImageNet-layout checkpoints loading into the encoders.

Flax models are built abstractly (``nnx.eval_shape``) and made concrete by the port itself: the
port must fill every variable, so nothing of the random init can leak into a comparison.
"""

import numpy as np
import pytest
from flax import nnx

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
smp = pytest.importorskip("segmentation_models_pytorch")
torchvision = pytest.importorskip("torchvision")

import jax.numpy as jnp  # noqa: E402

from mtl_bench.registry import count_params, create_model, list_models  # noqa: E402
from mtl_bench.weights import (  # noqa: E402
    WeightPortError,
    adapt_first_conv,
    load_encoder_weights,
    load_torch_weights,
)

SMP = {
    "unet": "Unet",
    "unetplusplus": "UnetPlusPlus",
    "fpn": "FPN",
    "deeplabv3plus": "DeepLabV3Plus",
}
# Every (arch, resnet34) pair plus other encoders, so each encoder family meets each decoder.
PAIRS = [
    ("unet", "resnet34"), ("unet", "vgg16"), ("unet", "resnet18"),
    ("unetplusplus", "resnet34"), ("unetplusplus", "vgg19_bn"),
    ("fpn", "resnet34"), ("fpn", "resnet50"), ("fpn", "vgg16_bn"),
    ("deeplabv3plus", "resnet34"), ("deeplabv3plus", "resnet50"),
]  # fmt: skip
REL_TOL = 1e-5


def _smp(arch, enc, in_channels, seed=0):
    """The smp model with random weights and non-trivial norm parameters and running stats."""
    torch.manual_seed(seed)
    model = getattr(smp, SMP[arch])(
        encoder_name=enc, encoder_weights=None, in_channels=in_channels, classes=1
    )
    _randomise_norms(model)
    return model.eval()


def _randomise_norms(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.GroupNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def _abstract(name, **kw):
    return nnx.eval_shape(lambda: create_model(name, **kw))


def _rel_err(ours, ref):
    return float(np.abs(np.asarray(ours) - ref).max() / np.abs(ref).max())


def _nhwc(t):
    return jnp.asarray(t.detach().numpy().transpose(0, 2, 3, 1))


@pytest.mark.parametrize("arch,enc", PAIRS)
@pytest.mark.parametrize("in_channels", [1, 3])
def test_param_count_equals_smp(arch, enc, in_channels):
    theirs = sum(p.numel() for p in _smp(arch, enc, in_channels).parameters())
    assert count_params(_abstract(f"{arch}_{enc}", in_channels=in_channels)) == theirs


@pytest.mark.slow
@pytest.mark.parametrize("in_channels", [1, 3])
def test_param_count_equals_smp_every_registered_pair(in_channels):
    for name in list_models("segmentation"):
        arch, _, enc = name.partition("_")
        if arch not in SMP or not enc:
            continue  # "unet" (Ronneberger) and "daf" have no smp counterpart
        theirs = sum(p.numel() for p in _smp(arch, enc, in_channels).parameters())
        assert count_params(_abstract(name, in_channels=in_channels)) == theirs, name


def _check_outputs(arch, enc, in_channels, path, size=64):
    ref_model = _smp(arch, enc, in_channels)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, in_channels, size, size)))
    x = x.float()
    with torch.no_grad():
        ref = ref_model(x).numpy().transpose(0, 2, 3, 1)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in ref_model.state_dict().items()}, str(path))
    else:
        torch.save(ref_model.state_dict(), path)
    model = _abstract(f"{arch}_{enc}", in_channels=in_channels)
    n = load_torch_weights(model, path)
    assert n == sum(1 for k in ref_model.state_dict() if not k.endswith("num_batches_tracked"))
    err = _rel_err(model(_nhwc(x))["mask"], ref)
    assert err < REL_TOL, f"{arch}_{enc}: relative error {err:.2e}"
    return model, ref_model, x


@pytest.mark.parametrize("arch", list(SMP))
def test_ported_weights_match_smp_outputs(arch, tmp_path):
    _check_outputs(arch, "resnet34", 1, tmp_path / "w.pth")


@pytest.mark.slow
@pytest.mark.parametrize("arch,enc", [p for p in PAIRS if p[1] != "resnet34"])
def test_ported_weights_match_smp_outputs_other_encoders(arch, enc, tmp_path):
    _check_outputs(arch, enc, 3, tmp_path / "w.pth")


def test_safetensors_port_and_train_mode_batchnorm(tmp_path):
    pytest.importorskip("safetensors")
    model, ref_model, x = _check_outputs("unet", "resnet18", 3, tmp_path / "w.safetensors")
    v_old = ref_model.encoder.bn1.running_var.clone()
    ref_model.train()  # Unet has no dropout: train mode differs only by batch statistics
    with torch.no_grad():
        ref = ref_model(x).numpy().transpose(0, 2, 3, 1)
    out = model(_nhwc(x), train=True)["mask"]
    # Batch statistics over 2 images (8 values per channel at stride 32) amplify fp32 rounding
    # differences in the variance, so train mode gets 1e-4 where eval mode gets 1e-5.
    assert _rel_err(out, ref) < 1e-4
    bn, tbn = model.encoder.bn1, ref_model.encoder.bn1
    np.testing.assert_allclose(bn.mean[...], tbn.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    # torch updates running_var with the unbiased batch variance, Flax with the biased one.
    n = x.shape[0] * 32 * 32
    batch_unbiased = (tbn.running_var.numpy() - 0.9 * v_old.numpy()) / 0.1
    want = 0.9 * v_old.numpy() + 0.1 * batch_unbiased * (n - 1) / n
    np.testing.assert_allclose(bn.var[...], want, rtol=1e-4)


def _tv_features(tv, x):
    with torch.no_grad():
        h = tv.relu(tv.bn1(tv.conv1(x)))
        feats = [h]
        h = tv.maxpool(h)
        for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
            h = layer(h)
            feats.append(h)
    return [f.numpy().transpose(0, 2, 3, 1) for f in feats]


@pytest.mark.parametrize("in_channels", [3, 1])
def test_torchvision_resnet34_loads_into_encoder(in_channels, tmp_path):
    torch.manual_seed(1)
    tv = torchvision.models.resnet34(weights=None)
    _randomise_norms(tv)
    tv.eval()
    path = tmp_path / "resnet34.pth"
    torch.save(tv.state_dict(), path)  # includes fc.*, which the encoder port skips
    model = _abstract("unet_resnet34", in_channels=in_channels)
    load_encoder_weights(model, path)
    if in_channels != 3:
        from segmentation_models_pytorch.encoders._utils import patch_first_conv

        patch_first_conv(tv, in_channels, pretrained=True)  # smp's own rule as the reference
    x = torch.rand(2, in_channels, 64, 64)
    ours = model.encoder(_nhwc(x))
    for k, (a, ref) in enumerate(zip(ours[1:], _tv_features(tv, x), strict=True)):
        assert _rel_err(a, ref) < REL_TOL, f"feature {k + 1}"


def test_torchvision_vgg16_bn_and_smp_checkpoints_load(tmp_path):
    torch.manual_seed(2)
    tv = torchvision.models.vgg16_bn(weights=None)
    _randomise_norms(tv)
    torch.save(tv.state_dict(), tmp_path / "vgg.pth")  # classifier.* present, skipped
    ref_enc = smp.encoders.get_encoder("vgg16_bn", in_channels=3, weights=None)
    ref_enc.load_state_dict(tv.state_dict())
    ref_enc.eval()
    model = _abstract("fpn_vgg16_bn", in_channels=3)
    load_encoder_weights(model, tmp_path / "vgg.pth")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        refs = [f.numpy().transpose(0, 2, 3, 1) for f in ref_enc(x)]
    for k, (a, ref) in enumerate(zip(model.encoder(_nhwc(x)), refs, strict=True)):
        assert _rel_err(a, ref) < REL_TOL, f"feature {k}"
    # A whole smp model's checkpoint: "encoder." keys are used, decoder keys ignored.
    whole = _smp("unet", "vgg16_bn", 3, seed=3)
    torch.save(whole.state_dict(), tmp_path / "smp.pth")
    other = _abstract("unet_vgg16_bn", in_channels=3)
    load_encoder_weights(other, tmp_path / "smp.pth")
    np.testing.assert_array_equal(
        other.encoder.convs[12].kernel[...],
        whole.encoder.features[40].weight.detach().numpy().transpose(2, 3, 1, 0),
    )


def test_wrong_checkpoint_is_a_clear_error(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    model = _abstract("unet_resnet34", in_channels=3)
    with pytest.raises(WeightPortError, match=r"expected keys missing: layer1\.2\.") as err:
        load_encoder_weights(model, tmp_path / "r18.pth")
    assert "r18.pth" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(WeightPortError, match="keys not in the table"):
        load_torch_weights(_abstract("fpn_resnet34"), tmp_path / "r18.pth")


@pytest.mark.parametrize("in_channels", [1, 2, 4, 5])
def test_first_conv_adaptation_equals_smp(in_channels):
    from segmentation_models_pytorch.encoders._utils import patch_first_conv

    conv = torch.nn.Conv2d(3, 8, 3)
    w = conv.weight.detach().numpy().copy()
    holder = torch.nn.Sequential(conv)
    patch_first_conv(holder, in_channels, pretrained=True)
    np.testing.assert_allclose(
        adapt_first_conv(w, in_channels), holder[0].weight.detach().numpy(), rtol=1e-6
    )
