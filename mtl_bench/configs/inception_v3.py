"""Inception-v3 (torchvision layout), ImageNet transfer learning, n_units = 2 (Table 7).

    mtl-bench weights import --arch inception_v3 --file PATH/inception_v3.pth \
        --out weights/inception_v3
    mtl-bench cv --model inception_v3 --preset paper --data PATH/Dataset_BUSI_with_GT \
        --set model_kwargs.weights=weights/inception_v3
    mtl-bench cv --model inception_v3 --preset paper --data PATH/Dataset_BUSI_with_GT \
        --set model_kwargs.weights=weights/inception_v3 \
        --set class_set=three_class --tag 3class --out results/busi_3class
    mtl-bench cv --model inception_v3 --preset smoke

Recipe: ``FINE_TUNE_RECIPE`` — Adam, lr 1e-4, batch 16, 50 epochs, lr ×0.1 after 25, softmax
cross-entropy without class weights — the usual fine-tuning settings of ImageNet networks; the
paper's own values are missing from our copy of its text. Input 299² (the network's native size)
for ``paper``, 75² on the CPU presets (75², the smallest input its stride-2 valid convolutions
accept). Without ``weights`` it trains from scratch and says so (``from_scratch: true`` in the
result file). Three-class runs (benign / malignant / normal) need their own results folder: the
binary fold manifest has no normal images.

Cost: smoke 146 s for 2 folds × 2 epochs at 75² (measured on 2 CPU cores shared with other jobs,
load ~6-9, so an idle machine is faster; first run, compilation included; 17 training img/s).
Phantom: ~78 k training images (5 folds × 30 epochs × ~520 at 75²), ~1.3 h at that rate — a GPU job
in practice, or shorten it (``--set epochs=N``). Paper: 5 folds × 50 epochs × ~520 images at 299²,
a GPU job.
"""

from __future__ import annotations

from mtl_bench.config import RunConfig
from mtl_bench.configs._baselines import FINE_TUNE_RECIPE, recipe_config


def get_config(preset: str) -> RunConfig:
    """``inception_v3`` under ``preset`` (smoke | phantom | paper)."""
    return recipe_config(preset, FINE_TUNE_RECIPE, paper_image_size=299, cpu_image_size=75)
