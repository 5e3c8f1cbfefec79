"""Transfer-learning classifiers without torch: registration, output contract at each network's
smallest valid size, head replacement, grey-input handling, weight import round trip (through a
.safetensors file written from the model itself), backbone freezing and a fit through the engine.
"""

import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from baselines.classifiers import CLASSIFIERS, backbone_mask, freeze_backbone
from baselines.classifiers.base import INPUT_NORMS
from baselines.classifiers.port import export_state_dict, normalise_keys, weights_note
from mtl_bench.config import RunConfig
from mtl_bench.data.phantom import synth_phantom
from mtl_bench.fit import fit_fold
from mtl_bench.registry import count_params, create_model, list_models, model_info
from mtl_bench.weights import WeightPortError
from mtl_bench.weights_cli import import_summary, import_weights, load_imported

# Smallest input each reference accepts (torchvision meta "min_size"; timm measured).
MIN_SIZE = {
    "resnet50": 1,
    "vgg16": 32,
    "vgg19": 32,
    "densenet201": 29,
    "inception_v3": 75,
    "mobilenet_v2": 1,
    "mobilenet": 1,
    "inception_resnet_v2": 75,
}
# Width of the features the last dense layer reads.
HEAD_IN = {
    "resnet50": 2048,
    "vgg16": 4096,
    "vgg19": 4096,
    "densenet201": 1920,
    "inception_v3": 2048,
    "mobilenet_v2": 1280,
    "mobilenet": 1024,
    "inception_resnet_v2": 1536,
}


# Building these two abstractly takes > 10 s on 2 busy cores (flax's rng counter under tracing).
HEAVY = ("densenet201", "inception_resnet_v2")
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in CLASSIFIERS]


def _abstract(name, **kw):
    return nnx.eval_shape(lambda: create_model(name, **kw))


@pytest.fixture(scope="module")
def mobilenet():
    return create_model("mobilenet", num_classes=1000, seed=1)


def test_registered_with_native_sizes():
    assert set(CLASSIFIERS) <= set(list_models("classification"))
    for name in CLASSIFIERS:
        info = model_info(name)
        assert info.tasks == ("label",) and info.family == "classification"
        assert info.defaults["image_size"] == (299 if "inception" in name else 224)


@pytest.mark.parametrize("name", NAMES)
def test_output_contract_at_smallest_size(name):
    size = MIN_SIZE[name]
    out = nnx.eval_shape(lambda: create_model(name, image_size=size)(jnp.zeros((3, size, size, 1))))
    assert set(out) == {"label"}
    assert out["label"].shape == (3, 2) and out["label"].dtype == jnp.float32
    if size > 1:
        with pytest.raises(ValueError, match=f"{name} needs image_size >= {size}, got {size - 1}"):
            create_model(name, image_size=size - 1)


@pytest.mark.parametrize("name", NAMES)
def test_head_has_num_classes_units(name):
    two = count_params(_abstract(name, num_classes=2))
    thousand = count_params(_abstract(name, num_classes=1000))
    assert thousand - two == (HEAD_IN[name] + 1) * 998


def test_bad_arguments_are_one_line_errors():
    cases = [
        (dict(in_channels=2), "in_channels must be 1 .* or 3, got 2"),
        (dict(num_classes=0), "num_classes=0: model 'inception_v3' takes an integer >= 1"),
        (dict(input_norm="caffe"), "unknown input_norm 'caffe'"),
        (dict(freeze_backbone_epochs=-1), "freeze_backbone_epochs=-1: .* an integer >= 0"),
        (dict(image_size=64, aux_logits=True), "needs image_size >= 299, got 64"),
        (dict(dropout_rate=1.0), "dropout_rate=1.0: .* takes a rate in \\[0, 1\\)"),
    ]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg) as err:
            create_model("inception_v3", **kw)
        assert "\n" not in str(err.value)
    with pytest.raises(TypeError, match="does not take widths"):
        create_model("resnet50", widths=(1, 2))
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        create_model("mobilenet", weights="/no/such/weights.pth")


def test_grey_input_is_replicated_and_normalised(mobilenet):
    x = jax.random.uniform(jax.random.key(0), (2, 40, 40, 1))
    ref = create_model("mobilenet", num_classes=1000, seed=1, in_channels=3, input_norm="none")
    mean, std = (np.asarray(s, np.float32) for s in INPUT_NORMS["inception"])
    rgb = (np.repeat(np.asarray(x), 3, axis=-1) - mean) / std
    np.testing.assert_allclose(
        mobilenet(x)["label"], ref(jnp.asarray(rgb))["label"], rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="expects NHWC input with 1 channel"):
        mobilenet(jnp.zeros((1, 40, 40, 3)))
    # bf16 compute (the engine's precision="bf16"): float32 logits near the fp32 ones.
    half = create_model("mobilenet", num_classes=1000, seed=1, dtype="bf16")
    out = half(x)["label"]
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, mobilenet(x)["label"], atol=0.1 * float(jnp.abs(out).max()))


def test_densenet_legacy_names_are_renamed():
    sd = {
        "features.denseblock1.denselayer1.norm.1.weight": 1,
        "features.denseblock4.denselayer32.conv.2.weight": 2,
        "features.denseblock2.denselayer3.norm.2.num_batches_tracked": 4,
        "features.transition1.norm.weight": 3,
    }
    assert normalise_keys(sd) == {
        "features.denseblock1.denselayer1.norm1.weight": 1,
        "features.denseblock4.denselayer32.conv2.weight": 2,
        "features.denseblock2.denselayer3.norm2.num_batches_tracked": 4,
        "features.transition1.norm.weight": 3,
    }


def _params(model):
    return {
        tuple(map(str, p)): np.asarray(v[...])
        for p, v in nnx.iter_graph(model)
        if isinstance(v, nnx.Param | nnx.BatchStat)
    }


def test_import_round_trip_and_head_replacement(mobilenet, tmp_path):
    from safetensors.numpy import save_file

    src = tmp_path / "mobilenetv1_100.safetensors"
    save_file(export_state_dict(mobilenet), str(src))
    meta = import_weights("mobilenet", src, tmp_path / "imported")
    assert meta["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert meta["num_classes"] == 1000 and meta["arch"] == "mobilenet"
    assert meta["tensors"] == len(export_state_dict(mobilenet))
    assert json.loads((tmp_path / "imported" / "imported.json").read_text()) == meta
    line = import_summary(meta, tmp_path / "imported")  # what `mtl-bench weights import` prints
    assert "\n" not in line and line.startswith("imported mobilenet from mobilenetv1_100.safe")
    assert f"{meta['tensors']} tensors" in line and "1000-class head" in line

    want = _params(mobilenet)
    same = create_model("mobilenet", num_classes=1000, weights=tmp_path / "imported")
    assert all(np.array_equal(v, want[k]) for k, v in _params(same).items())
    x = jnp.full((1, 32, 32, 1), 0.3)
    np.testing.assert_array_equal(same(x)["label"], mobilenet(x)["label"])
    assert "head loaded" in weights_note(same)

    two = create_model("mobilenet", num_classes=2, seed=5, weights=tmp_path / "imported")
    fresh = _params(create_model("mobilenet", num_classes=2, seed=5))
    for k, v in _params(two).items():
        np.testing.assert_array_equal(v, fresh[k] if k[0] == "fc" else want[k])
    assert "fc replaced (file: 1000 classes)" in weights_note(two)
    # The checkpoint file itself works as ``weights`` too.
    direct = create_model("mobilenet", num_classes=2, seed=5, weights=src)
    assert all(np.array_equal(v, _params(two)[k]) for k, v in _params(direct).items())

    with pytest.raises(ValueError, match="already holds imported weights"):
        import_weights("mobilenet", src, tmp_path / "imported")
    with pytest.raises(WeightPortError, match="holds mobilenet weights, not mobilenet_v2"):
        load_imported(_abstract("mobilenet_v2"), tmp_path / "imported")
    # An array whose data changed since the import (its checksum in the sidecar): refused.
    sidecar = tmp_path / "imported" / "imported.json"
    record = json.loads(sidecar.read_text())
    name = sorted(record["digest"])[0]
    record["digest"][name][1] ^= 1
    sidecar.write_text(json.dumps(record))
    with pytest.raises(WeightPortError, match=f"the imported array {name} does not match its"):
        load_imported(_abstract("mobilenet"), tmp_path / "imported")
    with pytest.raises(WeightPortError, match="not a full mobilenet_v2 checkpoint"):
        import_weights("mobilenet_v2", src, tmp_path / "wrong")
    partial = export_state_dict(mobilenet)
    del partial["blocks.3.5.bn2.running_var"]
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(
        WeightPortError,
        match=r"fit MobileNetV1Classifier: 1 expected keys missing: blocks\.3\.5\.bn2\.running_var",
    ):
        import_weights("mobilenet", tmp_path / "partial.safetensors", tmp_path / "wrong")
    assert not (tmp_path / "wrong").exists()  # nothing written on failure
    with pytest.raises(ValueError, match="unknown --arch 'resnet18'"):
        import_weights("resnet18", src, tmp_path / "wrong")
    # A folder of other files, or a file, as --out: refused before the port (the import was
    # written among a folder's logs; a file gave "[Errno 17] File exists").
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "run.log").write_text("x")
    with pytest.raises(ValueError, match="logs is not empty; give a new or empty folder"):
        import_weights("mobilenet", src, tmp_path / "logs")
    with pytest.raises(ValueError, match="run.log is a file, not a folder"):
        import_weights("mobilenet", src, tmp_path / "logs" / "run.log")
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["run.log"]
    # Hidden files (.DS_Store) are not "other files": such a folder is used (review).
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / ".DS_Store").write_bytes(b"")
    assert import_weights("mobilenet", src, tmp_path / "fresh")["arch"] == "mobilenet"


def test_scratch_run_says_so():
    assert weights_note(_abstract("vgg19")) == "vgg19: training from scratch (no weights file)"


def _changed(new, old, head: bool) -> bool:
    flat = jax.tree_util.tree_flatten_with_path(new)[0]
    return any(
        not np.array_equal(a, b)
        for (path, a), b in zip(flat, jax.tree.leaves(old), strict=True)
        if (path[0].key == "fc") == head
    )


def test_freeze_trains_head_first_then_backbone(mobilenet):
    params = nnx.state(mobilenet, nnx.Param)
    flat = jax.tree_util.tree_flatten_with_path(backbone_mask(mobilenet))[0]
    assert all(bool(v) == (p[0].key == "fc") for p, v in flat)
    assert sum(bool(v) for _, v in flat) == 2  # fc kernel and bias
    tx = freeze_backbone(optax.adam(1e-2), mobilenet, steps=2)
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    step = jax.jit(tx.update)
    head_moved, backbone_moved = [], []
    for _ in range(3):
        updates, state = step(grads, state, params)
        new = optax.apply_updates(params, updates)
        head_moved.append(_changed(new, params, head=True))
        backbone_moved.append(_changed(new, params, head=False))
        params = new
    assert head_moved == [True, True, True]
    assert backbone_moved == [False, False, True]
    plain = optax.adam(1e-2)
    assert freeze_backbone(plain, mobilenet, steps=0) is plain


def _fit(name, **model_kwargs):
    data = synth_phantom(12, image_size=64, seed=2, class_set="binary")
    cfg = RunConfig(
        model=name,
        model_kwargs=model_kwargs,
        image_size=64,
        epochs=1,
        batch_size=4,
        eval_batch_size=4,
        lr_decay_every=0,
        preprocess="none",
    )
    idx = np.random.default_rng(0).permutation(12)
    run = fit_fold(cfg, data, np.sort(idx[:8]), np.sort(idx[8:]), quiet=True)
    assert run.tasks == ("label",)
    prob = run.test_eval["prob"]
    assert prob.shape == (4, 2) and np.all(np.isfinite(prob))
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(run.curve[0]["loss"]) and run.params == count_params(_abstract(name))


def test_fit_fold_mobilenet():
    _fit("mobilenet")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2"])
def test_fit_fold_other_networks(name):
    _fit(name)


def test_engine_freezes_the_backbone_for_the_configured_epochs():
    data = synth_phantom(12, image_size=64, seed=2, class_set="binary")
    cfg = RunConfig(
        model="mobilenet", model_kwargs={"freeze_backbone_epochs": 1}, image_size=64, epochs=1,
        batch_size=4, eval_batch_size=4, lr_decay_every=0, preprocess="none", checkpoint_every=0,
    )  # fmt: skip
    idx = np.random.default_rng(0).permutation(12)
    run = fit_fold(cfg, data, np.sort(idx[:8]), np.sort(idx[8:]), quiet=True, keep_state=True)
    assert run.extras["from_scratch"] is True and "from scratch" in run.extras["weights"]
    fresh = create_model("mobilenet", image_size=64)  # the same seed: the run's initial weights
    start, end = nnx.state(fresh, nnx.Param), run.state["params"]
    mask = backbone_mask(fresh)
    moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), end, start)
    pairs = list(zip(jax.tree.leaves(moved), jax.tree.leaves(mask), strict=True))
    heads = [m for m, head in pairs if head]
    body = [m for m, head in pairs if not head]
    assert heads and all(heads)  # the new head learned
    assert body and not any(body)  # the backbone did not move during the frozen epoch
