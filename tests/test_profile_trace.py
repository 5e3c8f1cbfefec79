"""Device-time summary of a profiler trace: categories, busy vs idle, and a real CPU capture."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.profile_trace import category, main, summarize

ROOT = Path(__file__).resolve().parents[1]  # subprocesses import benchmarks from here


def _trace(tmp_path, events):
    meta = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "/host:CPU"}},
        {"ph": "M", "name": "process_name", "pid": 2, "args": {"name": "/device:GPU:0 H100"}},
    ]
    path = tmp_path / "perfetto_trace.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"traceEvents": meta + events}, f)
    return path


def _k(name, ts, dur, hlo="", pid=2, tid=7):
    return {"ph": "X", "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur,
            "args": {"hlo_op": hlo}}  # fmt: skip


def test_categories():
    assert category("sm90_xmma_fprop_implicit_gemm_bf16") == "convolution"
    assert category("cutlass_80_tensorop_gemm") == "matmul"
    assert category("loop_multiply_fusion", "fusion.12") == "fusion"
    assert category("input_reduce_fusion_3") == "reduction fusion"
    assert category("kernel_42", "custom-call.3 cudnn$convBackwardFilter") == "convolution"
    assert category("Memcpy DtoD") == "copy" and category("mystery") == "other"
    # bf16 casts: "convert" is not a convolution.
    assert category("loop_convert_fusion", "convert_multiply_fusion.2") == "fusion"
    assert category("triton_gemm_dot_3", "fusion.4") == "matmul"


def test_summary_busy_idle_and_categories(tmp_path):
    events = [
        _k("sm90_xmma_fprop", 0, 40),  # conv
        _k("loop_add_fusion", 30, 20),  # overlaps the conv on another stream: busy is a union
        _k("input_reduce_fusion", 60, 10),
        _k("sm90_xmma_fprop", 100, 40),  # gap 70..100 = idle (host launch)
        _k("PjitFunction", 0, 500, pid=1),  # host event: not device time
    ]
    s = summarize(_trace(tmp_path, events), steps=2)
    assert s["device_events"] == 4 and s["kernels_per_step"] == 2
    assert s["window_us_per_step"] == pytest.approx(70)  # 0..140 over 2 steps
    assert s["busy_pct"] == pytest.approx(100 * (50 + 10 + 40) / 140)
    assert s["categories"]["convolution"] == pytest.approx((40.0, 80 / 110 * 100))
    assert s["top"][0] == ("sm90_xmma_fprop", 40.0, 1.0)


CAPTURE = """
import sys
from pathlib import Path
import jax, jax.numpy as jnp
from benchmarks.profile_trace import capture
f = jax.jit(lambda x: jnp.tanh(x @ x).sum())
x = jnp.ones((32, 32))
print(capture(lambda: f(x), Path(sys.argv[1]), steps=2))
"""


def test_cpu_capture_has_no_device_timeline(tmp_path, capsys):
    # In a subprocess: the profiler's threads keep a pytest-xdist worker from exiting cleanly.
    out = subprocess.run(
        [sys.executable, "-c", CAPTURE, str(tmp_path / "prof")],
        capture_output=True, text=True, timeout=300, check=True, cwd=ROOT,
    )  # fmt: skip
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path.name == "perfetto_trace.json.gz" and path.stat().st_size > 0
    s = summarize(path)
    assert s["device_events"] == 0 and any("/host:CPU" in p for p in s["processes"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main([str(path), str(bad)]) == 2  # the bad file is reported, the good one summarised
    out, err = capsys.readouterr()
    assert "no device events" in out and "bad.json: cannot read a trace" in err
