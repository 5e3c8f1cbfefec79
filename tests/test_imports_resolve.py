"""Every ``from mtl_bench|benchmarks|baselines… import NAME`` in the repository resolves, the lazy
ones inside functions and the shell scripts' inline Python included. Those run only on their own
path (a GPU check, a CLI branch): a name moved to another module broke ``mtl-bench bench`` once
while every test that imported the module at its top still passed."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("mtl_bench", "benchmarks", "baselines")
SHELL_IMPORT = re.compile(r"^\s*from ((?:mtl_bench|benchmarks|baselines)[\w.]*) import ([\w, ]+)$")


def _imports() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(ROOT.glob("[!.]*/**/*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] in OURS:
                    where = f"{path.name}:{node.lineno}"
                    found += [(where, node.module, a.name) for a in node.names]
    for path in sorted(ROOT.glob("benchmarks/*.sh")):
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if m := SHELL_IMPORT.match(line):
                found += [(f"{path.name}:{n}", m[1], name.strip()) for name in m[2].split(",")]
    return found


def test_every_import_of_our_modules_resolves():
    found = _imports()
    assert len(found) > 300  # the scan saw the repository
    bad = []
    for where, module, name in found:
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            bad.append(f"{where}: {module}: {e}")
            continue
        if name != "*" and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                bad.append(f"{where}: cannot import {name!r} from {module}")
    assert bad == []
