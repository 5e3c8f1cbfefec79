"""The bench's option checks (``benchmarks/bench_args.py``): a model option a selected model does
not take and a bad size are one-line errors naming the option and value, given before anything is
measured or written, on both command lines (``mtl-bench bench`` and ``benchmarks.throughput``)."""

import pytest

from benchmarks import bench_args, timing
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


def test_model_options_are_checked_as_the_training_path_checks_them():
    kwargs = bench_args.parse_model_kwargs(["mtl_resunet:widths=(4,8)", "unet:base_width=4"])
    # A MODEL: for a registered model that is not selected is fine; its options are not used.
    bench_args.check_model_options(["mtl_resunet"], kwargs)
    # A feature method checks its own options (and the bench skips it unbuilt): not checked here.
    bench_args.check_model_options(["moon_features"], {"*": {"anything": 1}})
    with pytest.raises(KeyError, match="unknown model 'nosuch'"):
        bench_args.check_model_options(["mtl_resunet"], {"nosuch": {"x": 1}})


def test_unknown_models_are_errors_before_anything_is_written(tmp_path, no_measuring, capsys):
    out = tmp_path / "out"
    assert main(TINY[2:] + ["--models", "mtl_resunet,nosuch", "--out", str(out)]) == 2
    one_line_error(capsys, "benchmarks.throughput", "unknown model 'nosuch'; registered models: ")
    assert main(TINY + ["--set", "nosuch:x=1", "--out", str(out)]) == 2
    one_line_error(capsys, "benchmarks.throughput", "unknown model 'nosuch'")
    assert not out.exists()


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--batch-sizes", "0", "--batch-sizes 0: must be positive integers"),
        ("--batch-sizes", "2,-4", "--batch-sizes 2,-4: must be positive integers"),
        ("--batch-sizes", ",", "--batch-sizes '': must be positive integers"),
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
