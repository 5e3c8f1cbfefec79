"""DAF — Deep Attentive Features (Wang et al., IEEE TMI 2019), adapted to 2D (Tables 3, 4).

    mtl-bench cv --model daf --preset paper --data PATH/Dataset_BUSI_with_GT \
        --set model_kwargs.encoder_weights=PATH/resnet34.pth   # ImageNet encoder, local file
    mtl-bench cv --model daf --preset phantom
    mtl-bench cv --model daf --preset smoke

Recipe: Adam, lr 1e-3, batch 8, 100 epochs, lr ×0.1 after 50. Adam at 1e-3 is the public DAF code's
(wulalago/DAF3D ``Train.py``: Adam 1e-3, batch 1 volume, 20 epochs of 3D TRUS); 2D images carry far
fewer voxels each, hence batch 8 and the other baselines' 100 epochs. Loss: Dice on the final mask
plus the reference's weighted deep-supervision terms, each a Dice loss here (the reference adds BCE
to each term; see ``baselines/daf.py`` and ``losses.joint_loss``). The paper's own values (its
Table 3) are missing from our copy of its text.

Cost: smoke 278 s for 2 folds × 2 epochs (measured on 2 CPU cores shared with other jobs, load ~9,
so an idle machine is faster; first run, compilation included). Phantom: ~78 k training images (5
folds × 30 epochs × ~520 at 64²): at the smoke's 1.45 img/s on those loaded cores, ~15 h — a GPU
job in practice, or shorten it (``--set epochs=N``). Paper: 5 folds × 100 epochs × ~520 images at
256², a GPU job (see the benchmark).
"""

from __future__ import annotations

from mtl_bench.config import RunConfig
from mtl_bench.configs._baselines import Recipe, recipe_config

RECIPE = Recipe(optimizer="adam", lr=1e-3, batch_size=8, epochs=100, lr_decay_every=50)


def get_config(preset: str) -> RunConfig:
    """``daf`` under ``preset`` (smoke | phantom | paper)."""
    return recipe_config(preset, RECIPE)
