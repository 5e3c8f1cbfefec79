"""Per-HLO-op and per-step views of a trace's device kernels (used by ``profile_trace``).

Why: grouping device time by kernel *name* hides which op costs it — one cuDNN kernel serves many
convolutions. Grouping by ``args.hlo_op`` (within ``args.hlo_module``) names the op, its JAX path
(``args.name``) and the launch grid (``args.kernel_details``), which is what exposes a pathology
like a big convolution run on a grid of 8 blocks on a 132-SM GPU.

Steps: the capture blocks on every step, so each step's kernels form one run on the device and the
device idles between runs while the host prepares the next call. The step boundaries come from the
host's dispatch events when the trace has them — the outermost host event whose name contains
``Execute`` and names the step's HLO module (``CommonPjRtLoadedExecutable::Execute (jit_f)``); a
kernel belongs to the last dispatch that started before it. Without such events (or when they
do not account for every kernel) the boundaries are the ``steps - 1`` largest gaps between
consecutive kernels. Both rest on blocked steps; overlapping steps would make the split meaningless.

Standard library only: traces are read on machines without JAX.
"""

from __future__ import annotations

import bisect
import re
import statistics
from collections.abc import Iterable
from typing import Any

# A grid of fewer blocks than a quarter of an H100's 132 SMs leaves most of the GPU idle.
LOW_GRID_BLOCKS = 33
LOW_OCC_SHARE_PCT = 5.0  # only worth flagging when such kernels cost this share of kernel time
# Host phases reported per step (label, pattern on the host event name): argument flattening and
# PjRt's input preparation are the suspected costs of the idle gap before each step.
HOST_PHASES: tuple[tuple[str, str], ...] = (
    ("ParseArguments", r"^ParseArguments$"),
    ("ExecutePrepare", r"::ExecutePrepare$"),
)


def union_us(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals: concurrent kernels count once."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def parse_grid(details: str) -> tuple[int, int, int] | None:
    """The launch grid ``(x, y, z)`` in a ``kernel_details`` string, or None without one."""
    m = re.search(r"\bgrid:(\d+),(\d+),(\d+)", details)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def short_op_path(name: str, width: int = 48) -> str:
    """A JAX op path without its ``jit(...)/`` prefix, cut to its last segments within ``width``."""
    path = re.sub(r"^(?:p?jit\([^/]*?\)/)+", "", name) or name
    if len(path) <= width:
        return path
    parts = path.split("/")
    tail = parts.pop()
    while parts and len(parts[-1]) + len(tail) + 3 <= width:
        tail = f"{parts.pop()}/{tail}"
    return f"…/{tail}" if len(tail) + 2 <= width else "…" + tail[-(width - 1) :]


def op_table(kernels: list[dict[str, Any]], steps: int, top: int = 10) -> list[dict[str, Any]]:
    """The costliest HLO ops, plus any flagged low-occupancy op beyond ``top``.

    Each row: ``module``, ``op``, ``us_per_step``, ``calls_per_step`` (kernels launched),
    ``pct`` (of all kernel time), ``path`` (shortened JAX op path, "" for ops without one such
    as command buffers), ``kernel`` (name of its longest kernel), ``grid`` of that kernel
    ((x, y, z) or None), ``low_grid_pct`` (share of all kernel time spent in this op's kernels
    with fewer than ``LOW_GRID_BLOCKS`` blocks) and ``low_occupancy`` (that share is more than
    ``LOW_OCC_SHARE_PCT``).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in kernels:
        args = e.get("args", {})
        key = (str(args.get("hlo_module", "")), str(args.get("hlo_op") or e["name"]))
        groups.setdefault(key, []).append(e)
    total = sum(float(e["dur"]) for e in kernels) or 1.0
    rows = []
    for (module, op), es in groups.items():
        by_dur = sorted(es, key=lambda e: -float(e["dur"]))
        named = [str(e["args"]["name"]) for e in by_dur if e.get("args", {}).get("name")]
        low = 0.0
        for e in es:
            grid = parse_grid(str(e.get("args", {}).get("kernel_details", "")))
            if grid and grid[0] * grid[1] * grid[2] < LOW_GRID_BLOCKS:
                low += float(e["dur"])
        us = sum(float(e["dur"]) for e in es)
        rows.append(
            {
                "module": module,
                "op": op,
                "us_per_step": us / steps,
                "calls_per_step": len(es) / steps,
                "pct": 100 * us / total,
                "path": short_op_path(named[0]) if named else "",
                "kernel": by_dur[0]["name"],
                "grid": parse_grid(str(by_dur[0].get("args", {}).get("kernel_details", ""))),
                "low_grid_pct": 100 * low / total,
                "low_occupancy": 100 * low / total > LOW_OCC_SHARE_PCT,
            }
        )
    rows.sort(key=lambda r: -r["us_per_step"])
    return rows[:top] + [r for r in rows[top:] if r["low_occupancy"]]


def outermost(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events not nested inside an earlier one of the list (host spans repeat when nested)."""
    kept: list[dict[str, Any]] = []
    end = float("-inf")
    for e in sorted(events, key=lambda e: (float(e["ts"]), -float(e["dur"]))):
        if float(e["ts"]) >= end:
            kept.append(e)
            end = float(e["ts"]) + float(e["dur"])
    return kept


def _dispatch_starts(host: list[dict[str, Any]], module: str) -> list[float]:
    named = re.compile(rf"(?<![\w.]){re.escape(module)}(?![\w.])")
    found = [
        e
        for e in host
        if "Execute" in str(e.get("name", ""))
        and (named.search(str(e["name"])) or module in map(str, e.get("args", {}).values()))
    ]
    return [float(e["ts"]) for e in outermost(found)]


def _by_gaps(ts: list[float], ends: list[float], steps: int) -> tuple[list[int], float]:
    # Gap before kernel j: its start minus the latest end so far (streams may overlap).
    latest, gaps = ends[0], []
    for j in range(1, len(ts)):
        gaps.append((ts[j] - latest, j))
        latest = max(latest, ends[j])
    gaps.sort(reverse=True)
    cut, rest = gaps[: steps - 1], gaps[steps - 1 :]
    # How clearly the chosen boundaries stand out from the largest gap left inside a step.
    sharpness = cut[-1][0] / max(rest[0][0], 1e-9) if cut and rest else float("inf")
    return [0] + sorted(j for _, j in cut), sharpness


def step_split(
    kernels: list[dict[str, Any]], host: list[dict[str, Any]], steps: int = 3
) -> dict[str, Any]:
    """Per-step device timeline: kernel time, idle inside the step, idle before it.

    The steps are those of the module with the most kernel time. ``kernels``: device events;
    ``host``: host events (``ph == "X"`` outside ``/device:`` processes); ``steps``: how many to
    expect when the host events cannot tell. Returns ``module``, ``method`` (how boundaries were
    found), ``steps`` (one dict per step: ``kernel_us``, ``in_step_idle_us``,
    ``pre_step_idle_us`` — None for the first — and ``host_us`` per found ``HOST_PHASES`` label)
    and ``median`` (the same keys, medians over the steps that have them).
    """
    cost: dict[str, float] = {}
    for e in kernels:
        m = str(e.get("args", {}).get("hlo_module", ""))
        cost[m] = cost.get(m, 0.0) + float(e["dur"])
    module = max(cost, key=lambda m: cost[m])
    mk = sorted(
        (e for e in kernels if str(e.get("args", {}).get("hlo_module", "")) == module),
        key=lambda e: float(e["ts"]),
    )
    ts = [float(e["ts"]) for e in mk]
    ends = [float(e["ts"]) + float(e["dur"]) for e in mk]
    starts = _dispatch_starts(host, module) if module else []
    owner = [bisect.bisect_right(starts, t) - 1 for t in ts]
    if starts and owner[0] >= 0 and len(set(owner)) == len(starts):
        firsts = [owner.index(i) for i in range(len(starts))]
        method = f"host Execute events of {module}"
    else:
        firsts, sharpness = _by_gaps(ts, ends, max(1, min(steps, len(mk))))
        method = (
            f"the {len(firsts) - 1} largest kernel gaps" if len(firsts) > 1 else "none (1 step)"
        )
        if sharpness < 2:
            method += " (unclear: boundary gaps are not much larger than gaps inside a step)"
    spans = [(ts[a], max(ends[a:b])) for a, b in zip(firsts, firsts[1:] + [len(mk)], strict=True)]
    busy = [(float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in kernels]

    def idle(a: float, b: float) -> float:
        clipped = ((max(s, a), min(t, b)) for s, t in busy if s < b and t > a)
        return max(0.0, b - a - union_us(clipped))

    phases = {
        label: outermost([e for e in host if re.search(pat, str(e.get("name", "")))])
        for label, pat in HOST_PHASES
    }
    firsts_ts = [a for a, _ in spans]
    rows = []
    for i, (a, b) in enumerate(spans):
        host_us = {label: 0.0 for label, evs in phases.items() if evs}
        for label in host_us:
            for e in phases[label]:
                # A host phase belongs to the first step whose device work starts after it.
                if bisect.bisect_left(firsts_ts, float(e["ts"])) == i:
                    host_us[label] += float(e["dur"])
        rows.append(
            {
                "kernel_us": (b - a) - idle(a, b),
                "in_step_idle_us": idle(a, b),
                "pre_step_idle_us": idle(spans[i - 1][1], a) if i else None,
                "host_us": host_us,
            }
        )
    pre = [r["pre_step_idle_us"] for r in rows if r["pre_step_idle_us"] is not None]
    median = {
        "kernel_us": statistics.median(r["kernel_us"] for r in rows),
        "in_step_idle_us": statistics.median(r["in_step_idle_us"] for r in rows),
        "pre_step_idle_us": statistics.median(pre) if pre else None,
        "host_us": {
            k: statistics.median(r["host_us"][k] for r in rows) for k in rows[0]["host_us"]
        },
    }
    return {"module": module, "method": method, "steps": rows, "median": median}
