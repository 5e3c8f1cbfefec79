"""What each table is: the ``TableSpec`` type and the paper's tables, declared in paper order,
then the supplementary tables (every registered network no paper table lists) and three-class.

``mtl_bench.tables`` builds and renders them (and re-exports everything here). Method names are
registered model names, i.e. result folders; "{reference}" in a spec's methods or reference
stands for the reference method given to ``build_tables`` (default "mtl_resunet"), so
``--reference`` moves every comparison, and the three-class table compares "<reference>@3class".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from mtl_bench.results_io import METRICS
from mtl_bench.table_kinds import IMAGE_METRICS

KINDS = ("per_fold", "comparison", "hyperparams")
REF = "{reference}"


@dataclass(frozen=True)
class TableSpec:
    """One table. ``name`` is the file stem ("table4"); ``title`` the line printed above it
    ("{method}" in it is replaced by the method of a per_fold table).

    kind: per_fold | comparison | hyperparams. task: segmentation | classification (which metric
    block of the result files). methods: rows, in order (per_fold: at most one; empty = the
    reference method). metrics: columns (empty = all of the task's metrics). main_metrics:
    comparison columns that also get a bootstrap CI and an image-level p (empty = DC, JSI or
    ACC, AUC, where shown). fixed_rows: {method: reason} for methods that cannot be reproduced;
    the reason is shown instead of numbers (if results exist after all, the results are shown).
    reference: this table's reference method when it is not the build's own (e.g.
    "{reference}@3class"); empty = the build's reference. supplementary: a table beyond the
    paper's, built only when a method other than its reference has results (so a run of the
    paper's methods gets no all-"not run" extra table). classes: how many classes its runs
    classify (a run with another count is left out of the table, with a warning).
    takes_unlisted: the table also shows each two-class method of its task that no table lists
    (``table_checks.with_other_methods``: a model of the user's own).
    """

    name: str
    title: str
    kind: str
    task: str = "segmentation"
    methods: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    main_metrics: tuple[str, ...] = ()
    fixed_rows: Mapping[str, str] = field(default_factory=dict)
    reference: str = ""
    supplementary: bool = False
    classes: int = 2
    takes_unlisted: bool = False

    def __post_init__(self) -> None:
        where = f"table spec {self.name!r}"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: unknown kind {self.kind!r}; choose one of {KINDS}")
        if self.task not in METRICS:
            raise ValueError(f"{where}: unknown task {self.task!r}; choose one of {tuple(METRICS)}")
        for m in self.metrics:
            if m not in METRICS[self.task]:
                raise ValueError(f"{where}: {m!r} is not a {self.task} metric {METRICS[self.task]}")
        for m in self.main_metrics:
            if m not in IMAGE_METRICS[self.task] or m not in self.columns:
                raise ValueError(
                    f"{where}: main metric {m!r} must be a shown metric with a per-image form "
                    f"{IMAGE_METRICS[self.task]}"
                )
        if self.kind == "per_fold" and len(self.methods) > 1:
            raise ValueError(f"{where}: a per_fold table shows one method, got {self.methods}")

    @property
    def columns(self) -> tuple[str, ...]:
        """The metric columns shown."""
        return self.metrics or METRICS[self.task]

    @property
    def main(self) -> tuple[str, ...]:
        """The metrics that get a CI and an image-level test (comparison tables)."""
        return self.main_metrics or tuple(m for m in IMAGE_METRICS[self.task] if m in self.columns)

    def reference_for(self, reference: str) -> str:
        """This table's reference method, given the build's ``reference``. A tagged reference
        (``mtl_resunet@add``) in a template that adds a tag of its own (``{reference}@3class``)
        gives its model's run (``mtl_resunet@3class``): names hold one tag, so
        ``mtl_resunet@add@3class`` could never have results."""
        if not self.reference:
            return reference
        if f"{REF}@" in self.reference:
            reference = reference.split("@")[0]
        return self.reference.replace(REF, reference)

    def row_methods(self, reference: str) -> list[str]:
        """Row methods in order; fixed-reason methods not listed in ``methods`` come last."""
        ref = self.reference_for(reference)
        if self.kind == "per_fold":
            return [self.methods[0].replace(REF, ref) if self.methods else ref]
        rows = [m.replace(REF, ref) for m in self.methods]
        return rows + [m for m in self.fixed_rows if m not in rows]

    def with_variants(self, have: set[str], reference: str) -> TableSpec:
        """This spec with a row for each variant run of a listed method (``METHOD@TAG``, a
        ``--tag`` run in ``have``) right after that method: an ablation or another setting,
        e.g. ``moon_features@predmask``. Not for per_fold tables (Tables 1-2 show the reference
        alone), nor three-class runs (their own table).

        The reference's row is followed by its kin (``reference_kin``): ``mtl_resunet@add`` after
        ``mtl_resunet``, or with ``--reference mtl_resunet@add`` the untagged ``mtl_resunet``,
        each tested against the reference on the same folds like any other row.
        """
        if self.kind == "per_fold":
            return self
        ref = self.reference_for(reference)
        rows: list[str] = []
        for m in self.methods:
            rows.append(m)
            if REF in m or m == ref:
                rows += [v for v in reference_kin(have, ref) if v not in self.methods]
                continue
            rows += sorted(
                v
                for v in have
                if v.startswith(f"{m}@")
                and v != ref
                and not v.endswith(f"@{THREE_CLASS_TAG}")
                and v not in self.methods
            )
        return replace(self, methods=tuple(rows))

    def compared(self, reference: str) -> list[str]:
        """Methods whose results are compared, hence must share one fold manifest.

        Hyper-parameter tables compare configs, not results, so they need no shared manifest.
        """
        if self.kind == "hyperparams":
            return []
        return list(dict.fromkeys([*self.row_methods(reference), self.reference_for(reference)]))


def reference_kin(have: Iterable[str], reference: str) -> list[str]:
    """The runs in ``have`` of the reference's model other than the reference itself: the
    untagged model and its ``--tag`` variants (``mtl_resunet``, ``mtl_resunet@add``), sorted.

    A three-class run is left out (it has its own table), and a three-class reference has no
    kin: the binary runs of its model answer another question.
    """
    three = f"@{THREE_CLASS_TAG}"
    if reference.endswith(three):
        return []
    model = reference.partition("@")[0]
    return sorted(
        v
        for v in set(have)
        if (v == model or v.startswith(f"{model}@")) and v != reference and not v.endswith(three)
    )


def has_own_results(spec: TableSpec, have: set[str], reference: str) -> bool:
    """Whether a row of ``spec`` other than its reference and the reference's kin (ablations,
    shown in every table) has results: what a supplementary table is built for."""
    ref = spec.reference_for(reference)
    own = set(spec.row_methods(reference)) - {ref, *reference_kin(have, ref)}
    return bool(have & own)


def unlisted(have: Iterable[str], specs: Iterable[TableSpec], reference: str) -> list[str]:
    """The methods of ``have`` that no table of ``specs`` shows (as a row or as its reference),
    sorted: their results would otherwise go unreported without a word."""
    shown: set[str] = set()
    for s in specs:
        shown.update(s.row_methods(reference))
        if s.kind != "hyperparams":  # those list baselines only
            shown.add(s.reference_for(reference))
    return sorted(set(have) - shown)


# The paper's baselines, in the order its tables list them.
SEGMENTATION_METHODS = (
    "deeplabv3plus_resnet34",
    "unetplusplus_resnet34",
    "unet",
    "fpn_resnet34",
    "daf",
)
PRETRAINED_CNNS = (
    "resnet50",
    "vgg19",
    "densenet201",
    "inception_v3",
    "mobilenet",
    "inception_resnet_v2",
)
LITERATURE_CLASSIFIERS = ("moon_features", "uniyal", "hijab_vgg16")
# Uniyal et al. estimate malignancy from ultrasound radio-frequency (RF) time series; BUSI and
# other B-mode datasets store only the envelope-detected, log-compressed image.
UNIYAL_REASON = "not reproducible: needs RF time series, which B-mode datasets (BUSI) lack"
THREE_CLASS_TAG = "3class"
# Registered networks no paper table lists: the paper's decoders on other encoders, and two more
# ImageNet CNNs. `reproduce --methods all` runs them; the supplementary tables report them beside
# the proposed model with the same statistics (tests check every registered model has a table).
OTHER_SEGMENTATION = (
    *(f"unet_{e}" for e in ("resnet18", "resnet34", "resnet50")),
    *(f"unet_{e}" for e in ("vgg16", "vgg16_bn", "vgg19", "vgg19_bn")),
    *(f"unetplusplus_{e}" for e in ("resnet18", "resnet50")),
    *(f"unetplusplus_{e}" for e in ("vgg16", "vgg16_bn", "vgg19", "vgg19_bn")),
    *(f"fpn_{e}" for e in ("resnet18", "resnet50", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")),
    "deeplabv3plus_resnet18",
    "deeplabv3plus_resnet50",
)
OTHER_CLASSIFIERS = ("vgg16", "mobilenet_v2")

DEFAULT_SPECS: tuple[TableSpec, ...] = (
    TableSpec(
        "table1",
        "Table 1: Segmentation results of the proposed model ({method}) per fold",
        "per_fold",
        task="segmentation",
    ),
    TableSpec(
        "table2",
        "Table 2: Classification results of the proposed model ({method}) per fold",
        "per_fold",
        task="classification",
    ),
    TableSpec(
        "table3",
        "Table 3: Hyper-parameters of the segmentation methods (as recorded in their runs)",
        "hyperparams",
        task="segmentation",
        methods=SEGMENTATION_METHODS,
    ),
    TableSpec(
        "table4",
        "Table 4: Segmentation: the proposed model vs segmentation models from the literature",
        "comparison",
        task="segmentation",
        methods=(*SEGMENTATION_METHODS, REF),
    ),
    TableSpec(
        "table5",
        "Table 5: Hyper-parameters of the classification methods (as recorded in their runs)",
        "hyperparams",
        task="classification",
        methods=(*LITERATURE_CLASSIFIERS, *PRETRAINED_CNNS),
        fixed_rows={"uniyal": UNIYAL_REASON},
    ),
    TableSpec(
        "table6",
        "Table 6: Classification: the proposed model vs classification models from the literature",
        "comparison",
        task="classification",
        methods=(*LITERATURE_CLASSIFIERS, REF),
        fixed_rows={"uniyal": UNIYAL_REASON},
    ),
    TableSpec(
        "table7",
        "Table 7: Classification: the proposed model vs pre-trained (transfer-learned) CNNs",
        "comparison",
        task="classification",
        methods=(*PRETRAINED_CNNS, REF),
    ),
    TableSpec(
        "table_s1",
        "Supplementary Table S1: Segmentation: the proposed model vs the paper's segmentation "
        "architectures on other encoders",
        "comparison",
        task="segmentation",
        methods=(*OTHER_SEGMENTATION, REF),
        supplementary=True,
        takes_unlisted=True,
    ),
    TableSpec(
        "table_s2",
        "Supplementary Table S2: Classification: the proposed model vs other pre-trained CNNs",
        "comparison",
        task="classification",
        methods=(*OTHER_CLASSIFIERS, REF),
        supplementary=True,
        takes_unlisted=True,
    ),
    TableSpec(
        "table_3class",
        "Three-class classification (benign / malignant / normal): the proposed model vs "
        "pre-trained CNNs",
        "comparison",
        task="classification",
        methods=(*(f"{m}@{THREE_CLASS_TAG}" for m in PRETRAINED_CNNS), REF),
        reference=f"{REF}@{THREE_CLASS_TAG}",
        classes=3,
    ),
)
