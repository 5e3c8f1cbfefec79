"""``moon_features``: Moon et al.'s feature-based classifier, on the same folds as every method.

Moon et al. (the paper's ref. 27) classify a lesion from hand-crafted texture, intensity
("descriptor") and morphology features of the radiologist's delineation with a logistic
regression. Here: the features of ``moon_features_extract`` (48 per image), then a scikit-learn
``Pipeline(SimpleImputer(median), StandardScaler, classifier)`` where the classifier — logistic
regression, or an RBF SVM with Platt-scaled probabilities — and its C are chosen by an inner
stratified k-fold grid search (``GridSearchCV``, scoring ROC AUC, seeded) on the training fold
only — group-aware (``StratifiedGroupKFold``) when the fold manifest's near-duplicate groups
share training images, so no image scores a C chosen on its twin, and the SVM's Platt sigmoid is
fit on decision values of groups its SVM did not see (``inner_folds_grouped`` in the record;
``moon_features_search``); the test fold is seen once, for the reported probabilities.

Settings (``cfg.model_kwargs``, all optional; see ``mtl_bench/configs/moon_features.py``):
``classifiers`` ("logreg", "svc"), ``C_grid``, ``inner_folds`` (5), ``mask_source``.
``cfg.class_weights`` "inverse_frequency" maps to ``class_weight="balanced"`` (the same
imbalance policy as the proposed model's loss); "none" to unweighted. ``cfg.seed`` seeds the inner
folds and the SVM.

Mask source: ``"ground_truth"`` (default) uses the dataset's masks for training and test images,
as the original, which used the radiologist's outline. ``"predicted"`` keeps ground-truth masks
for training but uses predicted masks for the test images — the deployment setting, where only a
segmentation model's output exists — taken from ``model_kwargs["predicted_masks"]``: best, a
segmentation method's folder in the same results folder (``--set
model_kwargs.predicted_masks=RESULTS/mtl_resunet``): each fold then reads that method's
``fold_K_masks.npz``, whose images must be exactly this fold's test images, so the masks are
checked to be out of fold; or a path to an ``.npz`` with ``ids`` (str) and ``masks`` ((N, H, W)
in {0, 1}), or, from Python, a {id: mask} mapping or a callable ``ids -> (n, H, W) masks`` — these
cannot be checked: they must hold out-of-fold predictions (each image predicted by the model of
the fold that tests it).

Empty masks (normal images in three-class mode; a predicted mask that found nothing): features of
a central box, flagged by ``mask_empty`` (see ``moon_features_extract``). With ground-truth masks
in three-class mode an empty mask *is* the "normal" label, so that class is trivially separable —
an inherent property of classifying from the true outline, stated with its three-class results.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mtl_bench.config import RunConfig
from mtl_bench.data.types import Dataset, DataWarning
from mtl_bench.fit import FoldRun
from mtl_bench.progress import log
from mtl_bench.registry import register_model

MASK_SOURCES = ("ground_truth", "predicted")
CLASSIFIERS = ("logreg", "svc")
DEFAULTS: dict[str, Any] = {
    "classifiers": CLASSIFIERS,
    "C_grid": (0.01, 0.1, 1.0, 10.0, 100.0),
    "inner_folds": 5,
    "mask_source": "ground_truth",
    "predicted_masks": None,
}


def moon_settings(cfg: RunConfig) -> dict[str, Any]:
    """``DEFAULTS`` updated by ``cfg.model_kwargs``; a bad key or value is a one-line ValueError."""
    unknown = sorted(set(cfg.model_kwargs) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f"moon_features does not take model_kwargs {', '.join(unknown)}; "
            f"it takes {', '.join(DEFAULTS)}"
        )
    s = {**DEFAULTS, **cfg.model_kwargs}
    clfs = (s["classifiers"],) if isinstance(s["classifiers"], str) else tuple(s["classifiers"])
    if not clfs or set(clfs) - set(CLASSIFIERS):
        raise ValueError(f"moon_features classifiers must be among {CLASSIFIERS}, got {clfs}")
    grid = (s["C_grid"],) if isinstance(s["C_grid"], int | float) else tuple(s["C_grid"])
    if not grid or any(
        isinstance(c, bool) or not isinstance(c, int | float) or c <= 0 for c in grid
    ):
        raise ValueError(f"moon_features C_grid must be positive numbers, got {s['C_grid']!r}")
    k = s["inner_folds"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"moon_features inner_folds must be an integer >= 2, got {k!r}")
    if s["mask_source"] not in MASK_SOURCES:
        raise ValueError(
            f"moon_features mask_source must be one of {MASK_SOURCES}, got {s['mask_source']!r}"
        )
    if s["mask_source"] == "predicted" and s["predicted_masks"] is None:
        raise ValueError(
            "moon_features mask_source='predicted' needs model_kwargs.predicted_masks "
            "(a segmentation method's results folder, an .npz of ids and masks, a {id: mask} "
            "mapping or a callable)"
        )
    if cfg.class_set == "three_class" and s["mask_source"] == "ground_truth":
        # Said, not refused: the binary row's ground-truth outline is the paper's protocol too.
        warnings.warn(
            "moon_features on ground-truth masks with class_set=three_class: a normal image's "
            "mask is empty, which gives its class away (set model_kwargs.mask_source=predicted "
            "to classify from a segmentation model's masks)",
            DataWarning,
            stacklevel=2,
        )
    if cfg.class_weights not in ("inverse_frequency", "none"):
        raise ValueError(
            f"class_weights must be inverse_frequency or none, got {cfg.class_weights!r}"
        )
    return {**s, "classifiers": clfs, "C_grid": tuple(float(c) for c in grid)}


def fit_moon(
    cfg: RunConfig,
    dataset: Dataset,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    *,
    fold: int = 0,
    quiet: bool = False,
    groups: np.ndarray | None = None,
) -> FoldRun:
    """Features, inner-CV model selection on ``train_idx``, class probabilities on ``test_idx``.

    ``groups`` (a duplicate-group id per dataset image, as ``fit_fold`` gets them): the inner
    folds keep each group together, so a near duplicate never scores the C chosen on its twin;
    without shared groups the split is the plain stratified one (the same folds as before).
    """
    import sklearn
    from threadpoolctl import threadpool_limits

    from baselines.moon_features_extract import FEATURE_NAMES, extract_all, predicted_masks
    from baselines.moon_features_search import inner_searches, n_fitted
    from mtl_bench.pred_masks import out_of_fold_masks

    t0 = time.perf_counter()
    settings = moon_settings(cfg)
    n_classes = len(dataset.class_names)
    test_masks = dataset.masks[test_idx]
    if settings["mask_source"] == "predicted":
        ids = [dataset.ids[i] for i in test_idx]
        source = settings["predicted_masks"]
        if isinstance(source, str | os.PathLike) and Path(source).is_dir():
            source = out_of_fold_masks(source, fold, ids)  # a method's folder: checked
        test_masks = predicted_masks(source, ids, dataset.image_size)
    x_train = extract_all(dataset.images[train_idx], dataset.masks[train_idx])
    x_test = extract_all(dataset.images[test_idx], test_masks)
    y_train = dataset.labels[train_idx].astype(np.int64)
    g_train = None if groups is None else np.asarray(groups)[train_idx]
    grouped = g_train is not None and len(np.unique(g_train)) < len(g_train)
    g_train = g_train if grouped else None
    searches = inner_searches(settings, y_train, tuple(dataset.class_names), cfg, fold, g_train)
    # A 600 × 48 problem gains nothing from BLAS threads, and on a busy CPU they oversubscribe
    # the cores (measured: 8 s vs 1.6 s per fold on 2 shared cores), so fit single-threaded.
    # Metadata routing hands the groups to the SVM's Platt split as well as to the inner folds.
    with threadpool_limits(limits=1), sklearn.config_context(enable_metadata_routing=True):
        for search in searches.values():
            search.fit(x_train, y_train, **({"groups": g_train} if grouped else {}))
    # The best inner AUC; on a tie the first family (logreg), as one grid over both would pick.
    name = max(searches, key=lambda n: searches[n].best_score_)
    search = searches[name]
    train_s = time.perf_counter() - t0
    proba = search.predict_proba(x_test)
    prob = np.zeros((len(test_idx), n_classes))
    prob[:, search.classes_] = proba  # columns in label order, whatever sklearn's order
    c_value = search.best_params_["clf__C"]
    log(
        f"moon_features fold {fold}: {len(FEATURE_NAMES)} features, {name} C={c_value:g} "
        f"(inner AUC {search.best_score_:.3f}), masks: {settings['mask_source']}",
        quiet=quiet,
    )
    return FoldRun(
        tasks=("label",),
        test_eval={"prob": prob},
        curve=[],
        wall_time_s=time.perf_counter() - t0,
        train_img_per_s=len(train_idx) / train_s,
        epochs_run=0,  # not trained by gradient descent: no epochs
        params=n_fitted(search.best_estimator_),
        extras={
            "selected_classifier": name,
            "selected_C": float(c_value),
            "inner_cv_auc": float(search.best_score_),
            "inner_folds": int(search.n_splits_),
            "inner_folds_grouped": bool(grouped),
            "n_features": len(FEATURE_NAMES),
            "mask_source": settings["mask_source"],
            "n_empty_test_masks": int(
                (test_masks.reshape(len(test_idx), -1).max(axis=1) == 0).sum()
            ),
        },
    )


@register_model(
    "moon_features", tasks=("label",), family="classification", fit=fit_moon, check=moon_settings
)
def build_moon_features(*, rngs: Any = None, **kwargs: Any):
    """Not a network: there is no forward pass to build; ``fit_fold`` calls ``fit_moon``."""
    raise ValueError(
        "moon_features is a scikit-learn feature classifier without a forward pass: "
        "train and test it with `mtl-bench cv --model moon_features` (its own fit), "
        "not create_model"
    )
