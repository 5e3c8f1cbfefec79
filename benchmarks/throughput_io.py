"""The throughput CSV: its columns, atomic writing, reading, and the printed markdown table."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from benchmarks.step_stats import PIPELINED_REPEATS

# Step times follow step_stats.py on both sides: *_ms and *_img_per_s are medians of blocked steps
# (*_iqr_pct their interquartile range, % of the median), *_pipelined_* the median of repeated
# back-to-back runs (*_spread_pct their range); jax_over_torch_{mode}_{kind} divides JAX's
# {kind}_img_per_s by torch_{mode}_{kind}_img_per_s, the same kind; "noisy" says why a row's
# figures (either side's) are not to be trusted, blank when they are. infer_compile_s is the
# inference program's first compile in the run: rows that share the program (strategies differ
# only in training) carry that figure, not the persistent cache's read.
COLUMNS: tuple[str, ...] = (
    "model", "model_kwargs", "config_overrides", "family", "status", "note", "noisy", "batch_size",
    "requested_batch_size", "precision", "image_size", "devices", "strategy", "folds", "fold_conv",
    "x_sequential",
    "train_img_per_s", "train_ms", "train_iqr_pct", "train_pipelined_img_per_s",
    "train_pipelined_spread_pct", "infer_img_per_s", "infer_ms", "infer_iqr_pct",
    "compile_s", "compile_warm_s", "infer_compile_s",
    "params", "gflops_per_img", "train_gflops_per_img", "achieved_tflops", "peak_tflops",
    "peak_label", "mfu_pct",
    "input_ms", "input_stall_pct", "host_ms", "loss_finite", "mem_compiled_gb", "peak_mem_gb",
    "torch_eager_train_img_per_s", "torch_compile_train_img_per_s",
    "torch_eager_train_pipelined_img_per_s", "torch_compile_train_pipelined_img_per_s",
    "torch_eager_infer_img_per_s", "torch_compile_infer_img_per_s",
    "jax_over_torch_eager_train", "jax_over_torch_compile_train",
    "jax_over_torch_eager_infer", "jax_over_torch_compile_infer",
    "jax_over_torch_eager_train_pipelined", "jax_over_torch_compile_train_pipelined",
    "torch_eager_train_iqr_pct", "torch_compile_train_iqr_pct", "torch_eager_infer_iqr_pct",
    "torch_compile_infer_iqr_pct", "torch_params", "torch_note",
    "device_kind", "host_cpu", "platform", "jax_version", "jaxlib_version", "flax_version",
    "torch_version", "git_commit", "timed_steps", "warmup_steps", "compile_cache", "xla_flags",
    "profile_trace", "timestamp_utc",
)  # fmt: skip

# Columns of the printed markdown table (short names), in order.
SUMMARY: tuple[tuple[str, str], ...] = (
    ("model", "model"), ("strategy", "par"), ("devices", "dev"), ("batch_size", "batch"),
    ("precision", "prec"), ("image_size", "size"),
    ("train_img_per_s", "train img/s"), ("train_ms", "ms/step"),
    ("train_pipelined_img_per_s", "pipelined img/s"), ("infer_img_per_s", "infer img/s"),
    ("compile_s", "compile s"), ("gflops_per_img", "GFLOP/img"), ("mfu_pct", "MFU %"),
    ("input_stall_pct", "stall %"), ("x_sequential", "×seq"),
    ("jax_over_torch_eager_train", "×torch"),
    ("jax_over_torch_compile_train", "×compile"), ("status", "status"),
)  # fmt: skip


# Characters of status (and model) the printed table keeps: a skip reason says what to change at
# its end, and the longest ("... devices of parallel='pmap'; use a multiple of 16 or fewer
# devices (--devices N)") is about 125; longer texts are error messages, whole in the CSV, cut
# with an ellipsis.
STATUS_WIDTH = 140


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """All rows under ``COLUMNS`` (missing values blank), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: _cell(row.get(k)) for k in COLUMNS})
    os.replace(tmp, path)


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a throughput CSV (strings; blanks as ''); a file of another layout is an error."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        have = reader.fieldnames or []
        missing = [c for c in ("model", "batch_size", "status") if c not in have]
        if missing:
            raise ValueError(f"{path}: not a throughput CSV (no column {', '.join(missing)})")
        return list(reader)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The markdown summary (tabulate) of ``rows``."""
    from tabulate import tabulate

    def fmt(v: Any) -> Any:
        if v in (None, ""):
            return ""
        try:
            x = float(v)
        except (TypeError, ValueError):
            return v
        return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"

    def cell(row: dict[str, Any], key: str) -> Any:
        v = row.get(key)
        if key == "strategy" and v == "fold" and row.get("fold_conv"):
            return f"fold:{row['fold_conv']}"  # older CSVs have no fold_conv: their folds grouped
        if key == "status" and row.get("noisy"):
            v = f"{v} (noisy)"  # why: table_notes, and the CSV's noisy column
        if key in ("status", "model"):
            text = str(v)
            return text if len(text) <= STATUS_WIDTH else text[: STATUS_WIDTH - 1] + "…"
        return fmt(v)

    body = [[cell(r, k) for k, _ in SUMMARY] for r in rows]
    headers = [h for _, h in SUMMARY]
    # XLA flags set for the whole run are the CSV's xla_flags column; a variant only where rows
    # differ in them (a tuning run comparing flags).
    flags = len({str(r.get("xla_flags") or "") for r in rows}) > 1
    variants = [variant(r, flags) for r in rows]
    if any(variants):  # tuning runs: rows of one model differ only in these; say how
        body = [[*b[:1], v, *b[1:]] for b, v in zip(body, variants, strict=True)]
        headers.insert(1, "variant")
    return tabulate(body, headers=headers, tablefmt="github")


def _int(value: Any) -> int:
    """A CSV cell as an int (read back as text, or blank): 0 when it is not one."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def table_notes(rows: list[dict[str, Any]]) -> list[str]:
    """Lines to print under ``format_table(rows)``: what the columns measure, what the PyTorch
    ratios divide, and why each "(noisy)" row is flagged."""
    out = []
    if any(r.get("status") == "ok" for r in rows):
        # The screen has no room for the spreads; the reader still needs to know what a rate is.
        out.append(
            "train img/s, ms/step: median of blocked steps (IQR: the CSV's train_iqr_pct); "
            f"pipelined img/s: steps dispatched back to back, median of {PIPELINED_REPEATS} runs "
            "(range: train_pipelined_spread_pct); stall %: the input gather's device time as a "
            "share of the step"
        )
    if any(r.get("status") == "ok" and _int(r.get("devices")) > 1 for r in rows):
        # The strategies differ in training only: inference and the gather run on one device.
        out.append(
            "infer img/s, stall %: timed on one device whatever dev says (the stall % divides "
            "one device's gather by the sharded step)"
        )
    if any(r.get("x_sequential") not in (None, "") for r in rows):
        out.append("×seq: a fold row's img/s ÷ the one-fold (par none) row's, same model and batch")
    if any(r.get("jax_over_torch_eager_train") or r.get("jax_over_torch_compile_train")
           for r in rows):  # fmt: skip
        out.append(
            "×torch, ×compile: JAX ÷ PyTorch (eager, torch.compile) training img/s, each the "
            "median of blocked steps; the pipelined ratios are the CSV's "
            "jax_over_torch_*_train_pipelined"
        )
    for r in rows:
        if r.get("noisy"):
            what = f"{r.get('model')} b{r.get('batch_size')} {r.get('precision')}"
            where = f"{r.get('strategy')} on {r.get('devices') or 1} device(s)"
            out.append(f"noisy: {what} {r.get('image_size')}² {where}: {r['noisy']}")
    return out


def variant(row: dict[str, Any], flags: bool = True) -> str:
    """What sets ``row`` apart from the registered model at its defaults: model kwargs, config
    overrides and (``flags``) XLA flags, as recorded ('' for none)."""
    keys = ("model_kwargs", "config_overrides", "xla_flags")[: 3 if flags else 2]
    parts = [str(row.get(k) or "") for k in keys]
    return "; ".join(p for p in parts if p)[:STATUS_WIDTH]


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.throughput_io CSV...``: the summary table and protocol estimate."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="benchmarks.throughput_io",
        description="Print the markdown summary table of throughput CSVs (written by "
        "`mtl-bench bench`) and the paper-protocol training-time estimate of their "
        "mtl_resunet rows.",
    )
    parser.add_argument("csv", nargs="+", metavar="CSV", help="throughput CSV file(s), merged")
    args = parser.parse_args(argv)
    from benchmarks.throughput_summary import protocol_minutes

    rows = []
    try:
        for p in args.csv:
            if not Path(p).is_file():
                what = "is a folder" if Path(p).is_dir() else "no such file"
                raise ValueError(f"{p}: {what}; give throughput CSV files")
            rows += read_csv(Path(p))
    except (ValueError, OSError, csv.Error) as e:  # a foreign or unreadable file: one line
        print(f"benchmarks.throughput_io: error: {e}", file=sys.stderr)
        return 2
    print(format_table(rows))
    for line in protocol_minutes(rows):
        print(f"- {line}")
    for line in table_notes(rows):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
