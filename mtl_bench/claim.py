"""A claim on a file or folder for one run: an advisory lock (``flock``) on a hidden lock file,
so a second run on the same target meanwhile is refused with a one-line error instead of
writing beside the first (two ``cv`` runs of one fold into one folder both crashed with pages
of orbax tracebacks; two benches on one CSV kept one run's rows). The lock dies with its
process, so a killed run leaves nothing to clear by hand."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


class Busy(ValueError):
    """Another run holds the claim (a ValueError: the CLI prints it as one line)."""


@contextlib.contextmanager
def claimed(lock: Path, what: str, advice: str) -> Iterator[None]:
    """Hold ``lock`` (created if missing, removed at the end) while the block runs; if another
    process holds it, raise ``Busy``: "``what``: another run is writing it (pid N); ``advice``"."""
    import fcntl

    # The folders made for the lock, deepest first: removed again if the run writes nothing
    # there (a new --out, a TFDS build's data_dir/busi/32px of a prepare that failed).
    made = [p for p in (lock.parent, *lock.parent.parents) if not p.exists()]
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip()
            who = f" (pid {pid})" if pid.isdigit() else ""
            raise Busy(f"{what}: another run is writing it{who}; {advice}") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)  # while still held: the next run makes a new one
            for folder in made:
                try:
                    folder.rmdir()
                except OSError:  # not empty: the run wrote there (and so in those above)
                    break


def in_use(lock: Path) -> bool:
    """Whether a running process holds ``lock`` now (a killed run's leftover file is not)."""
    import fcntl

    try:
        f = open(lock)
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def fold_lock(out: Path, method: str, fold: int) -> Path:
    """The lock file a ``cv`` run holds while it trains ``fold`` of ``method`` into ``out``."""
    return out / f".{method}.fold_{fold}.lock"
