"""Hijab et al.'s fine-tuned VGG16 (the paper's ref. 34), Tables 5 and 6.

    mtl-bench weights import --arch vgg16 --file PATH/vgg16.pth --out weights/vgg16
    mtl-bench cv --model hijab_vgg16 --preset paper --data PATH/Dataset_BUSI_with_GT \
        --set model_kwargs.weights=weights/vgg16
    mtl-bench cv --model hijab_vgg16 --preset smoke

Hijab, Rushaidat and AlZubaidi (2019), "Breast cancer classification in ultrasound images using
transfer learning" (ICABME), fine-tune an ImageNet VGG16 on breast ultrasound with image
augmentation against over-fitting (the paper under reproduction quotes 97 % accuracy). The model
is the ``vgg16`` classifier (torchvision layout, last dense layer with 2 units) at 224²; this
config supplies their training style. Their optimiser settings were not available to us, so we
assume the standard Keras VGG16 fine-tuning recipe of that period (Chollet, "Building powerful
image classification models using very little data", 2016): SGD with momentum 0.9 (the engine's
SGD momentum) at lr 1e-4, constant, batch 16, softmax cross-entropy, 50 epochs like the other
transfer-learned networks. Augmentation: the paper under reproduction trained every compared
method with horizontal and vertical flips and ±30° rotations, which we keep here too. Replace any
of these with ``--set`` where Hijab et al.'s text says otherwise; the result file records what
ran and Table 5 prints it.

Cost: smoke 138 s for 2 folds × 2 epochs at 64² (measured on 2 CPU cores shared with other jobs,
load ~6-9, so an idle machine is faster; first run, compilation included; 3.4 training img/s).
Phantom: ~78 k training images (5 folds × 30 epochs × ~520 at 64²), ~6 h at that rate — a GPU job
in practice, or shorten it (``--set epochs=N``). Paper: 5 folds × 50 epochs × ~520 images at 224²,
a GPU job. VGG16 costs ~15.5 GFLOPs per 224² image forward.
"""

from __future__ import annotations

from mtl_bench.config import RunConfig
from mtl_bench.configs._baselines import Recipe, recipe_config

RECIPE = Recipe(
    optimizer="sgd",
    lr=1e-4,
    batch_size=16,
    epochs=50,
    focal_gamma=0.0,
    class_weights="none",
)


def get_config(preset: str) -> RunConfig:
    """``hijab_vgg16`` under ``preset`` (smoke | phantom | paper)."""
    return recipe_config(preset, RECIPE, paper_image_size=224, cpu_image_size=64)
