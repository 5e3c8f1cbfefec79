"""Run by tests/test_multiprocess.py: one tiny training run, printed as JSON.

``multiprocess_train.py single`` trains on this process's devices; ``multiprocess_train.py
PORT PID CKPT`` joins a 2-process group on 127.0.0.1:PORT first, saves a checkpoint every epoch
into CKPT (orbax's multi-process save, with the arrays' checksums computed across both
processes) and then resumes the finished fold from it (restored and checked on both). Both use
parallel=jit with one global batch, so the losses must agree.
"""

import json
import sys

import numpy as np

from mtl_bench.distributed import init_distributed


def main() -> None:
    if sys.argv[1] != "single":
        init_distributed(f"127.0.0.1:{sys.argv[1]}", 2, int(sys.argv[2]))
    import jax

    from mtl_bench.config import RunConfig
    from mtl_bench.data.phantom import synth_phantom
    from mtl_bench.fit import fit_fold
    from mtl_bench.pred_masks import predicted_masks

    ds = synth_phantom(24, image_size=32, seed=4, class_set="binary")
    idx = np.random.default_rng(0).permutation(len(ds))
    cfg = RunConfig(
        model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16, "dropout": 0.0},
        image_size=32, epochs=2, batch_size=8, lr=3e-3, lr_decay_every=0, preprocess="none",
        checkpoint_every=0, eval_batch_size=8, parallel="jit",
    )  # fmt: skip
    test = np.sort(idx[16:])
    ckpt = sys.argv[3] if len(sys.argv) > 3 else None
    if ckpt:
        cfg.checkpoint_every = 1
    run = fit_fold(cfg, ds, np.sort(idx[:16]), test, quiet=True, keep_state=True, ckpt_dir=ckpt)
    # As cv saves them for the overlay figure: from a state that spans both processes.
    masks = predicted_masks(run.engine, run.state, ds.images[test], cfg.eval_batch_size)
    out = {
        "devices": len(jax.devices()),
        "processes": jax.process_count(),
        "loss": [r["loss"] for r in run.curve],
        "prob": run.test_eval["prob"].tolist(),
        "mask_pixels": masks.sum(axis=(1, 2)).tolist(),
    }
    if ckpt:  # the finished fold again, from its checkpoint: no epoch trained, the same test
        again = fit_fold(cfg, ds, np.sort(idx[:16]), test, quiet=True, ckpt_dir=ckpt, resume=True)
        out["resumed_prob"] = again.test_eval["prob"].tolist()
        out["resumed_after_epoch"] = again.extras["resumed_after_epoch"]
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
