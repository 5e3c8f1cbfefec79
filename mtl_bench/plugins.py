"""Models of your own, registered from outside the package, so that every command — ``cv``,
``train``, ``reproduce``, ``predict``, ``bench``, ``tables``, ``models`` — and every process of a
multi-process run knows them by name, as it knows the built-in ones.

Two ways, read when the registry first loads (``registry._load``), after the built-in models:

- ``MTL_BENCH_MODELS``: module names (importable: on ``PYTHONPATH`` or installed) or paths of
  ``.py`` files, separated by ``os.pathsep`` (``:`` on Linux and macOS), e.g.
  ``MTL_BENCH_MODELS=~/work/mymodels.py mtl-bench cv --model her_net``;
- an installed package's entry points in the group ``mtl_bench.models``
  (``[project.entry-points."mtl_bench.models"] her_net = "her_package.models"``).

Each module registers its models with ``mtl_bench.registry.register_model`` when imported. A
module that cannot be imported is a one-line ImportError naming it and the variable or entry
point that asked for it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path

PLUGINS_ENV = "MTL_BENCH_MODELS"
ENTRY_POINT_GROUP = "mtl_bench.models"


def _import_file(path: Path) -> None:
    # A module name per file (two models.py in other folders are two modules): sys.modules
    # keeps it, so a second load of the same file is a no-op.
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"mtl_bench_plugin_{path.stem}_{digest}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _import(spec: str, origin: str) -> None:
    try:
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"no such file {str(path)!r}")
            _import_file(path.resolve())
        else:
            importlib.import_module(spec)
    except Exception as e:  # any error of the user's module: one line naming it and who asked
        raise ImportError(
            f"{origin}: cannot load model module {spec!r} ({type(e).__name__}: {e})"
        ) from e


def load_plugins() -> None:
    """Import the model modules ``MTL_BENCH_MODELS`` and the ``mtl_bench.models`` entry points
    name (see the module doc)."""
    for spec in os.environ.get(PLUGINS_ENV, "").split(os.pathsep):
        if spec.strip():
            _import(spec.strip(), PLUGINS_ENV)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _import(ep.value.split(":")[0], f"entry point {ep.name!r} ({ENTRY_POINT_GROUP})")


def model_source(name: str) -> dict[str, str] | None:
    """For a model defined outside the suite: its builder's module and a hash of that source file
    (``fold_K.json``'s ``model_source``), so that folds trained from an edited model file are told
    apart in the tables (``table_notes.settings_note``) though its name and size stay. None for
    the suite's own models, which the results' ``git_commit`` pins, or a source not on disk."""
    import inspect

    from mtl_bench.registry import model_info

    builder = model_info(name).builder
    module = getattr(builder, "__module__", "") or ""
    if module.split(".")[0] in ("mtl_bench", "baselines"):
        return None
    try:
        path = inspect.getsourcefile(builder)
        data = Path(path).read_bytes() if path else None
    except (TypeError, OSError):
        return None
    if data is None:
        return None
    return {"module": module, "file": str(path), "sha256": hashlib.sha256(data).hexdigest()[:16]}
