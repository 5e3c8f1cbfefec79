"""``moon_features``' model selection: the inner grid searches and the Platt-scaled RBF SVM.

One ``GridSearchCV`` per classifier family (logistic regression, SVM), each over ``C`` on the same
inner folds (stratified, or stratified by duplicate group); ``fit_moon`` keeps the family with the
best inner AUC, logistic regression on a tie — what one grid over both would pick, as the grid
listed logistic regression first. Two searches rather than one grid because scikit-learn routes
``groups`` to a pipeline's classifier only when the grid's base classifier asks for them, and a
logistic regression cannot take them while the SVM's calibration needs them (below).

The SVM's probabilities are a Platt sigmoid fit on out-of-fold decision values of the training
images (``CalibratedClassifierCV(ensemble=False)``, scikit-learn's replacement for
``SVC(probability=True)``). With duplicate groups, ``PlattSVC`` draws that split by group too:
scikit-learn 1.9 does not pass ``groups`` to the split of an ``ensemble=False`` calibration, and a
sigmoid fit on the decision value of an image whose twin trained the SVM is over-confident, which
moves the 0.5 threshold (ACC, PRE, REC, SPE, F1), though not a binary AUC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from mtl_bench.config import RunConfig
from mtl_bench.data.types import DataError


class PlattSVC(ClassifierMixin, BaseEstimator):
    """An RBF SVM with Platt-scaled probabilities; calibration split by ``groups`` when given.

    Without groups it is exactly ``CalibratedClassifierCV(SVC(...), method="sigmoid",
    cv=n_splits, ensemble=False)`` (unshuffled stratified k-fold). ``fit`` asks for ``groups``
    under scikit-learn's metadata routing, so a ``GridSearchCV`` fit with
    ``enable_metadata_routing`` hands each candidate its training images' groups.
    """

    __metadata_request__fit = {"groups": True}  # scikit-learn reads requests from this name

    def __init__(
        self,
        C: float = 1.0,
        class_weight: str | None = None,
        n_splits: int = 3,
        random_state: int | None = None,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.n_splits = n_splits
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> PlattSVC:
        """The SVM on all of ``X``, its sigmoid on ``n_splits``-fold out-of-fold decisions."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
        from sklearn.svm import SVC

        y = np.asarray(y)
        if groups is None:
            splits = list(StratifiedKFold(self.n_splits).split(X, y))
        else:
            splitter = StratifiedGroupKFold(
                self.n_splits, shuffle=True, random_state=self.random_state
            )
            splits = list(splitter.split(X, y, np.asarray(groups)))
        n_classes = len(np.unique(y))
        for train, _ in splits:
            if len(np.unique(y[train])) < n_classes:
                raise DataError(
                    f"moon_features: a Platt calibration split of {len(y)} training images "
                    f"({'by duplicate group' if groups is not None else 'stratified'}) lacks a "
                    "class; drop 'svc' from model_kwargs.classifiers or use fewer inner_folds"
                )
        svc = SVC(
            kernel="rbf",
            gamma="scale",
            C=self.C,
            class_weight=self.class_weight,
            random_state=self.random_state,
        )
        self.calibrated_ = CalibratedClassifierCV(
            svc, method="sigmoid", cv=splits, ensemble=False
        ).fit(X, y)
        self.classes_ = self.calibrated_.classes_
        self.calibration_folds_ = [test for _, test in splits]  # for inspection and tests
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        return self.calibrated_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def inner_searches(
    settings: dict[str, Any],
    labels: np.ndarray,
    names: tuple[str, ...],
    cfg: RunConfig,
    fold: int,
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """One unfitted ``GridSearchCV`` per classifier family ("logreg" first), on shared inner
    folds; ``groups`` (per training image): split by duplicate group (``fit`` takes ``groups=``
    and must run under ``sklearn.config_context(enable_metadata_routing=True)``)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    n_classes = len(names)
    counts = np.bincount(labels, minlength=n_classes)
    if counts.min() < 2:
        raise DataError(
            f"moon_features fold {fold}: the training fold has {counts.min()} image(s) of class "
            f"{names[int(counts.argmin())]!r}; inner cross-validation needs at least 2 per class"
        )
    k = int(min(settings["inner_folds"], counts.min()))
    units = counts  # what a split keeps together per class: images, or duplicate groups
    if groups is not None:  # each inner fold needs a group of every class, for its AUC
        units = np.array([len(np.unique(groups[labels == c])) for c in range(n_classes)])
        k = min(k, int(units.min()))
        if k < 2:
            raise DataError(
                f"moon_features fold {fold}: the training fold's class "
                f"{names[int(np.argmin(units))]!r} is one duplicate group; inner "
                "cross-validation needs at least 2 groups per class"
            )
    weight = "balanced" if cfg.class_weights == "inverse_frequency" else None
    candidates: dict[str, tuple[Any, str]] = {}
    if "logreg" in settings["classifiers"]:
        candidates["logreg"] = (LogisticRegression(max_iter=10_000, class_weight=weight), "C")
    # Platt scaling splits an inner training fold again and needs 2+ images (groups) per class
    # in each part, so tiny folds drop the SVM.
    per_class_inner = int(units.min() - np.ceil(units.min() / k))
    if "svc" in settings["classifiers"] and per_class_inner >= 2:
        svc = PlattSVC(class_weight=weight, n_splits=min(3, per_class_inner), random_state=cfg.seed)
        candidates["svc"] = (svc, "C")
    if not candidates:
        raise DataError(
            f"moon_features fold {fold}: the training fold is too small for an SVM-only grid"
        )
    splitter = (StratifiedKFold if groups is None else StratifiedGroupKFold)(
        n_splits=k, shuffle=True, random_state=cfg.seed
    )
    searches = {}
    for name, (clf, param) in candidates.items():
        pipe = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
                ("clf", clf),
            ]
        )
        searches[name] = GridSearchCV(
            pipe,
            {f"clf__{param}": list(settings["C_grid"])},
            scoring="roc_auc" if n_classes == 2 else "roc_auc_ovr",
            cv=splitter,
            refit=True,
            error_score="raise",
        )
    return searches


def n_fitted(pipe) -> int:
    """Fitted numbers of the selected pipeline (imputer, scaler, classifier) for ``params``."""
    clf = pipe.named_steps["clf"]
    n = pipe.named_steps["impute"].statistics_.size + 2 * pipe.named_steps["scale"].mean_.size
    if hasattr(clf, "coef_"):
        return n + clf.coef_.size + clf.intercept_.size
    for cal in clf.calibrated_.calibrated_classifiers_:
        svc = cal.estimator
        n += svc.support_vectors_.size + svc.dual_coef_.size + svc.intercept_.size
        n += sum(2 for _ in cal.calibrators)  # each Platt sigmoid has a slope and an offset
    return n
