"""Time data preparation: phantom → BUSI folder → reader → MPGHE, the cache, and TFDS.

Run: ``python -m benchmarks.bench_prepare [--n 780] [--image-size 256] [--no-tfds]``.
Everything is written under a temporary folder that is removed afterwards; a table of wall
times (seconds, and per image where it means something) is printed. CPU only.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tabulate import tabulate


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run(n: int | None, image_size: int, tfds: bool, work: Path) -> list[tuple[str, float, int]]:
    """(step, seconds, images) for every step, in order."""
    from mtl_bench.data.phantom import synth_phantom, write_phantom
    from mtl_bench.data.prepare import load_dataset
    from mtl_bench.data.preprocess import preprocess
    from mtl_bench.data.reader import read_busi

    root = work / "manual" / "Dataset_BUSI_with_GT"
    cache = work / "cache"
    rows: list[tuple[str, float, int]] = []

    def step(name: str, fn: Callable[[], Any], images: int | None = None) -> Any:
        out, seconds = _timed(fn)
        count = images if images is not None else len(out) if hasattr(out, "__len__") else 0
        rows.append((name, seconds, count))
        return out

    synth = step("synth_phantom (in memory)", lambda: synth_phantom(n, image_size=image_size))
    total = len(synth)
    step(
        "write_phantom (BUSI folder)", lambda: write_phantom(root, n, image_size=image_size), total
    )
    raw = step(
        "read_busi (three_class)",
        lambda: read_busi(root, image_size=image_size, class_set="three_class"),
    )
    step("preprocess mpghe", lambda: preprocess(raw.images, "mpghe"))
    pipeline = ("write_phantom (BUSI folder)", "read_busi (three_class)", "preprocess mpghe")
    rows.append(("= folder → read → mpghe", sum(r[1] for r in rows if r[0] in pipeline), total))
    step("preprocess clahe", lambda: preprocess(raw.images, "clahe"))

    def folder() -> Any:
        return load_dataset(str(root), image_size=image_size, class_set="three_class",
                            cache_dir=cache)  # fmt: skip

    step("load_dataset(folder, mpghe): miss", folder)
    step("load_dataset(folder, mpghe): hit", folder)

    def synthetic() -> Any:
        return load_dataset("synthetic", image_size=image_size, class_set="three_class",
                            synthetic_n=n, cache_dir=cache)  # fmt: skip

    step("load_dataset(synthetic, mpghe): miss", synthetic)
    step("load_dataset(synthetic, mpghe): hit", synthetic)
    if tfds:
        from mtl_bench.data.tfds import load_tfds, prepare_tfds

        data_dir = work / "tfds"
        step(
            "prepare_tfds(busi)",
            lambda: prepare_tfds(
                "busi", data_dir=data_dir, manual_dir=root.parent, image_size=image_size
            ),  # fmt: skip
            total,
        )
        step(
            "load_tfds(busi, none)",
            lambda: load_tfds(
                "busi",
                data_dir=data_dir,
                image_size=image_size,
                class_set="three_class",
                preprocess="none",
            ),  # fmt: skip
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the steps in a temporary folder, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="images (default: BUSI's 780)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--no-tfds", action="store_true", help="skip the TFDS build and load")
    args = parser.parse_args(argv)
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="bench_prepare_") as work:
        warnings.simplefilter("ignore")  # the reader reports the phantom's PHANTOM.json marker
        rows = run(args.n, args.image_size, not args.no_tfds, Path(work))
    table = [
        (name, f"{sec:.2f}", count, f"{1000 * sec / count:.2f}" if count else "")
        for name, sec, count in rows
    ]
    print(
        f"data preparation, {rows[0][2]} images at {args.image_size}² on "
        f"{platform.processor() or platform.machine()} ({os.cpu_count()} CPUs)"
    )
    print(tabulate(table, headers=["step", "seconds", "images", "ms/image"], tablefmt="github"))


if __name__ == "__main__":
    main()
