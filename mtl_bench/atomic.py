"""One way to write a file that readers (and a concurrent writer of the same file) only ever
see whole: into a unique temporary file beside it, then ``os.replace``. Used for result files,
fold manifests, predicted masks and the prepared-data cache."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


# Read once, at import: os.umask is process-wide, so reading it later could race a thread.
_MODE = 0o666 & ~_umask()


def atomic_write(
    path: str | os.PathLike, write: Callable[[IO[Any]], None], *, text: bool = False
) -> Path:
    """``write(file)`` into a temporary file beside ``path`` (its folder is made), then replace
    ``path`` with it; on any error the temporary file is removed and ``path`` is left as it was.

    The file gets the permissions any file the user writes gets (0666 less the umask):
    ``mkstemp`` makes it 0600, and results on a shared ``--out`` must be readable by the group.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _MODE)
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def cannot_write(folder: Path) -> str | None:
    """Why the existing ``folder`` takes no new file, or None: tried with a hidden probe file,
    made and removed (root passes access() on ``/proc`` and read-only mounts)."""
    try:
        tempfile.TemporaryFile(dir=folder, prefix=".mtl_bench_probe_").close()
    except OSError as e:
        return "it takes no new files" if e.errno == errno.ENOENT else e.strerror or str(e)
    return None


def check_out_folder(out: str | os.PathLike, flag: str = "--out") -> None:
    """A one-line ValueError, before any work, where ``out`` cannot hold results: a file, or a
    folder (or the nearest existing folder above a new one) this process cannot write into —
    a read-only mount or another user's folder — rather than an OS error after the data is read
    or a fold has trained, or ``/proc``. Nothing is left behind (a hidden probe file is made
    and removed in the nearest existing folder: root passes every permission check)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out} is a file, not a folder")
    here = out.absolute()
    while not here.exists():
        here = here.parent
    if not here.is_dir():
        raise ValueError(f"{flag} {out}: {here} is a file, not a folder")
    if not os.access(here, os.W_OK | os.X_OK):
        where = "" if here == out.absolute() else f" ({here} is not)"
        raise ValueError(f"{flag} {out}: not writable{where}")
    if why := cannot_write(here):
        raise ValueError(f"{flag} {out}: cannot write in {here} ({why})")
