"""DeepLabV3+, ResNet-34 encoder: smp ``DeepLabV3Plus("resnet34")`` in Flax (Tables 3, 4).

    mtl-bench cv --model deeplabv3plus_resnet34 --preset paper --data PATH/Dataset_BUSI_with_GT \
        --set model_kwargs.encoder_weights=PATH/resnet34.pth   # ImageNet encoder, local file
    mtl-bench cv --model deeplabv3plus_resnet34 --preset phantom
    mtl-bench cv --model deeplabv3plus_resnet34 --preset smoke

Recipe: ``SMP_RECIPE`` — Adam, lr 1e-4, batch 8, 100 epochs, lr ×0.1 after 50: the settings
of the examples of segmentation_models (qubvel's Keras and PyTorch libraries, the public
implementations of these encoder-decoder networks with ImageNet encoders). The paper's own
values (its Table 3) are missing from our copy of its text. Dice loss on the mask.
Without ``encoder_weights`` the encoder trains from scratch (``from_scratch: true``).
DeepLabV3+'s own recipe (SGD with a poly schedule from 0.007, batch 16, for ImageNet-scale
data) is not used: the engine has staircase decay only, and one recipe keeps the four
encoder-decoder baselines comparable.

Cost: smoke 131 s for 2 folds × 2 epochs (measured on 2 CPU cores shared with other jobs, load ~9,
so an idle machine is faster; first run, compilation included). Phantom: ~78 k training images (5
folds × 30 epochs × ~520 at 64²): at the smoke's 5.4 img/s on those loaded cores, ~4 h — a GPU job
in practice, or shorten it (``--set epochs=N``). Paper: 5 folds × 100 epochs × ~520 images at 256²,
a GPU job (see the benchmark).
"""

from __future__ import annotations

from mtl_bench.config import RunConfig
from mtl_bench.configs._baselines import SMP_RECIPE, recipe_config


def get_config(preset: str) -> RunConfig:
    """``deeplabv3plus_resnet34`` under ``preset`` (smoke | phantom | paper)."""
    return recipe_config(preset, SMP_RECIPE)
