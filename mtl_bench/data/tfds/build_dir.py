"""A TFDS build folder's bookkeeping: one ``data prepare`` at a time, and what a killed one left.

TFDS writes a build into ``incomplete.XXXXXX_<version>/`` beside its final folder and renames it
when done; a killed build (SIGKILL, a lost session) leaves that folder, which no later build
removes. ``prepare_tfds`` also keeps a build it replaces aside (``.<version>.previous``) until the
new one is complete; a build killed meanwhile leaves the old one there and none in its place.
Both are settled here, under a claim, so a second ``prepare`` of the same build cannot take the
first one's folders for leftovers.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

from mtl_bench.data.types import DataWarning


def aside_path(target: Path) -> Path:
    """Where a build being replaced waits until its replacement is complete."""
    return target.parent / f".{target.name}.previous"


def _leftovers(target: Path) -> list[Path]:
    # TFDS's name for a build in progress (tensorflow_datasets/core/utils/file_utils.py)
    pattern = re.compile(r"incomplete\.[A-Z0-9]{6}_" + re.escape(target.name))
    if not target.parent.is_dir():
        return []
    return sorted(p for p in target.parent.iterdir() if p.is_dir() and pattern.fullmatch(p.name))


@contextlib.contextmanager
def build_claim(target: Path, what: str) -> Iterator[bool]:
    """Hold the claim on building ``target`` (a ``Busy`` error if another run holds it), after
    removing a killed build's leftovers; yields whether a replaced build was put back (the
    builder, made before, then read no build there)."""
    from mtl_bench.claim import claimed

    advice = "wait for it to finish, then run again"
    with claimed(target.parent / f".{target.name}.lock", what, advice):
        for old in _leftovers(target):
            warnings.warn(
                f"removing {old}: a TFDS build of {what} that was killed before it finished",
                DataWarning,
                stacklevel=3,
            )
            shutil.rmtree(old, ignore_errors=True)
        aside = aside_path(target)
        restored = aside.is_dir() and not target.exists()
        if restored:
            warnings.warn(
                f"{target}: put back the build that a killed rebuild had set aside ({aside})",
                DataWarning,
                stacklevel=3,
            )
            os.replace(aside, target)
        yield restored


@contextlib.contextmanager
def kept_until_replaced(target: Path, replace: bool) -> Iterator[None]:
    """With ``replace``, move the build at ``target`` aside while the block rebuilds it (TFDS
    deletes a build before making it again) and put it back if the block fails or is
    interrupted, so a rebuild from a folder with a bad image leaves the old build."""
    aside = aside_path(target)
    if replace:
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(target, aside)
    try:
        yield
    except BaseException:
        if aside.exists():
            shutil.rmtree(target, ignore_errors=True)
            os.replace(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)
