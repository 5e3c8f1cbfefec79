"""How a baseline's training recipe becomes a ``RunConfig`` for each preset (shared by the
baselines' config modules; the leading underscore keeps it from being taken for a method name).

The paper tuned batch size, optimiser and learning rate per method (its Tables 3 and 5), but those
numbers are missing from our copy of its text. Each baseline's module therefore states a
``Recipe`` taken from the method's public implementation or the library its users trust, with the
source in its docstring; the tables print what was recorded in each run's result file.

Rules, the same for every baseline:

- Data, folds and fold seed come from ``default.get_config(preset)`` — the proposed model's — so
  all methods of a results folder share one fold manifest (the tables refuse to compare
  otherwise). Augmentation too: the paper trained every method with flips and ±30° rotations.
- ``paper``: the recipe as stated, at the paper's 256² (segmentation) or the network's native
  input size (classifiers: 224², 299² for the Inception family).
- ``phantom`` (the 780-image phantom at 64²): the recipe's optimiser, batch size and learning
  rate, for ``PHANTOM_EPOCHS`` epochs with the decay schedule compressed in proportion. Each
  module states its cost: the ResNet-34 networks take many hours of a 2-core CPU (see there).
- ``smoke`` (CPU, minutes): the same, for ``SMOKE_EPOCHS`` epochs at a constant rate — it checks
  that the method runs end to end, not how well it learns.
- ``cpu_model_kwargs`` (smoke/phantom only) shrink a network whose full width a 2-core CPU cannot
  train in time (e.g. Ronneberger's U-Net at 16 instead of 64 base channels); ``paper`` always
  builds the full network.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mtl_bench.config import RunConfig
from mtl_bench.configs import default

SMOKE_EPOCHS = 2  # one epoch compiles, the second gives a compile-free img/s
PHANTOM_EPOCHS = 30
CPU_IMAGE_SIZE = 64  # smoke and phantom: the phantom at 64², as the proposed model's CPU presets


@dataclass(frozen=True)
class Recipe:
    """A method's training settings at full scale (the ``paper`` preset)."""

    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    lr_decay_every: int = 0  # epochs; 0 = constant rate
    lr_decay_factor: float = 0.1
    weight_decay: float = 0.0
    # Classification loss: the engine's weighted focal loss; gamma 0 without class weights is the
    # plain softmax cross-entropy that transfer-learning recipes use.
    focal_gamma: float = 2.0
    class_weights: str = "inverse_frequency"
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"recipe optimizer must be adam, adamw or sgd, got {self.optimizer!r}")
        if self.lr <= 0 or self.batch_size < 1 or self.epochs < 1 or self.lr_decay_every < 0:
            raise ValueError(f"recipe values out of range: {self}")


def _schedule(recipe: Recipe, epochs: int) -> tuple[int, float]:
    """(lr_decay_every, lr_decay_factor) for a run of ``epochs`` instead of ``recipe.epochs``."""
    if recipe.lr_decay_every == 0 or epochs == recipe.epochs:
        return recipe.lr_decay_every, recipe.lr_decay_factor
    every = max(1, round(recipe.lr_decay_every * epochs / recipe.epochs))
    return every, recipe.lr_decay_factor


def recipe_config(
    preset: str,
    recipe: Recipe,
    *,
    paper_image_size: int = 256,
    cpu_image_size: int = CPU_IMAGE_SIZE,
    cpu_model_kwargs: dict[str, Any] | None = None,
) -> RunConfig:
    """The ``RunConfig`` of a baseline trained by ``recipe`` under ``preset`` (rules above)."""
    base = default.get_config(preset)
    if preset == "paper":
        epochs, size, kwargs = recipe.epochs, paper_image_size, dict(recipe.model_kwargs)
    else:
        epochs = SMOKE_EPOCHS if preset == "smoke" else PHANTOM_EPOCHS
        size = cpu_image_size
        kwargs = {**recipe.model_kwargs, **(cpu_model_kwargs or {})}
    every, factor = _schedule(recipe, epochs)
    if preset == "smoke":
        every = 0
    return dataclasses.replace(
        base,
        image_size=size,
        optimizer=recipe.optimizer,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        epochs=epochs,
        lr_decay_every=every,
        lr_decay_factor=factor,
        weight_decay=recipe.weight_decay,
        focal_gamma=recipe.focal_gamma,
        class_weights=recipe.class_weights,
        model_kwargs=kwargs,
    )


# Segmentation baselines built on ImageNet-style encoders (smp's convention): Adam at 1e-4 as in
# segmentation_models(.pytorch)'s examples, which also drop the rate ×0.1 late in training.
SMP_RECIPE = Recipe(optimizer="adam", lr=1e-4, batch_size=8, epochs=100, lr_decay_every=50)

# Transfer-learned ImageNet classifiers (Table 7): fine-tuning with Adam at 1e-4 — the usual
# Keras/torchvision fine-tuning rate, ten times below a from-scratch rate so the pretrained
# filters are adapted, not overwritten — cross-entropy loss, the rate ×0.1 at half-time.
FINE_TUNE_RECIPE = Recipe(
    optimizer="adam",
    lr=1e-4,
    batch_size=16,
    epochs=50,
    lr_decay_every=25,
    focal_gamma=0.0,
    class_weights="none",
)
