"""The throughput bench end to end: the CSV, fold-parallel rows, profiles, config overrides
(bookkeeping on rows: test_bench_rows.py; FLOPs and peaks: test_flops.py)."""

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest
from flax import nnx

from benchmarks import timing
from benchmarks.throughput import main
from benchmarks.throughput_io import COLUMNS
from mtl_bench import registry
from mtl_bench.provenance import host_cpu
from mtl_bench.registry import ModelInfo, count_params

ROOT = Path(__file__).resolve().parents[1]  # subprocesses import benchmarks from here


def _tiny_builder(*, rngs, in_channels=1, num_classes=2, image_size=None):
    """A registered-contract model without a dtype argument (bf16 must be skipped)."""
    return ConvMTL(in_channels, num_classes, rngs)


class ConvMTL(nnx.Module):
    def __init__(self, cin, classes, rngs):
        self.conv = nnx.Conv(cin, 4, (3, 3), rngs=rngs)
        self.head = nnx.Conv(4, 1, (1, 1), rngs=rngs)
        self.fc = nnx.Linear(4, classes, rngs=rngs)

    def __call__(self, x, train=False, rng=None):
        h = jax.nn.relu(self.conv(x))
        return {"mask": self.head(h), "label": self.fc(h.mean(axis=(1, 2)))}


def test_bench_writes_a_well_formed_csv(tmp_path, monkeypatch, capsys):
    registry.list_models()  # load the real registry before adding the test model
    info = ModelInfo("bench_tiny", _tiny_builder, ("mask", "label"), "proposed", {})
    monkeypatch.setitem(registry._REGISTRY, "bench_tiny", info)
    argv = ["--models", "bench_tiny", "--batch-sizes", "2", "--precision", "fp32,bf16",
            "--image-size", "16", "--steps", "2", "--warmup", "1", "--out", str(tmp_path),
            "--compile-cache", "off"]  # fmt: skip
    assert main(argv) == 0
    files = list((tmp_path / "throughput").glob("cpu-*.csv"))
    assert len(files) == 1
    with open(files[0], newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    assert [(r["precision"], r["status"]) for r in rows] == [
        ("fp32", "ok"),
        ("bf16", "skipped: bf16: the model's builder takes no dtype argument"),
    ]
    ok = rows[0]
    for key in ("train_img_per_s", "infer_img_per_s", "train_ms", "compile_s", "input_ms"):
        assert float(ok[key]) > 0, key
    assert float(ok["mem_compiled_gb"]) > 0  # XLA's memory analysis answers on the CPU too
    # Steps dispatched back to back: never slower than dispatch alone, and a real rate.
    piped_ms = 2 / float(ok["train_pipelined_img_per_s"]) * 1e3
    assert float(ok["host_ms"]) * 0.5 < piped_ms < 10 * float(ok["train_ms"])
    assert float(ok["train_img_per_s"]) == pytest.approx(2 / (float(ok["train_ms"]) / 1e3), 1e-3)
    assert int(ok["params"]) == count_params(_tiny_builder(rngs=nnx.Rngs(0)))
    macs = 16 * 16 * 4 * 9 + 16 * 16 * 4 + 4 * 2  # conv, 1×1 head, dense
    assert float(ok["gflops_per_img"]) == pytest.approx(2 * macs / 1e9, rel=1e-5)
    assert ok["device_kind"] == "cpu" and ok["jax_version"] == jax.__version__
    assert ok["host_cpu"] == host_cpu() and "cores" in ok["host_cpu"]
    assert ok["mfu_pct"] == "" and ok["peak_tflops"] == ""  # no CPU peak: blank, not guessed
    assert ok["compile_warm_s"] == "" and ok["loss_finite"] == "True"
    assert ok["strategy"] == "none" and ok["devices"] == "1" and ok["batch_size"] == "2"
    assert math.isfinite(float(ok["input_stall_pct"]))
    out = capsys.readouterr().out
    assert "| bench_tiny" in out and str(files[0]) in out
    # With the persistent cache on, the second compile (in-memory caches cleared) is timed too.
    argv = [*argv[:5], "fp32", *argv[6:-1], str(tmp_path / "cache")]
    session_cache = jax.config.jax_compilation_cache_dir  # conftest's: given back afterwards
    try:
        assert main([*argv, "--csv", str(tmp_path / "warm.csv")]) == 0
    finally:
        jax.config.update("jax_compilation_cache_dir", session_cache)
    with open(tmp_path / "warm.csv", newline="") as f:
        (warm,) = list(csv.DictReader(f))
    assert warm["status"] == "ok" and float(warm["compile_warm_s"]) > 0


def test_bench_rejects_bad_arguments(capsys):
    assert main(["--models", "no_such_model", "--out", "/nonexistent"]) == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    assert main(["--models", "mtl_resunet", "--precision", "fp16"]) == 2
    assert "--precision" in capsys.readouterr().err


def test_bench_fold_strategy_times_k_folds_in_one_step(tmp_path, monkeypatch):
    registry.list_models()
    info = ModelInfo("bench_tiny", _tiny_builder, ("mask", "label"), "proposed", {})
    monkeypatch.setitem(registry._REGISTRY, "bench_tiny", info)
    csv_path = tmp_path / "t.csv"
    argv = ["--models", "bench_tiny", "--batch-sizes", "2", "--precision", "fp32",
            "--image-size", "16", "--steps", "2", "--warmup", "1", "--csv", str(csv_path),
            "--compile-cache", "off"]  # fmt: skip
    # Two invocations, as gpu_check.sh runs them: the fold row finds its none row in the CSV.
    assert main(argv + ["--parallel", "none"]) == 0
    argv += ["--folds", "3"]
    assert main(argv + ["--parallel", "fold", "--fold-conv", "grouped,unrolled"]) == 0
    with open(csv_path, newline="") as f:
        none, grouped, fold = list(csv.DictReader(f))
    assert (none["strategy"], fold["strategy"]) == ("none", "fold")
    assert (none["fold_conv"], grouped["fold_conv"], fold["fold_conv"]) == (
        "",
        "grouped",
        "unrolled",
    )
    assert grouped["status"] == "ok" and grouped["x_sequential"] != ""
    assert fold["status"] == "ok" and fold["folds"] == "3" and fold["loss_finite"] == "True"
    # One step trains 3 folds × batch 2: six images per step.
    step_s = float(fold["train_ms"]) / 1e3
    assert float(fold["train_img_per_s"]) == pytest.approx(6 / step_s, 1e-3)
    assert float(fold["train_pipelined_img_per_s"]) > 0  # also per 6 images
    ratio = float(fold["train_img_per_s"]) / float(none["train_img_per_s"])
    assert float(fold["x_sequential"]) == pytest.approx(ratio, rel=1e-4)
    assert none["x_sequential"] == "" and fold["infer_img_per_s"] == ""
    assert main(argv[:-2] + ["--folds", "1", "--parallel", "fold"]) == 2  # not fold-parallel
    assert main(argv + ["--parallel", "fold", "--fold-conv", "dense"]) == 2  # unknown mode


def test_bench_keeps_each_finished_configuration(tmp_path, monkeypatch):
    # A time box may kill the bench mid-model: rows measured before that must be on disk.
    calls = []

    def fake_measure(spec):
        calls.append(spec.batch_size)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands in for the time box's SIGTERM
        return {"train_img_per_s": 1.0, "status": "ok"}

    monkeypatch.setattr(timing, "measure", fake_measure)
    csv_path = tmp_path / "t.csv"
    argv = ["--models", "mtl_resunet", "--batch-sizes", "2,4", "--precision", "fp32",
            "--image-size", "32", "--csv", str(csv_path), "--compile-cache", "off"]  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["batch_size"], r["status"]) for r in rows] == [("2", "ok")]


@pytest.mark.slow
def test_bench_profile_traces_each_configuration(tmp_path):
    # A subprocess (the real CLI): the profiler's threads keep a pytest-xdist worker from exiting
    # cleanly, so no in-process profiling in the test suite.
    csv_path, prof = tmp_path / "t.csv", tmp_path / "prof"
    argv = ["--models", "mtl_resunet", "--set", "widths=(4,8,16,32,64)", "--batch-sizes", "2",
            "--precision", "fp32", "--image-size", "32", "--steps", "2", "--warmup", "1",
            "--csv", str(csv_path), "--compile-cache", "off", "--folds", "2", "--parallel",
            "none,fold", "--fold-conv", "grouped", "--profile", str(prof)]  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "benchmarks.throughput", *argv],
        capture_output=True, text=True, timeout=600, check=True, cwd=ROOT,
    )  # fmt: skip
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    traces = [r["profile_trace"] for r in rows]
    assert "mtl_resunet-32px-b2-fp32-none" in traces[0]
    assert "mtl_resunet-32px-b2-fp32-fold2-grouped" in traces[1]
    for t in traces:
        assert t.endswith("perfetto_trace.json.gz") and os.path.getsize(t) > 0


def test_bench_config_overrides_reach_the_engine_and_the_row(tmp_path, monkeypatch, capsys):
    registry.list_models()
    info = ModelInfo("bench_tiny", _tiny_builder, ("mask", "label"), "proposed", {})
    monkeypatch.setitem(registry._REGISTRY, "bench_tiny", info)
    seen = []
    real = timing.apply_overrides
    monkeypatch.setattr(timing, "apply_overrides", lambda c, i: seen.append(i) or real(c, i))
    csv_path = tmp_path / "t.csv"
    argv = ["--models", "bench_tiny", "--batch-sizes", "2", "--precision", "fp32",
            "--image-size", "16", "--steps", "2", "--warmup", "1", "--csv", str(csv_path),
            "--compile-cache", "off"]  # fmt: skip
    assert main(argv + ["--config", "optimizer_flatten=true", "--config", "hflip=false"]) == 0
    assert seen == [["optimizer_flatten=true", "hflip=false"]]
    with open(csv_path, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "ok" and row["config_overrides"] == "optimizer_flatten=true hflip=false"
    capsys.readouterr()
    assert main(argv + ["--config", "batch_size=4"]) == 2  # the bench's own option
    assert "batch_size is set by the bench's own options" in capsys.readouterr().err
    assert main(argv + ["--config", "model_kwargs.widths=(4,8)"]) == 2
    assert "a model option; give it with --set" in capsys.readouterr().err
    assert main(argv + ["--config", "no_such_field=1"]) == 2
    assert "unknown config key 'no_such_field'" in capsys.readouterr().err


def test_rows_sharing_an_inference_program_carry_its_cold_compile(tmp_path, monkeypatch):
    # none and jit differ only in training: the second row's inference compile would be a read
    # of the persistent cache the first row filled, so it carries the first (cold) figure.
    registry.list_models()
    info = ModelInfo("bench_tiny_infer", _tiny_builder, ("mask", "label"), "proposed", {})
    monkeypatch.setitem(registry._REGISTRY, "bench_tiny_infer", info)
    csv_path = tmp_path / "t.csv"
    argv = ["--models", "bench_tiny_infer", "--batch-sizes", "2", "--precision", "fp32",
            "--image-size", "16", "--steps", "2", "--warmup", "1", "--csv", str(csv_path),
            "--parallel", "none,jit", "--devices", "1"]  # fmt: skip
    assert main(argv) == 0
    with open(csv_path, newline="") as f:
        none, jit = list(csv.DictReader(f))
    assert (none["strategy"], jit["strategy"]) == ("none", "jit")
    assert float(none["infer_compile_s"]) > 0
    assert jit["infer_compile_s"] == none["infer_compile_s"]
