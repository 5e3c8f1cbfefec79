"""VGG-16 (torchvision layout), ImageNet transfer learning, head n_units = 2.

    mtl-bench weights import --arch vgg16 --file PATH/vgg16.pth \
        --out weights/vgg16
    mtl-bench cv --model vgg16 --preset paper --data PATH/Dataset_BUSI_with_GT \
        --set model_kwargs.weights=weights/vgg16
    mtl-bench cv --model vgg16 --preset paper --data PATH/Dataset_BUSI_with_GT \
        --set model_kwargs.weights=weights/vgg16 \
        --set class_set=three_class --tag 3class --out results/busi_3class
    mtl-bench cv --model vgg16 --preset smoke

Recipe: ``FINE_TUNE_RECIPE`` — Adam, lr 1e-4, batch 16, 50 epochs, lr ×0.1 after 25, softmax
cross-entropy without class weights — the usual fine-tuning settings of ImageNet networks; the
paper's own values are missing from our copy of its text. Input 224² (the network's native size)
for ``paper``, 64² on the CPU presets. Without ``weights`` it trains from scratch and says so
(``from_scratch: true`` in the result file). Three-class runs (benign / malignant / normal) need
their own results folder: the binary fold manifest has no normal images.

Cost: smoke 140 s for 2 folds × 2 epochs at 64² (measured on 2 CPU cores shared with other jobs,
load ~6-9, so an idle machine is faster; first run, compilation included; 2.9 training img/s).
Phantom: ~78 k training images (5 folds × 30 epochs × ~520 at 64²), ~7 h at that rate — a GPU job
in practice, or shorten it (``--set epochs=N``). Paper: 5 folds × 50 epochs × ~520 images at 224²,
a GPU job.
"""

from __future__ import annotations

from mtl_bench.config import RunConfig
from mtl_bench.configs._baselines import FINE_TUNE_RECIPE, recipe_config


def get_config(preset: str) -> RunConfig:
    """``vgg16`` under ``preset`` (smoke | phantom | paper)."""
    return recipe_config(preset, FINE_TUNE_RECIPE, paper_image_size=224, cpu_image_size=64)
