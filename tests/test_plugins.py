"""Models of the user's own (``mtl_bench.plugins``): named in MTL_BENCH_MODELS, known to every
command by name; a module that cannot load is one line naming it."""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap

import pytest

from mtl_bench import registry
from mtl_bench.cli import main

HER_NET = textwrap.dedent(
    """
    from flax import nnx
    import jax.numpy as jnp
    from mtl_bench.registry import register_model

    class HerNet(nnx.Module):
        def __init__(self, in_channels, num_classes, rngs):
            self.conv = nnx.Conv(in_channels, 1, (3, 3), rngs=rngs)
            self.head = nnx.Linear(in_channels, num_classes, rngs=rngs)

        def __call__(self, x, train=False, rng=None):
            return {"mask": self.conv(x), "label": self.head(x.mean((1, 2)))}

    @register_model("her_net", tasks=("mask", "label"), family="proposed")
    def her_net(*, rngs, in_channels=1, num_classes=2, image_size=None):
        return HerNet(in_channels, num_classes, rngs)
    """
)


@pytest.fixture()
def fresh_registry(monkeypatch):
    """The registry as a new process has it: loaded again on first use, plugins included."""
    registry.list_models()  # loaded first: the copy restored afterwards holds the built-in ones
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_LOADED", False)
    yield
    for name in [m for m in sys.modules if m.startswith("mtl_bench_plugin_")]:
        del sys.modules[name]


def test_a_model_file_named_in_the_environment_trains_by_name(
    tmp_path, monkeypatch, fresh_registry, capsys
):
    (tmp_path / "mymodels.py").write_text(HER_NET)
    monkeypatch.setenv("MTL_BENCH_MODELS", str(tmp_path / "mymodels.py"))
    monkeypatch.setenv("MTL_BENCH_CACHE", str(tmp_path / "cache"))
    assert main(["models"]) == 0
    assert "her_net" in capsys.readouterr().out
    out = tmp_path / "r"
    tiny = ["--set", "synthetic_n=24", "--set", "image_size=32", "--set", "epochs=1"]
    tiny += ["--set", "batch_size=8", "--set", "preprocess=none", "--quiet"]
    assert main(["train", "--model", "her_net", "--fold", "0", "--out", str(out), *tiny]) == 0
    record = json.loads((out / "her_net" / "fold_0.json").read_text())
    assert record["method"] == "her_net" and record["metrics"]["classification"] is not None
    # The model file's hash goes with the results (the tables compare it across folds); the
    # suite's own models are pinned by git_commit instead.
    import hashlib

    from mtl_bench.plugins import model_source

    sha = hashlib.sha256((tmp_path / "mymodels.py").read_bytes()).hexdigest()[:16]
    assert record["model_source"]["sha256"] == sha
    assert record["model_source"]["file"] == str(tmp_path / "mymodels.py")
    assert model_source("unet") is None


def test_a_module_that_cannot_load_is_one_line(tmp_path, monkeypatch, fresh_registry, capsys):
    monkeypatch.setenv("MTL_BENCH_MODELS", "no_such_models_module")
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "mtl-bench: error: MTL_BENCH_MODELS: cannot load model module 'no_such_models_module' "
        "(ModuleNotFoundError: No module named 'no_such_models_module')\n"
    )
    monkeypatch.setenv("MTL_BENCH_MODELS", str(tmp_path / "gone.py"))
    assert main(["models"]) == 2
    assert "gone.py" in capsys.readouterr().err


def test_an_unknown_model_says_how_to_add_ones_own(capsys):
    assert main(["train", "--model", "her_net", "--fold", "0"]) == 2
    assert "a model of your own: name its module in MTL_BENCH_MODELS" in capsys.readouterr().err


def test_reloading_a_model_module_replaces_its_models(tmp_path, monkeypatch, fresh_registry):
    (tmp_path / "her_models.py").write_text(HER_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("her_models")
    try:
        importlib.reload(module)  # a notebook's edit-and-rerun: not "registered twice"
        assert registry.model_info("her_net").builder is module.her_net
        # Another module's model of the same name is still refused, naming both.
        other = HER_NET.replace("def her_net(", "def her_other(")
        (tmp_path / "other_models.py").write_text(other)
        with pytest.raises(ValueError, match=r"'her_net' is registered twice: by her_models"):
            importlib.import_module("other_models")
    finally:
        sys.modules.pop("her_models", None)
        sys.modules.pop("other_models", None)


def test_an_installed_packages_entry_point_registers_its_models(
    tmp_path, monkeypatch, fresh_registry
):
    import importlib.metadata as metadata

    (tmp_path / "her_package.py").write_text(HER_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = metadata.EntryPoint("her_net", "her_package", "mtl_bench.models")
    monkeypatch.setattr(
        metadata, "entry_points", lambda group: [point] if group == "mtl_bench.models" else []
    )
    try:
        assert "her_net" in registry.list_models()
        broken = metadata.EntryPoint("bad", "no_such_package:models", "mtl_bench.models")
        monkeypatch.setattr(metadata, "entry_points", lambda group: [broken])
        monkeypatch.setattr(registry, "_LOADED", False)
        with pytest.raises(ImportError, match=r"entry point 'bad' \(mtl_bench.models\): cannot"):
            registry.list_models()
    finally:
        sys.modules.pop("her_package", None)


def test_two_model_files_of_one_name_are_two_modules(tmp_path, monkeypatch, fresh_registry):
    for folder, name in (("a", "net_a"), ("b", "net_b")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "models.py").write_text(HER_NET.replace("her_net", name))
    paths = [str(tmp_path / f / "models.py") for f in ("a", "b")]
    monkeypatch.setenv("MTL_BENCH_MODELS", os.pathsep.join(paths))
    assert {"net_a", "net_b"} <= set(registry.list_models())


def test_a_reloaded_model_is_checked_again(tmp_path, monkeypatch, fresh_registry):
    from mtl_bench.config import RunConfig
    from mtl_bench.fit import build_model

    (tmp_path / "her_models2.py").write_text(HER_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("her_models2")
    try:
        build_model(RunConfig(model="her_net", image_size=32), 2)
        # Edited to break the contract and reloaded: the new builder is checked, not skipped.
        broken = HER_NET.replace('"mask": self.conv(x)', '"mask": self.conv(x)[..., 0]')
        (tmp_path / "her_models2.py").write_text(broken)
        importlib.reload(module)
        with pytest.raises(ValueError, match=r"her_net in training returned 'mask' of shape"):
            build_model(RunConfig(model="her_net", image_size=32), 2)
    finally:
        sys.modules.pop("her_models2", None)


def test_the_model_file_is_hashed_as_training_starts(tmp_path, monkeypatch, fresh_registry):
    # An edit during a long fold is not the code the fold trained: the hash is taken at the start.
    from mtl_bench import fit, fold_record

    (tmp_path / "mymodels.py").write_text(HER_NET)
    monkeypatch.setenv("MTL_BENCH_MODELS", str(tmp_path / "mymodels.py"))
    monkeypatch.setenv("MTL_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fit, "model_source", lambda name: {"module": "m", "sha256": "start"})
    monkeypatch.setattr(fold_record, "model_source", lambda name: {"module": "m", "sha256": "end"})
    out = tmp_path / "r"
    tiny = ["--set", "synthetic_n=24", "--set", "image_size=32", "--set", "epochs=1"]
    tiny += ["--set", "batch_size=8", "--set", "preprocess=none", "--quiet"]
    assert main(["train", "--model", "her_net", "--fold", "0", "--out", str(out), *tiny]) == 0
    record = json.loads((out / "her_net" / "fold_0.json").read_text())
    assert record["model_source"]["sha256"] == "start"
