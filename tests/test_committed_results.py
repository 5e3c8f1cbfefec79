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
FOLDERS = [
    p.parent for p in sorted(RESULTS.glob("*/tables")) if any(p.parent.glob("*/fold_*.json"))
]


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


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_fold_metrics_follow_from_their_per_image_results(folder: Path):
    # The tables' fold rows come from a fold's metrics, its pooled values and image-level tests
    # from its per_image lists: both must tell one story. Probabilities once stored rounded to 6
    # decimals tied near-0 scores and moved recomputed AUCs by up to 0.23 (fixed at 02f6cc2).
    import json

    import numpy as np

    from mtl_bench.metrics import classification_metrics

    checked = 0
    for path in sorted(folder.glob("*/fold_*.json")):
        rec = json.loads(path.read_text("utf-8"))
        per, metrics = rec["per_image"], rec["metrics"]
        name = path.relative_to(RESULTS)
        if (cls := metrics.get("classification")) is not None:
            got = classification_metrics(per["label"], np.asarray(per["prob"]))
            for key in ("ACC", "PRE", "REC", "SPE", "F1", "AUC"):
                want = cls[key] if cls[key] is not None else float("nan")
                assert got[key] == pytest.approx(want, abs=1e-9, nan_ok=True), f"{name}: {key}"
            checked += 1
        if (seg := metrics.get("segmentation")) is not None:
            for key in ("JSI", "DC"):  # per image, averaged over images with a true mask
                vals = [v for v in per[key] if v is not None]
                assert np.mean(vals) == pytest.approx(seg[key], abs=1e-9), f"{name}: {key}"
            checked += 1
    assert checked, f"{folder}: no fold metrics checked"


def test_readme_quotes_the_committed_phantom_figures():
    # The README's sentence on the phantom run quotes Tables 1-2's mean ± sd and the AUC's fold
    # range; they are typed prose, so they are checked against the committed CSVs here.
    import pandas as pd

    text = (RESULTS.parent / "README.md").read_text("utf-8")
    folder = RESULTS / "phantom_mtl_resunet" / "tables"
    seg = pd.read_csv(folder / "table1.csv", index_col="row")
    cls = pd.read_csv(folder / "table2.csv", index_col="row")
    quoted = {
        "Dice": (seg, "DC"),
        "JSI": (seg, "JSI"),
        "accuracy": (cls, "ACC"),
        "AUC": (cls, "AUC"),
    }
    for word, (table, col) in quoted.items():
        want = f"{word} {table.loc['mean', col]:.3f} ± {table.loc['sd', col]:.3f}"
        assert want in text, f"README.md should say {want!r} (results/phantom_mtl_resunet)"
    folds = cls.drop(index=["mean", "sd"])["AUC"]
    span = f"folds range {folds.min():.3f}–{folds.max():.3f}"
    assert span in text, f"README.md should say {span!r}"


def test_readme_quotes_the_latest_h100_rate():
    # "The paper preset on GPUs" quotes the proposed model's batch-16 bf16 rate on an H100: it must
    # be the newest committed H100 row of that configuration (default model and config).
    import pandas as pd

    csvs = sorted((RESULTS / "throughput").glob("nvidia-h100*.csv"))
    rows = pd.concat([pd.read_csv(p) for p in csvs], ignore_index=True)
    default = (
        rows["config_overrides"].isna() & rows["model_kwargs"].isna() & rows["xla_flags"].isna()
    )
    rows = rows[
        default
        & (rows["model"] == "mtl_resunet")
        & (rows["strategy"] == "none")
        & (rows["batch_size"] == 16)
        & (rows["precision"] == "bf16")
        & (rows["status"] == "ok")
    ]
    assert len(rows), "no committed H100 row of mtl_resunet, batch 16, bf16"
    row = rows.sort_values("timestamp_utc").iloc[-1]
    text = " ".join((RESULTS.parent / "README.md").read_text("utf-8").split())
    pipelined = f"trains at {row['train_pipelined_img_per_s']:.0f} images/s"
    blocked = f"{row['train_img_per_s']:.0f} timed step by step"
    for want in (pipelined, blocked):
        assert want in text, f"README.md should say {want!r} ({row['timestamp_utc']} H100 row)"


def _readme_throughput_tables() -> list[tuple[list[str], list[str]]]:
    """(CSV paths, markdown table lines) for each ``python -m benchmarks.throughput_io CSV...``
    quoted in results/README.md with the table it printed below it."""
    import re

    lines = (RESULTS / "README.md").read_text("utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        if not line.startswith("`python -m benchmarks.throughput_io "):
            continue
        command = " ".join(lines[i : i + 3])  # the command wraps onto the next line at most
        command = command[1 : command.index("`", 1)]
        csvs = re.findall(r"results/throughput/\S+\.csv", command)
        start = next(j for j in range(i, len(lines)) if lines[j].startswith("|"))
        end = next((j for j in range(start, len(lines)) if not lines[j].startswith("|")), None)
        found.append((csvs, lines[start:end]))
    return found


def _cells(table: list[str]) -> tuple[list[str], list[list[str]]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table]
    return rows[0], rows[2:]


@pytest.mark.parametrize(
    "csvs,quoted", [pytest.param(c, q, id=Path(c[0]).stem) for c, q in _readme_throughput_tables()]
)
def test_readme_throughput_tables_are_what_the_csvs_print(csvs, quoted):
    # The README quotes `throughput_io`'s table, some constant columns left out (it says which):
    # every quoted cell must be what the code prints now from the committed CSV, row for row.
    from benchmarks.throughput_io import format_table, read_csv

    rows = [r for p in csvs for r in read_csv(RESULTS.parent / p)]
    head, body = _cells(quoted)
    made_head, made_body = _cells(format_table(rows).splitlines())
    assert len(body) == len(made_body), f"{csvs}: {len(body)} rows quoted, {len(made_body)} made"
    for col in head:
        assert col in made_head, f"{csvs}: column {col!r} is not printed any more"
        k = made_head.index(col)
        for q, m in zip(body, made_body, strict=True):
            assert q[head.index(col)] == m[k], f"{csvs}, {col}: README {q} vs made {m}"


def test_readme_protocol_lines_are_what_the_csvs_print():
    # Where the README quotes throughput_io's "- paper protocol ..." lines under a table, they
    # must be its protocol_minutes() of the same CSVs, line for line.
    from benchmarks.throughput_io import read_csv
    from benchmarks.throughput_summary import protocol_minutes

    lines = (RESULTS / "README.md").read_text("utf-8").splitlines()
    checked = 0
    for csvs, table in _readme_throughput_tables():
        after = lines.index(table[-1]) + 1
        quoted = []
        while after < len(lines) and lines[after].startswith("- paper protocol"):
            quoted.append(lines[after].removeprefix("- "))
            after += 1
        if quoted:
            rows = [r for p in csvs for r in read_csv(RESULTS.parent / p)]
            assert quoted == protocol_minutes(rows), csvs
            checked += 1
    assert checked >= 1


def test_readme_quotes_throughput_tables():
    assert len(_readme_throughput_tables()) >= 3
