"""Where a bench run writes its CSV: a new name of its own under ``--out``, and a claim on the
file for the run, so that two benches never rewrite one file at once (each rewrites its whole
file after every configuration: the second writer would drop the first one's rows)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from benchmarks.throughput_io import write_csv


def new_csv_path(folder: Path, stem: str) -> Path:
    """``folder/stem.csv``, or ``stem-2.csv``, ... when taken: created at once (exclusively, with
    the header), so a bench started in the same second gets a name of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = folder / (f"{stem}.csv" if n == 1 else f"{stem}-{n}.csv")
        try:
            open(path, "x").close()
        except FileExistsError:
            continue
        write_csv(path, [])
        return path
    raise ValueError(f"{folder}: 999 throughput CSVs named {stem}*.csv already")


@contextlib.contextmanager
def claimed(path: Path) -> Iterator[None]:
    """Hold ``path`` for one bench run (``mtl_bench.claim``, on ``.NAME.lock`` beside it): a
    second run on the same CSV meanwhile is refused with a one-line error, not left to
    overwrite it."""
    from mtl_bench.claim import claimed as claim

    advice = "give another --csv or --out, or wait for it to finish"
    with claim(path.with_name(f".{path.name}.lock"), str(path), advice):
        yield
