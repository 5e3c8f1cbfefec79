"""Command-line inputs a fuzzing user found unrefused: empty paths (the working folder got the
results), an option and a ``--set`` of one field that disagree (the option won silently),
``--set preset=`` (a relabelled recipe), and a size that ran out of memory (a traceback)."""

from __future__ import annotations

import pytest

from mtl_bench import cli
from mtl_bench.cli import main


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["cv", "--model", "mtl_resunet", "--out", ""], "--out"),
        (["cv", "--model", "mtl_resunet", "--data", ""], "--data"),
        (["predict", "x.png", "--checkpoint", "c", "--out", ""], "--out"),
        (["data", "prepare", "--dataset", "busi_synthetic", "--data-dir", ""], "--data-dir"),
        (["tables", "--results", " "], "--results"),
        (["data", "check", ""], "ROOT"),
    ],
)
def test_an_empty_path_is_refused_in_one_line(argv, flag, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mtl-bench: error: {flag} ") and "an empty path" in err
    assert err.count("\n") == 1 and list(tmp_path.iterdir()) == []  # nothing written here


@pytest.mark.parametrize(
    "extra, said",
    [
        (["--precision", "bf16", "--set", "precision=fp32"], "--precision bf16 and --set"),
        (["--data", "synthetic", "--set", "data=/elsewhere"], "--data synthetic and --set"),
        (["--set", "preset=paper"], "the preset is chosen by --preset"),
    ],
)
def test_an_option_and_a_set_of_one_field_must_agree(extra, said, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["cv", "--model", "mtl_resunet", "--out", str(out), *extra]) == 2
    assert said in capsys.readouterr().err and not out.exists()


def test_an_agreeing_set_is_fine(tmp_path, capsys):
    argv = ["cv", "--model", "mtl_resunet", "--out", str(tmp_path / "r"), "--precision", "bf16"]
    assert main([*argv, "--set", "precision=bf16", "--set", "epochs=0"]) == 2
    assert "epochs=0: must be >= 1" in capsys.readouterr().err  # got past the agreement check


def test_running_out_of_host_memory_is_one_line(monkeypatch, capsys):
    def huge(args):
        raise MemoryError("Unable to allocate 894. GiB for an array with shape (96, 100000)")

    monkeypatch.setattr(cli, "_run", huge)
    assert main(["data", "synth", "--out", "x", "--image-size", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtl-bench: error: out of host memory (Unable to allocate 894. GiB")
    assert err.count("\n") == 1


def test_a_file_where_a_folder_is_made_is_said_so(tmp_path, capsys):
    # Was "[Errno 17] File exists: 'R/tables'" (tables, figures) or "[Errno 20] Not a
    # directory" (data prepare --data-dir FILE): the option's problem, in the OS's words.
    pytest.importorskip("tensorflow_datasets")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "gone").symlink_to(tmp_path / "unmounted" / "run")
    argv = ["data", "prepare", "--dataset", "busi_synthetic", "--image-size", "32", "--data-dir"]
    for out, said in (
        (tmp_path / "afile", "a file where a folder is needed on this path"),
        (tmp_path / "gone", f"gone: a broken link (to {tmp_path / 'unmounted' / 'run'})"),
    ):
        assert main([*argv, str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mtl-bench: error: ") and said in err and err.count("\n") == 1


def test_predict_refuses_a_device_as_input(tmp_path, capsys):
    assert main(["predict", "/dev/zero", "--checkpoint", "c", "--out", str(tmp_path / "p")]) == 2
    said = "/dev/zero: not a regular file or folder (a device, pipe or socket)"
    assert capsys.readouterr().err == f"mtl-bench: error: {said}\n"


@pytest.mark.parametrize("command", [["reproduce", "--preset", "smoke"], ["data", "folds"]])
def test_reproduce_and_data_folds_refuse_a_disagreeing_set_data(command, tmp_path, capsys):
    # Their --set data= had won over --data in silence (review).
    out = tmp_path / "out"
    argv = [*command, "--data", str(tmp_path / "A"), "--set", "data=/B", "--out", str(out)]
    assert main(argv) == 2
    assert f"--data {tmp_path / 'A'} and --set 'data=/B' disagree" in capsys.readouterr().err
    assert not out.exists()
