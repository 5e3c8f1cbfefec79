"""Step-time statistics (``benchmarks/step_stats.py``) on both sides of the PyTorch peer: medians
and spreads, the pipelined rate as the median of repeated runs, and rows whose figures cannot be
trusted flagged in the CSV and the printed table. Clocks are faked: no test times anything."""

import csv
from types import SimpleNamespace

import jax.numpy as jnp
import pytest

from benchmarks import step_stats, throughput_io, timing, torch_peer
from benchmarks.step_clock import time_train
from benchmarks.throughput import main


def fake_clock(monkeypatch, costs):
    """step_stats's clock; each call of the returned fn costs the next of ``costs`` seconds."""
    clock = SimpleNamespace(t=0.0)
    clock.perf_counter = lambda: clock.t
    monkeypatch.setattr(step_stats, "time", clock)
    it = iter(costs)

    def fn():
        clock.t += next(it)

    return fn


def test_one_stall_moves_neither_median(monkeypatch):
    # The walkthrough's ×compile 92: one slow step set a mean. Medians are robust to it, and
    # the spread shows it.
    fn = fake_clock(monkeypatch, [0.01, 1.0, 0.01])
    times = step_stats.blocked_times(fn, 0, 3, lambda _: None)
    assert times == pytest.approx([0.01, 1.0, 0.01])
    assert step_stats.iqr_pct(times) == pytest.approx(4950.0) and step_stats.iqr_pct([1.0]) is None
    fn = fake_clock(monkeypatch, [0.01, 0.01, 1.0, 0.01, 0.01, 0.01])  # 3 runs of 2 steps
    runs = step_stats.pipelined_times(fn, 2, lambda _: None)
    assert runs == pytest.approx([0.01, 0.505, 0.01]) and sorted(runs)[1] == pytest.approx(0.01)
    assert step_stats.range_pct(runs) == pytest.approx(4950.0)


def test_noise_reasons():
    clean = {"train_img_per_s": 100.0, "train_pipelined_img_per_s": 150.0, "train_iqr_pct": 10}
    assert step_stats.noise_reasons("jax", clean) == []
    odd = {"train_img_per_s": 2.63, "train_pipelined_img_per_s": 41.5, "infer_iqr_pct": 80.0}
    assert step_stats.noise_reasons("torch compile", odd) == [
        "torch compile train: pipelined 41.5 vs blocked 2.63 img/s",
        "torch compile infer spread 80 %",
    ]
    slow = {"train_img_per_s": 100.0, "train_pipelined_img_per_s": 40.0}  # the other way too
    assert len(step_stats.noise_reasons("jax", slow)) == 1


def test_jax_train_timing_reports_spreads():
    row = time_train(lambda: (jnp.ones(2), jnp.zeros(())), warmup=1, steps=3)
    assert row["train_iqr_pct"] is not None and row["train_pipelined_spread_pct"] is not None
    assert row["train_pipelined_ms"] > 0 and row["loss_finite"] is True


PEER = {"status": "ok", "params": 7, "infer_img_per_s": 100.0, "compile_s": None,
        "train_iqr_pct": 5.0, "infer_iqr_pct": 5.0, "train_pipelined_spread_pct": 5.0}  # fmt: skip


def test_noisy_rows_are_flagged_and_ratios_divide_like_by_like(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(timing, "measure", lambda spec: {
        "train_img_per_s": 100.0, "train_pipelined_img_per_s": 120.0, "infer_img_per_s": 300.0,
        "train_iqr_pct": 90.0})  # fmt: skip

    def run_peer(name, configs, **kw):
        eager = {"train_img_per_s": 50.0, "train_pipelined_img_per_s": 60.0}
        compiled = {"train_img_per_s": 2.63, "train_pipelined_img_per_s": 41.5,
                    "infer_img_per_s": 10.0}  # fmt: skip
        return [{**c, **PEER, **m, "mode": mode} for c in configs
                for mode, m in (("eager", eager), ("compile", compiled))]  # fmt: skip

    monkeypatch.setattr(torch_peer, "run_peer", run_peer)
    path = tmp_path / "t.csv"
    argv = ["--models", "mtl_resunet", "--set", "widths=(4,8,16,32,64)", "--precision", "fp32",
            "--image-size", "32", "--batch-sizes", "2", "--steps", "3", "--warmup", "1",
            "--compile-cache", "off", "--peer", "torch", "--csv", str(path)]  # fmt: skip
    assert main(argv) == 0
    with open(path, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["noisy"] == (
        "jax train spread 90 %; torch compile train: pipelined 41.5 vs blocked 2.63 img/s; "
        "torch compile 2.63 vs eager 50 train img/s; "  # 19× apart: not compile's doing
        "torch compile 10 vs eager 100 infer img/s"  # the inference ratio is reported too
    )
    assert float(row["jax_over_torch_eager_train"]) == pytest.approx(2.0)  # blocked / blocked
    assert float(row["jax_over_torch_eager_train_pipelined"]) == pytest.approx(2.0)  # 120 / 60
    assert float(row["torch_compile_train_iqr_pct"]) == 5.0
    out = capsys.readouterr().out
    assert "| ok (noisy) " in out
    assert "×torch, ×compile: JAX ÷ PyTorch (eager, torch.compile) training img/s, each the " \
           "median of blocked steps" in out  # fmt: skip
    assert f"noisy: mtl_resunet b2 fp32 32² none on 1 device(s): {row['noisy']}" in out
    clean = {"model": "unet", "status": "ok"}
    assert "noisy" not in throughput_io.format_table([clean]) + str(
        throughput_io.table_notes([clean])
    )


def test_the_notes_say_what_the_rate_stall_and_fold_columns_measure():
    ok = {"model": "mtl_resunet", "status": "ok", "strategy": "none"}
    notes = " ".join(throughput_io.table_notes([ok]))
    assert "median of blocked steps (IQR: the CSV's train_iqr_pct)" in notes
    assert "median of 3 runs" in notes and "stall %: the input gather's" in notes
    assert "×seq" not in notes  # no fold row: nothing to explain
    fold = {**ok, "strategy": "fold", "x_sequential": 1.8}
    assert any(n.startswith("×seq: ") for n in throughput_io.table_notes([ok, fold]))
    assert throughput_io.table_notes([{"model": "unet", "status": "skipped: x"}]) == []
    # Several devices (jit, pmap): inference and the gather are still one device's.
    assert "timed on one device" not in notes
    jit = {**ok, "strategy": "jit", "devices": "2"}  # as read back from the CSV
    assert "infer img/s, stall %: timed on one device whatever dev says" in " ".join(
        throughput_io.table_notes([ok, jit])
    )
