"""Paired significance tests, AUC and the multiple-comparison adjustment for the tables.

Everything here takes plain arrays, so the numbers can be checked against scipy directly.
Conventions (they go into the table notes):
- fold level: two-sided Wilcoxon signed-rank test (``wilcoxon_p``: exact up to 50 nonzero
  pairs, ties included; scipy's normal approximation beyond). With k folds the smallest
  attainable p is 2 / 2**k: 0.0625 for 5 folds, so a fold-level test on 5 folds can never reach
  p < 0.05 — the image-level tests carry the significance.
- image level, segmentation (DC, JSI): Wilcoxon signed-rank over per-image pairs (the same).
- image level, classification ACC: exact McNemar test (binomial test on the discordant pairs),
  the paired test for per-image correctness; AUC: paired bootstrap of the AUC difference
  (``bootstrap``, which also gives the CIs).
- near-duplicate images count as one unit (``image_stats``): segmentation pairs their mean,
  ACC's exact McNemar flips whole groups (``clustered_mcnemar_p``), the bootstrap draws groups.
- multiple comparisons: a table compares one reference with many methods, so its p values are
  Holm-adjusted (``adjust_p``) within the table, per metric and per test level, by default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

P_ADJUST = ("holm", "none")


def adjust_p(pvalues, method: str = "holm") -> np.ndarray:
    """p values adjusted for testing them together: ``holm`` (Holm–Bonferroni step-down, which
    controls the family-wise error rate under any dependence) or ``none``.

    NaN entries (no test) stay NaN and do not count toward the family size.
    """
    if method not in P_ADJUST:
        raise ValueError(f"unknown p adjustment {method!r}: choose {', '.join(P_ADJUST)}")
    p = np.asarray(pvalues, dtype=float)
    out = p.copy()
    ok = np.isfinite(p)
    bad = ok & ((p < 0) | (p > 1 + 1e-9))  # a test's rounding may pass 1 by an ulp: not an error
    if bad.any():
        raise ValueError(f"p values must be in [0, 1], got {p[bad][0]:g}")
    m = int(ok.sum())
    if method == "none" or m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    # The i-th smallest (0-based) is multiplied by m - i; the running max keeps the order.
    steps = np.maximum.accumulate((m - np.arange(m)) * p[ok][order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(steps, 1.0)
    out[ok] = adjusted
    return out


def min_wilcoxon_p(n_pairs: int) -> float:
    """Smallest two-sided exact Wilcoxon p attainable with ``n_pairs`` pairs (all signs equal)."""
    return float(min(1.0, 2.0 / 2.0**n_pairs)) if n_pairs > 0 else float("nan")


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Pairs where both values are finite (null/NaN metrics drop out of the pair)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired test needs equal lengths, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


EXACT_WILCOXON_MAX = 50  # nonzero pairs up to which the p is exact (as scipy's "auto")


def _sign_flip_p(sizes: np.ndarray, observed: int) -> float:
    """P(|sum_i s_i sizes_i| >= |observed|) for independent fair signs s_i: the exact two-sided
    p of a sign-flip (randomisation) test with positive integer ``sizes``.

    The distribution is built as probabilities, one size at a time (dyadic fractions: exact in
    float64 while 2**len(sizes) counts would be, and no overflow beyond).
    """
    total = int(sizes.sum())
    prob = np.zeros(2 * total + 1)  # index: the signed sum + total
    prob[total] = 1.0
    for m in sizes:
        prob = 0.5 * (np.roll(prob, int(m)) + np.roll(prob, -int(m)))  # |partial sum| <= total
    extreme = np.abs(np.arange(prob.size) - total) >= abs(observed)
    return float(min(1.0, prob[extreme].sum()))


def _exact_signed_rank_p(d: np.ndarray) -> float:
    """Exact two-sided signed-rank p of nonzero differences ``d``, ties kept as midranks: under
    the null each rank's sign is + or - with probability 1/2 (doubled midranks are integers)."""
    ranks2 = np.rint(2 * sps.rankdata(np.abs(d))).astype(np.int64)
    return _sign_flip_p(ranks2, int(np.sign(d) @ ranks2))


def wilcoxon_p(a, b) -> float:
    """Two-sided Wilcoxon signed-rank p of paired ``a`` vs ``b``; NaN with fewer than 2 pairs.

    Zero differences are dropped (Wilcoxon's convention, scipy's default). Up to
    ``EXACT_WILCOXON_MAX`` nonzero pairs the p is exact, ties included, so a fold-level test
    over k folds never goes below 2 / 2**k whatever the scipy version (older scipy switched to
    the normal approximation on ties); beyond that, scipy's normal approximation with its tie
    correction. Identical samples give p = 1. Differences equal to 10 significant digits (of the
    larger |value|) count as tied: fold metrics such as 27/40 - 28/40 and 30/40 - 31/40 differ in
    their last bits, and ranking that float noise gave another p than the exact test's.
    """
    a, b = _paired(a, b)
    if a.size < 2:
        return float("nan")
    scale = float(np.max(np.abs(np.concatenate([a, b]))))  # finite: _paired keeps those only
    # Ranks and signs only: scaled, rounded differences give the same test without the noise.
    d = np.round((a - b) / scale, 10) if scale > 0 else a - b
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    if d.size <= EXACT_WILCOXON_MAX:
        return _exact_signed_rank_p(d)
    return float(sps.wilcoxon(d, method="approx").pvalue)


def mcnemar_p(correct_a, correct_b) -> float:
    """Exact two-sided McNemar p for paired per-image correctness (booleans); 1 if no discord."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:  # broadcasting would pair one image with many
        raise ValueError(f"paired samples must have equal shapes, got {a.shape} and {b.shape}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(sps.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def group_codes(groups) -> np.ndarray:
    """(n,) int code per item of ``groups`` (any hashable keys: ints, strings, tuples),
    numbered in order of first appearance; a ValueError names a missing (None / NaN) key."""
    codes = pd.factorize(pd.Series(list(groups), dtype=object), sort=False)[0]
    if (codes < 0).any():
        raise ValueError(f"groups: item {int(np.argmax(codes < 0))} has no group key (None/NaN)")
    return codes


def clustered_mcnemar_p(correct_a, correct_b, groups) -> float:
    """Exact two-sided McNemar p for paired correctness when images come in groups (near
    duplicates), each group one unit; 1 if no discord.

    With d_g = #(a right, b wrong) - #(a wrong, b right) in group g, under the null each group's
    a/b labels are exchangeable, so every d_g keeps its size and flips its sign with probability
    1/2: p = P(|sum s_g |d_g|| >= |sum d_g|), counted exactly over the sign patterns. This is the
    randomisation form of Durkalski et al.'s (2003, Stat. Med. 22:2417) clustered McNemar
    statistic (sum d_g)^2 / sum d_g^2, whose denominator the flips leave unchanged; with one
    image per group it is the exact McNemar test (``mcnemar_p``).
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if not a.shape == b.shape == (len(groups),):
        raise ValueError(
            f"paired samples and groups differ in shape: {a.shape}, {b.shape}, ({len(groups)},)"
        )
    codes = group_codes(groups)
    d = np.rint(np.bincount(codes, weights=(a & ~b).astype(float) - (~a & b).astype(float)))
    if not np.any(d):
        return 1.0
    return _sign_flip_p(np.abs(d[d != 0]).astype(np.int64), int(d.sum()))


def auc_batch(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (B, n) against binary ``labels`` (B, n); NaN if one class.

    Rank form (Mann–Whitney U / (n_pos n_neg)) with average ranks for ties, so it equals
    ``sklearn.metrics.roc_auc_score`` and runs for a whole bootstrap batch at once.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    labels = np.atleast_2d(np.asarray(labels, dtype=bool))
    ranks = sps.rankdata(scores, axis=1)
    n_pos = labels.sum(axis=1).astype(float)
    n_neg = labels.shape[1] - n_pos
    u = np.where(labels, ranks, 0.0).sum(axis=1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def auc_from_probs(prob: np.ndarray, labels: np.ndarray, idx: np.ndarray | None = None):
    """AUC of class probabilities ``prob`` (n, C) for integer ``labels`` (n,).

    Binary: the malignant (index 1) probability scores the positive class. More classes: the
    macro one-vs-rest mean over classes (sklearn's ``multi_class="ovr"``). ``idx`` (B, m) selects
    bootstrap resamples and gives B values; without it a single float comes back.
    """
    prob, labels = np.asarray(prob, dtype=float), np.asarray(labels)
    if prob.ndim != 2 or labels.shape != prob.shape[:1]:
        raise ValueError(
            f"prob must be (n, C) and labels (n,), got {prob.shape} and {labels.shape}"
        )
    single = idx is None
    idx = np.arange(labels.size)[None, :] if single else idx
    classes = [1] if prob.shape[1] == 2 else range(prob.shape[1])
    per_class = [auc_batch(prob[idx, c], labels[idx] == c) for c in classes]
    with np.errstate(invalid="ignore"):
        out = np.mean(per_class, axis=0)
    return float(out[0]) if single else out
