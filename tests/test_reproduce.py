"""``mtl-bench reproduce``: the plan of each preset, and one tiny reproduction end to end
(tables and figures written, a failing method reported while the others are kept, resume);
fold-parallel and three-class runs: test_reproduce_variants.py."""

import json

import pytest
from reproduce_fixture import TINY

from mtl_bench.cli import main
from mtl_bench.registry import list_models
from mtl_bench.reproduce_plan import PROPOSED, THREE_CLASS_DIR, plan
from mtl_bench.table_specs import DEFAULT_SPECS, THREE_CLASS_TAG

pytestmark = pytest.mark.usefixtures("reproduce_env")  # conftest.py


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mtl-bench: error: "), err
    return err[0]


def test_smoke_plan_feeds_every_table_on_shared_folds():
    jobs = plan("smoke")
    methods = [j.method for j in jobs]
    assert methods[0] == PROPOSED  # the first run of the folder makes its fold manifest
    for spec in DEFAULT_SPECS:
        if THREE_CLASS_TAG in spec.reference or spec.supplementary:
            continue
        rows = set(spec.row_methods(PROPOSED)) - set(spec.fixed_rows)
        assert rows & set(methods), f"{spec.name} gets no method from the smoke preset"
    shared = {(j.cfg.data, j.cfg.synthetic_n, j.cfg.folds, j.cfg.fold_seed) for j in jobs}
    assert shared == {("synthetic", 96, 2, 0)}
    assert {j.cfg.image_size for j in jobs} == {32}
    moon = next(j for j in jobs if j.method == "moon_features")
    assert moon.cfg.epochs == 0 and moon.cfg.preprocess == "none"  # its own settings stay
    assert next(j for j in jobs if j.method == "unet").cfg.model_kwargs["base_width"] == 8
    # The fold files tell this protocol from `cv --preset smoke` (64², other epochs).
    assert {j.cfg.preset for j in jobs} == {"reproduce-smoke"}
    assert {j.cfg.preset for j in plan("paper", "unet")} == {"reproduce-paper"}


def test_all_methods_and_per_method_overrides():
    jobs = plan("phantom", "all", overrides=["epochs=4", "unet:model_kwargs.base_width=4"])
    by = {j.method: j.cfg for j in jobs}
    assert set(by) == set(list_models()) and jobs[0].method == PROPOSED
    assert by["inception_v3"].image_size == 75 and by["unet"].image_size == 32
    assert by["unet"].model_kwargs["base_width"] == 4
    assert by["mtl_resunet"].epochs == 4 and by["moon_features"].epochs == 0
    assert all(j.subdir == "" for j in jobs)


def test_paper_plan_adds_the_three_class_runs():
    jobs = plan("paper", "mtl_resunet,resnet50,unet")
    three = [j for j in jobs if j.subdir == THREE_CLASS_DIR]
    assert [j.method for j in three] == ["mtl_resunet@3class", "resnet50@3class"]
    assert {j.cfg.class_set for j in three} == {"three_class"}
    assert next(j for j in jobs if j.method == "unet").cfg.image_size == 256
    assert not any(j.subdir for j in plan("paper", "unet", three_class=False))


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--methods", "mtl_resunet,nope"], "unknown method 'nope' in --methods"),
        (["--methods", "mtl_resunet,,unet"], "--methods has an empty item in 'mtl_resunet,,unet'"),
        (["--set", "unet:epochs=1"], "'unet' is not a method of this reproduction"),
        (["--set", "epoch=1"], "unknown config key 'epoch'"),
        (["--set", "epochs=0"], "mtl_resunet: epochs=0: must be >= 1"),
        (["--set", "model_kwargs.no_such_option=1"], "does not take no_such_option"),
        (["--data", "/nonexistent/busi"], "/nonexistent/busi"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, argv, expected):
    out = tmp_path / "r"
    assert main(["reproduce", "--methods", "mtl_resunet", "--out", str(out), *argv]) == 2
    assert expected in _one_line_error(capsys)
    assert not out.exists()  # nothing is written before the options are valid


def test_reproduce_end_to_end_failure_and_resume(tmp_path, capsys, monkeypatch):
    import mtl_bench.cv

    def fit_fold(cfg, *args, **kwargs):  # unet fails in training (its options are all valid)
        if cfg.model == "unet":
            raise RuntimeError("out of memory, say")
        return real_fit_fold(cfg, *args, **kwargs)

    real_fit_fold = mtl_bench.cv.fit_fold
    monkeypatch.setattr(mtl_bench.cv, "fit_fold", fit_fold)
    out = tmp_path / "r"
    # unet fails; the two other methods still finish.
    argv = ["reproduce", "--methods", "mtl_resunet,moon_features,unet", "--out", str(out), *TINY]
    argv += ["--set", "unet:lr=2e-3"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "FAILED unet: fold 1/2: RuntimeError" in captured.err
    assert "out of memory, say" in captured.err
    assert "Table 1" in captured.out and "Table 6" in captured.out
    folds = sorted(out.glob("*/fold_*.json"))  # the binary runs
    assert [f.relative_to(out).as_posix() for f in folds] == [
        "moon_features/fold_0.json",
        "moon_features/fold_1.json",
        "mtl_resunet/fold_0.json",
        "mtl_resunet/fold_1.json",
    ]
    hashes = {json.loads(f.read_text())["fold_manifest_hash"] for f in folds}
    assert len(hashes) == 1  # one shared fold manifest
    table6 = (out / "tables" / "table6.md").read_text()
    moon_row = next(line for line in table6.splitlines() if line.startswith("| moon_features"))
    assert "not run" not in moon_row
    unet_row = next(line for line in (out / "tables" / "table4.md").read_text().splitlines()
                    if line.startswith("| unet "))  # fmt: skip
    assert "| failed " in unet_row and "failed: fold 1/2: RuntimeError: out of memory" in unet_row
    assert (out / "unet" / "failed.txt").is_file()
    assert (out / "tables" / "table1.csv").exists() and (out / "tables" / "table7.tex").exists()
    assert (out / "figures" / "roc.png").stat().st_size > 0
    assert (out / "figures" / "segmentation_overlays.png").stat().st_size > 0
    assert (out / "mtl_resunet" / "ckpt_fold_0").is_dir()  # the proposed model's are kept
    assert not (out / "tables" / "table_3class.md").exists()  # no three-class runs asked for
    assert not (out / "tables" / "table_s1.md").exists()  # supplementary: none of its methods ran

    # Without --resume a used folder is refused; with it, finished folds are not rerun.
    assert main(argv) == 2
    assert "pass --resume" in _one_line_error(capsys)
    mtimes = {f: f.stat().st_mtime_ns for f in folds}
    assert main([*argv, "--resume"]) == 1  # unet fails again, nothing else runs
    assert {f: f.stat().st_mtime_ns for f in folds} == mtimes
    assert "FAILED unet" in capsys.readouterr().err

    # A finished method under other settings would mix protocols in one folder: refused.
    assert main([*argv, "--set", "mtl_resunet:lr=0.5", "--resume"]) == 2
    err = _one_line_error(capsys)
    assert "mtl_resunet/fold_0.json: finished with other settings (lr: " in err
    # Its advice leads out: "drop --resume" would only meet the not-empty refusal above.
    assert err.endswith(
        f"to retrain mtl_resunet with the new settings, delete {out / 'mtl_resunet'} and "
        "resume; or use another --out"
    )
    # The failed method, fixed (here: its failure undone) and with another --set: it runs now.
    monkeypatch.undo()
    assert main([*argv[:-2], "--set", "unet:lr=3e-3", "--resume", "--p-adjust", "none"]) == 0
    assert {f: f.stat().st_mtime_ns for f in folds} == mtimes  # finished folds untouched
    assert json.loads((out / "unet" / "fold_1.json").read_text())["config"]["lr"] == 3e-3
    unet_row = next(line for line in (out / "tables" / "table4.md").read_text().splitlines()
                    if line.startswith("| unet "))  # fmt: skip
    assert "not run" not in unet_row and "failed" not in unet_row
    assert "not adjusted for multiple comparisons" in (out / "tables" / "table4.md").read_text()
    assert not (out / "unet" / "failed.txt").exists()  # it ran: the marker is gone
    # The folder's record keeps what it was started with; the latest call is beside it.
    record = json.loads((out / "reproduce.json").read_text())
    assert "unet:lr=2e-3" in record["overrides"] and "unet:lr=3e-3" not in record["overrides"]
    assert "unet:lr=3e-3" in record["latest"]["overrides"] and record["p_adjust"] == "none"
    # A later --resume without --p-adjust keeps the tables' adjustment (it used to go back to
    # holm without a word).
    assert main([*argv[:-2], "--set", "unet:lr=3e-3", "--resume"]) == 0
    assert "not adjusted for multiple comparisons" in (out / "tables" / "table4.md").read_text()
    assert main(["tables", "--results", str(out), "--reference", "unet"]) == 2
    assert "--reference 'unet' has only mask outputs" in _one_line_error(capsys)
    assert main(["tables", "--results", str(out), "--reference", "nope"]) == 2
    assert "--reference 'nope' has no results in" in _one_line_error(capsys)


def test_a_fold_bar_nests_in_the_reproduce_bar_even_when_quiet(monkeypatch):
    import io

    from rich.console import Console
    from rich.progress import Progress

    from mtl_bench import progress

    outer = Progress(console=Console(file=io.StringIO()))
    monkeypatch.setattr(progress, "_ACTIVE", [outer])
    with progress.progress_bar(10, "fold 0", quiet=True) as bar:  # run_cv is called quietly
        bar.advance(3)
        (task,) = outer.tasks
        assert task.description == "  fold 0" and task.completed == 3 and task.total == 10
    assert outer.tasks == []  # removed when the fold is done
    monkeypatch.setattr(progress, "_ACTIVE", [])
    with progress.progress_bar(10, "fold 0", quiet=True) as bar:  # alone and quiet: nothing
        assert bar._p is None


def test_a_bad_p_adjustment_is_refused_before_any_work(tmp_path):
    from mtl_bench.reproduce import reproduce

    with pytest.raises(ValueError, match="unknown p adjustment 'fdr'"):
        reproduce("smoke", out=tmp_path / "r", p_adjust="fdr", quiet=True)
    assert not (tmp_path / "r").exists()
