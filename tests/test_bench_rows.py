"""The bench's bookkeeping, without training a model: OOM back-off, MFU, per-model options, the
paper-protocol estimate and the fold-parallel speed-up read from rows."""

import sys

import pytest

from benchmarks import timing
from benchmarks.bench_kwargs import kwargs_cell, parse_model_kwargs
from benchmarks.bench_model import _finish
from benchmarks.throughput_summary import fold_speedups, protocol_minutes


def test_oom_backs_off_to_half_the_batch(monkeypatch):
    seen = []

    def fake_measure(spec):
        seen.append(spec.batch_size)
        if spec.batch_size > 2:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate")
        return {"train_ms": 1.0}

    monkeypatch.setattr(timing, "measure", fake_measure)
    row, note = timing.measure_with_backoff(timing.BenchSpec("mtl_resunet", 8))
    assert seen == [8, 4, 2] and row["batch_size"] == 2
    assert note == "OOM at batch 8, 4; measured at 2"
    monkeypatch.setattr(timing, "measure", lambda spec: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # other errors are not retried
        timing.measure_with_backoff(timing.BenchSpec("mtl_resunet", 8))


def test_oom_frees_memory_after_leaving_the_failed_attempt(monkeypatch):
    # Before: gc.collect and jax.clear_caches ran inside the except block, while the OOM error
    # (and its traceback's frames, holding the failed attempt's buffers) was still alive.
    handling = []
    monkeypatch.setattr(timing.gc, "collect", lambda: handling.append(sys.exc_info()[0]))
    monkeypatch.setattr(timing.jax, "clear_caches", lambda: handling.append(sys.exc_info()[0]))

    def fake_measure(spec):
        if spec.batch_size > 2:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate")
        return {"train_ms": 1.0}

    monkeypatch.setattr(timing, "measure", fake_measure)
    row, _ = timing.measure_with_backoff(timing.BenchSpec("mtl_resunet", 8))
    assert row["batch_size"] == 2
    assert handling == [None] * 4  # two retries, each cleaned up with no exception in hand


def test_mfu_is_of_the_peak_of_every_device_the_row_ran_on():
    # Before: a 4-device row's whole-step FLOP/s over one device's peak (MFU up to 400 %).
    one = _finish({"achieved_tflops": 50.0, "devices": 1}, 100.0, "H100 bf16 dense")
    four = _finish({"achieved_tflops": 200.0, "devices": 4}, 100.0, "H100 bf16 dense")
    assert one["mfu_pct"] == pytest.approx(50.0) and four["mfu_pct"] == pytest.approx(50.0)
    assert four["peak_tflops"] == 100.0  # the column stays one device's peak
    assert _finish({"achieved_tflops": 1.0, "devices": 2}, None, "")["mfu_pct"] is None
    assert "mfu_pct" not in _finish({"devices": 0, "status": "skipped: x"}, 100.0, "")


def test_model_kwargs_parse_per_model():
    got = parse_model_kwargs(["widths=(4,8)", "unet:base_width=4", "unet:dropout=0.1"])
    assert got == {"*": {"widths": (4, 8)}, "unet": {"base_width": 4, "dropout": 0.1}}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_model_kwargs(["widths"])


def test_protocol_estimate_names_fold_conv_and_non_paper_networks():
    base = {"model": "mtl_resunet", "status": "ok", "devices": "1", "image_size": "64",
            "batch_size": "16", "precision": "fp32", "device_kind": "cpu"}  # fmt: skip
    cell = kwargs_cell({"widths": (8, 16), "dense_units": 4})
    assert cell == "dense_units=4 widths=(8, 16)" and kwargs_cell({}) == ""
    rows = [
        {**base, "strategy": "none", "train_img_per_s": "100", "model_kwargs": cell},
        {**base, "strategy": "fold", "train_img_per_s": "200", "fold_conv": "unrolled"},
        {**base, "strategy": "fold", "train_img_per_s": "50"},  # a CSV from before fold_conv
        {**base, "strategy": "jit", "train_img_per_s": "50"},  # not a one-device protocol
    ]
    got = protocol_minutes(rows)
    # 500 epochs × 647 images × 4 training folds = 1,294,000 images.
    # At 64² the paper's length is estimated, and the line says it is not the paper's setting.
    assert got[0].startswith(
        "paper protocol's length (5 folds × 500 epochs × 4/5 of 647 images): 215.7 min"
    )
    assert got[0].endswith("; the paper's is 256², batch 16/fold")
    paper = protocol_minutes([{**rows[0], "image_size": "256", "model_kwargs": ""}])
    assert paper[0].startswith("paper protocol (5 folds") and "the paper's is" not in paper[0]
    assert "folds one after another, model dense_units=4 widths=(8, 16)" in got[0]
    assert "107.8 min" in got[1] and "folds side by side, fold_conv=unrolled (" in got[1]
    assert "fold_conv=grouped" in got[2] and len(got) == 3
    # The pipelined rate (what the training loop sees) is preferred where the row has it.
    piped = protocol_minutes([{**rows[0], "train_pipelined_img_per_s": "200"}])
    assert "107.8 min" in piped[0] and "(200 img/s, steps pipelined, on cpu)" in piped[0]
    assert "(100 img/s on cpu)" in got[0]


def test_fold_speedup_compares_like_with_like():
    base = {"model": "m", "image_size": "64", "batch_size": "16", "precision": "fp32",
            "device_kind": "cpu", "status": "ok"}  # fmt: skip
    rows = [
        {**base, "strategy": "none", "train_img_per_s": "100"},  # an older CSV: no new columns
        {**base, "strategy": "none", "train_img_per_s": "50", "model_kwargs": "widths=(4, 8)"},
        {**base, "strategy": "fold", "train_img_per_s": "80", "model_kwargs": "", "folds": "5"},
        {**base, "strategy": "fold", "train_img_per_s": "80", "model_kwargs": "widths=(4, 8)"},
    ]
    got = fold_speedups(rows)
    assert got[2]["x_sequential"] == pytest.approx(0.8)
    assert got[3]["x_sequential"] == pytest.approx(1.6)
