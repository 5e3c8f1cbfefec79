"""Capture a device trace of a few training steps, and summarise where the device time goes.

    mtl-bench bench --models mtl_resunet --batch-sizes 16,64 --profile results/profiles
    python -m benchmarks.profile_trace results/profiles/*/perfetto_trace.json.gz

Why: issue #7's "profile and fix" needs to know, per configuration, how much of a step the device
is busy and on what — convolutions, matmuls, fusions (element-wise / reductions: BatchNorm,
ReLU, Adam), copies — and how much it idles waiting for the host (launch overhead at small
batches). The capture (``jax.profiler.trace(create_perfetto_trace=True)``) runs after the timed
steps, so it never disturbs a reported figure; the trace file is small enough to bring back from
a lent GPU and read here with nothing but the standard library.

Device events are those of trace processes named ``/device:...`` (GPU streams, TPU cores). A
CPU trace has none: the summary says so instead of guessing from host threads. Beside the kernel
categories and the costliest kernels by name, the summary lists the costliest HLO ops (with their
JAX op path and launch grid, flagging low-occupancy ones) and splits each step's timeline into
kernel time, idle gaps inside the step and the idle gap before it (host dispatch), with the host's
argument parsing per step; ``benchmarks/profile_ops.py`` says how steps are found.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.profile_ops import LOW_GRID_BLOCKS, op_table, step_split, union_us

CAPTURE_STEPS = 3  # what capture() traces by default; the step count when a trace cannot tell

# (category, patterns searched in the lower-cased kernel name and HLO op), matched in order.
# "conv" must not match XLA's "convert" fusions (bf16 casts are everywhere in a bf16 step).
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("convolution", r"conv(?!ert)|cudnn|fprop|dgrad|wgrad|implicit_gemm"),
    ("matmul", r"gemm|\bdot|matmul|cublas|cutlass"),
    ("copy", r"memcpy|memset|copy|transpose"),
    ("reduction fusion", r"reduce|reduction"),
    ("fusion", r"fusion|loop_|elementwise"),
)


def capture(run_step: Callable[[], Any], out_dir: Path, steps: int = CAPTURE_STEPS) -> Path | None:
    """Trace ``steps`` calls of ``run_step`` (each blocked) into ``out_dir``; the perfetto file."""
    import jax

    out_dir.mkdir(parents=True, exist_ok=True)
    with jax.profiler.trace(str(out_dir), create_perfetto_trace=True):
        for _ in range(steps):
            jax.block_until_ready(run_step())
    found = sorted(out_dir.rglob("perfetto_trace.json.gz"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def category(name: str, hlo_op: str = "") -> str:
    """The category of one device event from its kernel name and HLO op."""
    text = f"{name} {hlo_op}".lower()
    for label, pattern in CATEGORIES:
        if re.search(pattern, text):
            return label
    return "other"


def _events(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        data = json.load(f)
    return data["traceEvents"] if isinstance(data, dict) else data


def summarize(path: Path, steps: int | None = None) -> dict[str, Any]:
    """Device time per category, busy vs idle span, costliest kernels and HLO ops, step timeline.

    Figures are per step: ``steps`` traced steps, or when None as many as the step split finds
    (the host's dispatch events, else ``CAPTURE_STEPS``). ``ops`` is :func:`op_table`'s rows,
    ``timeline`` :func:`step_split`'s result.
    """
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be a positive number of traced steps, got {steps}")
    events = _events(Path(path))
    devices = {
        e["pid"]
        for e in events
        if e.get("ph") == "M"
        and e.get("name") == "process_name"
        and "/device:" in str(e.get("args", {}).get("name", ""))
    }
    kernels = [e for e in events if e.get("ph") == "X" and e.get("pid") in devices and "dur" in e]
    if not kernels:
        names = [
            str(e.get("args", {}).get("name"))
            for e in events
            if e.get("ph") == "M" and e.get("name") == "process_name"
        ]
        return {"device_events": 0, "processes": names}
    host = [e for e in events if e.get("ph") == "X" and e.get("pid") not in devices and "dur" in e]
    timeline = step_split(kernels, host, steps or CAPTURE_STEPS)
    steps = steps or len(timeline["steps"])
    spans = [(float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in kernels]
    window = max(b for _, b in spans) - min(a for a, _ in spans)
    busy = union_us(spans)
    per_cat: dict[str, float] = {}
    per_kernel: dict[str, list[float]] = {}
    for e in kernels:
        hlo = str(e.get("args", {}).get("hlo_op", ""))
        per_cat[category(e["name"], hlo)] = per_cat.get(category(e["name"], hlo), 0.0) + e["dur"]
        per_kernel.setdefault(e["name"], [0.0, 0])
        per_kernel[e["name"]][0] += e["dur"]
        per_kernel[e["name"]][1] += 1
    total = sum(per_cat.values())
    top = sorted(per_kernel.items(), key=lambda kv: -kv[1][0])[:10]
    return {
        "device_events": len(kernels),
        "kernels_per_step": len(kernels) / steps,
        "window_us_per_step": window / steps,
        "busy_pct": 100 * busy / window if window else 0.0,
        "categories": {k: (v / steps, 100 * v / total) for k, v in sorted(per_cat.items())},
        "top": [(name, t / steps, n / steps) for name, (t, n) in top],
        "ops": op_table(kernels, steps),
        "timeline": timeline,
    }


def format_summary(path: Path, s: dict[str, Any]) -> str:
    """Printable text of :func:`summarize`'s result."""
    from tabulate import tabulate

    if not s.get("device_events"):
        names = ", ".join(s.get("processes", [])) or "none"
        return f"{path}: no device events (a CPU trace?); trace processes: {names}"
    cats = tabulate(
        [[k, us, pct] for k, (us, pct) in s["categories"].items()],
        headers=["category", "µs/step", "% of kernel time"], floatfmt=".1f", tablefmt="github",
    )  # fmt: skip
    top = tabulate(
        [[n[:70], us, calls] for n, us, calls in s["top"]],
        headers=["kernel", "µs/step", "calls/step"], floatfmt=".1f", tablefmt="github",
    )  # fmt: skip
    return (
        f"{path}: {s['kernels_per_step']:.0f} kernels per step, device busy "
        f"{s['busy_pct']:.1f} % of a {s['window_us_per_step'] / 1e3:.2f} ms step window\n"
        f"{cats}\n{top}\n{format_ops(s['ops'])}\n{format_timeline(s['timeline'])}"
    )


def format_ops(rows: list[dict[str, Any]]) -> str:
    """Printable table of :func:`~benchmarks.profile_ops.op_table`'s rows."""
    from tabulate import tabulate

    several = len({r["module"] for r in rows}) > 1  # name the module only when it is ambiguous
    table = [
        [
            f"{r['op']} ({r['module']})" if several else r["op"],
            r["us_per_step"],
            r["calls_per_step"],
            r["pct"],
            r["path"] or f"[kernel] {r['kernel'][:38]}",
            "×".join(map(str, r["grid"])) if r["grid"] else "?",
            f"LOW-OCC {r['low_grid_pct']:.1f} %" if r["low_occupancy"] else "",
        ]
        for r in rows
    ]
    return tabulate(
        table,
        headers=["HLO op", "µs/step", "kernels/step", "% of kernel time",
                 "JAX op (or longest kernel)", "grid",
                 f"low occupancy (% in grids < {LOW_GRID_BLOCKS} blocks)"],
        floatfmt=".1f", tablefmt="github",
    )  # fmt: skip


def format_timeline(t: dict[str, Any]) -> str:
    """Printable per-step split of :func:`~benchmarks.profile_ops.step_split`'s result."""
    from tabulate import tabulate

    def ms(us: float | None) -> str:  # "–": no gap before the first traced step
        return "–" if us is None else f"{us / 1e3:.2f}"

    phases = list(t["median"]["host_us"])
    labelled = [(str(i + 1), r) for i, r in enumerate(t["steps"])] + [("median", t["median"])]
    rows = [
        [label, ms(r["kernel_us"]), ms(r["in_step_idle_us"]), ms(r["pre_step_idle_us"])]
        + [ms(r["host_us"][p]) for p in phases]
        for label, r in labelled
    ]
    heads = ["step", "kernel ms", "in-step idle ms", "pre-step idle ms"]
    heads += [f"host {p} ms" for p in phases]
    table = tabulate(
        rows, headers=heads, tablefmt="github", disable_numparse=True,
        colalign=("left",) + ("right",) * (len(heads) - 1),
    )  # fmt: skip
    return f"{len(t['steps'])} steps of {t['module']}, split by {t['method']}\n{table}"


def main(argv: list[str] | None = None) -> int:
    """Print the summary of each trace named in ``argv``; 2 if any could not be read."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m benchmarks.profile_trace TRACE.json[.gz] ...", file=sys.stderr)
        return 2
    status = 0
    for p in paths:
        try:
            print(format_summary(Path(p), summarize(Path(p))))
        except (OSError, ValueError, KeyError, TypeError) as e:  # a bad file must not hide the rest
            print(f"benchmarks.profile_trace: {p}: cannot read a trace: {e}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
