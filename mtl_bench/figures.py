"""Figures from result files (matplotlib, Agg, PNG under ``RESULTS/figures/``).

``build_figures(results_dir)`` regenerates every figure the files allow, and says which it skipped
and why (a missing input is never an error; a malformed one is):

- ``segmentation_overlays.png`` — the paper's Figure 3 (``figure_overlays``), for methods that
  saved predicted masks (``fold_<K>_masks.npz``);
- ``roc.png`` — ROC per method, test predictions of every fold pooled into one set (malignant =
  positive; malignant vs rest for three classes); the legend gives that pooled AUC and, beside
  it, the mean ± SD of the per-fold AUCs the tables report;
- ``curves/<method>.png`` — learning curves per fold from ``fold_<K>_curve.csv``
  (``figure_curves``): training loss, its Dice and focal parts (only those the model trains) and
  the validation score;
- ``throughput_<device>.png`` — training images/s vs batch size, models × parallel strategies in
  one panel per host CPU × precision × image size (``figure_throughput``; PyTorch peers dashed).

A figure of these names that an earlier build wrote and this one does not is removed; any other
file under ``figures/`` is left alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_bench.atomic import atomic_write
from mtl_bench.data.types import DataError, Dataset
from mtl_bench.figure_curves import curve_figures, is_curve_name
from mtl_bench.progress import log
from mtl_bench.results_io import load_results, per_image
from mtl_bench.table_kinds import fmt_value, fold_values, mean_sd

# The names build_figures writes under figures/ (the overlays, roc_figure, the throughput slugs
# of figure_throughput): only such files, and curves/<method>.png (figure_curves.is_curve_name),
# are ever removed as an earlier build's, so a user's own file there is never touched.
_OWN_NAME = re.compile(r"segmentation_overlays\.png|roc\.png|throughput_[a-z0-9-]+\.png")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Figures with a suptitle or a legend outside the axes use constrained layout, which places
    # both; tight_layout would override it and let the suptitle overprint the panel titles.
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    # Whole files or none (atomic.py): a run stopped here leaves no half-written PNG.
    atomic_write(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    _plt().close(fig)
    return path


def pooled_roc(results: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """{method: (fpr, tpr, AUC)} from test probabilities pooled over folds (malignant positive;
    methods without probabilities, or whose pooled labels hold one class, are left out)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    out = {}
    for method in sorted(results["method"].unique()):
        rows = per_image(results, method)
        if "prob_0" not in rows:
            continue
        names = tuple(results.loc[results["method"] == method, "class_names"].iloc[0])
        pos = names.index("malignant") if "malignant" in names else len(names) - 1
        y = (rows["label"].astype(int) == pos).to_numpy()
        score = rows[f"prob_{pos}"].to_numpy()
        if y.all() or not y.any():
            log(f"figures: ROC of {method} skipped (one class only)")
            continue
        fpr, tpr, _ = roc_curve(y, score)
        out[method] = (fpr, tpr, float(roc_auc_score(y, score)))
    return out


def fold_auc_text(results: pd.DataFrame, method: str) -> str:
    """``method``'s per-fold AUCs as Table 2 prints them ("0.688 ± 0.007"; one fold: its AUC)."""
    vals = fold_values(results[results["method"] == method], "classification", "AUC")
    return fmt_value("AUC", vals.iloc[0]) if len(vals) == 1 else mean_sd("AUC", vals)


def roc_figure(results: pd.DataFrame, path: Path) -> Path | None:
    """ROC curves (pooled over folds) of every method with class probabilities."""
    curves = pooled_roc(results)
    if not curves:
        return None
    plt = _plt()
    # The legend sits right of the axes: inside, a dozen methods' labels hid the curves.
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    palette = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    # With three classes the curve is malignant vs the rest while the tables' AUC is macro
    # one-vs-rest: the legend says which AUC is which.
    many = results["class_names"].map(len).max() > 2
    # The pooled figure is this curve's AUC, which with three classes is not the tables' pooled
    # macro AUC either: naming it malignant-vs-rest keeps the two from being compared.
    pooled = "pooled malignant-vs-rest AUC" if many else "pooled AUC"
    folds_auc = "folds' macro AUC" if many else "folds"
    for i, (method, (fpr, tpr, auc)) in enumerate(curves.items()):
        # Pooling mixes folds whose probabilities sit in different ranges, so the pooled AUC can
        # differ much from the folds' own: both are shown, named, so neither passes for the other.
        label = f"{method} ({pooled} {auc:.3f}; {folds_auc} {fold_auc_text(results, method)}"
        rows = results[results["method"] == method]
        if (j := rows["fold"].nunique()) < (k := int(rows["n_folds"].iloc[0])):
            label += f"; {j} of {k} folds"  # as the tables' (j/k): a partial pool, said
        label += ")"
        ax.plot(fpr, tpr, lw=1.4, c=palette(i % palette.N), label=label)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    vs = ", malignant vs rest" if many else " (malignant = positive)"
    title = f"ROC of every fold's test predictions pooled{vs}"
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.title.set_fontsize(10)
    key = (
        f"{pooled}: one AUC over all folds' test images together\n"
        "(can differ from the folds' mean when their scores sit in different ranges);\n"
        f"{folds_auc}: mean ± SD of the per-fold AUCs, as in the tables"
    )
    ax.legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.03, 1),
        title=key,
        title_fontsize=7,
        alignment="left",  # the key reads as a caption
    )
    return _save(fig, path)


def remove_stale_figures(out: Path, written: list[Path]) -> list[Path]:
    """Delete the figures in ``out`` an earlier build wrote and this one did not (a method no
    longer in the results, a throughput device no longer measured), and ``out/curves`` if that
    empties it; the paths removed. Only figure names of this module are considered."""
    done = {p.resolve() for p in written}
    found = [p for p in out.glob("*.png") if _OWN_NAME.fullmatch(p.name)]
    found += [p for p in out.glob("curves/*.png") if is_curve_name(p.name)]
    stale = sorted(p for p in found if (p.is_file() or p.is_symlink()) and p.resolve() not in done)
    for p in stale:
        p.unlink()
    curves = out / "curves"
    if stale and curves.is_dir() and not curves.is_symlink() and not any(curves.iterdir()):
        curves.rmdir()
    return stale


def _check_comparable(results: pd.DataFrame, results_dir: Path) -> None:
    """The tables' rule, before anything is drawn: the ROC and overlay figures put methods side
    by side, so methods from other fold manifests (files copied in from another folder) or other
    data are a DataError here too, not a figure the tables would refuse."""
    from mtl_bench.results_io import check_same_manifest
    from mtl_bench.table_checks import check_same_source

    if results.empty:
        return
    methods = results["method"].unique()
    for check in (check_same_manifest, check_same_source):
        if problem := check(results, methods, f"figures of {results_dir}"):
            raise DataError(problem)


def build_figures(
    results_dir: str | Path,
    *,
    dataset: Dataset | None = None,
    throughput_dir: str | Path | None = None,
    max_methods: int = 8,
) -> list[Path]:
    """Write every figure the files under ``results_dir`` allow; returns the PNG paths.

    ``dataset`` supplies the images of the overlays (default: re-loaded from the stored config
    through the prepared-data cache). ``throughput_dir`` defaults to ``results_dir/throughput``
    (skipped when absent); one given explicitly must be a folder. ``max_methods`` (>= 1): the
    most methods in the overlay figure.

    Figures an earlier build left that this one does not (re)write are removed
    (``remove_stale_figures``), so ``figures/`` never mixes builds; a build that writes nothing
    (the CLI's "nothing to draw" error) removes nothing either.
    """
    # Checked before any file is read or written: a bad value must not pass for missing inputs.
    if max_methods < 1:
        raise ValueError(f"--max-methods must be >= 1, got {max_methods}")
    if throughput_dir is not None and not Path(throughput_dir).is_dir():
        what = "a file, not a folder" if Path(throughput_dir).exists() else "no such folder"
        raise DataError(f"--throughput {throughput_dir}: {what}")
    results_dir = Path(results_dir)
    out = results_dir / "figures"
    results = load_results(results_dir)
    _check_comparable(results, results_dir)
    written: list[Path] = []
    if len(results):
        from mtl_bench.figure_overlays import overlay_from_results

        overlay = overlay_from_results(results_dir, results, out, dataset, max_methods)
        roc = roc_figure(results, out / "roc.png")
        written += [p for p in (overlay, roc) if p is not None]
        written += curve_figures(results_dir, out, results)
    from mtl_bench.figure_throughput import throughput_figures  # it imports this module

    tp = Path(throughput_dir) if throughput_dir is not None else results_dir / "throughput"
    written += throughput_figures(tp, out)
    if written:  # nothing drawn is the CLI's error, which should leave the folder as it was
        removed = remove_stale_figures(out, written)
        if removed:
            log(f"figures: removed {len(removed)} of an earlier build (e.g. {removed[0]})")
    return written
