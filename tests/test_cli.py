"""The command line as a user drives it: exit codes, one-line errors, files written."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mtl_bench.cli import main
from mtl_bench.pred_masks import load_predicted_masks
from mtl_bench.provenance import host_cpu

TINY = [
    "--set", "synthetic_n=24", "--set", "image_size=32", "--set", "epochs=1",
    "--set", "batch_size=8", "--set", "preprocess=none", "--set", "folds=2",
    "--set", "model_kwargs.widths=(4,8,16,32,64)", "--quiet",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTL_BENCH_COMPILE_CACHE", "0")  # conftest already set one up


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mtl-bench: error: "), err
    return err[0]


def test_models_lists_the_proposed_model(capsys):
    assert main(["models"]) == 0
    assert "mtl_resunet" in capsys.readouterr().out


def test_synth_then_check(tmp_path, capsys):
    root = tmp_path / "phantom"
    assert main(["data", "synth", "--out", str(root), "--n", "9", "--image-size", "32"]) == 0
    assert (root / "benign").is_dir() and (root / "normal").is_dir()
    capsys.readouterr()
    assert main(["data", "check", str(root)]) == 0
    assert "benign" in capsys.readouterr().out
    assert main(["data", "check", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report, dict)


def test_check_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in _one_line_error(capsys)


def test_check_json_missing_folder_is_still_json(tmp_path, capsys):
    # A script reading --json output must get JSON even when the folder is not there.
    assert main(["data", "check", str(tmp_path / "nowhere"), "--json"]) == 2
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["ok"] is False and "nowhere" in report["error"]
    assert captured.err.startswith("mtl-bench: error: ")


def test_bad_set_is_one_line(tmp_path, capsys):
    code = main(["cv", "--model", "mtl_resunet", "--out", str(tmp_path), "--set", "epoch=3"])
    assert code == 2
    assert "unknown config key 'epoch'" in _one_line_error(capsys)


def test_bad_value_is_one_line_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["cv", "--model", "mtl_resunet", "--out", str(out), "--set", "batch_size=0"])
    assert code == 2
    assert "batch_size=0: must be >= 1" in _one_line_error(capsys)
    assert not out.exists()
    # So is a combination fold-parallel training cannot run.
    argv = ["cv", "--model", "mtl_resunet", "--out", str(out), "--fold-parallel"]
    assert main([*argv, "--set", "val_fraction=0.2"]) == 2
    assert "fold_parallel does not support val_fraction > 0" in _one_line_error(capsys)
    assert not out.exists()


def test_unknown_model_is_one_line(tmp_path, capsys):
    assert main(["cv", "--model", "resnet9000", "--out", str(tmp_path)]) == 2
    assert "unknown model 'resnet9000'" in _one_line_error(capsys)


def test_folds_then_train_one_fold_then_tables(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["data", "folds", "--out", str(out), *TINY[:-1]]) == 0
    manifest = json.loads((out / "folds.json").read_text())
    assert manifest["k"] == 2
    assert main(["train", "--model", "mtl_resunet", "--fold", "1", "--out", str(out), *TINY]) == 0
    assert (out / "mtl_resunet" / "fold_1.json").exists()
    assert not (out / "mtl_resunet" / "fold_0.json").exists()
    record = json.loads((out / "mtl_resunet" / "fold_1.json").read_text())
    assert record["host_cpu"] == host_cpu() and record["device_kind"] == "cpu"
    capsys.readouterr()
    assert main(["train", "--model", "mtl_resunet", "--fold", "7", "--out", str(out), *TINY]) == 2
    assert "out of range" in _one_line_error(capsys)
    # Table 1 from one finished fold: the missing fold is marked, never invented.
    assert main(["tables", "--results", str(out), "--format", "md"]) == 0
    captured = capsys.readouterr()
    assert "Table 1" in captured.out and "not run" in captured.out
    assert (out / "tables" / "table1.md").exists() and not (out / "tables" / "table1.csv").exists()
    # No three-class results here: that table is left out, and stderr says so.
    assert not (out / "tables" / "table_3class.md").exists()
    # Nor the hyper-parameter tables, which list baselines only: every row would read "not run".
    assert not (out / "tables" / "table3.md").exists()
    assert "no results for table3, table5, table_s1, table_s2, table_3class: not written" in (
        captured.err
    )
    assert main(["tables", "--results", str(out), "--format", "xls"]) == 2
    assert "unknown table format 'xls'" in _one_line_error(capsys)


def test_tables_without_results_is_one_line(tmp_path, capsys):
    (tmp_path / "unet").mkdir()
    assert main(["tables", "--results", str(tmp_path)]) == 2
    assert "no method of any table has a fold_K.json result" in _one_line_error(capsys)
    assert not (tmp_path / "tables").exists()
    assert main(["tables", "--results", str(tmp_path / "nowhere")]) == 2
    assert "results folder does not exist" in _one_line_error(capsys)


def test_data_check_reports_problems(tmp_path, capsys):
    root = tmp_path / "busi"
    for cls in ("benign", "malignant", "normal"):
        (root / cls).mkdir(parents=True)
    from PIL import Image

    Image.new("L", (16, 16), 0).save(root / "benign" / "benign (1).png")  # no mask
    assert main(["data", "check", str(root)]) == 1
    assert "benign (1)" in capsys.readouterr().out


def test_version_names_the_package_and_jax(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("mtl-bench 0.1.0 (") and "jax " in out and "flax " in out


def test_data_folds_warns_in_one_line_and_skips_bad_images_when_asked(tmp_path, capsys):
    root = tmp_path / "busi"
    assert main(["data", "synth", "--out", str(root), "--n", "40", "--image-size", "32"]) == 0
    for suffix in (".png", "_mask.png"):  # one benign image filed as malignant too: leakage
        shutil.copy(root / "benign" / f"benign (1){suffix}", root / "malignant" / f"x{suffix}")
    (root / "malignant" / "malignant (2).png").write_bytes(b"not a png")
    capsys.readouterr()
    argv = ["data", "folds", "--data", str(root), "--out", str(tmp_path / "r")]
    argv += ["--set", "image_size=32", "--set", "preprocess=none"]
    assert main(argv) == 2
    assert "malignant (2).png" in _one_line_error(capsys)
    assert main([*argv, "--set", "skip_bad_images=true"]) == 0
    err = capsys.readouterr().err.splitlines()
    skipped = [line for line in err if "malignant (2).png" in line]
    assert len(skipped) == 1 and skipped[0].startswith("mtl-bench: warning: 1 file skipped")
    leak = [line for line in err if "label leakage" in line]
    assert len(leak) == 1 and leak[0].startswith("mtl-bench: warning: 1 group(s) of duplicate")
    assert "benign/benign (1) = malignant/x" in leak[0]


def test_os_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["data", "synth", "--out", str(tmp_path / "file" / "sub"), "--n", "9"]) == 2
    assert "file is a file, not a folder" in _one_line_error(capsys)  # checked before writing


def test_output_into_a_closed_pipe_is_no_traceback():
    # `mtl-bench models | head -1`: the reader goes away; no BrokenPipeError traceback.
    code = "from mtl_bench.cli import main; import sys; sys.exit(main(['models']))"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    child.stdout.close()  # nothing will read what it prints
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 1 and "Traceback" not in err and "BrokenPipe" not in err


def test_p_adjust_choices_are_the_statistics_ones():
    # The CLI lists them literally (stats imports scipy, which the parser should not wait for).
    from mtl_bench.cli import build_parser
    from mtl_bench.stats import P_ADJUST

    parser = build_parser()
    for command in ("tables", "reproduce"):
        args = parser.parse_args([command, "--p-adjust", "none"])
        assert args.p_adjust == "none"
        sub = parser._subparsers._group_actions[0].choices[command]
        (action,) = [a for a in sub._actions if a.dest == "p_adjust"]
        # Default None: holm, or in a reproduce folder what its tables were built with.
        assert tuple(action.choices) == P_ADJUST and action.default is None


@pytest.mark.slow
def test_cv_fold_parallel_matches_sequential_cv_resumes_and_figures_redraw(tmp_path, capsys):
    seq, par = tmp_path / "seq", tmp_path / "par"
    assert main(["cv", "--model", "mtl_resunet", "--out", str(seq), *TINY]) == 0
    assert main(["cv", "--model", "mtl_resunet", "--out", str(par), "--fold-parallel", *TINY]) == 0
    for fold in (0, 1):
        a = json.loads((seq / "mtl_resunet" / f"fold_{fold}.json").read_text())
        b = json.loads((par / "mtl_resunet" / f"fold_{fold}.json").read_text())
        assert a["per_image"]["id"] == b["per_image"]["id"]  # the same test images
        for task in ("segmentation", "classification"):
            for key, value in a["metrics"][task].items():
                assert b["metrics"][task][key] == pytest.approx(value, abs=2e-3), (task, key)
        assert (par / "mtl_resunet" / f"fold_{fold}_curve.csv").exists()
        # The predicted test masks too (overlays, feature methods on predicted masks).
        masks_a = load_predicted_masks(seq / "mtl_resunet" / f"fold_{fold}_masks.npz")
        masks_b = load_predicted_masks(par / "mtl_resunet" / f"fold_{fold}_masks.npz")
        assert list(masks_b) == a["per_image"]["id"]
        agree = np.mean([np.mean(masks_a[k] == masks_b[k]) for k in masks_a])
        assert agree > 0.99
    # A finished run resumes to nothing: the fold files are kept as they are.
    before = (par / "mtl_resunet" / "fold_1.json").read_text()
    capsys.readouterr()
    argv = ["cv", "--model", "mtl_resunet", "--out", str(par), "--fold-parallel", "--resume"]
    assert main([*argv, *TINY[:-1]]) == 0
    assert "fold 1: done already" in capsys.readouterr().err
    assert (par / "mtl_resunet" / "fold_1.json").read_text() == before
    # `mtl-bench figures` on a run folder rebuilds the images from the stored config (overlays).
    assert main(["figures", "--results", str(par)]) == 0
    assert (par / "figures" / "segmentation_overlays.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, text",
    [
        (["bench", "--bogus"], "unrecognized arguments: --bogus (`mtl-bench bench --help`"),
        (["cv", "--folds"], "argument --folds: expected one argument (`mtl-bench cv --help`"),
        (["nosuch"], "invalid choice: 'nosuch'"),
        (["data", "folds", "--k", "x"], "--k x (`mtl-bench data folds --help`"),
        (["weights", "import", "--nope"], "(`mtl-bench weights import --help`"),
        # A missing subcommand is named by its choices, not by argparse's "data_cmd".
        (["data"], "required: {check,synth,prepare,folds} (`mtl-bench data --help`"),
        (["bench", "--batch-sizes", "x"], "got 'x' (`mtl-bench bench --help`"),
    ],
)
def test_a_usage_mistake_is_one_line_naming_the_help(argv, text, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and text in _one_line_error(capsys)


def test_only_process_0_says_where_the_folds_were_written(tmp_path, monkeypatch, capsys):
    # In a multi-process run process 0 writes the fold files; the others must not name them.
    import jax

    import mtl_bench.cv

    written = {0: tmp_path / "mtl_resunet" / "fold_0.json"}
    monkeypatch.setattr(mtl_bench.cv, "run_cv", lambda *a, **k: written)
    argv = ["cv", "--model", "mtl_resunet", "--out", str(tmp_path), "--preset", "smoke"]
    assert main(argv) == 0
    assert capsys.readouterr().out == f"fold 0: {written[0]}\n"
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    assert main(argv) == 0
    assert capsys.readouterr().out == ""


def test_synth_says_when_it_replaces_an_earlier_phantom(tmp_path, capsys):
    # write_phantom clears the earlier phantom's files: a smaller one used to replace it silently.
    root = tmp_path / "phantom"
    synth = ["data", "synth", "--out", str(root), "--image-size", "32"]
    assert main([*synth, "--n", "9"]) == 0
    assert capsys.readouterr().out == (
        f"wrote the phantom to {root} (9 images, 32², seed 0, difficulty 0.5)\n"
    )
    assert main([*synth, "--n", "6"]) == 0
    assert capsys.readouterr().out == (
        f"wrote the phantom to {root} (6 images, 32², seed 0, difficulty 0.5), replacing the "
        "one there (9 images, 32², seed 0, difficulty 0.5)\n"
    )


def test_figures_says_where_it_looked_for_throughput_csvs(tmp_path, capsys):
    # bench writes results/throughput, not beside a cv results folder: no plot needs a word.
    from fixtures_results import write_fixture_results

    write_fixture_results(tmp_path, ["mtl_resunet"], curve_epochs=3)
    assert main(["figures", "--results", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert f"figures: no throughput plot: no CSVs in {tmp_path / 'throughput'} (give " in err
