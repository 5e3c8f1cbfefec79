"""Progress display (rich): one bar per long job, quiet when asked or when not on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


class Bar:
    """A handle to one task of a rich Progress (or a no-op when quiet)."""

    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._p, self._t = progress, task

    def advance(self, n: int = 1) -> None:
        if self._p is not None:
            self._p.advance(self._t, n)

    def describe(self, text: str) -> None:
        if self._p is not None:
            self._p.update(self._t, description=text)

    def set_total(self, total: int, completed: int = 0) -> None:
        if self._p is not None:
            self._p.update(self._t, total=total, completed=completed)


_ACTIVE: list[Progress] = []  # the live display, while one is shown


@contextmanager
def progress_bar(total: int, description: str, *, quiet: bool = False) -> Iterator[Bar]:
    """A live bar on a terminal; on a pipe/CI log nothing is redrawn (summaries are logged).

    Inside another bar (``reproduce``'s, which runs each fold quietly: no log lines), the bar is
    a second line of the same display, removed when done, even when ``quiet``: the outer bar's
    owner chose to show progress, and a fold of the paper preset runs for minutes.
    """
    if _ACTIVE:
        outer = _ACTIVE[-1]
        task = outer.add_task(f"  {description}", total=total)
        try:
            yield Bar(outer, task)
        finally:
            outer.remove_task(task)
        return
    if quiet or not sys.stderr.isatty():
        yield Bar(None, None)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as p:
        _ACTIVE.append(p)
        try:
            yield Bar(p, p.add_task(description, total=total))
        finally:
            _ACTIVE.pop()


def log(message: str, *, quiet: bool = False) -> None:
    """One status line on stderr (kept out of stdout, which carries tables and JSON)."""
    if not quiet:
        console.print(message, highlight=False, soft_wrap=True)
