"""The bench's --time-box over many models: the proposed model is measured first, a model is
refused only when its own estimate (parameter arrays × the slowest rate so far) does not fit —
not because one slow model came before — and the models left out share one printed line.

The clock is time_box.py's, moved by hand; measurements and other models' sizes are faked (the
selected models are still built abstractly by the bench's own checks, a second or two)."""

import csv
from types import SimpleNamespace

import pytest

from benchmarks import bench_model, throughput, time_box, timing
from benchmarks.throughput import main
from benchmarks.time_box import TimeBox, param_arrays

SECONDS = {"mtl_resunet": 30, "unet": 100, "vgg16": 10}  # what a configuration takes (or 1000 s)
ARRAYS = {"mtl_resunet": 100, "unet": 64, "vgg16": 20, "resnet50": 200, "unet_resnet50": 300}


@pytest.fixture
def clock(monkeypatch):
    fake = SimpleNamespace(t=1000.0)
    fake.monotonic = lambda: fake.t
    monkeypatch.setattr(time_box, "time", fake)
    return fake


def run(tmp_path, monkeypatch, clock, box, models="unet,resnet50,unet_resnet50,vgg16,mtl_resunet"):
    measured = []

    def measure(spec):
        measured.append(spec.model)
        clock.t += SECONDS.get(spec.model, 1000)
        return {"train_img_per_s": 10.0, "param_arrays": ARRAYS[spec.model]}

    monkeypatch.setattr(timing, "measure", measure)
    monkeypatch.setattr(bench_model, "param_arrays", lambda name, kw, size: ARRAYS[name])
    path = tmp_path / "t.csv"
    argv = ["--models", models, "--precision", "fp32",
            "--image-size", "32", "--batch-sizes", "2", "--steps", "1", "--warmup", "0",
            "--compile-cache", "off", "--csv", str(path), *box]  # fmt: skip
    assert main(argv) == 0
    with open(path, newline="") as f:
        return measured, {r["model"]: r["status"] for r in csv.DictReader(f)}


def test_a_slow_model_does_not_refuse_every_smaller_one(tmp_path, monkeypatch, clock, capsys):
    measured, status = run(tmp_path, monkeypatch, clock, ["--time-box", "200"])
    # mtl_resunet first; unet's 100 s leave 55 s (15 s kept for the CSV): vgg16's estimate
    # (20 arrays × 100/64 s) fits, resnet50's and unet_resnet50's do not. Before: every model
    # after unet was refused, unet's 100 s being the guess for each.
    assert measured == ["mtl_resunet", "unet", "vgg16"]
    left = "time box spent (70 s of the 200 s --time-box left"
    assert status["resnet50"] == f"skipped: {left}, this configuration needs about 312 s)"
    assert status["unet_resnet50"] == f"skipped: {left}, this configuration needs about 469 s)"
    out = capsys.readouterr().out
    assert out.count("not started") == 1  # one line for the models left out, not one each
    # The rows give the time left when each model's turn came, the summary the time left now.
    assert "[bench] time box: 2 models not started, too little time left when their turns " \
           "came (see their rows): resnet50, unet_resnet50 (60 s of the 200 s left " \
           "now)" in out  # fmt: skip
    assert "[bench] resnet50:" not in out


def test_models_skipped_whatever_the_time_are_not_time_box_rows(
    tmp_path, monkeypatch, clock, capsys
):
    # --models all meets a model it cannot build at the size and a feature method: before, with
    # the box spent, their rows said "time box spent" and the summary counted them as estimated.
    order = ["unet", "resnet50", "moon_features", "inception_v3", "mtl_resunet"]
    monkeypatch.setattr(throughput, "select_models", lambda spec: list(order))
    measured, status = run(tmp_path, monkeypatch, clock, ["--time-box", "200"], models="all")
    assert measured == ["mtl_resunet", "unet"]
    assert status["resnet50"].startswith("skipped: time box spent")
    assert status["moon_features"] == "skipped: not trained by gradient descent (no step to time)"
    assert status["inception_v3"].startswith("skipped: cannot build at 32²: ")
    assert "needs image_size >=" in status["inception_v3"]
    out = capsys.readouterr().out
    assert "[bench] not buildable at 32²: inception_v3" in out
    assert "[bench] moon_features: skipped: not trained by gradient descent" in out
    assert "[bench] inception_v3: skipped: cannot build at 32²: " in out
    assert "[bench] inception_v3: 1 rows in" not in out  # before: a count for a skipped model
    assert "1 model not started, too little time left when its turn came " \
           "(see their rows): resnet50 (" in out  # fmt: skip


def test_without_a_time_box_the_given_order_stands(tmp_path, monkeypatch, clock):
    measured, _ = run(tmp_path, monkeypatch, clock, [])
    assert measured == ["unet", "resnet50", "unet_resnet50", "vgg16", "mtl_resunet"]


def test_estimates_learn_the_slowest_rate_per_array(clock):
    box = TimeBox(100)
    assert box.estimate(50) == 0.0  # nothing measured: nothing to go by
    for seconds, arrays in ((10, 100), (30, 60)):
        with box.timed({"param_arrays": arrays}):
            clock.t += seconds
    assert box.estimate(10) == pytest.approx(5.0) and box.longest_s == 30
    assert box.estimate(None) == 30  # a size unknown: the longest configuration so far


def test_param_arrays_counts_a_buildable_model_only():
    assert param_arrays("mtl_resunet", {"widths": (4, 8, 16, 32, 64)}, 32) > 20
    assert param_arrays("mtl_resunet", {}, 30) == 0  # not buildable: skipped at once, no cost
    assert param_arrays("moon_features", {}, 32) == 0  # a feature method compiles nothing
