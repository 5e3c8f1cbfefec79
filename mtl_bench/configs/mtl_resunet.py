"""The proposed multi-task Residual-U-Net.

    mtl-bench cv --model mtl_resunet --preset paper     # the paper: 256², 5 folds × 500 epochs
                                                        # (with --precision bf16: ~17 min of
                                                        # training on one H100, results/README)
    mtl-bench cv --model mtl_resunet --preset phantom   # 64², 5 folds × 30 epochs: ~13 min on
                                                        # 2 CPU cores (761 s at 3cd0273)
    mtl-bench cv --model mtl_resunet --preset smoke     # ~1-2 min on 2 CPU cores

``paper`` uses the full widths (64…1024, 14.2 M parameters); the CPU presets use narrow widths
(8…128 for smoke, 16…256 for phantom) because a 2-core CPU cannot train the full model in time.
"""

from __future__ import annotations

import dataclasses

from mtl_bench.config import RunConfig
from mtl_bench.configs import default


def get_config(preset: str) -> RunConfig:
    cfg = default.get_config(preset)
    widths = {"smoke": (8, 16, 32, 64, 128), "phantom": (16, 32, 64, 128, 256)}.get(preset)
    if widths is not None:
        cfg = dataclasses.replace(cfg, model_kwargs={"widths": widths})
    return cfg
