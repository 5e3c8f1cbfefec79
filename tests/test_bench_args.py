"""The bench's option checks (``benchmarks/bench_args.py``, ``bench_kwargs.py``,
``bench_checks.py``): a model option a selected model does not take or a value it refuses, an
image size it cannot be built at, an unparsable value and a bad size are one-line errors naming
the option and value, given before anything is measured or written, on both command lines
(``mtl-bench bench`` and ``benchmarks.throughput``)."""

import pytest

from benchmarks import bench_checks, bench_kwargs, timing
from benchmarks.throughput import main
from mtl_bench.cli import main as cli_main

TINY = ["--models", "mtl_resunet", "--precision", "fp32", "--image-size", "32", "--batch-sizes",
        "2", "--steps", "1", "--warmup", "0", "--compile-cache", "off"]  # fmt: skip


@pytest.fixture
def no_measuring(monkeypatch):
    """Any measurement fails the test: the error must come first."""
    monkeypatch.setattr(timing, "measure", lambda spec: pytest.fail("the bench started"))


def one_line_error(capsys, prog: str, *parts: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: "), err
    for part in parts:
        assert part in err, err
    return err


def test_a_model_option_the_model_does_not_take_is_an_error(tmp_path, no_measuring, capsys):
    # Before: a CSV of "skipped: ... does not take nope" rows and exit 3.
    out = tmp_path / "out"
    argv = TINY + ["--set", "mtl_resunet:nope=1", "--out", str(out)]
    assert main(argv) == 2
    err = one_line_error(capsys, "benchmarks.throughput", "--set: model 'mtl_resunet' does not "
                         "take nope; it takes ")  # fmt: skip
    assert "every model" not in err  # its own option: no hint about shared ones
    assert cli_main(["bench", *argv]) == 2
    one_line_error(capsys, "mtl-bench", "--set: model 'mtl_resunet' does not take nope")
    assert not out.exists()  # no CSV, not even its folder
    csv_path = tmp_path / "t.csv"
    assert main(TINY + ["--set", "nope=1", "--csv", str(csv_path)]) == 2  # a shared option too
    one_line_error(capsys, "benchmarks.throughput", "does not take nope")
    assert not csv_path.exists()


def test_a_shared_option_one_selected_model_does_not_take_says_how_to_aim_it(
    tmp_path, no_measuring, capsys
):
    argv = TINY[2:] + ["--models", "mtl_resunet,unet", "--set", "widths=(4,8,16,32,64)"]
    assert main(argv + ["--csv", str(tmp_path / "t.csv")]) == 2
    hint = "(KEY=VALUE goes to every model in --models; MODEL:KEY=VALUE to one)"
    one_line_error(capsys, "benchmarks.throughput", "model 'unet' does not take widths", hint)
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize(
    ("option", "instead"),
    [
        ("dtype=bf16", "--precision"),
        ("mtl_resunet:dtype=float32", "--precision"),
        ("precision=bf16", "--precision"),
        ("image_size=48", "--image-size"),
    ],
)
def test_a_compute_dtype_or_size_through_set_is_an_error(
    option, instead, tmp_path, no_measuring, capsys
):
    # Before: --set dtype=bf16 --precision fp32 was measured and its rows said fp32, while the
    # builder took the --set dtype (model_build.builder_kwargs lets a model kwarg win) and ran in
    # bf16.
    key = option.rpartition(":")[2].partition("=")[0]
    argv = TINY + ["--set", option, "--csv", str(tmp_path / "t.csv")]
    assert main(argv) == 2
    one_line_error(capsys, "benchmarks.throughput", f"--set {key}=", f"use {instead} instead")
    assert cli_main(["bench", *argv]) == 2
    one_line_error(capsys, "mtl-bench", f"use {instead} instead")
    assert not (tmp_path / "t.csv").exists()


def test_model_options_are_checked_as_the_training_path_checks_them():
    kwargs = bench_kwargs.parse_model_kwargs(["mtl_resunet:widths=(4,8)", "unet:base_width=4"])
    # A MODEL: for a registered model that is not selected is fine; its options are not used.
    bench_kwargs.check_model_options(["mtl_resunet"], kwargs)
    # A feature method checks its own options (and the bench skips it unbuilt): not checked here.
    bench_kwargs.check_model_options(["moon_features"], {"*": {"anything": 1}})
    with pytest.raises(KeyError, match="unknown model 'nosuch'"):
        bench_kwargs.check_model_options(["mtl_resunet"], {"nosuch": {"x": 1}})
    # ... but its option is checked: `unet:widths=1` (unet takes base_width) passed in silence.
    with pytest.raises(ValueError, match="widths"):
        bench_kwargs.check_model_options(["mtl_resunet"], {"unet": {"widths": 1}})


def test_unknown_models_are_errors_before_anything_is_written(tmp_path, no_measuring, capsys):
    out = tmp_path / "out"
    assert main(TINY[2:] + ["--models", "mtl_resunet,nosuch", "--out", str(out)]) == 2
    one_line_error(capsys, "benchmarks.throughput", "unknown model 'nosuch'; registered models: ")
    assert main(TINY + ["--set", "nosuch:x=1", "--out", str(out)]) == 2
    one_line_error(capsys, "benchmarks.throughput", "unknown model 'nosuch'")
    for spec in ("mtl_resunet,,unet", "mtl_resunet,", ",mtl_resunet"):  # a typo, not fewer models
        assert main(TINY[2:] + ["--models", spec, "--out", str(out)]) == 2
        one_line_error(capsys, "benchmarks.throughput", f"--models has an empty item in {spec!r}")
    assert not out.exists()


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--batch-sizes", "0", "--batch-sizes 0: must be positive integers"),
        ("--batch-sizes", "2,-4", "--batch-sizes 2,-4: must be positive integers"),
        ("--warmup", "-1", "--warmup -1: must be >= 0"),
    ],
)
def test_size_errors_name_the_option_and_value(
    option, value, message, tmp_path, no_measuring, capsys
):
    assert main(TINY + [option, value, "--csv", str(tmp_path / "t.csv")]) == 2
    err = one_line_error(capsys, "benchmarks.throughput", message)
    other = "--warmup" if option == "--batch-sizes" else "--batch-sizes"
    assert other not in err  # one option per message
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize(
    "option, message",
    [
        # Before: a row "error: TypeError ..." once the step ran, and exit 3.
        ("mtl_resunet:dropout=abc",
         "--set dropout='abc': model 'mtl_resunet' takes a number for dropout (default 0.5)"),
        ("unet:batch_norm=1", "--set batch_norm=1: model 'unet' takes true or false"),
        ("unet:base_width=8.5", "--set base_width=8.5: model 'unet' takes an integer"),
        # Before: a "skipped" row, and a ZeroDivisionError row.
        ("mtl_resunet:widths=abc",
         "--set widths='abc': model 'mtl_resunet' takes a list of integers for widths"),
        ("mtl_resunet:dropout=1.5",
         "--set dropout=1.5: model 'mtl_resunet' takes a rate in [0, 1) for dropout"),
        ("mtl_resunet:num_classes=0",  # before: "cannot be built: ZeroDivisionError"
         "--set num_classes=0: model 'mtl_resunet' takes an integer >= 1"),
        ("unet:base_width=0", "--set base_width=0: model 'unet' takes an integer >= 1"),
    ],
)  # fmt: skip
def test_option_values_a_model_refuses_are_errors(option, message, tmp_path, no_measuring, capsys):
    argv = TINY[2:] + ["--models", "mtl_resunet,unet", "--set", option]
    assert main(argv + ["--csv", str(tmp_path / "t.csv")]) == 2
    one_line_error(capsys, "benchmarks.throughput", message)
    assert not (tmp_path / "t.csv").exists()


def test_an_image_size_a_named_model_refuses_is_an_error(tmp_path, no_measuring, capsys):
    # Before: rows "skipped: ... needs image_size divisible by 16" and exit 3.
    argv = TINY + ["--set", "widths=(4,8,16,32,64)", "--image-size", "30"]
    assert main(argv + ["--csv", str(tmp_path / "t.csv")]) == 2
    why = "widths=(4, 8, 16, 32, 64): needs image_size divisible by 16"  # the name once
    one_line_error(
        capsys, "benchmarks.throughput", f"--image-size 30: model 'mtl_resunet' with {why}"
    )
    # Under --models all a size some models do not take is theirs to skip, not the run's end.
    got = bench_checks.check_model_values(
        ["mtl_resunet", "mobilenet"], {}, 30, ["fp32"], every=True
    )
    assert list(got) == ["mtl_resunet"] and "divisible by 16" in got["mtl_resunet"]  # the why


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--batch-sizes", "4,,8"], "argument --batch-sizes: empty item in '4,,8'"),
        (["--batch-sizes", ","], "argument --batch-sizes: empty item in ','"),
        (["--batch-sizes", "abc"], "argument --batch-sizes: expected comma-separated integers"),
        (["--image-size", "abc"], "argument --image-size: invalid int value: 'abc'"),
        (["--peer", "jax"], "argument --peer: invalid choice: 'jax'"),
    ],
)
def test_unparsable_options_are_one_line_errors(argv, message, no_measuring, capsys):
    # Before: `4,,8` silently became 4,8, and a bad type printed the whole usage first.
    for run, prog in ((main, "benchmarks.throughput"), (cli_main, "mtl-bench")):
        with pytest.raises(SystemExit) as e:
            run((["bench"] if run is cli_main else []) + TINY + argv)
        assert e.value.code == 2
        one_line_error(capsys, prog, message)


def test_device_counts_without_a_strategy_that_uses_them_are_an_error(
    tmp_path, no_measuring, capsys
):
    # Before: --devices 3 with --parallel none ran on one device without a word.
    argv = TINY + ["--devices", "3", "--csv", str(tmp_path / "t.csv")]
    assert main(argv) == 2
    one_line_error(capsys, "benchmarks.throughput", "--devices 3: only --parallel jit and pmap")
    assert main(argv + ["--parallel", "none,fold"]) == 2
    one_line_error(capsys, "benchmarks.throughput", "--parallel none,fold runs on one")
