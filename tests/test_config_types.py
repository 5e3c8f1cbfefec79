"""Config field types: every path that sets a field (a record read back, a config built in code,
--set) refuses a value its annotation does not allow, in one line naming field, value and type."""

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from mtl_bench.config import RunConfig, apply_overrides
from mtl_bench.config_checks import check_config
from mtl_bench.config_types import check_field_types, describe, matches
from mtl_bench.configs import PRESETS, get_config
from mtl_bench.data.types import DataError
from mtl_bench.registry import list_models

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"image_size": "big"}, "config: image_size='big' must be an integer"),
        ({"image_size": True}, "config: image_size=True must be an integer"),  # bool is no int
        ({"image_size": 64.0}, "config: image_size=64.0 must be an integer"),
        ({"lr": "1e-4"}, "config: lr='1e-4' must be a number"),
        ({"lr": False}, "config: lr=False must be a number"),
        ({"hflip": 1}, "config: hflip=1 must be true or false"),
        ({"hflip": "true"}, "config: hflip='true' must be true or false"),
        ({"preprocess": None}, "config: preprocess=None must be a string"),
        ({"synthetic_n": 2.5}, "config: synthetic_n=2.5 must be an integer or None"),
        ({"model_kwargs": [8, 16]}, "config: model_kwargs=[8, 16] must be a dict with string keys"),
        ({"model_kwargs": {1: 2}}, "config: model_kwargs={1: 2} must be a dict with string keys"),
        ("x", 'a config must be a JSON object, got "x"'),  # was "unknown config keys: x"
    ],
)
def test_from_dict_refuses_a_wrong_type(values, message):
    with pytest.raises(ValueError) as err:
        RunConfig.from_dict(values)
    assert str(err.value) == message


def test_from_dict_accepts_what_the_annotations_allow():
    cfg = RunConfig.from_dict({"lr": 1, "synthetic_n": None, "epochs": 0, "preset": ""})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)  # an int is a number, stored as float
    assert cfg.synthetic_n is None
    with pytest.raises(ValueError, match="unknown config keys: imagesize"):
        RunConfig.from_dict({"imagesize": 64})


def test_check_config_refuses_a_wrong_type_before_comparing_it():
    # Built in code (no from_dict): without the type check `"big" >= 8` is a TypeError.
    cfg = dataclasses.replace(get_config("mtl_resunet", "smoke"), image_size="big")
    with pytest.raises(ValueError, match=r"^config: image_size='big' must be an integer$"):
        check_config(cfg)
    cfg = dataclasses.replace(get_config("mtl_resunet", "smoke"), epochs=True)
    with pytest.raises(ValueError, match=r"^config: epochs=True must be an integer$"):
        check_config(cfg)


@pytest.mark.parametrize(
    "setting, message",
    [
        # An Optional field used to take anything (its default None told no type).
        ("synthetic_n=abc", "--set 'synthetic_n=abc': synthetic_n takes an integer or None"),
        ("epochs=none", "--set 'epochs=none': epochs takes an integer, got 'none'"),
        ("image_size=64.0", "--set 'image_size=64.0': image_size takes an integer"),
        ("lr=true", "--set 'lr=true': lr takes a number"),
        ("hflip=1", "--set 'hflip=1': hflip takes true or false"),
    ],
)
def test_overrides_use_the_same_types(setting, message):
    with pytest.raises(ValueError) as err:
        apply_overrides(RunConfig(), [setting])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_every_config_survives_a_json_round_trip():
    # Results files store to_dict() as JSON (tuples become lists); predict reads it back.
    for name in list_models():
        for preset in PRESETS:
            cfg = get_config(name, preset)
            back = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
            assert back == cfg, (name, preset)
    back = RunConfig.from_dict(json.loads(json.dumps(RunConfig(lr=1.0).to_dict())))
    assert isinstance(back.lr, float)


def _committed_fold_configs() -> list[RunConfig]:
    listed = subprocess.run(
        ["git", "ls-files", "results"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    records = [REPO / p for p in listed if Path(p).name.startswith("fold_") and p.endswith(".json")]
    if not records:
        pytest.skip("no committed fold records in this checkout")
    # from_dict checks every field's type (JSON's lists included) as predict reads them back.
    return [RunConfig.from_dict(json.loads(p.read_text("utf-8"))["config"]) for p in records]


def test_every_committed_fold_record_has_the_field_types():
    for cfg in _committed_fold_configs():
        check_field_types(RunConfig, vars(cfg))  # also after from_dict's normalizing


@pytest.mark.slow  # ~40 s: check_config builds each recorded model abstractly
def test_every_committed_fold_record_passes_the_config_check():
    checked = set()
    for cfg in _committed_fold_configs():
        key = json.dumps(cfg.to_dict(), sort_keys=True)
        if key not in checked:  # a method's folds share one config: build each model once
            checked.add(key)
            check_config(cfg)


def test_predict_names_a_recorded_config_of_the_wrong_type(tmp_path):
    from mtl_bench.fold_checkpoint import load_fold_model

    (tmp_path / "ckpt_fold_0" / "last").mkdir(parents=True)
    config = {**RunConfig().to_dict(), "image_size": "big"}
    record = {"config": config, "class_names": ["benign", "malignant"]}
    (tmp_path / "fold_0.json").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(DataError, match=r"cannot read the run config \(config: image_size='big'"):
        load_fold_model(tmp_path / "ckpt_fold_0")


@dataclasses.dataclass
class _Kinds:  # annotations RunConfig may grow: sequences (JSON lists) and Optional numbers
    sizes: tuple[int, ...] = (8, 16)
    pair: tuple[int, str] = (1, "a")
    names: list[str] = dataclasses.field(default_factory=list)
    scale: float | None = None


def test_sequences_and_optionals():
    got = check_field_types(_Kinds, {"sizes": [8, 16], "pair": [2, "b"], "scale": 2})
    assert got == {"sizes": (8, 16), "pair": (2, "b"), "scale": 2.0}  # lists back to tuples
    assert isinstance(got["scale"], float)
    assert check_field_types(_Kinds, {"names": ("a",), "scale": None}) == {
        "names": ["a"],
        "scale": None,
    }
    for values, message in [
        ({"sizes": [8, "16"]}, "sizes=[8, '16'] must be a tuple (each item an integer)"),
        ({"sizes": [True]}, "sizes=[True] must be a tuple (each item an integer)"),
        ({"sizes": 8}, "sizes=8 must be a tuple (each item an integer)"),
        ({"pair": [1]}, "pair=[1] must be a tuple of 2 (an integer, a string)"),
        ({"names": "ab"}, "names='ab' must be a list (each item a string)"),
        ({"scale": "x"}, "scale='x' must be a number or None"),
    ]:
        with pytest.raises(ValueError) as err:
            check_field_types(_Kinds, values)
        assert str(err.value) == f"config: {message}"
    assert describe(bool) == "true or false" and not matches(1, bool) and not matches(0.5, int)
