"""Builder of the hyper-parameter tables (the paper's Tables 3 and 5), from recorded configs.

One row per method, read from the ``config`` of its result files — what actually ran, never a
typed value: batch size, optimiser, learning rate, epochs and schedule; the input (image side and
pre-processing), the initial weights, and the method's own options (``model_kwargs``). A method
fitted without gradient descent has "n/a" where the gradient settings would be.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING

import pandas as pd

from mtl_bench.table_kinds import DASH, NA, NOT_RUN, Table, unavailable, with_notes

if TYPE_CHECKING:
    from mtl_bench.table_specs import TableSpec

HYPERPARAMS = ("batch_size", "optimizer", "lr", "epochs", "lr_decay_every", "lr_decay_factor")
HP_HEADERS = ("Method", "Batch size", "Optimizer", "Learning rate", "Epochs", "LR schedule")
HP_HEADERS += ("Input", "Weights", "Settings")
HP_NOTE = (
    f"From each method's recorded run config; {DASH} = not recorded; {NA} = not trained by "
    "gradient descent (no epoch was run). Input: image side and pre-processing. Weights: "
    "ImageNet-initialised or trained from scratch. Settings: the method's own options "
    '(model_kwargs; local files by name), "defaults" when none was set.'
)


def _text(value) -> str:
    if value is None:
        return DASH
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _schedule(cfg: dict) -> str:
    every, factor = cfg.get("lr_decay_every"), cfg.get("lr_decay_factor")
    if every is None and factor is None:
        return str(cfg["schedule"]) if cfg.get("schedule") else DASH
    if not every or factor in (None, 1):
        return "constant"
    return f"×{factor:g} every {every} epochs"


def _input(cfg: dict) -> str:
    size, pre = cfg.get("image_size"), cfg.get("preprocess")
    parts = ([f"{size}²"] if size is not None else []) + ([str(pre)] if pre is not None else [])
    return ", ".join(parts) or DASH


def _settings(cfg: dict) -> str:
    """``model_kwargs`` as "key=value; ..."; a local path (weights, masks) by its file name."""
    parts = []
    for key, value in (cfg.get("model_kwargs") or {}).items():
        if isinstance(value, str) and ("/" in value or "\\" in value):
            value = PurePath(value.replace("\\", "/")).name
        if value is not None:
            parts.append(f"{key}={_text(value)}")
    return "; ".join(parts) or "defaults"


def _weights(from_scratch) -> str:
    if from_scratch is None or from_scratch != from_scratch:  # missing, or NaN from pandas
        return DASH
    return "scratch" if from_scratch else "ImageNet"


def hyperparams(spec: TableSpec, res: pd.DataFrame, reference: str) -> Table:
    """One row per method from its recorded run configs (see ``HP_NOTE``)."""
    raws, disp, reasons = [], [], []
    for method in spec.row_methods(reference):
        rows = res[res["method"] == method]
        if rows.empty:
            cell, reason = unavailable(spec, method, res)
            raws.append({"method": method, "status": reason or NOT_RUN})
            disp.append([method, *[cell] * (len(HP_HEADERS) - 1)])
            reasons.append(reason)
            continue
        cfgs = list(rows["config"])

        # Folds of one run share a config; if they differ, every value is shown, joined.
        def joined(values) -> str:
            return " / ".join(dict.fromkeys(values))

        vals = {k: joined(_text(c.get(k)) for c in cfgs) for k in HYPERPARAMS}
        # The CSV keeps the recorded value itself when the folds agree (a number stays a number).
        raw_vals = {k: cfgs[0].get(k) if " / " not in vals[k] else vals[k] for k in HYPERPARAMS}
        # A method fitted without gradient descent (every fold ran 0 epochs: the feature
        # classifier) has no batch size, optimiser or learning rate; its config's are unused.
        ran = rows["epochs_run"] if "epochs_run" in rows else pd.Series([None] * len(rows))
        gradient = not (ran == 0).all()
        scratch = rows["from_scratch"] if "from_scratch" in rows else [None] * len(rows)
        keys = ("batch_size", "optimizer", "lr", "epochs")
        cells = [vals[k] for k in keys] + [joined(_schedule(c) for c in cfgs)]
        weights = joined(_weights(x) for x in scratch)
        if not gradient:
            cells, weights = [NA] * len(cells), NA
        extra = [joined(_input(c) for c in cfgs), weights, joined(_settings(c) for c in cfgs)]
        raws.append({"method": method, "status": "ok", "gradient": gradient, **raw_vals})
        raws[-1].update(zip(("input", "weights", "settings"), extra, strict=True))
        disp.append([method, *cells, *extra])
        reasons.append("")
    display = with_notes(pd.DataFrame(disp, columns=list(HP_HEADERS)), reasons)
    raw_cols = ["method", "status", "gradient", *HYPERPARAMS, "input", "weights", "settings"]
    return Table(spec.name, spec.title, display, pd.DataFrame(raws, columns=raw_cols), [HP_NOTE])
