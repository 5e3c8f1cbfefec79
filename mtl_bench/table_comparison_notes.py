"""The notes of a comparison table (``table_comparison``): what its numbers are, how they were
tested, and what a reader must know about the images behind them (near-duplicate groups, the
fold manifest beside the results, rows over fewer folds than the table's)."""

from __future__ import annotations

from mtl_bench import stats
from mtl_bench.table_kinds import fmt_p, units_note


def comparison_notes(
    task: str,
    reference: str,
    k: int | None,
    n_boot: int,
    seed: int,
    p_adjust: str,
    n_tests: int,
    *,
    tested: bool,
    grouped: bool = False,
) -> list[str]:
    """The notes every comparison table carries: units, the tests and their adjustment, the
    pooled values and CIs (``tested``: the reference has results; ``grouped``: near-duplicate
    groups are units)."""
    models = f"the {k} fold models" if k else "the fold models"
    if task == "segmentation":
        image_test = "Wilcoxon signed-rank over per-image DC / JSI pairs" + (
            " (a near-duplicate group's means as one pair)" if grouped else ""
        )
    else:
        mcnemar = (
            "exact McNemar with near-duplicate groups as clusters (the signs of whole groups' "
            "discordance flipped: the exact form of Durkalski et al. 2003)"
            if grouped
            else "exact McNemar"
        )
        image_test = (
            f"{mcnemar} on per-image correctness (ACC), paired bootstrap (n_boot={n_boot}) of the "
            f"AUC difference (AUC; its smallest p is 2/(n_boot+1) = {fmt_p(2 / (n_boot + 1))})"
        )
    pooled = (
        "mean per-image DC / JSI"
        if task == "segmentation"
        else f"ACC: accuracy; AUC: the AUC of {models}' scores pooled"
    )
    ci = (
        f"Pooled: the value over the test images of all folds together ({pooled}), which need "
        f"not equal the Mean ± SD over folds beside it; 95% CI: percentile bootstrap over those "
        f"images ({'whole near-duplicate groups drawn, ' if grouped else ''}"
        f"n_boot={n_boot}, seed={seed}), the uncertainty from the test sample given "
        f"{models}, not from training."
    )
    if not tested:  # no reference results: nothing was tested
        return [
            units_note(k, task),
            f"No p values: the reference {reference} has no results here.",
            ci,
        ]
    k = k or 5
    unreachable = ", so it cannot reach 0.05" if stats.min_wilcoxon_p(k) >= 0.05 else ""
    if n_tests == 0:
        adjusted = ""
    elif p_adjust == "holm":
        what = f"{n_tests} method{'' if n_tests == 1 else 's'} against {reference}"
        adjusted = (
            f"p values and marks are Holm-adjusted for testing {what} (within this table, per "
            "metric and test level; a method without that test is not counted); the CSV also "
            "holds the unadjusted p values."
        )
    else:
        adjusted = "p values are not adjusted for multiple comparisons."
    return [
        units_note(k, task),
        f"p vs {reference}, two-sided, as folds / images. Folds: Wilcoxon signed-rank over "
        f"paired folds; its smallest attainable p is 2/2^k = {fmt_p(stats.min_wilcoxon_p(k))} "
        f"for k={k}{unreachable}. Images: {image_test}." + (f" {adjusted}" if adjusted else ""),
        f"* p(images) < 0.05; † p(folds) < 0.05. {ci}",
    ]


def duplicates_note(
    n_groups: int, n_grouped: int, groups: dict | None, hashes: list[str], manifests: list[str]
) -> str | None:
    """How near-duplicate test images were counted: ``groups`` is the table's manifest's
    {id: group} (None when none is known), ``hashes`` the table's fold manifest hashes and
    ``manifests`` the hashes of the fold manifest(s) beside the results (folds.json)."""
    if n_groups:
        return (
            f"{n_grouped} test images fall in {n_groups} near-duplicate groups (the fold "
            "manifest's duplicate_groups): each group is one unit in the image-level tests and CIs "
            "(n_units in the CSV)."
        )
    if groups is not None or len(hashes) != 1:
        return None
    independent = (
        "near-duplicate test images, if the data has any, count as independent images in the "
        "CIs and image-level tests."
    )
    if manifests:  # a folds.json is there, but of other folds than these results'
        other = ", ".join(h[:12] for h in manifests)
        return (
            f"The fold manifest beside these results (folds.json, {other}) is not theirs "
            f"({hashes[0][:12]}), so its duplicate groups are not used: {independent}"
        )
    return f"No fold manifest (folds.json) of these results beside them: {independent}"


def incomplete_note(incomplete: list[str], reference: str) -> str | None:
    """For rows over fewer folds than the table's (``incomplete``: their labels), what their
    pooled values and paired tests cover."""
    if not incomplete:
        return None
    return (
        f"Rows over fewer folds than the table's ({', '.join(incomplete)}): their Mean ± SD "
        "carries (j/k), and their pooled values and CIs cover only those folds' test images, "
        "not the images of a complete row; a paired test uses only the folds and images that "
        f"both the row and the reference {reference} have."
    )
