"""Run by tests/test_parallel.py in a subprocess with 8 forced host devices.

Trains the same tiny model with parallel=none, jit and pmap at one global batch and prints the
per-step losses and test-set outputs of each as JSON.
"""

import dataclasses
import json
import sys

import numpy as np

from mtl_bench.config import RunConfig
from mtl_bench.data.phantom import synth_phantom
from mtl_bench.fit import fit_fold


def main() -> None:
    strategies = sys.argv[1].split(",")
    extra = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    ds = synth_phantom(40, image_size=32, seed=1, class_set="binary")
    idx = np.random.default_rng(0).permutation(len(ds))
    train, test = np.sort(idx[:30]), np.sort(idx[30:])  # 30 = 3 full batches + 6 padded
    base = RunConfig(
        model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16, "dropout": 0.0},
        image_size=32,
        epochs=2,
        batch_size=8,
        lr=3e-3,
        lr_decay_every=0,
        preprocess="none",
        checkpoint_every=0,
        eval_batch_size=8,
    )
    base = dataclasses.replace(base, **extra)
    out = {}
    for strategy in strategies:
        cfg = dataclasses.replace(base, parallel=strategy, devices=4 if strategy != "none" else 0)
        run = fit_fold(cfg, ds, train, test, quiet=True)
        out[strategy] = {
            "loss": [r["loss"] for r in run.curve],
            "prob": run.test_eval["prob"].tolist(),
            "counts": run.test_eval["counts"].tolist(),
            "devices_used": run.extras["devices_used"],
        }
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
