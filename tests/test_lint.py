"""The repository stays ruff-clean (lint rules and formatting from pyproject.toml), so a style slip
fails CI instead of waiting for someone to run ruff by hand. The ruff version is pinned to one
minor series in the test extras: a new series may add rules or reformat, and that is a deliberate
upgrade, not a surprise red CI."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("ruff", reason="ruff is in the test extras: pip install -e '.[test]'")


@pytest.mark.parametrize(
    "args", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"]
)
def test_ruff_clean(args):
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"ruff {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
