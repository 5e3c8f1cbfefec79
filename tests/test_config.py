"""Run configs: presets, --set overrides and their errors."""

import pytest

from mtl_bench.config import (
    RunConfig,
    apply_overrides,
    config_differences,
    parse_value,
)
from mtl_bench.config_checks import check_config
from mtl_bench.configs import PRESETS, get_config
from mtl_bench.registry import list_models


def test_parse_value():
    assert parse_value("3") == 3
    assert parse_value("1e-4") == 1e-4
    assert parse_value("true") is True and parse_value("False") is False
    assert parse_value("(8,16)") == (8, 16)
    assert parse_value("none") is None
    assert parse_value("adam") == "adam"


def test_overrides_apply_and_validate():
    cfg = apply_overrides(RunConfig(), ["epochs=7", "lr=1", "model_kwargs.widths=(8,16)"])
    assert cfg.epochs == 7 and cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.model_kwargs == {"widths": (8, 16)}
    # String fields keep the text: "none" is a pre-processing method, not Python's None.
    assert apply_overrides(RunConfig(), ["preprocess=none"]).preprocess == "none"
    assert apply_overrides(RunConfig(), ["synthetic_n=none"]).synthetic_n is None
    # Pretrained-weight paths are model options; the short form is accepted.
    got = apply_overrides(RunConfig(), ["encoder_weights=/w/resnet34.pth"])
    assert got.model_kwargs == {"encoder_weights": "/w/resnet34.pth"}
    with pytest.raises(ValueError, match="unknown config key 'epoch' .*; did you mean 'epochs'"):
        apply_overrides(RunConfig(), ["epoch=3"])
    # A model option without its prefix (bench --set takes it so) says where it goes.
    with pytest.raises(ValueError, match=r"mtl_resunet takes it as a model option: --set "
                       r"model_kwargs\.merge=\.\.\.$"):  # fmt: skip
        apply_overrides(RunConfig(), ["merge=add"])
    with pytest.raises(ValueError, match="known keys: model, model_kwargs, data, "):
        apply_overrides(RunConfig(), ["zzz=3"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(RunConfig(), ["epochs"])
    with pytest.raises(ValueError, match="epochs takes an integer"):
        apply_overrides(RunConfig(), ["epochs=lots"])
    with pytest.raises(ValueError, match="hflip takes true or false"):
        apply_overrides(RunConfig(), ["hflip=1"])
    # The whole model_kwargs dict replaces the preset's; model_kwargs.K=V after it adds a key.
    base = RunConfig(model_kwargs={"widths": (8, 16), "dropout": 0.5})
    got = apply_overrides(base, ["model_kwargs={'widths': (4, 8)}", "model_kwargs.dense_units=16"])
    assert got.model_kwargs == {"widths": (4, 8), "dense_units": 16}
    with pytest.raises(ValueError, match="model_kwargs takes a dict"):
        apply_overrides(RunConfig(), ["model_kwargs=(4,8)"])


def test_presets():
    paper = get_config("mtl_resunet", "paper")
    # The paper's protocol, verbatim.
    assert (paper.image_size, paper.folds, paper.epochs, paper.batch_size) == (256, 5, 500, 16)
    assert (paper.lr, paper.lr_decay_every, paper.lr_decay_factor) == (1e-4, 20, 0.1)
    assert paper.optimizer == "adam" and paper.preprocess == "mpghe"
    assert paper.model_kwargs == {}
    for preset in PRESETS:
        cfg = get_config("mtl_resunet", preset)
        assert cfg.model == "mtl_resunet" and cfg.preset == preset
        assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown preset"):
        get_config("mtl_resunet", "huge")


def test_every_registered_config_passes_the_check():
    for name in list_models():
        for preset in PRESETS:
            check_config(get_config(name, preset))  # moon_features: epochs=0 is its own


@pytest.mark.parametrize(
    "setting, message",
    [
        ("epochs=0", "epochs=0: must be >= 1"),
        ("epochs=-1", "epochs=-1: must be >= 1"),
        ("batch_size=0", "batch_size=0: must be >= 1"),
        ("lr=-1", "lr=-1.0: must be > 0"),
        ("lr=1e400", "lr=inf: must be a finite number"),
        ("checkpoint_every=-1", "checkpoint_every=-1"),
        ("val_fraction=1.5", "val_fraction=1.5: must be in [0, 1)"),
        ("folds=1", "folds=1: must be >= 2"),
        ("class_weights=foo", "class_weights='foo': choose one of inverse_frequency, none"),
        ("optimizer=foo", "optimizer='foo': choose one of adam"),
        ("precision=fp8", "precision='fp8'"),
        ("empty_policy=foo", "empty_policy='foo'"),
        ("preprocess=hist", "preprocess='hist'"),
        ("model_kwargs.widht=4", "model 'mtl_resunet' does not take widht"),
        ("seed=-1", "seed=-1: must be in [0, 2**32)"),
        ("fold_seed=4294967296", "fold_seed=4294967296: must be in [0, 2**32)"),
        ("w_seg=0,w_cls=0", "w_seg=0 and w_cls=0: mtl_resunet's loss would be zero"),
        # The run's fields, not a model kwarg, set what the results record it ran at.
        ("model_kwargs.dtype=bf16", "model_kwargs.dtype='bf16': set precision instead"),
        ("model_kwargs.image_size=48", "model_kwargs.image_size=48: set image_size instead"),
    ],
)
def test_check_config_refuses_what_cannot_run(setting, message):
    cfg = apply_overrides(get_config("mtl_resunet", "smoke"), setting.split(","))
    with pytest.raises((ValueError, TypeError)) as err:
        check_config(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_config_differences_ignore_how_a_run_is_executed():
    a = RunConfig(model_kwargs={"widths": (8, 16)}).to_dict()
    same = {**a, "model_kwargs": {"widths": [8, 16]}, "checkpoint_every": 3, "parallel": "jit"}
    assert config_differences(a, same) == []  # JSON lists = tuples; execution keys are free
    other = {**a, "lr": 0.5, "epochs": 9}
    assert config_differences(a, other) == ["epochs: 500 → 9", "lr: 0.0001 → 0.5"]
    assert config_differences(a, other, ignore=("epochs",)) == ["lr: 0.0001 → 0.5"]
    assert config_differences({"lr": 0.1}, a) == ["lr: 0.1 → 0.0001"]  # older files: shared keys
