"""Ronneberger et al.'s U-Net (64 base channels, 4 down / 4 up), as the paper cites it.

    mtl-bench cv --model unet --preset paper --data PATH/Dataset_BUSI_with_GT
    mtl-bench cv --model unet --preset phantom
    mtl-bench cv --model unet --preset smoke

Recipe: Adam, lr 1e-4, batch 8, 100 epochs, lr ×0.1 after 50, Dice loss — the settings of the
widely used Keras U-Net (zhixuhao/unet: Adam 1e-4) at the batch size of the other baselines.
Ronneberger et al.'s own (SGD, momentum 0.99, batch 1) is not reproducible here: the engine's
SGD has momentum 0.9. No ImageNet encoder exists for this network: always from scratch. The
CPU presets build it with 16 base channels instead of 64 (a 2-core CPU cannot train the 31 M
parameter network in time); ``paper`` builds the original 64.

Cost: smoke 68 s for 2 folds × 2 epochs (measured on 2 CPU cores shared with other jobs, load ~9,
so an idle machine is faster; first run, compilation included). Phantom: ~78 k training images (5
folds × 30 epochs × ~520 at 64²): at the smoke's 19.7 img/s on those loaded cores, ~1.1 h —
feasible on a CPU. Paper: 5 folds × 100 epochs × ~520 images at 256², a GPU job (see the
benchmark).
"""

from __future__ import annotations

from mtl_bench.config import RunConfig
from mtl_bench.configs._baselines import Recipe, recipe_config

RECIPE = Recipe(optimizer="adam", lr=1e-4, batch_size=8, epochs=100, lr_decay_every=50)


def get_config(preset: str) -> RunConfig:
    """``unet`` under ``preset`` (smoke | phantom | paper)."""
    return recipe_config(preset, RECIPE, cpu_model_kwargs={"base_width": 16})
