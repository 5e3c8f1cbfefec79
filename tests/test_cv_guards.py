"""``mtl-bench cv`` refuses what would waste or corrupt a results folder — other data under the
folder's folds, a model option its builder rejects, a tag that is a path, an ``--out`` that is a
file, an empty ``--folds`` — before any data work or any earlier result is touched."""

import dataclasses
import re

import numpy as np
import pytest
from lock_holder import held_elsewhere

from mtl_bench.cli import main
from mtl_bench.config import RunConfig
from mtl_bench.config_checks import check_config
from mtl_bench.cv import run_cv
from mtl_bench.cv_data import dataset_for
from mtl_bench.data.phantom import write_phantom
from mtl_bench.data.types import DataError, DataWarning

TINY = RunConfig(
    model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16},
    synthetic_n=24,
    image_size=32,
    folds=2,
    epochs=1,
    batch_size=8,
    preprocess="none",
    checkpoint_every=0,
    eval_batch_size=8,
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A results folder whose fold 0 is finished (result file and checkpoint)."""
    out = tmp_path_factory.mktemp("res")
    run_cv(TINY, out, folds=[0], quiet=True)
    return out


def _untouched(out):
    method = out / "mtl_resunet"
    return (method / "fold_0.json").is_file() and (method / "ckpt_fold_0" / "last").is_dir()


def test_other_pixels_under_the_same_names_are_refused_before_the_checkpoint_goes(finished):
    # Another phantom seed: the same ids and labels, other images. The folder's manifest was
    # made at this size and pre-processing, so its fingerprint must match.
    other = dataclasses.replace(TINY, synthetic_seed=TINY.synthetic_seed + 1)
    with pytest.raises(DataError, match=r"fingerprint .* differs.* made from .*synthetic_seed=0"):
        run_cv(other, finished, folds=[0], quiet=True)
    assert _untouched(finished)


def test_a_model_option_value_the_builder_refuses_fails_before_the_checkpoint_goes(finished):
    bogus = dataclasses.replace(TINY, model_kwargs={**TINY.model_kwargs, "merge": "bogus"})
    with pytest.raises(ValueError, match=r"model 'mtl_resunet' cannot be built.*merge"):
        run_cv(bogus, finished, folds=[0], quiet=True)
    wrong = dataclasses.replace(TINY, model_kwargs={**TINY.model_kwargs, "dropout": "abc"})
    with pytest.raises(TypeError, match=r"dropout='abc': model 'mtl_resunet' takes a number"):
        run_cv(wrong, finished, folds=[0], quiet=True)  # it built, and failed in the first step
    for rate in (1.5, 1.0, -0.1):  # nnx.Dropout would zero every activation, or worse, silently
        over = dataclasses.replace(TINY, model_kwargs={**TINY.model_kwargs, "dropout": rate})
        with pytest.raises(ValueError, match=rf"dropout={rate}: .* takes a rate in \[0, 1\)"):
            run_cv(over, finished, folds=[0], quiet=True)
    rate = dataclasses.replace(TINY, model="vgg16", model_kwargs={"dropout_rate": 2})
    with pytest.raises(ValueError, match=r"dropout_rate=2: model 'vgg16' takes a rate"):
        run_cv(rate, finished, folds=[0], quiet=True)
    few = dataclasses.replace(TINY, model_kwargs={"widths": (1, 2)})
    with pytest.raises(ValueError, match=r"widths needs 5 positive integers"):
        run_cv(few, finished, folds=[0], quiet=True)
    assert _untouched(finished)


def test_an_inner_split_too_small_fails_naming_val_fraction_before_the_checkpoint_goes(finished):
    # 12 training images of 2 classes: 1 % leaves no validation image of each class.
    tiny = dataclasses.replace(TINY, val_fraction=0.01)
    with pytest.raises(ValueError, match=r"^val_fraction=0.01: a stratified split of .* 12 groups"):
        run_cv(tiny, finished, folds=[0], quiet=True)
    assert _untouched(finished)


def test_a_model_is_built_once_per_options_and_a_refusal_is_not_remembered(monkeypatch):
    # reproduce checks each method when planning and again in run_cv; one abstract build is enough.
    from mtl_bench import registry

    calls = []
    real = registry.nnx.eval_shape
    monkeypatch.setattr(registry.nnx, "eval_shape", lambda f: calls.append(1) or real(f))
    kwargs = {"widths": (2, 4, 8, 8, 8), "dense_units": 3, "image_size": 32}
    registry.check_model_builds("mtl_resunet", kwargs)
    registry.check_model_builds("mtl_resunet", dict(kwargs))
    assert len(calls) == 1
    for _ in range(2):  # a refused value is refused every time
        with pytest.raises(ValueError, match="cannot be built"):
            registry.check_model_builds("mtl_resunet", {**kwargs, "merge": "bogus2"})
    assert len(calls) == 3


def test_a_missing_weights_file_is_named_up_front(tmp_path):
    cfg = RunConfig(model="unet_resnet34", model_kwargs={"encoder_weights": str(tmp_path / "x")})
    with pytest.raises(ValueError, match=r"^encoder_weights=.*x: no such file"):
        check_config(cfg)


def test_a_weights_file_of_another_model_is_refused_before_the_data_is_read(tmp_path):
    # It used to be found once the data was read and the new folder's fold manifest written.
    path = tmp_path / "other.npz"
    np.savez(path, **{"features.0.weight": np.zeros((8, 3, 3, 3), np.float32)})
    cfg = dataclasses.replace(
        TINY, model="unet_resnet18", model_kwargs={"encoder_weights": str(path)}
    )
    with pytest.raises(
        ValueError, match=r"^unet_resnet18: .*other\.npz does not fit EncoderDecoder: "
    ):
        run_cv(cfg, tmp_path / "res", quiet=True)
    assert not (tmp_path / "res" / "folds.json").exists()


def test_a_tag_is_a_name_not_a_path(tmp_path):
    for tag in ("../evil", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match=r"--tag"):
            run_cv(TINY, tmp_path / "res", tag=tag, quiet=True)
    assert not (tmp_path / "res").exists() and not (tmp_path / "evil").exists()


def test_out_that_is_a_file_and_empty_folds_are_one_line_errors(tmp_path, capsys):
    afile = tmp_path / "results.log"
    afile.write_text("kept\n")
    with pytest.raises(ValueError, match=r"--out .*results.log is a file, not a folder"):
        run_cv(TINY, afile, quiet=True)
    assert afile.read_text() == "kept\n"
    with pytest.raises(SystemExit) as stop:
        main(["cv", "--folds", "", "--out", str(tmp_path / "r")])
    assert stop.value.code == 2 and "expected comma-separated integers" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no fold chosen"):
        run_cv(TINY, tmp_path / "r", folds=[], quiet=True)
    assert main(["data", "folds", "--out", str(afile)]) == 2  # before the data is read
    assert "results.log is a file, not a folder" in capsys.readouterr().err


def test_a_fold_out_of_range_is_refused_before_the_data_loads_or_folds_json_is_written(
    tmp_path, monkeypatch, capsys
):
    from mtl_bench import cv

    def loaded(*args, **kwargs):
        raise AssertionError("the data was loaded before the fold number was checked")

    monkeypatch.setattr(cv, "dataset_for", loaded)
    out = tmp_path / "res"
    for fold, shown in ((2, "2"), (-1, "-1"), ([0, 5], "5")):
        folds = fold if isinstance(fold, list) else [fold]
        with pytest.raises(ValueError, match=rf"^fold {shown} out of range: .* folds 0\.\.1"):
            run_cv(TINY, out, folds=folds, quiet=True)
    with pytest.raises(ValueError, match="no fold chosen"):
        run_cv(TINY, out, folds=[], quiet=True)
    args = ["train", "--model", "mtl_resunet", "--fold", "-1", "--out", str(out)]
    assert main([*args, "--set", "folds=2"]) == 2
    assert "fold -1 out of range" in capsys.readouterr().err
    assert not out.exists()  # no folds.json, nor anything else


def test_a_class_folder_outside_the_class_set_is_said(tmp_path, capsys):
    root = write_phantom(tmp_path / "ph", 20, image_size=32, seed=1)
    cfg = dataclasses.replace(TINY, data=str(root), synthetic_n=None)
    ds = dataset_for(cfg)
    assert set(ds.class_names) == {"benign", "malignant"}
    assert "not used: normal/ (class_set=binary)" in capsys.readouterr().err


def test_a_three_class_run_is_tagged_3class_and_a_binary_run_cannot_take_that_tag(
    tmp_path, finished
):
    three = dataclasses.replace(TINY, class_set="three_class", synthetic_n=30)
    refused = r"holds folds of 2 classes \(benign, malignant\), this run.s data has 3 .*--set"
    with pytest.raises(DataError, match=refused + r" class_set=binary, or use another --out"):
        run_cv(three, finished, folds=[0], quiet=True)  # the folder's folds are binary
    assert _untouched(finished)
    written = run_cv(three, tmp_path / "res3", folds=[0], quiet=True)
    assert written[0].parent.name == "mtl_resunet@3class"  # the three-class table's row
    with pytest.raises(ValueError, match=r"--tag 3class marks three-class runs"):
        run_cv(TINY, tmp_path / "res2", tag="3class", quiet=True)
    assert not (tmp_path / "res2").exists()
    # Another tag is allowed, but the user hears before training that no table will show it.
    with pytest.warns(DataWarning, match=r"mtl_resunet@foo will be in no table.*@3class"):
        written = run_cv(three, tmp_path / "res3", folds=[0], tag="foo", quiet=True)
    assert written[0].parent.name == "mtl_resunet@foo"


def test_placement_is_checked_before_any_data_is_read(monkeypatch):
    import jax

    from mtl_bench import parallel
    from mtl_bench.distributed import init_distributed

    monkeypatch.setattr(jax, "device_count", lambda: 4)
    for (strategy, devices, batch), message in {
        ("none", 8, 8): r"devices=8 but 4 are available",
        ("none", 2, 8): r"devices=2 with parallel='none' would train on one device",
        ("jit", 0, 6): r"batch_size 6 does not divide by the 4 devices",
        ("pmap", 3, 8): r"batch_size 8 does not divide by the 3 devices",
    }.items():
        with pytest.raises(ValueError, match=message):
            parallel.check_placement(strategy, devices, batch)
    parallel.check_placement("jit", 0, 8)
    parallel.check_placement("none", 1, 6)
    with pytest.raises(ValueError, match=r"devices=8 but 4"):  # cv's check_config says it
        check_config(dataclasses.replace(TINY, parallel="jit", devices=8))
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    with pytest.raises(ValueError, match=r"multi-process run needs --parallel jit"):
        parallel.check_placement("pmap", 0, 8)
    # Without a coordinator every host would train alone into the same --out.
    with pytest.raises(ValueError, match=r"--process-id need --coordinator"):
        init_distributed(None, 2, 1)


def test_a_multi_process_run_without_jit_is_refused_before_joining(monkeypatch, capsys):
    import jax

    joined = []  # a lone process would wait here for the others before being told
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: joined.append(k))
    argv = ["cv", "--model", "mtl_resunet", "--coordinator", "127.0.0.1:1", "--num-processes", "2"]
    argv += ["--process-id", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mtl-bench: error: parallel='none' in a multi-process run: it needs")
    assert "\n" not in err and joined == []
    assert (
        main(["cv", "--model", "mtl_resunet", "--distributed", "auto", "--parallel", "pmap"]) == 2
    )
    assert "parallel='pmap' in a multi-process run" in capsys.readouterr().err and joined == []


@pytest.mark.parametrize(
    "coordinator,n,i,message",
    [
        ("nonsense", 2, 0, r"--coordinator 'nonsense': expected HOST:PORT"),
        ("127.0.0.1:abc", 2, 0, r"--coordinator '127.0.0.1:abc': expected HOST:PORT"),
        (":", 2, 0, r"--coordinator ':': expected HOST:PORT"),
        ("host:70000", 2, 0, r"with a port in 1..65535"),
        ("::1", 2, 0, r"--coordinator '::1': expected HOST:PORT"),  # no port: '1' is no port
        ("fe80::1:8476", 2, 0, r"or \[::1\]:12355"),
        ("h:²", 2, 0, r"--coordinator 'h:²': expected HOST:PORT"),
        ("127.0.0.1:1234", 2, 2, r"--process-id 2: must be in 0..1 \(--num-processes 2\)"),
        ("127.0.0.1:1234", 0, 0, r"--num-processes 0: must be >= 1"),
    ],
)
def test_a_bad_coordinator_is_one_line_before_joining(
    monkeypatch, capsys, coordinator, n, i, message
):
    # JAX met these with a traceback (no port), a crash of its gRPC server (port 'abc') or a
    # wait for ever (':').
    import jax

    joined = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: joined.append(k))
    argv = ["cv", "--model", "mtl_resunet", "--parallel", "jit", "--coordinator", coordinator]
    assert main([*argv, "--num-processes", str(n), "--process-id", str(i)]) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(message, err) and "\n" not in err and joined == []


def test_an_ipv6_coordinator_is_taken():
    from mtl_bench.distributed import check_coordinator

    check_coordinator("[::1]:12355", 2, 1)
    check_coordinator("node-0.cluster:8476", 4, 3)


def test_distributed_auto_outside_a_cluster_says_so(monkeypatch, capsys):
    import jax

    def initialize(*args, **kwargs):  # JAX's words when it detects no cluster
        raise ValueError("coordinator_address should be defined.")

    monkeypatch.setattr(jax.distributed, "initialize", initialize)
    assert main(["cv", "--model", "mtl_resunet", "--distributed", "auto", "--parallel", "jit"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--distributed auto: JAX found no cluster to join" in err and "\n" not in err
    assert "coordinator_address should be defined." in err


def test_data_folds_checks_an_existing_manifest_against_the_data_as_cv_does(tmp_path, capsys):
    argv = ["data", "folds", "--out", str(tmp_path), "--set", "image_size=32"]
    argv += ["--set", "preprocess=none", "--set", "folds=2"]
    assert main([*argv, "--set", "synthetic_n=24"]) == 0
    assert "folds.json: written; k=2" in capsys.readouterr().out
    assert main([*argv, "--set", "synthetic_n=24"]) == 0
    assert "folds.json: already there, matches this data; k=2" in capsys.readouterr().out
    made = (tmp_path / "folds.json").read_bytes()
    assert main([*argv, "--set", "synthetic_n=30"]) == 2  # other data: refused, as cv would
    err = capsys.readouterr().err
    assert "not in the manifest" in err and "--set synthetic_n=24" in err
    assert (tmp_path / "folds.json").read_bytes() == made
    assert main([*argv, "--set", "folds=1"]) == 2
    err = capsys.readouterr().err
    assert "folds=1" in err and "data:" not in err  # refused before the data is read


def test_an_empty_data_path_is_refused_not_read_as_the_working_folder(capsys):
    with pytest.raises(ValueError, match=r"^data='': give 'synthetic' or a BUSI-layout folder$"):
        check_config(dataclasses.replace(TINY, data=""))
    assert main(["data", "check", " "]) == 2
    assert "ROOT ' ': an empty path" in capsys.readouterr().err


def test_set_model_and_repeated_or_empty_folds_are_refused(tmp_path, capsys):
    from mtl_bench.config import apply_overrides

    with pytest.raises(ValueError, match=r"--set 'model=unet': the model is chosen by --model"):
        apply_overrides(TINY, ["model=unet"])  # unet on mtl_resunet's recipe, stored as unet
    assert apply_overrides(TINY, ["model=mtl_resunet"]).model == "mtl_resunet"  # no change
    for folds, says in (("1,1", "'1,1' names 1 twice"), ("0,,1", "empty item in '0,,1'")):
        with pytest.raises(SystemExit) as stop:
            main(["cv", "--model", "mtl_resunet", "--folds", folds, "--out", str(tmp_path)])
        assert stop.value.code == 2 and says in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_model_that_fails_to_build_costs_no_finished_fold_its_checkpoint(finished, monkeypatch):
    # A weights folder of another arch is found when the model is built (its weights read),
    # which checking the options cannot do without reading them: the old checkpoint goes after.
    import mtl_bench.fit

    def refuse(cfg, num_classes):
        raise ValueError("/w holds mobilenet_v2 weights, not mobilenet")

    monkeypatch.setattr(mtl_bench.fit, "build_model", refuse)
    with pytest.raises(ValueError, match="holds mobilenet_v2 weights"):
        run_cv(TINY, finished, folds=[0], quiet=True)
    assert _untouched(finished)


def test_a_second_run_of_a_fold_into_one_folder_is_refused_while_the_first_runs(tmp_path):
    # Both would write one fold's checkpoint and result: each failed with orbax tracebacks.
    out = tmp_path / "res"
    with held_elsewhere(out / ".mtl_resunet.fold_1.lock") as pid:
        with pytest.raises(ValueError) as err:
            run_cv(TINY, out, quiet=True)
        assert str(err.value) == (
            f"{out / 'mtl_resunet'} fold 1: another run is writing it (pid {pid}); wait "
            "for it to finish, or choose other --folds, another --out or --tag"
        )
        assert sorted(p.name for p in out.iterdir()) == [".mtl_resunet.fold_1.lock"]  # no data
        # A run of the other fold (one fold set per GPU, as the README shows) is not held up.
        assert list(run_cv(TINY, out, folds=[0], quiet=True)) == [0]
    assert not list(out.glob(".*.lock"))  # each run's claims went with it
