"""Another process holding a run's claim (``mtl_bench.claim``), for the tests of what a second
run meets: ``with held_elsewhere(lock) as pid:`` holds ``lock`` until the block ends."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the subprocess imports mtl_bench from here
_HOLD = (
    "import sys; from pathlib import Path; from mtl_bench.claim import claimed\n"
    "with claimed(Path(sys.argv[1]), 'x', 'y'):\n"
    "    print('held', flush=True); sys.stdin.read()"
)


@contextmanager
def held_elsewhere(lock: Path) -> Iterator[int]:
    """Hold ``lock`` in another process (its pid is yielded) until the block ends."""
    other = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(lock)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert other.stdout.readline() == "held\n"
        yield other.pid
    finally:
        other.communicate(timeout=30)
