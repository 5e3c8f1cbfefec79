"""The bench's inputs: bad paths and option values are one-line errors before anything is
measured, a run that measured nothing exits 3, cheap skips come before the model is built, the
help states every default, and ``python -m benchmarks.throughput_io`` is a real command line."""

import argparse
import csv
from pathlib import Path

import pytest

from benchmarks import throughput_io, timing
from benchmarks.bench_args import add_bench_arguments
from benchmarks.throughput import main
from mtl_bench import registry
from mtl_bench.registry import ModelInfo

TINY = ["--models", "mtl_resunet", "--set", "widths=(4,8,16,32,64)", "--precision", "fp32",
        "--image-size", "32", "--batch-sizes", "2", "--steps", "1", "--warmup", "0",
        "--compile-cache", "off"]  # fmt: skip


@pytest.fixture
def no_measuring(monkeypatch):
    """Any measurement fails the test: the error must come first."""
    monkeypatch.setattr(timing, "measure", lambda spec: pytest.fail("the bench started"))


def one_line_error(capsys, *parts: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("benchmarks.throughput: error: "), err
    for part in parts:
        assert part in err, err
    return err


def test_output_paths_are_checked_before_measuring(tmp_path, no_measuring, capsys):
    plain = tmp_path / "plain.txt"
    plain.write_text("not a folder")
    assert main(TINY + ["--out", str(plain)]) == 2
    one_line_error(capsys, f"--out {plain}: is a file, not a folder")
    assert main(TINY + ["--csv", str(tmp_path)]) == 2
    one_line_error(capsys, f"--csv {tmp_path}: is a folder")
    assert main(TINY + ["--csv", str(plain / "t.csv")]) == 2  # a file where its folder would be
    one_line_error(capsys, f"--csv {plain / 't.csv'}: is under {plain}, which is a file")
    assert main(TINY + ["--compile-cache", str(plain)]) == 2
    one_line_error(capsys, f"--compile-cache {plain}: is a file, not a folder")
    assert main(TINY + ["--csv", str(tmp_path / "t.csv"), "--profile", str(plain)]) == 2
    one_line_error(capsys, f"--profile {plain}: is a file")
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("option", ["--out", "--csv", "--profile", "--compile-cache"])
def test_output_folders_that_cannot_be_written_are_errors(
    option, tmp_path, monkeypatch, no_measuring, capsys
):
    # Before: --out failed at the first CSV write ("[Errno 2] ..." naming no option), --profile
    # after the measuring (row "error", timings lost), --compile-cache never (compiled uncached).
    from mtl_bench import atomic  # the probe (atomic.cannot_write) bench's path checks use

    locked = tmp_path / "locked"
    locked.mkdir()
    real = atomic.tempfile.TemporaryFile

    def probe(*, dir, **kw):  # permission bits do not stop root: refuse the folder here
        if Path(dir) == locked:
            raise PermissionError(13, "Permission denied")
        return real(dir=dir, **kw)

    monkeypatch.setattr(atomic.tempfile, "TemporaryFile", probe)
    given = locked / "sub" / ("t.csv" if option == "--csv" else "x")
    # --csv, when given, is where the rows go (--out unused): give it for the other two.
    argv = TINY + ([] if option in ("--csv", "--out") else ["--csv", str(tmp_path / "t.csv")])
    assert main(argv + [option, str(given)]) == 2
    one_line_error(capsys, f"{option} {given}: cannot write in {locked} (Permission denied)")
    assert list(locked.iterdir()) == [] and not (tmp_path / "t.csv").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_proc_is_not_an_output_folder(tmp_path, no_measuring, capsys):
    assert main(TINY + ["--out", "/proc/x"]) == 2  # the walkthrough's case, unfaked
    one_line_error(capsys, "--out /proc/x: cannot write in /proc (it takes no new files)")


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--devices", "-1", "--devices takes device counts >= 0 (0 = all), got '-1'"),
        ("--devices", "1,-2", "got '1,-2'"),
        ("--peer-timeout", "-5", "--peer-timeout must be a positive number of seconds, got -5.0"),
        ("--peer-timeout", "0", "--peer-timeout must be a positive"),
        ("--peer-timeout", "nan", "--peer-timeout must be a positive"),
        # Fold options for no fold row.
        ("--folds", "3", "--folds 3: only --parallel fold trains folds side by side; --parallel"),
        ("--fold-conv", "grouped", "--fold-conv grouped: only --parallel fold trains folds"),
    ],
)
def test_bad_counts_are_one_line_errors(option, value, message, tmp_path, no_measuring, capsys):
    argv = TINY + ["--csv", str(tmp_path / "t.csv"), "--parallel", "none,jit"]
    assert main(argv + [option, value]) == 2
    one_line_error(capsys, message)


@pytest.mark.parametrize(
    "option, value, message",
    [("--precision", "fp32,fp32", "fp32 given twice in 'fp32,fp32'"),
     ("--devices", "2,0,2", "2 given twice in '2,0,2'"),
     ("--batch-sizes", "16,64,16", "16 given twice")],
)  # fmt: skip
def test_a_value_listed_twice_is_refused(option, value, message, tmp_path, no_measuring, capsys):
    # It measured the same configuration twice, as two rows.
    argv = TINY + ["--csv", str(tmp_path / "t.csv"), "--parallel", "none,jit"]
    with pytest.raises(SystemExit) as e:
        main(argv + [option, value])
    assert e.value.code == 2
    one_line_error(capsys, f"argument {option}: {message}")


def test_config_errors_name_the_config_option(tmp_path, no_measuring, capsys):
    argv = TINY + ["--csv", str(tmp_path / "t.csv")]
    assert main(argv + ["--config", "nosuch=3"]) == 2
    err = one_line_error(capsys, "unknown config key 'nosuch' in --config 'nosuch=3'")
    assert "--set" not in err
    assert main(argv + ["--config", "hflip=3"]) == 2
    assert "--set" not in one_line_error(capsys, "--config 'hflip=3': hflip takes true or false")
    assert main(argv + ["--config", "hflip"]) == 2
    one_line_error(capsys, "--config expects key=value, got 'hflip'")


def _no_dtype_builder(*, rngs, in_channels=1, num_classes=2, image_size=None):
    raise AssertionError("built: the skip should have come first")


def test_nothing_measured_exits_3_and_keeps_the_rows(tmp_path, monkeypatch, capsys):
    registry.list_models()  # load the real registry before adding the test model
    info = ModelInfo("bench_nodtype", _no_dtype_builder, ("mask", "label"), "proposed", {})
    monkeypatch.setitem(registry._REGISTRY, "bench_nodtype", info)
    path = tmp_path / "t.csv"
    argv = ["--models", "bench_nodtype", "--precision", "bf16", "--batch-sizes", "2,4",
            "--image-size", "16", "--csv", str(path), "--compile-cache", "off"]  # fmt: skip
    assert main(argv) == 3  # NOTHING_MEASURED: not an uncaught error (1)
    captured = capsys.readouterr()
    assert captured.err == (
        f"[bench] no configuration was measured (2 skipped or failed; see the status column of "
        f"{path})\n"
    )
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["skipped: bf16: the model's builder takes no dtype "
                                           "argument"] * 2  # fmt: skip


def test_device_skips_come_before_the_model_is_built(tmp_path, monkeypatch, capsys):
    def build(*a, **k):
        raise AssertionError("the model was built for a configuration that is skipped")

    monkeypatch.setattr(timing, "build_model", build)
    path = tmp_path / "t.csv"
    # One CPU device here: two asked for is skipped, whatever the model.
    assert main(TINY + ["--parallel", "jit,pmap", "--devices", "2", "--csv", str(path)]) == 3
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["skipped: devices=2 but 1 are available"] * 2
    assert "no configuration was measured" in capsys.readouterr().err
    # A batch the devices cannot share: known from the spec alone.
    from mtl_bench import parallel as par

    monkeypatch.setattr(par, "select_devices", lambda n: ["d0", "d1"])
    spec = timing.BenchSpec("mtl_resunet", 3, image_size=32, parallel="jit", devices=2)
    with pytest.raises(timing.Skip, match="batch_size 3 does not divide by the 2 devices"):
        timing.measure(spec)


def test_help_states_every_default(capsys):
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    for action in parser._actions:
        if action.dest != "help":
            assert "(default" in (action.help or ""), action.option_strings
    from mtl_bench.cli import main as cli_main

    with pytest.raises(SystemExit) as e:
        cli_main(["bench", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 16,64)" in text and "(default: 300)" in text and "(default: fresh)" in text


def test_table_keeps_the_end_of_a_skip_reason():
    # The advice is at the end of the reason: the table must not cut it off.
    from mtl_bench.parallel import check_strategy

    with pytest.raises(ValueError) as e:  # the longest such reason: the bench's own words
        check_strategy("pmap", 1000, 16)
    status = f"skipped: {e.value}"
    assert status.endswith("fewer devices (--devices N)")
    assert 60 < len(status) <= throughput_io.STATUS_WIDTH
    assert status in throughput_io.format_table([{"model": "m", "status": status}])
    width = throughput_io.STATUS_WIDTH  # longer: cut, and said to be
    long = throughput_io.format_table([{"model": "m", "status": "x" * (width + 50)}])
    assert "x" * (width - 1) + "…" in long and "x" * width not in long


def test_table_names_the_variant_only_when_rows_have_one():
    # Tuning rows of one model differ only in their overrides: the table must tell them apart.
    plain = {"model": "unet", "status": "ok", "batch_size": "16"}
    assert "variant" not in throughput_io.format_table([plain, plain])
    packed = {**plain, "config_overrides": "state_layout=packed"}
    flags = {**plain, "xla_flags": "--xla_gpu_autotune_level=0"}
    lines = throughput_io.format_table([plain, packed, flags]).splitlines()
    assert lines[0].split("|")[2].strip() == "variant"
    cells = [line.split("|")[2].strip() for line in lines[2:]]
    assert cells == ["", "state_layout=packed", "--xla_gpu_autotune_level=0"]
    # Flags set for the whole run (the CSV's xla_flags column) set no row apart.
    forced = "--xla_force_host_platform_device_count=4"
    same = [{**plain, "xla_flags": forced}, {**packed, "xla_flags": forced}]
    lines = throughput_io.format_table(same).splitlines()
    assert [line.split("|")[2].strip() for line in lines[2:]] == ["", "state_layout=packed"]


def test_throughput_io_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        throughput_io.main(["--help"])
    assert e.value.code == 0
    assert "usage: benchmarks.throughput_io [-h] CSV [CSV ...]" in capsys.readouterr().out
    missing = tmp_path / "none.csv"
    assert throughput_io.main([str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"benchmarks.throughput_io: error: {missing}: no such file; give throughput CSV files\n"
    )
    assert throughput_io.main([str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert throughput_io.main([str(other)]) == 2
    assert "not a throughput CSV (no column model, batch_size, status)" in capsys.readouterr().err
    good = tmp_path / "t.csv"
    row = {"model": "mtl_resunet", "status": "ok", "devices": "1", "image_size": "64",
           "batch_size": "16", "precision": "fp32", "device_kind": "cpu", "strategy": "none",
           "train_img_per_s": "100"}  # fmt: skip
    throughput_io.write_csv(good, [row])
    assert throughput_io.main([str(good)]) == 0
    out = capsys.readouterr().out
    assert "| mtl_resunet" in out
    assert "- paper protocol's length (5 folds × 500 epochs × 4/5 of 647 images): 215.7 min" in out


def test_a_csv_of_another_device_is_extended_with_a_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(timing, "measure", lambda spec: {"train_img_per_s": 1.0, "status": "ok"})
    path = tmp_path / "h100.csv"
    throughput_io.write_csv(path, [{"model": "unet", "status": "ok", "device_kind": "NVIDIA H100"}])
    assert main(TINY + ["--csv", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"[bench] note: {path} already holds rows measured on NVIDIA H100; this run's" in err
    with open(path, newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_each_measured_configuration_says_its_rate_as_it_ends(tmp_path, monkeypatch, capsys):
    # A model's grid can take minutes on a GPU (a compile each): one line per configuration, on
    # stderr, before the model's summary.
    monkeypatch.setattr(timing, "measure", lambda spec: {"train_img_per_s": 812.4, "status": "ok"})
    grid = ["--batch-sizes", "2,4", "--parallel", "none,jit", "--devices", "1,2"]
    assert main(TINY + grid + ["--csv", str(tmp_path / "t.csv")]) == 0  # the later --batch-sizes
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("[bench] mtl_resunet")]
    assert lines[0].startswith("[bench] mtl_resunet 1/6: none, batch 2, fp32: 812 img/s (")
    assert lines[-1].startswith("[bench] mtl_resunet 6/6: jit ×2, batch 4, fp32: 812 img/s (")
    assert len(lines) == 6


def test_a_model_listed_twice_is_refused(tmp_path, no_measuring, capsys):
    argv = ["--models", "unet,mtl_resunet,unet", "--csv", str(tmp_path / "t.csv")]
    assert main(argv + TINY[2:]) == 2
    one_line_error(capsys, "--models unet,mtl_resunet,unet: unet given twice")
