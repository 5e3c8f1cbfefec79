"""What the throughput rows add up to: the paper protocol's training time from a row's rate, and
fold-parallel's speed-up over the same configuration's sequential row (``x_sequential``)."""

from __future__ import annotations

from typing import Any


def protocol_minutes(rows: list[dict[str, Any]], images: int = 647, folds: int = 5,
                     epochs: int = 500) -> list[str]:  # fmt: skip
    """Lines estimating the paper protocol's training time (``folds`` × ``epochs`` epochs of
    the ``(folds−1)/folds`` training share of ``images``) from each mtl_resunet row's train rate:
    sequential folds at the ``none`` rate, all folds at once at the ``fold`` rate. The rate is the
    pipelined one where the row has it (the training loop never blocks on a step), else the
    blocked per-step one, and the line says which. Evaluation and compilation are not included
    (seconds, against minutes of training)."""
    total = epochs * images * (folds - 1)  # every image trains in folds−1 of the folds
    out = []
    for r in rows:
        if r.get("model") != "mtl_resunet" or r.get("status") != "ok":
            continue
        if r.get("strategy") not in ("none", "fold") or str(r.get("devices")) != "1":
            continue
        pipelined = r.get("train_pipelined_img_per_s")
        rate = float(pipelined or r["train_img_per_s"])
        how = "folds one after another"
        if r["strategy"] == "fold":
            how = f"folds side by side, fold_conv={r.get('fold_conv') or 'grouped'}"
        if r.get("model_kwargs"):
            how += f", model {r['model_kwargs']}"  # not the paper's network: say so
        if r.get("config_overrides"):
            how += f", config {r['config_overrides']}"
        # The paper's length at another size or batch is not the paper protocol: say so first.
        paper = str(r.get("image_size")) == "256" and str(r.get("batch_size")) == "16"
        what = "paper protocol" if paper else "paper protocol's length"
        unlike = "" if paper else "; the paper's is 256², batch 16/fold"
        out.append(
            f"{what} ({folds} folds × {epochs} epochs × {folds - 1}/{folds} of {images} "
            f"images): "
            f"{total / rate / 60:.1f} min training at {r['image_size']}², "
            f"batch {r['batch_size']}/fold, {r['precision']}, {how} "
            f"({rate:.0f} img/s{', steps pipelined,' if pipelined else ''} on "
            f"{r.get('device_kind', '?')}){unlike}"
        )
    return out


def fold_speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set ``x_sequential`` on each fold row: its images/s over the ``none`` row's of the same
    model (and model/config overrides), image size, per-fold batch, precision and device (earlier
    runs in the CSV count) — how much faster k folds train side by side than one after another
    (whatever the fold row's ``fold_conv``). Returns ``rows``."""

    def key(r: dict[str, Any]) -> tuple:
        # Blank and missing (a CSV from before a column existed) are the same: the defaults.
        return tuple(str(r.get(k) or "") for k in ("model", "model_kwargs", "config_overrides",
                     "image_size", "batch_size", "precision", "device_kind"))  # fmt: skip

    base = {
        key(r): float(r["train_img_per_s"])
        for r in rows
        if r.get("strategy") == "none" and r.get("status") == "ok"
    }
    for r in rows:
        ref = base.get(key(r))
        if r.get("strategy") == "fold" and r.get("status") == "ok" and ref:
            r["x_sequential"] = float(r["train_img_per_s"]) / ref
    return rows
