"""Moon et al.'s feature-based classifier (``baselines/moon_features.py``), Tables 5 and 6.

    mtl-bench cv --model moon_features --preset paper --data PATH/Dataset_BUSI_with_GT
    mtl-bench cv --model moon_features --preset phantom
    mtl-bench cv --model moon_features --preset smoke
    mtl-bench cv --model moon_features --preset paper --data PATH/Dataset_BUSI_with_GT \
        --out results/busi --set model_kwargs.mask_source=predicted \
        --set model_kwargs.predicted_masks=results/busi/mtl_resunet --tag predmask

Not trained by gradient descent: 48 texture / intensity / morphology features per lesion, then
standardise + logistic regression or RBF SVM, the classifier and C ∈ {0.01, 0.1, 1, 10, 100} chosen
by 5-fold stratified inner cross-validation on the training fold (ROC AUC; by near-duplicate group
where the training fold has any, as is the SVM's Platt calibration split). Those are its
hyper-parameters (``model_kwargs``, printed in Table 5); the optimiser fields of the config are
unused, and ``epochs`` is 0 because no epoch is run. Masks: the ground truth, as the original (which
classified the radiologist's outline), so Table 6 notes that its row saw the true outline of each
test image; ``mask_source=predicted`` takes the test masks from a segmentation method's folder on
the same folds (the last command, after ``mtl_resunet``'s cv: its ``fold_K_masks.npz``, checked to
be out of fold; the row ``moon_features@predmask`` appears after ``moon_features`` in Tables 5 and
6) or an ``.npz`` of out-of-fold predictions (ids, masks). Images are not pre-processed
(``preprocess`` "none"): Moon et al. computed intensity and posterior-acoustic features on the
B-mode image itself, which histogram equalisation would reshape; ``--set preprocess=mpghe`` gives it
the proposed model's input instead. Inverse-frequency class weights (``class_weight="balanced"``),
the proposed model's imbalance policy.

Cost (measured on 2 CPU cores shared with other jobs, load ~5-9): smoke 7 s (2 folds of the
96-image phantom); phantom 110 s (5 folds, 647 images, phantom generation included; ~10-17 s per
fold, mostly the inner grid search). Feature extraction takes ~10 ms per 64² image and ~20 ms per
256² image, so the paper preset runs in minutes on a CPU and needs no accelerator.
"""

from __future__ import annotations

import dataclasses

from mtl_bench.config import RunConfig
from mtl_bench.configs import default

MODEL_KWARGS = {
    "classifiers": ("logreg", "svc"),
    "C_grid": (0.01, 0.1, 1.0, 10.0, 100.0),
    "inner_folds": 5,
    "mask_source": "ground_truth",
}


def get_config(preset: str) -> RunConfig:
    """``moon_features`` under ``preset``: the shared data and folds, its own settings."""
    base = default.get_config(preset)
    return dataclasses.replace(
        base,
        preprocess="none",
        epochs=0,
        class_weights="inverse_frequency",
        checkpoint_every=0,
        model_kwargs=dict(MODEL_KWARGS),
    )
