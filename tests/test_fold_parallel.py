"""Fold-parallel training equals sequential training fold by fold."""

import dataclasses

import numpy as np
import pytest

from mtl_bench.config import RunConfig
from mtl_bench.data.phantom import synth_phantom
from mtl_bench.fit import fit_fold
from mtl_bench.fold_parallel import fit_folds_parallel

CFG = RunConfig(
    model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16},
    image_size=32,
    epochs=2,
    batch_size=8,
    lr=3e-3,
    lr_decay_every=1,  # the schedule must follow each fold's own epoch length
    lr_decay_factor=0.5,
    preprocess="none",
    checkpoint_every=0,
    eval_batch_size=8,
)


@pytest.mark.slow
@pytest.mark.parametrize("fold_conv", ["grouped", "unrolled"])
def test_fold_parallel_matches_sequential(fold_conv):
    cfg = dataclasses.replace(CFG, fold_conv=fold_conv)
    ds = synth_phantom(40, image_size=32, seed=2, class_set="binary")
    idx = np.random.default_rng(1).permutation(len(ds))
    # Folds of different sizes: 2 and 3 steps per epoch (the shorter one idles on the last).
    splits = [(np.sort(idx[:12]), np.sort(idx[30:])), (np.sort(idx[10:30]), np.sort(idx[:10]))]
    together = fit_folds_parallel(cfg, ds, splits, folds=[0, 1], quiet=True)
    for fold, (train, test) in enumerate(splits):
        alone = fit_fold(CFG, ds, train, test, fold=fold, quiet=True)
        got = together[fold]
        np.testing.assert_allclose(
            [r["loss"] for r in got.curve], [r["loss"] for r in alone.curve], rtol=1e-4
        )
        np.testing.assert_allclose(got.test_eval["prob"], alone.test_eval["prob"], atol=1e-4)
        diff = np.abs(got.test_eval["counts"] - alone.test_eval["counts"]).sum()
        assert diff <= 8, diff


def test_fold_parallel_rejects_unsupported_combinations():
    ds = synth_phantom(12, image_size=32, seed=2, class_set="binary")
    split = [(np.arange(8), np.arange(8, 12))]
    with pytest.raises(ValueError, match="parallel='none' only"):
        fit_folds_parallel(dataclasses.replace(CFG, parallel="jit"), ds, split, folds=[0])
    with pytest.raises(ValueError, match="val_fraction"):
        fit_folds_parallel(dataclasses.replace(CFG, val_fraction=0.2), ds, split, folds=[0])
    with pytest.raises(ValueError, match="fold_conv must be one of"):
        fit_folds_parallel(dataclasses.replace(CFG, fold_conv="dense"), ds, split, folds=[0])
    with pytest.raises(ValueError, match="state_layout='packed' applies to sequential folds"):
        fit_folds_parallel(dataclasses.replace(CFG, state_layout="packed"), ds, split, folds=[0])
