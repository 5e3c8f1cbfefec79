"""Percentile-bootstrap confidence intervals and paired bootstrap p values over test images.

A statistic is a function of resample indices, ``statistic(idx) -> (B,)`` for ``idx`` of shape
(B, n), so a whole batch of resamples is evaluated at once (``stats.auc_batch``). Near-duplicate
images come as ``groups``: the bootstrap then draws whole groups (a cluster bootstrap), whose
resamples differ in length and are evaluated one by one (``evaluate``). Seeds go to
``numpy.random.default_rng``, so every interval repeats exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mtl_bench.stats import group_codes


def resample_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) indices drawn with replacement, reproducible for a given seed."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


Resamples = np.ndarray | list  # (B, n) index array, or B index arrays of varying length


def resample_groups(groups, n_boot: int, seed: int) -> Resamples:
    """Cluster-bootstrap resamples: whole groups drawn with replacement, their members kept.

    ``groups``: (n,) group key per item (``stats.group_codes``). Groups are numbered in order of
    first member and G of them drawn per resample; the result lists each resample's item
    indices (lengths vary). If every group is one item, the (n_boot, n) array of
    ``resample_indices(n, n_boot, seed)`` comes back: the same draws, so data without
    duplicates keeps its image-level numbers.
    """
    codes = group_codes(groups)
    n_groups = int(codes.max()) + 1 if codes.size else 0
    if n_groups == codes.size:  # singletons, numbered in item order: group g is item g
        return resample_indices(codes.size, n_boot, seed)
    draws = resample_indices(n_groups, n_boot, seed)
    order = np.argsort(codes, kind="stable")  # members of group g: order[start[g]:start[g+1]]
    size = np.bincount(codes, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    # All resamples' members in one flat array (vectorised: a loop over groups is slow at B*G).
    sizes = size[draws].ravel()
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)  # where each drawn group begins in flat
    flat = order[np.repeat(start[draws].ravel(), sizes) + np.arange(sizes.sum()) - first]
    return np.split(flat, np.cumsum(size[draws].sum(axis=1))[:-1])


def evaluate(statistic: Callable[[np.ndarray], np.ndarray], resamples: Resamples) -> np.ndarray:
    """``statistic(idx) -> (B,)`` over ``resamples``: at once for an array, else one by one."""
    if isinstance(resamples, np.ndarray):
        return np.asarray(statistic(resamples), dtype=float)
    return np.array([np.asarray(statistic(r[None, :]), dtype=float)[0] for r in resamples])


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap ``samples``; resamples that gave NaN are left out."""
    if not 0 < level < 1:  # 95 for 0.95 is the easy slip
        raise ValueError(f"level must be a fraction in (0, 1) such as 0.95, got {level!r}")
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_ci(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    groups=None,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic(idx) -> (n_boot,)`` over ``n`` items (images);
    with ``groups`` ((n,) keys) a cluster bootstrap (``resample_groups``)."""
    if n == 0:
        return float("nan"), float("nan")
    return percentile_ci(evaluate(statistic, _resamples(n, n_boot, seed, groups)), level)


def _resamples(n: int, n_boot: int, seed: int, groups) -> Resamples:
    if groups is None:
        return resample_indices(n, n_boot, seed)
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} keys for {n} items")
    return resample_groups(groups, n_boot, seed)


def mean_ci(values, *, n_boot: int = 1000, seed: int = 0, groups=None) -> tuple[float, float]:
    """Bootstrap CI of the mean of ``values`` (NaN entries, and their ``groups`` keys, dropped
    first)."""
    v = np.asarray(values, dtype=float)
    if groups is not None and len(groups) != v.size:
        raise ValueError(f"groups has {len(groups)} keys for {v.size} items")
    keep = np.isfinite(v)
    g = None if groups is None else group_codes(groups)[keep]
    v = v[keep]
    return bootstrap_ci(lambda i: v[i].mean(axis=1), v.size, n_boot=n_boot, seed=seed, groups=g)


def paired_bootstrap_p(
    stat_a: Callable[[np.ndarray], np.ndarray],
    stat_b: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    groups=None,
) -> float:
    """Two-sided paired bootstrap p for stat_a - stat_b, both evaluated on the same resamples
    (with ``groups``, resamples of whole groups: ``resample_groups``).

    p = 2 (1 + min(#{d <= 0}, #{d >= 0})) / (B + 1), capped at 1, over the B resamples with a
    finite difference: the add-one form never reports 0, so its smallest value, 2 / (B + 1),
    says how far n_boot resamples can resolve (and a multiple-comparison adjustment can act).
    """
    if n == 0:
        return float("nan")
    idx = _resamples(n, n_boot, seed, groups)
    d = evaluate(stat_a, idx) - evaluate(stat_b, idx)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    tail = min(int(np.sum(d <= 0)), int(np.sum(d >= 0)))
    return float(min(1.0, 2 * (1 + tail) / (d.size + 1)))
