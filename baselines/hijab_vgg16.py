"""``hijab_vgg16``: Hijab et al.'s fine-tuned VGG16 (the paper's ref. 34) — a registry alias.

Hijab, Rushaidat and AlZubaidi (2019), "Breast cancer classification in ultrasound images using
transfer learning", fine-tune an ImageNet-trained VGG16 for benign vs malignant, with image
augmentation against over-fitting. Their network is torchvision's VGG16 with a 2-unit last layer —
exactly the ``vgg16`` classifier of ``baselines.classifiers.vgg`` — so this name registers that
same builder (same defaults: 224² input, ``weights`` for the ImageNet checkpoint). What makes it
Hijab et al.'s method is the training recipe, which lives in ``mtl_bench/configs/hijab_vgg16.py``
(SGD with momentum, a small constant learning rate, augmentation; the sources and assumptions are
stated there). A separate registered name keeps its results in their own folder, so Table 6 shows
it beside, not instead of, a ``vgg16`` run with the generic fine-tuning recipe.
"""

from __future__ import annotations

from baselines.classifiers.vgg import vgg16
from mtl_bench.registry import register_model

NAME = "hijab_vgg16"
NATIVE_SIZE = 224  # VGG16's ImageNet input, as Hijab et al. fed it

register_model(NAME, tasks=("label",), family="classification", image_size=NATIVE_SIZE)(vgg16)
