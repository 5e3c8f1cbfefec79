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
# Anywhere in a line: the scripts' inline Python starts as `-c "from benchmarks.peaks import ...`.
SHELL_IMPORT = re.compile(
    r"from ((?:mtl_bench|benchmarks|baselines)[\w.]*) import (\w+(?:, *\w+)*)"
)
# Extras a machine may lack (`pip install -e ".[test]"` without torch): their importers skip.
OPTIONAL = {"torch", "torchvision", "timm", "segmentation_models_pytorch"}


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
            for m in SHELL_IMPORT.finditer(line):
                found += [(f"{path.name}:{n}", m[1], name.strip()) for name in m[2].split(",")]
    return found


def test_every_import_of_our_modules_resolves():
    found = _imports()
    assert len(found) > 300  # the scan saw the repository
    assert len([f for f in found if ".sh:" in f[0]]) >= 4  # and the scripts' inline imports
    bad = []
    for where, module, name in found:
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            if getattr(e, "name", None) not in OPTIONAL:
                bad.append(f"{where}: {module}: {e}")
            continue
        if name != "*" and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                bad.append(f"{where}: cannot import {name!r} from {module}")
    assert bad == []
