"""Trace summary: categories, busy vs idle, HLO ops, per-step split, real H100 and CPU traces."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.profile_ops import op_table, parse_grid, short_op_path, step_split
from benchmarks.profile_trace import category, format_summary, main, summarize

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


def _k(kernel, ts, dur, hlo="", pid=2, tid=7, **args):
    return {"ph": "X", "name": kernel, "pid": pid, "tid": tid, "ts": ts, "dur": dur,
            "args": {"hlo_op": hlo, **args}}  # fmt: skip


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


CONV = "jit(step)/transpose(jvp())/conv_general_dilated"


def _step_kernels(t0, module="jit_step"):
    """One step: 800 µs of kernels over an 820 µs span (idle gaps 1+7+2+8+2 µs)."""
    m = {"hlo_module": module}
    return [
        _k("Memset", t0, 2, "cudnn-conv.7", **m),  # no kernel_details: no grid
        _k("sm80_fprop", t0 + 3, 600, "cudnn-conv.7", name=CONV,
           kernel_details="regs:80 grid:4,2,1 block:128,1,1", **m),  # 8 blocks: low occupancy
        _k("loop_add_fusion", t0 + 610, 100, "command_buffer_3",
           kernel_details="grid:1024,1,1 block:128,1,1", **m),
        _k("wrapped_convert", t0 + 712, 30, "command_buffer_3",
           kernel_details="grid:1,1,1 block:1,1,1", **m),  # 1 block, but only 3.75 % of the time
        _k("sm90_fprop", t0 + 750, 48, "cudnn-conv.9", name="jit(step)/jvp()/conv_general_dilated",
           kernel_details="grid:2,2,2 block:128,1,1", **m),  # 8 blocks, 6 % of the time
        _k("loop_mul_fusion", t0 + 800, 20, "fusion.2", kernel_details="grid:64,1,1", **m),
    ]  # fmt: skip


# Three steps at 1000, 6820 (5000 µs after step 1 ends) and 9640 (2000 after step 2 ends).
STEP_STARTS = (1000, 6820, 9640)


def _host(t0, parse_us, prepare_us, module="jit_step"):
    """The host side of one dispatch whose first kernel runs at ``t0``."""
    return [
        _k("PjitFunction(jit(step))", t0 - 900, 1500, pid=1),
        _k("ParseArguments", t0 - 880, parse_us, pid=1),
        _k("ParseArguments", t0 - 879, 1, pid=1),  # nested repeat: counted once (outermost)
        _k(f"CommonPjRtLoadedExecutable::Execute ({module})", t0 - 100, 900, pid=1),
        _k("[0] GpuExecutable::ExecuteThunks", t0 - 90, 800, pid=1, module_name=module),
        _k("CommonPjRtLoadedExecutable::ExecutePrepare", t0 - 95, prepare_us, pid=1),
    ]


def _stepped_events(host=True):
    events = [k for t0 in STEP_STARTS for k in _step_kernels(t0)]
    # Another program's kernel in the gap before step 2: busy there, not a step, not idle.
    events.append(_k("other_fusion", 2820, 100, "fusion.1", hlo_module="jit_other"))
    if host:
        for t0, parse, prep in zip(STEP_STARTS, (100, 400, 200), (40, 60, 50), strict=True):
            events += _host(t0, parse, prep)
        events += _host(2820, 7, 7, module="jit_other")  # its dispatch is not a step boundary
    return events


def test_op_table_groups_by_hlo_op_and_flags_low_occupancy():
    kernels = [k for t0 in STEP_STARTS[:2] for k in _step_kernels(t0)]  # 2 × 800 µs
    rows = op_table(kernels, steps=2)
    assert [r["op"] for r in rows] == ["cudnn-conv.7", "command_buffer_3", "cudnn-conv.9",
                                       "fusion.2"]  # fmt: skip
    conv = rows[0]
    assert conv["us_per_step"] == pytest.approx(602) and conv["calls_per_step"] == 2
    assert conv["pct"] == pytest.approx(75.25) and conv["low_grid_pct"] == pytest.approx(75.0)
    assert conv["grid"] == (4, 2, 1) and conv["kernel"] == "sm80_fprop" and conv["low_occupancy"]
    assert conv["path"] == "transpose(jvp())/conv_general_dilated" and conv["module"] == "jit_step"
    buf = rows[1]  # its 1-block kernel costs 3.75 % < 5 %: not flagged; no JAX path
    assert buf["us_per_step"] == pytest.approx(130) and buf["calls_per_step"] == 2
    assert buf["low_grid_pct"] == pytest.approx(3.75) and not buf["low_occupancy"]
    assert buf["path"] == "" and buf["grid"] == (1024, 1, 1)
    assert rows[2]["low_occupancy"] and rows[2]["pct"] == pytest.approx(6.0)
    assert rows[3]["grid"] == (64, 1, 1) and not rows[3]["low_occupancy"]
    # Beyond ``top`` only flagged ops are kept: conv.9 (6 %) stays, fusion.2 goes.
    assert [r["op"] for r in op_table(kernels, 2, top=2)] == [
        "cudnn-conv.7", "command_buffer_3", "cudnn-conv.9"]  # fmt: skip


def test_grid_and_path_helpers():
    assert parse_grid("regs:80 static_shared:0 grid:4,4,2 block:128,1,1") == (4, 4, 2)
    assert parse_grid("") is None and parse_grid("block:128,1,1") is None
    assert short_op_path(CONV) == "transpose(jvp())/conv_general_dilated"
    assert short_op_path("jit(f)") == "jit(f)"  # nothing after the prefix: kept whole
    long = "jit(f)/jvp(ResUNet)/encoder/block_3/residual/conv_1/conv_general_dilated"
    assert short_op_path(long, width=40) == "…/residual/conv_1/conv_general_dilated"
    assert len(short_op_path("jit(f)/" + "x" * 80, width=20)) == 20


def _check_split(split):
    assert split["module"] == "jit_step" and len(split["steps"]) == 3
    assert [s["kernel_us"] for s in split["steps"]] == pytest.approx([800, 800, 800])
    assert [s["in_step_idle_us"] for s in split["steps"]] == pytest.approx([20, 20, 20])
    pre = [s["pre_step_idle_us"] for s in split["steps"]]
    assert pre[0] is None and pre[1:] == pytest.approx([4900, 2000])  # 5000 minus jit_other
    med = split["median"]
    assert med["kernel_us"] == pytest.approx(800) and med["in_step_idle_us"] == pytest.approx(20)
    assert med["pre_step_idle_us"] == pytest.approx(3450)


def test_step_split_from_host_dispatch_events():
    events = _stepped_events()
    kernels = [e for e in events if e["pid"] == 2]
    host = [e for e in events if e["pid"] == 1]
    split = step_split(kernels, host, steps=5)  # the host's 3 dispatches win over the guess
    _check_split(split)
    assert split["method"] == "host Execute events of jit_step"
    assert [s["host_us"] for s in split["steps"]] == [
        {"ParseArguments": 100, "ExecutePrepare": 40},
        {"ParseArguments": 407, "ExecutePrepare": 67},  # + jit_other's, dispatched in the gap
        {"ParseArguments": 200, "ExecutePrepare": 50},
    ]
    assert split["median"]["host_us"] == {"ParseArguments": 200, "ExecutePrepare": 50}


def test_step_split_from_gaps_without_host_events():
    events = _stepped_events(host=False)
    split = step_split([e for e in events if e["pid"] == 2], [], steps=3)
    _check_split(split)
    assert split["method"] == "the 2 largest kernel gaps" and split["median"]["host_us"] == {}
    # No clear boundary (evenly spaced kernels): the method says so.
    even = [_k("k", 10 * i, 5, "op", hlo_module="m") for i in range(9)]
    split = step_split(even, [], steps=3)
    assert "unclear" in split["method"] and len(split["steps"]) == 3


def test_summary_reports_ops_and_timeline(tmp_path):
    s = summarize(_trace(tmp_path, _stepped_events()))  # steps from the host: 3
    assert s["kernels_per_step"] == pytest.approx(6 + 1 / 3)
    assert s["ops"][0]["op"] == "cudnn-conv.7" and s["ops"][0]["us_per_step"] == pytest.approx(602)
    assert s["timeline"]["median"]["pre_step_idle_us"] == pytest.approx(3450)
    text = format_summary(Path("t.json.gz"), s)
    assert "| cudnn-conv.7 (jit_step)" in text  # two modules in the trace: the op names its own
    assert "LOW-OCC 72.0 %" in text  # 1800 of 2500 µs (with jit_other's kernel)
    assert "transpose(jvp())/conv_general_dilated" in text
    assert "3 steps of jit_step, split by host Execute events of jit_step" in text
    assert "| median |" in text and "3.45" in text and "host ParseArguments ms" in text
    with pytest.raises(ValueError, match="steps must be a positive"):
        summarize(tmp_path / "perfetto_trace.json.gz", steps=0)


B16, B64 = (
    ROOT / f"results/profiles/trace-mtl_resunet-256px-b{b}-bf16-none.json.gz" for b in (16, 64)
)


def test_real_h100_trace_names_the_slow_transposed_conv_backward(capsys):
    s = summarize(B16)
    top = s["ops"][0]
    assert top["op"] == "cudnn-conv.97" and top["low_occupancy"] and top["grid"] == (4, 2, 1)
    assert 3600 < top["us_per_step"] < 4200 and top["calls_per_step"] == 1
    assert top["path"] == "transpose(jvp())/conv_general_dilated"
    t = s["timeline"]
    assert t["method"].startswith("host Execute events") and len(t["steps"]) == 3
    assert 17_000 < t["median"]["kernel_us"] < 20_000
    assert 1_000 < t["median"]["pre_step_idle_us"] < 15_000  # host dispatch gap before each step
    assert t["median"]["host_us"]["ParseArguments"] > 500
    # At batch 64 the same op runs on 4×4×2 = 32 blocks: still under a quarter of 132 SMs.
    big = summarize(B64)["ops"][0]
    assert big["op"] == "cudnn-conv.97" and big["grid"] == (4, 4, 2) and big["low_occupancy"]
    assert main([str(B16)]) == 0
    out = capsys.readouterr().out
    assert "| cudnn-conv.97 " in out and "LOW-OCC" in out and "pre-step idle ms" in out
