"""Shared by tests/test_train*.py: a tiny training config, its phantom data and a train/test
split."""

import numpy as np

from mtl_bench.config import RunConfig
from mtl_bench.data.phantom import synth_phantom

TINY = RunConfig(
    model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16},
    synthetic_n=24,
    image_size=32,
    folds=2,
    epochs=2,
    batch_size=8,
    lr=3e-3,
    lr_decay_every=0,
    preprocess="none",
    checkpoint_every=1,
    eval_batch_size=8,
)


def tiny_data():
    """24 binary phantom images at 32²."""
    return synth_phantom(24, image_size=32, seed=3, class_set="binary")


def split(n: int) -> tuple[np.ndarray, np.ndarray]:
    # The phantom is ordered by class: shuffle so both classes are in train and test.
    idx = np.random.default_rng(0).permutation(n)
    return np.sort(idx[: n - 8]), np.sort(idx[n - 8 :])
