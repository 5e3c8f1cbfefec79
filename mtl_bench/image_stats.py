"""Image-level statistics of a method's per-image results, near-duplicate images as one unit.

BUSI holds near-duplicate images (crops and re-exports of one scan: the fold manifest's
``duplicate_groups``), kept inside one fold so none leaks from training to test. At image level
they are still not independent: a bootstrap that draws images one by one, or a test that counts
each image as a pair, takes a lesion saved three times for three lesions, and its CIs come out
too narrow and its p values too small. Here a group is one unit: the bootstraps draw whole groups
(a cluster bootstrap), the segmentation test pairs each group's mean DC / JSI, and ACC's exact
McNemar test flips whole groups (``stats.clustered_mcnemar_p``). Images in no group are their
own unit, and where no test image shares a group every number is the image-level one exactly
(the same draws). A group's mean is one Wilcoxon pair, so the test weighs groups equally while
the pooled value weighs images equally (BUSI's groups hold 2-3 images).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mtl_bench import bootstrap, stats


def unit_keys(ids: pd.Series, groups: Mapping[str, int] | None) -> np.ndarray | None:
    """The unit of each image: ``("group", g)`` for an id in ``groups`` (id -> group number),
    else ``("image", id)``; None when no two of ``ids`` share a unit (image-level statistics)."""
    if not groups:
        return None
    keys = np.empty(len(ids), dtype=object)
    keys[:] = [("group", groups[i]) if i in groups else ("image", i) for i in ids]
    return keys if len(set(keys)) < len(keys) else None


def duplicate_units(img: pd.DataFrame, groups: Mapping[str, int] | None) -> tuple[int, int]:
    """(number of groups, number of images) among ``img``'s ids that share a unit."""
    if not groups:
        return 0, 0
    sizes = pd.Series([groups[i] for i in img["id"] if i in groups]).value_counts()
    sizes = sizes[sizes > 1]
    return len(sizes), int(sizes.sum())


def _n_units(units: np.ndarray | None, used: np.ndarray, n_images: float) -> float:
    return n_images if units is None else float(len(set(units[used])))


def image_level(
    metric: str,
    task: str,
    img: pd.DataFrame,
    ref_img: pd.DataFrame | None,
    n_boot: int = 1000,
    seed: int = 0,
    groups: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """Image-level statistics of one main metric of a method, from ``per_image`` frames.

    Returns n_images, n_units (the units among them: a near-duplicate group counts once), the
    value over all of ``img``'s images pooled (``pooled``), its bootstrap CI (ci_lo, ci_hi) and
    p_images, the paired p against ``ref_img`` on the images both have (NaN when ``ref_img`` is
    None: no test). Segmentation DC/JSI: mean per-image value, Wilcoxon; ACC: accuracy,
    McNemar; AUC: the AUC of the pooled scores, paired bootstrap. A pooled value is not the mean
    over folds (folds differ in size; an AUC of scores pooled from k models is not the mean of
    their AUCs). ``groups`` (image id -> duplicate group number, from the fold
    manifest): images of one group are one unit (module docstring).
    """
    out = {"p_images": math.nan}
    if task == "segmentation" or metric == "ACC":
        col = metric if task == "segmentation" else "correct"
        vals = img[col].to_numpy(float) if col in img else np.array([])
        out["n_images"] = float(np.isfinite(vals).sum())
        out["pooled"] = float(vals[np.isfinite(vals)].mean()) if out["n_images"] else math.nan
        units = unit_keys(img["id"], groups) if len(vals) else None
        out["n_units"] = _n_units(units, np.isfinite(vals), out["n_images"])
        out["ci_lo"], out["ci_hi"] = bootstrap.mean_ci(vals, n_boot=n_boot, seed=seed, groups=units)
        if ref_img is not None and col in ref_img and col in img:
            pair = ref_img[["id", col]].merge(img[["id", col]], on="id").dropna()
            a, b = pair[f"{col}_x"].to_numpy(float), pair[f"{col}_y"].to_numpy(float)
            units = unit_keys(pair["id"], groups)
            if task == "segmentation":
                if units is not None:  # one pair per unit: its images' mean
                    codes = stats.group_codes(units)
                    a, b = (np.bincount(codes, v) / np.bincount(codes) for v in (a, b))
                out["p_images"] = stats.wilcoxon_p(a, b)
            elif units is not None:
                out["p_images"] = stats.clustered_mcnemar_p(a, b, units)
            else:
                out["p_images"] = stats.mcnemar_p(a, b)
        return out

    def auc_of(frame: pd.DataFrame, cols: list[str]):
        probs, labels = frame[cols].to_numpy(float), frame["label"].to_numpy(int)
        return lambda idx: stats.auc_from_probs(probs, labels, idx)

    cols = [c for c in img if c.startswith("prob_")]
    img = img.dropna(subset=["label"]) if cols else img.iloc[:0]
    out["n_images"] = float(len(img))
    units = unit_keys(img["id"], groups)
    out["n_units"] = _n_units(units, np.ones(len(img), bool), out["n_images"])
    everything = np.arange(len(img))[None]  # one "resample": the pooled images themselves
    out["pooled"] = float(auc_of(img, cols)(everything)[0]) if len(img) else math.nan
    out["ci_lo"], out["ci_hi"] = bootstrap.bootstrap_ci(
        auc_of(img, cols), len(img), n_boot=n_boot, seed=seed, groups=units
    )
    ref_cols = [] if ref_img is None else [c for c in ref_img if c.startswith("prob_")]
    if ref_cols and len(img):
        ref_part = ref_img[["id", "label", *ref_cols]].rename(columns=lambda c: f"{c}_ref")
        pair = ref_part.merge(
            img[["id", "label", *cols]].rename(columns=lambda c: f"{c}_oth"),
            left_on=["id_ref", "label_ref"],
            right_on=["id_oth", "label_oth"],
        ).rename(columns={"label_ref": "label"})
        out["p_images"] = bootstrap.paired_bootstrap_p(
            auc_of(pair, [f"{c}_ref" for c in ref_cols]),
            auc_of(pair, [f"{c}_oth" for c in cols]),
            len(pair),
            n_boot=n_boot,
            seed=seed,
            groups=unit_keys(pair["id_ref"], groups),
        )
    return out
