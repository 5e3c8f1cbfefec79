"""The output contract (``mtl_bench.contract``): a model that breaks it is refused by name before
its fold trains, not after (a missing task trained on the other loss alone)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mtl_bench import registry
from mtl_bench.config import RunConfig
from mtl_bench.data.phantom import synth_phantom
from mtl_bench.fit import fit_fold


class _Net(nnx.Module):
    def __init__(self, rngs, out):
        self.conv = nnx.Conv(1, 1, (3, 3), rngs=rngs)
        self.out = out

    def __call__(self, x, train=False, rng=None):
        m = self.conv(x)
        return self.out(m, jnp.zeros((x.shape[0], 2)) + m.mean())


class _NoTrainArg(_Net):
    def __call__(self, x):
        return {"mask": self.conv(x), "label": jnp.zeros((x.shape[0], 2))}


CASES = {  # name: (tasks, outputs from (mask, label), class, the error's pattern)
    "no_label": (
        ("mask", "label"), lambda m, y: {"mask": m}, None,
        r"no_label in training is registered with tasks \('mask', 'label'\) but returned no "
        r"'label' \(keys: 'mask'\)",
    ),
    "array": (
        ("mask",), lambda m, y: m, None,
        r"array in training returned \w+, not a dict \{'mask': \(N, H, W, 1\)\}",
    ),
    "mask_3d": (
        ("mask",), lambda m, y: {"mask": m[..., 0]}, None,
        r"mask_3d in training returned 'mask' of shape \(2, 32, 32\); the contract is "
        r"\(N, H, W, 1\)",
    ),
    "label_3": (
        ("label",), lambda m, y: {"label": jnp.zeros((m.shape[0], 3))}, None,
        r"label_3 in training returned 'label' of shape \(2, 3\); the contract is "
        r"\(N, classes\), here \(2, 2\)",
    ),
    "no_train": (
        ("mask", "label"), None, _NoTrainArg,
        r"no_train: its __call__ must take \(x, train=\.\.\., rng=\.\.\.\)",
    ),
}  # fmt: skip


@pytest.fixture()
def bad_models(monkeypatch):
    registry.list_models()  # loaded first: the copy restored afterwards holds the built-in ones
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    for name, (tasks, out, cls, _) in CASES.items():

        def build(*, rngs, in_channels=1, num_classes=2, image_size=None, out=out, cls=cls):
            return (cls or _Net)(rngs, out)

        registry.register_model(name, tasks=tasks, family="segmentation")(build)


@pytest.mark.parametrize("name", CASES)
def test_a_model_breaking_the_contract_is_named_before_it_trains(name, bad_models):
    ds = synth_phantom(16, image_size=32, seed=0, class_set="binary")
    cfg = RunConfig(model=name, epochs=1, image_size=32, preprocess="none", batch_size=8)
    with pytest.raises(ValueError, match=CASES[name][3]):
        fit_fold(cfg, ds, np.arange(12), np.arange(12, 16), quiet=True)


def test_every_registered_model_keeps_it():
    from mtl_bench.contract import check_outputs
    from mtl_bench.fit import build_model

    # The built-in ones at their smallest size; a failure names the model and what it broke.
    for name in ("mtl_resunet", "unet", "daf", "mobilenet"):
        size = 32 if name != "daf" else 64
        model = build_model(RunConfig(model=name, image_size=size), 2)
        check_outputs(model, name, registry.model_info(name).tasks, size, 2)
