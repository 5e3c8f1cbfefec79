"""The committed tables under results/ are what the code makes of the committed result files.

results/README.md promises that nothing there is typed by hand: every table is regenerated here
from the fold files beside it (``build_tables``, as ``mtl-bench tables`` and ``reproduce`` call
it) and must come out byte for byte the same. A table edited by hand, a result file changed
without its tables, or a change to the table code that alters committed numbers fails here.
"""

import shutil
from pathlib import Path

import pytest

from mtl_bench.table_specs import DEFAULT_SPECS
from mtl_bench.tables import build_tables

RESULTS = Path(__file__).resolve().parents[1] / "results"
# Folders whose tables are built from the fold files they hold (phantom/: `reproduce`;
# phantom_mtl_resunet/: `cv` + `tables`, Tables 1-2 kept).
FOLDERS = [p.parent for p in sorted(RESULTS.glob("*/tables")) if any(p.parent.glob("*/fold_*.json"))]


def test_results_folders_with_fold_files_exist():
    # Guards the parametrisation below against a moved results/ (it would test nothing).
    assert {p.name for p in FOLDERS} >= {"phantom_mtl_resunet"}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_committed_tables_regenerate(folder: Path, tmp_path: Path):
    committed = sorted((folder / "tables").iterdir())
    names = {p.stem for p in committed}
    specs = [s for s in DEFAULT_SPECS if s.name in names]
    assert {s.name for s in specs} == names, f"{folder}: tables without a spec"
    work = tmp_path / folder.name
    shutil.copytree(folder, work, ignore=shutil.ignore_patterns("tables", "figures"))
    build_tables(work, formats=("md", "tex", "csv"), reference="mtl_resunet", table_specs=specs)
    for path in committed:
        made = work / "tables" / path.name
        assert made.exists(), f"{path.relative_to(RESULTS)} is not made any more"
        assert made.read_text("utf-8") == path.read_text("utf-8"), (
            f"{path.relative_to(RESULTS)} differs from what its result files give"
        )
