"""Run configs: presets, --set overrides and their errors."""

import pytest

from mtl_bench.config import RunConfig, apply_overrides, parse_value
from mtl_bench.configs import PRESETS, get_config


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
    with pytest.raises(ValueError, match="unknown config key 'epoch'"):
        apply_overrides(RunConfig(), ["epoch=3"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(RunConfig(), ["epochs"])
    with pytest.raises(ValueError, match="epochs takes a int"):
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
