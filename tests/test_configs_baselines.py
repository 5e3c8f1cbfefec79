"""Every baseline has its own config module: each preset loads, names a registered model (skipped,
with the reason, until that model lands), shares the proposed model's data and folds, and uses
input sizes the network accepts."""

import importlib
import inspect

import pytest

from baselines.moon_features import moon_settings
from mtl_bench.config import RunConfig
from mtl_bench.configs import PRESETS, get_config
from mtl_bench.configs._baselines import PHANTOM_EPOCHS, SMOKE_EPOCHS, Recipe, recipe_config
from mtl_bench.registry import list_models, model_info

SEGMENTATION = (
    "unet_resnet34",
    "unetplusplus_resnet34",
    "fpn_resnet34",
    "deeplabv3plus_resnet34",
    "unet",
    "daf",
)
# name → input side of the paper preset (the network's native size)
CLASSIFIERS = {
    "resnet50": 224,
    "vgg16": 224,
    "vgg19": 224,
    "densenet201": 224,
    "inception_v3": 299,
    "mobilenet": 224,
    "mobilenet_v2": 224,
    "inception_resnet_v2": 299,
    "hijab_vgg16": 224,
}
ALL = (*SEGMENTATION, *CLASSIFIERS, "moon_features")
# What every method of one results folder must share with the proposed model (one fold manifest).
SHARED = ("data", "synthetic_n", "synthetic_seed", "synthetic_difficulty", "folds", "fold_seed")
SHARED += ("class_set",)


def registered(name: str):
    if name not in list_models():
        pytest.skip(f"{name} is not registered yet (its model module has not landed)")
    return model_info(name)


@pytest.mark.parametrize("name", ALL)
def test_config_module_exists_and_documents_its_command(name):
    module = importlib.import_module(f"mtl_bench.configs.{name}")  # its own, not default.py
    doc = module.__doc__ or ""
    assert f"mtl-bench cv --model {name} --preset" in doc and "Cost" in doc
    assert "{SMOKE}" not in doc  # the measured smoke cost is filled in


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_loads_and_shares_the_folds(name, preset):
    cfg = get_config(name, preset)
    ref = get_config("mtl_resunet", preset)
    assert cfg.model == name and cfg.preset == preset
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert {k: getattr(cfg, k) for k in SHARED} == {k: getattr(ref, k) for k in SHARED}
    if name != "moon_features":
        assert cfg.epochs == {"smoke": SMOKE_EPOCHS, "phantom": PHANTOM_EPOCHS}.get(
            preset, cfg.epochs
        )
        assert cfg.epochs >= 1 and cfg.batch_size >= 1 and cfg.lr > 0
    info = registered(name)
    if info.fit is None:  # a network: its model_kwargs go to the builder (moon's to its fit)
        params = inspect.signature(info.builder).parameters
        assert set(cfg.model_kwargs) <= set(params), "a model kwarg the builder does not take"


@pytest.mark.parametrize("name", SEGMENTATION)
def test_segmentation_sizes(name):
    for preset in PRESETS:
        cfg = get_config(name, preset)
        assert cfg.image_size % 32 == 0  # smp's encoders need multiples of 32
        assert cfg.image_size == (256 if preset == "paper" else 64)
        assert cfg.focal_gamma == 2.0 and cfg.w_seg == 1.0  # Dice on the mask; no label loss
    assert registered(name).family == "segmentation"
    # Ronneberger's U-Net is narrowed on the CPU presets only.
    if name == "unet":
        assert get_config(name, "smoke").model_kwargs == {"base_width": 16}
        assert get_config(name, "paper").model_kwargs == {}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_sizes_and_loss(name):
    paper, smoke = get_config(name, "paper"), get_config(name, "smoke")
    assert paper.image_size == CLASSIFIERS[name]
    assert smoke.image_size == (75 if CLASSIFIERS[name] == 299 else 64)
    # Plain cross-entropy (focal gamma 0, no class weights), as transfer-learning recipes use.
    assert paper.focal_gamma == 0.0 and paper.class_weights == "none"
    info = registered(name)
    assert info.tasks == ("label",) and info.family == "classification"
    assert info.defaults.get("image_size", paper.image_size) == paper.image_size


def test_hijab_recipe_and_alias():
    cfg = get_config("hijab_vgg16", "paper")
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("sgd", 1e-4, 16, 50)
    assert cfg.lr_decay_every == 0 and (cfg.hflip, cfg.vflip, cfg.max_rotation_deg) == (
        True,
        True,
        30.0,
    )
    assert registered("hijab_vgg16").builder is registered("vgg16").builder


def test_moon_features_config():
    for preset in PRESETS:
        cfg = get_config("moon_features", preset)
        assert cfg.epochs == 0 and cfg.preprocess == "none"
        settings = moon_settings(cfg)  # every setting is one the classifier accepts
        assert settings["mask_source"] == "ground_truth" and settings["inner_folds"] == 5
        assert set(settings["classifiers"]) == {"logreg", "svc"}


def test_recipe_presets_and_validation():
    r = Recipe(optimizer="sgd", lr=0.01, batch_size=4, epochs=100, lr_decay_every=40)
    paper, phantom, smoke = (recipe_config(p, r) for p in ("paper", "phantom", "smoke"))
    assert (paper.epochs, paper.lr_decay_every, paper.optimizer) == (100, 40, "sgd")
    assert (phantom.epochs, phantom.lr_decay_every) == (30, 12)  # schedule compressed 30/100
    assert (smoke.epochs, smoke.lr_decay_every, smoke.batch_size) == (SMOKE_EPOCHS, 0, 4)
    with pytest.raises(ValueError, match="optimizer must be adam, adamw or sgd"):
        Recipe(optimizer="rmsprop", lr=1e-3, batch_size=8, epochs=10)
    with pytest.raises(ValueError, match="out of range"):
        Recipe(optimizer="adam", lr=0.0, batch_size=8, epochs=10)


def test_encoder_variants_train_with_their_architectures_recipe():
    from mtl_bench.configs import config_module_name

    archs = ("unet_", "unetplusplus_", "fpn_", "deeplabv3plus_")
    variants = [m for m in list_models() if m.startswith(archs)]
    assert len(variants) >= 24  # Table S1's networks and their ResNet-34 originals
    recipe = ("optimizer", "lr", "batch_size", "epochs", "lr_decay_every", "lr_decay_factor")
    for name in variants:
        arch = name.rsplit("_", 2)[0] if name.endswith("_bn") else name.rsplit("_", 1)[0]
        assert config_module_name(name) == f"{arch}_resnet34", name
        for preset in PRESETS:
            got, own = get_config(name, preset), get_config(f"{arch}_resnet34", preset)
            assert got.model == name
            assert [getattr(got, k) for k in recipe] == [getattr(own, k) for k in recipe], name
    assert config_module_name("unet") == "unet"  # Ronneberger's U-Net has its own
    assert config_module_name("a_future_model") == "default"


def test_a_model_without_a_config_module_says_so(monkeypatch, capsys):
    from mtl_bench import configs, registry

    info = model_info("unet_resnet34")
    monkeypatch.setitem(
        registry._REGISTRY, "my_net", registry.ModelInfo("my_net", info.builder, ("mask",),
                                                         "segmentation", {}, None)
    )  # fmt: skip
    configs._warn_default.cache_clear()
    cfg = get_config("my_net", "smoke")
    assert cfg.model == "my_net" and cfg.lr == get_config("mtl_resunet", "smoke").lr
    err = capsys.readouterr().err
    assert "my_net has no config module (mtl_bench/configs/my_net.py)" in err
    assert "change a setting with --set KEY=VALUE" in err
    get_config("my_net", "paper")
    assert capsys.readouterr().err == ""  # once per method
