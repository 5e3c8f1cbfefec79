"""Faithfulness of the classifiers to torchvision 0.29 / timm 1.0 (the [torch] extra): parameter
counts for 1000 and 2 classes, and eval-mode logits of ported weights within relative error 1e-5
(fp32, CPU) — fed grey images the way the engine does, so the replication to RGB and each
network's input normalisation are checked against the reference's own preprocessing.

Flax models are built abstractly (``nnx.eval_shape``) and made concrete by the port, which must
fill every variable: nothing of the random init can leak into a comparison. Reference models get
random BatchNorm affine parameters and running statistics so a mis-mapped norm cannot hide.
"""

import re

import numpy as np
import pytest
from flax import nnx

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

import jax.numpy as jnp  # noqa: E402

from baselines.classifiers import CLASSIFIERS  # noqa: E402
from baselines.classifiers.port import load_classifier_weights, weights_note  # noqa: E402
from mtl_bench.registry import count_params, create_model  # noqa: E402
from mtl_bench.weights_cli import import_weights, load_imported  # noqa: E402

REL_TOL = 1e-5
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
TV = torchvision.models
# name: (reference factory, parity input size)
REFS = {
    "resnet50": (lambda n, **kw: TV.resnet50(num_classes=n, **kw), 64),
    "vgg16": (lambda n, **kw: TV.vgg16(num_classes=n, **kw), 64),
    "vgg19": (lambda n, **kw: TV.vgg19(num_classes=n, **kw), 64),
    "densenet201": (lambda n, **kw: TV.densenet201(num_classes=n, **kw), 64),
    "inception_v3": (
        lambda n, **kw: TV.inception_v3(num_classes=n, init_weights=False, **kw),
        75,
    ),
    "mobilenet_v2": (lambda n, **kw: TV.mobilenet_v2(num_classes=n, **kw), 64),
    "mobilenet": (lambda n, **kw: timm.create_model("mobilenetv1_100", num_classes=n, **kw), 64),
    "inception_resnet_v2": (
        lambda n, **kw: timm.create_model("inception_resnet_v2", num_classes=n, **kw),
        75,
    ),
}
# Abstract Flax builds of these take > 20 s on 2 cores (flax's rng counter under tracing).
HEAVY = ("densenet201", "inception_resnet_v2")
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in CLASSIFIERS]


def _ref_kwargs(name):
    # torchvision's aux_logits defaults to True; our inception_v3 defaults to False.
    return {"aux_logits": False} if name == "inception_v3" else {}


def _abstract(name, **kw):
    return nnx.eval_shape(lambda: create_model(name, **kw))


def _torch_count(name, n, **kw):
    with torch.device("meta"):  # shapes only: no memory, no init
        return sum(p.numel() for p in REFS[name][0](n, **kw).parameters())


@pytest.mark.parametrize("name", NAMES)
def test_param_counts_equal_reference(name):
    for n in (1000, 2):
        ours = count_params(_abstract(name, num_classes=n))
        assert ours == _torch_count(name, n, **_ref_kwargs(name)), (name, n)


def test_inception_v3_aux_head_count():
    ours = count_params(_abstract("inception_v3", num_classes=1000, aux_logits=True))
    assert ours == _torch_count("inception_v3", 1000, aux_logits=True) == 27161264


def _randomise_norms(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def _reference(name, n=1000, seed=0, **kw):
    torch.manual_seed(seed)
    model = REFS[name][0](n, **kw)
    _randomise_norms(model)
    return model.eval()


def _mean_std(name, ref):
    if hasattr(ref, "pretrained_cfg"):  # timm: the normalisation its weights were trained with
        return ref.pretrained_cfg["mean"], ref.pretrained_cfg["std"]
    return IMAGENET  # torchvision (inception_v3 then applies transform_input=True itself)


def _grey_and_rgb(name, ref, size, batch=2):
    grey = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(1))
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in _mean_std(name, ref))
    return grey, (grey.expand(-1, 3, -1, -1) - mean) / std


def _legacy_densenet(sd):
    """torchvision's downloadable DenseNet files spell ``norm1`` as ``norm.1`` (and conv)."""
    pat = re.compile(r"(denselayer\d+\.(?:norm|conv))([12])\.")
    return {pat.sub(r"\1.\2.", k): v for k, v in sd.items()}


def _save(name, ref, path):
    sd = ref.state_dict()
    if name == "densenet201":
        sd = _legacy_densenet(sd)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save(sd, path)
    return len([k for k in sd if not k.endswith("num_batches_tracked")])


def _logits(model, x, train=False):
    fn = nnx.jit(lambda m, x: m(x, train=train))
    return {k: np.asarray(v) for k, v in fn(model, x).items()}


def _nhwc(t):
    return jnp.asarray(t.numpy().transpose(0, 2, 3, 1))


def _rel_err(ours, ref):
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("name", NAMES)
def test_ported_weights_match_reference_logits(name, tmp_path):
    size = REFS[name][1]
    # inception_v3: the ImageNet file layout (aux head present) and torchvision's pretrained
    # preprocessing (transform_input); our aux-less model skips AuxLogits.* and normalises itself.
    kw = {"aux_logits": True, "transform_input": True} if name == "inception_v3" else {}
    ref = _reference(name, **kw)
    grey, rgb = _grey_and_rgb(name, ref, size)
    with torch.no_grad():
        want = ref(rgb).numpy()
    suffix = ".safetensors" if name in ("mobilenet", "inception_resnet_v2") else ".pth"
    n_file = _save(name, ref, tmp_path / f"w{suffix}")
    model = _abstract(name, num_classes=1000, image_size=size)
    report = load_classifier_weights(model, tmp_path / f"w{suffix}")
    assert report.head == "loaded"
    n_aux = sum(k.startswith("AuxLogits.") for k in ref.state_dict() if "num_batches" not in k)
    assert report.tensors == n_file - (n_aux if name == "inception_v3" else 0)
    err = _rel_err(_logits(model, _nhwc(grey))["label"], want)
    assert err < REL_TOL, f"{name}: relative error {err:.2e}"


def test_rgb_input_without_normalisation(tmp_path):
    ref = _reference("mobilenet_v2")
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = ref(x).numpy()
    _save("mobilenet_v2", ref, tmp_path / "w.pth")
    model = _abstract("mobilenet_v2", num_classes=1000, in_channels=3, input_norm="none")
    load_classifier_weights(model, tmp_path / "w.pth")
    assert _rel_err(_logits(model, _nhwc(x))["label"], want) < REL_TOL


def test_head_replaced_for_two_classes(tmp_path):
    ref = _reference("mobilenet", seed=3)
    _save("mobilenet", ref, tmp_path / "in1k.pth")
    model = create_model("mobilenet", num_classes=2, weights=tmp_path / "in1k.pth")
    assert "fc replaced (file's classifier: 1000 classes)" in weights_note(model)
    # The reference with our fresh 2-class head must then give our logits.
    ref.reset_classifier(2)
    with torch.no_grad():
        ref.classifier.weight.copy_(torch.from_numpy(np.array(model.fc.kernel[...]).T.copy()))
        ref.classifier.bias.copy_(torch.from_numpy(np.array(model.fc.bias[...])))
    grey, rgb = _grey_and_rgb("mobilenet", ref, 32)
    with torch.no_grad():
        want = ref(rgb).numpy()
    assert want.shape == (2, 2)
    assert _rel_err(_logits(model, _nhwc(grey))["label"], want) < REL_TOL


def test_weights_import_from_pth(tmp_path):
    ref = _reference("resnet50", seed=4)
    _save("resnet50", ref, tmp_path / "resnet50.pth")
    meta = import_weights("resnet50", tmp_path / "resnet50.pth", tmp_path / "imported")
    assert meta["num_classes"] == 1000 and meta["params"] == sum(
        p.numel() for p in ref.parameters()
    )
    model = _abstract("resnet50", num_classes=1000)
    report = load_imported(model, tmp_path / "imported")
    assert report.head == "loaded" and "resnet50.pth" in report.source
    grey, rgb = _grey_and_rgb("resnet50", ref, 64)
    with torch.no_grad():
        want = ref(rgb).numpy()
    assert _rel_err(_logits(model, _nhwc(grey))["label"], want) < REL_TOL


@pytest.mark.slow
def test_inception_v3_aux_head_in_training_mode(tmp_path):
    # Dropout off on both sides: train mode then differs from eval only by batch statistics.
    ref = _reference("inception_v3", aux_logits=True, transform_input=True, dropout=0.0)
    _save("inception_v3", ref, tmp_path / "w.pth")
    model = _abstract("inception_v3", num_classes=1000, aux_logits=True)
    load_classifier_weights(model, tmp_path / "w.pth")
    grey, rgb = _grey_and_rgb("inception_v3", ref, 299)
    ref.train()
    with torch.no_grad():
        logits, aux = (t.numpy() for t in ref(rgb))
    out = _logits(model, _nhwc(grey), train=True)
    # Batch statistics over 2 images amplify fp32 rounding: 1e-4 here, as in the smp tests.
    assert _rel_err(out["label"], logits) < 1e-4
    assert _rel_err(out["label_aux"], aux) < 1e-4
