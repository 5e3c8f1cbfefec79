"""Shared presets: the paper protocol, a one-hour CPU protocol on the phantom, and a smoke test.

- ``paper``: the paper's settings — 256², 5 folds, Adam lr 1e-4 ×0.1 every 20 epochs, batch 16,
  500 epochs, MPGHE, Dice + weighted focal loss. Cost: 5 × 500 epochs × ~518 images: for the
  proposed model about 18 minutes of training on one H100; the whole loop (compile, checkpoints,
  evaluation) 20.1 minutes on one H200, 18.0 with ``checkpoint_every=50`` (README, "The paper
  preset on GPUs"); not a CPU job.
- ``phantom``: the same protocol shortened for a 2-core CPU on the phantom (647 benign and
  malignant images; 780 with normal) at 64² with narrow widths — an end-to-end check that
  training works, not a paper number.
- ``smoke``: tiny (64², 2 folds, a few epochs) — the whole CV + tables in minutes on 2 cores.
"""

from __future__ import annotations

from mtl_bench.config import RunConfig


def get_config(preset: str) -> RunConfig:
    if preset == "paper":
        return RunConfig()
    if preset == "phantom":
        return RunConfig(
            synthetic_n=None,
            image_size=64,
            folds=5,
            epochs=30,
            lr=1e-3,
            lr_decay_every=10,
            lr_decay_factor=0.3,
            checkpoint_every=5,
        )
    if preset == "smoke":
        return RunConfig(
            synthetic_n=96,
            image_size=64,
            folds=2,
            epochs=3,
            lr=1e-3,
            lr_decay_every=0,
            checkpoint_every=0,
            eval_batch_size=32,
        )
    raise ValueError(f"unknown preset {preset!r}")
