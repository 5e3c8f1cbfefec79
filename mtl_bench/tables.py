"""The paper's tables, regenerated from result files only (no cell is ever typed by hand).

Each table is one declarative ``TableSpec`` (``mtl_bench.table_specs``, which also declares the
paper's tables in ``DEFAULT_SPECS``); ``build_tables`` loads ``R/<method>/fold_K.json``,
checks that the methods of each table ran on the same fold manifest, builds the tables and writes
``R/tables/<name>.{md,tex,csv}``. Display conventions (stated in each table's notes): metrics in
percent with 2 decimals, AUC as a fraction with 3 decimals (as the paper prints it); "Mean ± SD"
uses the sample SD (ddof=1); "—" is a value that is null in the results; a method without results
reads "not run", never a number. The CSV holds the raw fractions (mean, sd, ci_lo, ci_hi, p).

The CLI only needs: ``frames = build_tables(dir, formats=(fmt,))`` then
``print(render_markdown(frames))``; ``--format latex`` is accepted as an alias of "tex".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mtl_bench import table_comparison, table_hyperparams, table_kinds
from mtl_bench.atomic import atomic_write
from mtl_bench.data.types import DataError
from mtl_bench.results_io import (
    check_same_manifest,
    duplicate_groups,
    load_results,
    per_image,
)
from mtl_bench.stats import P_ADJUST
from mtl_bench.table_checks import (
    by_class_count,
    check_reference_name,
    check_same_source,
    warn_incomplete,
    warn_unlisted,
    with_other_methods,
)
from mtl_bench.table_checks import check_reference as reference_ran
from mtl_bench.table_kinds import Table
from mtl_bench.table_notes import (
    evaluation_note,
    inputs_note,
    machines_note,
    settings_note,
    three_class_segmentation_note,
)
from mtl_bench.table_render import render_latex, render_markdown
from mtl_bench.table_specs import DEFAULT_SPECS, TableSpec, has_own_results, unlisted

__all__ = [
    "DEFAULT_SPECS",
    "Table",
    "TableSpec",
    "build_table",
    "build_tables",
    "empty_tables",
    "load_results",
    "per_image",
    "render_latex",
    "render_markdown",
]

FORMAT_ALIASES = {"md": "md", "markdown": "md", "tex": "tex", "latex": "tex", "csv": "csv"}


def build_table(
    spec: TableSpec,
    results: pd.DataFrame,
    *,
    reference: str = "mtl_resunet",
    n_boot: int = 1000,
    seed: int = 0,
    p_adjust: str = "holm",
    duplicates: dict[str, dict[str, int]] | None = None,
) -> Table:
    """Build one table from loaded ``results`` (see ``load_results``); writes nothing.

    ``reference`` is the build's reference method; a spec with its own ``reference`` (the
    three-class table) resolves it from this one. ``p_adjust``: how a comparison table adjusts
    its p values for testing many methods against the reference (``stats.P_ADJUST``).
    ``duplicates`` (``results_io.duplicate_groups``: the near-duplicate images of each fold
    manifest, by its hash) makes each group one unit in the image-level statistics
    (``image_stats``); None, or no entry for the table's manifest, says so in a note.
    """
    # Resolve the spec's own reference once; the builders then see a single reference method.
    reference = spec.reference_for(reference)
    spec = dataclasses.replace(spec, reference="")
    if spec.kind == "per_fold":
        return table_kinds.per_fold(spec, results, reference)
    if spec.kind == "comparison":
        return table_comparison.comparison(
            spec, results, reference, n_boot, seed, p_adjust, duplicates
        )
    return table_hyperparams.hyperparams(spec, results, reference)


def normalise_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """File formats as "md", "tex", "csv" ("latex" and "markdown" are aliases)."""
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    out = []
    for f in formats:
        if f not in FORMAT_ALIASES:
            raise ValueError(f"unknown table format {f!r}: choose md, tex (or latex), csv")
        out.append(FORMAT_ALIASES[f])
    return tuple(dict.fromkeys(out))


def _with_attrs(table: Table) -> pd.DataFrame:
    frame = table.display.copy()
    frame.attrs.update(name=table.name, title=table.title, notes=list(table.notes))
    return frame


def build_tables(
    results_dir: str | Path,
    *,
    formats: str | Iterable[str] = ("md", "tex", "csv"),
    reference: str = "mtl_resunet",
    table_specs: Iterable[TableSpec] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    p_adjust: str = "holm",
    skip_empty: bool = False,
    check_reference: bool = False,
) -> dict[str, pd.DataFrame]:
    """Build the tables of ``table_specs`` (default: ``DEFAULT_SPECS``, the paper's Tables 1-7,
    the supplementary S1/S2 and the three-class table) from ``results_dir``.

    ``skip_empty``: leave out (neither build nor write) a table none of whose methods has a result
    in ``results_dir`` (the CLI's choice: a folder of paper runs holds no three-class results, and
    an all-"not run" table says nothing), and a DataError if that leaves none; ``empty_tables``
    names them. Off, every table is built.

    A supplementary spec is built only when a method other than its reference (and the
    reference's kin) has results. A variant run of a listed method (``METHOD@TAG``, from
    ``--tag``) gets its own row after it, and the reference's kin (``mtl_resunet@add``; with
    ``--reference mtl_resunet@add``, ``mtl_resunet``) after the reference
    (``TableSpec.with_variants``). Results that no built table shows are named in a
    ``DataWarning`` (the CLI prints it as an ``mtl-bench: warning:`` line), and so is each method
    shown with fewer fold files than its manifest's k (``table_checks.warn_incomplete``). A
    three-class ``reference`` (``REF@3class``) is a DataError: the build's reference is the model.

    ``p_adjust`` (``stats.P_ADJUST``): ``holm`` (default) adjusts each comparison table's p values
    and significance marks for testing its methods against one reference; ``none`` does not.

    ``check_reference`` (the CLI's choice): a DataError unless ``reference`` — the method that
    plays the proposed model in every table: ``mtl_resunet`` or a variant such as
    ``mtl_resunet@TAG`` — has results here and both outputs (mask and label).

    Files of the requested tables that this build does not (re)write — another format, or a
    table now left out — are removed, so ``tables/`` never mixes builds (``formats=()``, which
    writes nothing, removes nothing either).

    Writes ``results_dir/tables/<name>.<fmt>`` for each format and returns {name: display frame}
    (its ``attrs`` carry title and notes for ``render_markdown``; a table whose methods ran on
    different machines, a method whose folds ran with different settings, methods scored
    under different evaluation settings, or methods run at other input sizes or pre-processing,
    gets a note naming them: ``table_notes``). Every table
    is checked before anything is written: if the compared methods of any table come from
    different fold manifests, a DataError names the table, the hashes and their methods, and no
    file is written.
    """
    fmts = normalise_formats(formats)
    if p_adjust not in P_ADJUST:  # before any file is read
        raise ValueError(f"unknown p adjustment {p_adjust!r}: choose {', '.join(P_ADJUST)}")
    specs = DEFAULT_SPECS if table_specs is None else tuple(table_specs)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"table spec names must be unique, got {names}")
    check_reference_name(reference)  # before any file is read
    results = load_results(results_dir)
    have = set(results["method"])
    specs = tuple(s.with_variants(have, reference) for s in specs)  # METHOD@TAG runs as rows
    # A method no paper table lists joins S1 / S2 where they are built (reproduce passes its own
    # list of the default specs), not no table at all.
    specs = with_other_methods(specs, results, reference)
    if check_reference:
        reference_ran(results, reference, specs, results_dir)
    specs = tuple(s for s in specs if not s.supplementary or has_own_results(s, have, reference))
    results_of = by_class_count(results, specs, reference)
    if skip_empty:
        skipped = {s.name for s in specs if empty_tables(results_of[s.name], [s], reference)}
        if specs and len(skipped) == len(specs):
            # Results no table lists (a new method not yet in table_specs.py): say which.
            which = (
                f" (results of {', '.join(sorted(have))} are here, but no table lists them: a "
                "new method goes into mtl_bench/table_specs.py)"
                if have
                else ""
            )
            raise DataError(
                f"{results_dir}: no method of any table has a fold_K.json result{which}"
            )
        specs = tuple(s for s in specs if s.name not in skipped)
    problems = [
        msg
        for s in specs
        if (msg := check_same_manifest(results_of[s.name], s.compared(reference), s.name))
        is not None
    ]
    if problems:
        raise DataError("; ".join(problems) + " (methods in one table must share a fold manifest)")
    problems = [
        msg
        for s in specs
        if (msg := check_same_source(results_of[s.name], s.compared(reference), s.name)) is not None
    ]
    if problems:
        raise DataError("; ".join(problems) + " (rerun the methods on one version of the data)")
    duplicates = duplicate_groups(results_dir)  # near-duplicate images: one unit each
    tables = [
        build_table(
            s,
            results_of[s.name],
            reference=reference,
            n_boot=n_boot,
            seed=seed,
            p_adjust=p_adjust,
            duplicates=duplicates,
        )
        for s in specs
    ]
    for spec, table in zip(specs, tables, strict=True):
        # empty_policy decides which images the segmentation metrics count: nothing else.
        seg = spec.task == "segmentation"
        for note_of in (machines_note, settings_note, *([evaluation_note] if seg else [])):
            if (note := note_of(results_of[spec.name], spec.compared(reference))) is not None:
                table.notes.append(note)
        ran = results_of[spec.name]
        if (note := inputs_note(ran, spec.compared(reference), spec.task)) is not None:
            table.notes.append(note)
        if spec.classes == 3 and not seg:
            if (note := three_class_segmentation_note(ran, spec.compared(reference))) is not None:
                table.notes.append(note)
    warn_incomplete(results_of, specs, reference, results_dir)  # "(j/k)" is easy to miss
    warn_unlisted(results, unlisted(have, specs, reference), reference)
    out_dir = Path(results_dir) / "tables"
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = {}
    for table in tables:
        frame = frames[table.name] = _with_attrs(table)
        # Whole files or none (atomic.py): a run stopped here leaves no table cut short.
        if "md" in fmts:
            md = render_markdown(frame) + "\n"
            atomic_write(out_dir / f"{table.name}.md", lambda f, t=md: f.write(t), text=True)
        if "tex" in fmts:
            tex = render_latex(frame)
            atomic_write(out_dir / f"{table.name}.tex", lambda f, t=tex: f.write(t), text=True)
        if "csv" in fmts:
            raw = table.raw
            atomic_write(
                out_dir / f"{table.name}.csv", lambda f, r=raw: r.to_csv(f, index=False), text=True
            )
    for name in names if fmts else ():  # what an earlier build left that this one did not write
        for ext in ("md", "tex", "csv"):
            if not (name in frames and ext in fmts):
                (out_dir / f"{name}.{ext}").unlink(missing_ok=True)
    return frames


def empty_tables(
    results: pd.DataFrame, specs: Iterable[TableSpec], reference: str = "mtl_resunet"
) -> list[str]:
    """Names of the ``specs`` none of whose rows has a result in ``results`` (the reference
    counts where it is a row: not in the hyper-parameter tables, which list baselines only)."""
    have = set(results["method"])
    return [s.name for s in specs if not have.intersection(s.row_methods(reference))]
