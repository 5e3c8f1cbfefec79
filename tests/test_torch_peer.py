"""The PyTorch peer: the mtl_resunet twin matches ours, twins are resolved, timing runs."""

import pytest
from flax import nnx

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

from benchmarks.torch_mtl_resunet import TorchMTLResUNet, count_trainable  # noqa: E402
from benchmarks.torch_peer import run_peer, twin_spec  # noqa: E402
from mtl_bench.registry import count_params, create_model  # noqa: E402

TINY = (4, 8, 16, 32, 64)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # the paper's widths, 64…1024
        {"widths": TINY, "num_classes": 3, "dense_units": 16},
        {"widths": TINY, "merge": "add", "shortcut_kernel": 3},
        {"widths": TINY, "downsample": "stride", "upsample": "nearest"},
    ],
)
def test_twin_has_our_parameter_count(kwargs):
    ours = count_params(nnx.eval_shape(lambda: create_model("mtl_resunet", **kwargs)))
    assert count_trainable(TorchMTLResUNet(**kwargs)) == ours


def test_twin_outputs_follow_the_contract():
    model = TorchMTLResUNet(widths=TINY, num_classes=3).eval()
    out = model(torch.rand(2, 1, 32, 32))
    assert out["mask"].shape == (2, 1, 32, 32) and out["label"].shape == (2, 3)


def test_twin_specs():
    spec = twin_spec("mtl_resunet", {"widths": TINY, "dtype": "bf16"})
    assert spec == {"kind": "mtl_resunet", "kwargs": {"widths": list(TINY)}}
    assert twin_spec("unet_resnet34") == {"kind": "smp", "arch": "Unet", "encoder": "resnet34"}
    assert twin_spec("deeplabv3plus_resnet50")["arch"] == "DeepLabV3Plus"
    assert twin_spec("unet", {"base_width": 8}) == {
        "kind": "classic_unet",
        "kwargs": {"base_width": 8},
    }
    assert twin_spec("daf").startswith("no PyTorch twin")
    assert "no twin for mtl_resunet kwargs" in twin_spec("mtl_resunet", {"bogus": 1})


def test_peer_times_two_steps_on_cpu_and_time_boxes_compile():
    configs = [{"batch_size": 2, "precision": "fp32", "image_size": 32}]
    got = run_peer(
        "mtl_resunet", configs, kwargs={"widths": TINY}, steps=2, warmup=1, modes=("eager",)
    )
    assert len(got) == 1 and got[0]["status"] == "ok", got
    assert got[0]["params"] == count_params(
        nnx.eval_shape(lambda: create_model("mtl_resunet", widths=TINY))
    )
    assert got[0]["train_img_per_s"] > 0 and got[0]["infer_img_per_s"] > 0
    assert got[0]["train_pipelined_img_per_s"] > 0
    # The JAX side's statistics (step_stats.py): spreads of the 2 steps and the pipelined runs.
    assert got[0]["train_iqr_pct"] >= 0 and got[0]["infer_iqr_pct"] >= 0
    assert got[0]["train_pipelined_spread_pct"] >= 0
    assert got[0]["loss_finite"] is True
    # A 1-second box cannot fit even the interpreter start: the row says so, nothing hangs.
    boxed = run_peer("mtl_resunet", configs, kwargs={"widths": TINY}, modes=("compile",), timeout=1)
    assert boxed[0]["status"] == "skipped: compile run exceeded its 1 s time box"
    skipped = run_peer("daf", configs)
    assert {r["status"] for r in skipped} == {"skipped: no PyTorch twin for 'daf'"}
    assert {r["mode"] for r in skipped} == {"eager", "compile"}


@pytest.mark.parametrize("name", ["resnet50", "inception_v3", "mobilenet", "mobilenet_v2"])
def test_classifier_twins_have_our_parameter_count(name):
    from benchmarks.torch_peer_child import build_twin

    spec = twin_spec(name)
    assert spec == {"kind": "classifier", "name": name}
    twin, tasks, in_ch = build_twin(spec, 1, 2)
    ours = count_params(nnx.eval_shape(lambda: create_model(name, num_classes=2)))
    assert (tasks, in_ch) == (("label",), 3) and count_trainable(twin) == ours


@pytest.mark.parametrize("kwargs", [{"base_width": 4}, {"base_width": 4, "batch_norm": False}])
def test_classic_unet_twin_has_our_parameter_count(kwargs):
    from benchmarks.torch_peer_child import build_twin

    twin, tasks, in_ch = build_twin(twin_spec("unet", kwargs), 1, 2)
    ours = count_params(nnx.eval_shape(lambda: create_model("unet", **kwargs)))
    assert (tasks, in_ch) == (("mask",), 1) and count_trainable(twin) == ours
    assert twin.eval()(torch.rand(2, 1, 32, 32))["mask"].shape == (2, 1, 32, 32)
    full = count_params(nnx.eval_shape(lambda: create_model("unet")))
    assert count_trainable(build_twin(twin_spec("unet"), 1, 2)[0]) == full


def test_child_flushes_denormals_on_cpu_as_xla_does(tmp_path, monkeypatch):
    # XLA's CPU backend flushes denormals to zero; unflushed, torch's eager steps were at times
    # 100x slower on CPU (a bogus ×torch). Recorded, not set: the test process keeps its mode.
    from benchmarks import torch_peer_child

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "set_flush_denormal", calls.append)
    job = tmp_path / "job.json"
    job.write_text('{"configs": []}')
    assert torch_peer_child.main([str(job)]) == 0
    assert calls == [True]


def test_each_compile_configuration_is_compiled_fresh_with_static_shapes(monkeypatch):
    # Before: dynamo's caches carried over from one configuration to the next in the child, so
    # the second batch size got a dynamic-shape graph (and past recompile_limit, eager code).
    from benchmarks import torch_peer_child

    calls = []
    monkeypatch.setattr(torch.compiler, "reset", lambda: calls.append("reset"))

    def fake_compile(model, **kwargs):
        calls.append(("compile", kwargs))
        return model  # runs eagerly: only the order of the calls is under test

    monkeypatch.setattr(torch, "compile", fake_compile)
    job = {"spec": twin_spec("mtl_resunet", {"widths": TINY}), "in_channels": 1,
           "num_classes": 2, "steps": 1, "warmup": 0}  # fmt: skip
    for batch in (2, 4):
        cfg = {"batch_size": batch, "precision": "fp32", "image_size": 16, "mode": "compile"}
        assert torch_peer_child.time_config(job, cfg)["status"] == "ok"
    assert calls == ["reset", ("compile", {"dynamic": False})] * 2


@pytest.mark.slow
def test_a_second_batch_size_is_traced_with_static_shapes():
    # Real dynamo tracing, a backend that only records: before the fix the second batch size's
    # graphs took symbolic (dynamic) shapes, so its compile and its code were unlike the first's.
    from benchmarks import torch_peer_child

    dynamic, real_compile = [], torch.compile

    def recording(gm, example_inputs):
        shapes = [x.shape for x in example_inputs if isinstance(x, torch.Tensor)]
        symbolic = any(isinstance(x, torch.SymInt) for x in example_inputs) or any(
            isinstance(d, torch.SymInt) for shape in shapes for d in shape
        )
        dynamic.append(symbolic)
        return gm.forward  # no inductor: runs the traced graph eagerly

    job = {"spec": twin_spec("mtl_resunet", {"widths": TINY}), "in_channels": 1,
           "num_classes": 2, "steps": 1, "warmup": 0}  # fmt: skip
    seen = []
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch, "compile", lambda m, **kw: real_compile(m, backend=recording, **kw))
            for batch in (2, 4):
                cfg = {"batch_size": batch, "precision": "fp32", "image_size": 16,
                       "mode": "compile"}  # fmt: skip
                assert torch_peer_child.time_config(job, cfg)["status"] == "ok"
                seen.append(len(dynamic))
    finally:
        torch.compiler.reset()  # the recording backend's graphs must not outlive the test
    assert seen[0] > 0 and len(dynamic) > seen[0]  # both configurations were traced
    assert not any(dynamic)
