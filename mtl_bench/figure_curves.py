"""Learning-curve figures (``curves/<method>.png`` under ``RESULTS/figures/``, drawn by
``figures.build_figures``): per fold, from ``fold_<K>_curve.csv``, the training loss, its Dice and
focal parts (only those the model trains: the CSV writes 0.0 for a part it lacks) and the
validation score."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from mtl_bench.data.types import DataError, DataWarning
from mtl_bench.results_io import load_results

_CURVE = re.compile(r"fold_(\d+)_curve\.csv")
_CURVE_KEYS = ("loss", "dice_loss", "focal_loss", "val_score")
# The task each loss part trains: the curve CSV writes 0.0 for a part the model lacks.
_PART_TASK = {"dice_loss": "mask", "focal_loss": "label"}
_PART_NAME = {"dice_loss": "Dice", "focal_loss": "focal"}
# A method's name as cv.method_name makes it: MODEL or MODEL@TAG.
_METHOD_NAME = re.compile(r"(?P<model>[^@]+)(@[A-Za-z0-9][A-Za-z0-9._+-]*)?")


def _read_curves(method_dir: Path) -> dict[int, pd.DataFrame]:
    """{fold: curve} of one method folder; a CSV of other columns is warned about and skipped."""
    curves = {}
    for p in sorted(method_dir.glob("fold_*_curve.csv")):
        m = _CURVE.fullmatch(p.name)
        if not m:
            continue
        try:
            c = pd.read_csv(p)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise DataError(f"{p}: unreadable learning curve ({e})") from None
        # A readable CSV of other columns would otherwise drop out of the figure unsaid.
        if "epoch" not in c or not any(k in c for k in _CURVE_KEYS):
            warnings.warn(
                f"{p}: not a learning curve (needs epoch and one of "
                f"{', '.join(_CURVE_KEYS)}; has {', '.join(map(str, c.columns))}): skipped",
                DataWarning,
                stacklevel=3,
            )
            continue
        curves[int(m.group(1))] = c
    return curves


def _curve_panels(curves: dict[int, pd.DataFrame], tasks: set[str]) -> list[tuple[str, str, str]]:
    """[(column, title, y label)] worth drawing; ``tasks``: the result record's (empty: unknown)."""
    present = [
        k for k in _CURVE_KEYS if any(k in c and c[k].notna().any() for c in curves.values())
    ]

    def trained(part: str) -> bool:
        if tasks:
            return _PART_TASK[part] in tasks
        # No result record (a run still going): the CSV writes 0.0 for a part the model lacks,
        # and a part it trains is never exactly 0 at every epoch of every fold.
        return not all((c[part].fillna(0) == 0).all() for c in curves.values() if part in c)

    parts = [k for k in _PART_TASK if k in present and trained(k)]
    panels = []
    if "loss" in present:
        what = " + ".join(_PART_NAME[k] for k in parts)
        panels.append(("loss", f"training loss ({what})" if what else "training loss", "loss"))
        # With one part trained the total is that part: its own panel would repeat this one.
        parts = parts if len(parts) > 1 else []
    panels += [(k, f"training {_PART_NAME[k]} loss", "loss") for k in parts]
    if "val_score" in present:
        # validation.val_score: Dice and/or AUC (ACC where the AUC is undefined) on the inner split.
        score = {"mask": "Dice", "label": "AUC"}
        named = [score[t] for t in ("mask", "label") if t in tasks]
        ylabel = " and ".join(named) + (" (mean)" if len(named) > 1 else "")
        panels.append(("val_score", "validation score", ylabel or "Dice / AUC"))
    return panels


def curve_figures(results_dir: Path, out: Path, results: pd.DataFrame | None = None) -> list[Path]:
    """One PNG per method with learning curves per fold: training loss (and the parts the model
    trains, by its result records' ``tasks``) and the validation score. ``results``: the loaded
    result files (default: read from ``results_dir``)."""
    from matplotlib.ticker import MaxNLocator

    from mtl_bench.figures import _plt, _save  # looked up per call: tests replace _save

    plt = _plt()
    if results is None:
        results = load_results(results_dir)
    tasks: dict[str, set[str]] = {}
    for method, t in zip(results.get("method", []), results.get("tasks", []), strict=True):
        tasks.setdefault(str(method), set()).update(t)
    written = []
    for method_dir in sorted(p for p in results_dir.iterdir() if p.is_dir()):
        curves = _read_curves(method_dir)
        panels = _curve_panels(curves, tasks.get(method_dir.name, set())) if curves else []
        if not panels:
            continue
        fig, axes = plt.subplots(
            1, len(panels), figsize=(3.6 * len(panels), 3.3), squeeze=False, layout="constrained"
        )
        for ax, (key, title, ylabel) in zip(axes[0], panels, strict=True):
            for fold, c in sorted(curves.items()):
                if key in c:
                    one = len(c) == 1  # a line of one point draws nothing: mark it
                    ax.plot(
                        c["epoch"],
                        c[key],
                        lw=1.2,
                        marker="o" if one else None,
                        label=f"Fold {fold + 1}",  # 1-based, as the tables number folds
                    )
            ax.set(xlabel="epoch", ylabel=ylabel)
            # Epochs are whole: a short run's axis otherwise ticked at 1.25, 1.5, ...
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(title, fontsize=9)
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"{method_dir.name}: learning curves", fontsize=10)
        written.append(_save(fig, out / "curves" / f"{method_dir.name}.png"))
    return written


def is_curve_name(name: str) -> bool:
    """Whether ``name`` is one curve_figures writes: ``<method>.png`` of a registered model."""
    from mtl_bench.registry import list_models

    m = _METHOD_NAME.fullmatch(name.removesuffix(".png"))
    return name.endswith(".png") and m is not None and m["model"] in list_models()
