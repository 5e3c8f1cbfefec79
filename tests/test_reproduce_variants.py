"""``mtl-bench reproduce``'s variants: fold-parallel training of a method's folds, the
three-class runs, and the time a side-by-side run counts."""

import json

import pytest
from reproduce_fixture import TINY

from mtl_bench.cli import main

pytestmark = pytest.mark.usefixtures("reproduce_env")  # conftest.py


def test_fold_parallel_trains_a_methods_folds_together_and_cleans_up(tmp_path, monkeypatch):
    """Under ``--set fold_parallel=true`` one ``run_cv`` call trains all of a method's unfinished
    folds side by side (not each fold alone on a fold axis of 1); baselines' shared checkpoint
    is removed as their per-fold ones are; a method without a training loop runs fold by fold."""
    import jax

    import mtl_bench.cv

    calls = []
    real_run_cv = mtl_bench.cv.run_cv

    def run_cv(cfg, out, *, folds, **kwargs):
        calls.append((cfg.model, list(folds)))
        return real_run_cv(cfg, out, folds=folds, **kwargs)

    monkeypatch.setattr(mtl_bench.cv, "run_cv", run_cv)
    cleared = []  # compiled programs are dropped between methods, not between a method's folds
    real_clear = jax.clear_caches
    monkeypatch.setattr(jax, "clear_caches", lambda: (cleared.append(calls[-1][0]), real_clear()))
    out = tmp_path / "r"
    argv = ["reproduce", "--methods", "mtl_resunet,unet,moon_features", "--out", str(out), *TINY]
    argv += ["--set", "fold_parallel=true", "--set", "unet:model_kwargs.base_width=4"]
    assert main(argv) == 0
    assert calls == [
        ("mtl_resunet", [0, 1]), ("unet", [0, 1]), ("moon_features", [0]), ("moon_features", [1])
    ]  # fmt: skip
    assert cleared == ["mtl_resunet", "unet"]
    for method in ("mtl_resunet", "unet"):
        for k in (0, 1):
            rec = json.loads((out / method / f"fold_{k}.json").read_text())
            assert rec["folds_trained_together"] == [0, 1], (method, k)
    assert (out / "mtl_resunet" / "ckpt_folds_0_1" / "last").is_dir()  # ours kept, for predict
    assert not list((out / "unet").glob("ckpt_*"))  # a baseline's removed

    # Resume trains only what is missing, side by side again where more than one fold is.
    (out / "mtl_resunet" / "fold_1.json").unlink()
    calls.clear()
    assert main([*argv, "--resume"]) == 0
    assert calls == [("mtl_resunet", [1])]
    rec = json.loads((out / "mtl_resunet" / "fold_1.json").read_text())
    assert rec["folds_trained_together"] == [1]


def test_a_side_by_side_runs_time_counts_once_per_method(tmp_path):
    from mtl_bench.config import RunConfig
    from mtl_bench.reproduce_outputs import method_seconds as _seconds
    from mtl_bench.reproduce_plan import Job

    def write(method, k, wall, together=None):
        rec = {"wall_time_s": wall}
        if together is not None:
            rec |= {"fold_parallel": True, "folds_trained_together": together}
        (tmp_path / method).mkdir(exist_ok=True)
        (tmp_path / method / f"fold_{k}.json").write_text(json.dumps(rec))

    write("a", 0, 10.0)
    write("a", 1, 12.0)  # in turn: summed
    write("b", 0, 30.0, [0, 1, 2])
    write("b", 1, 31.0, [0, 1, 2])  # one run of three folds (each file: that run's time)...
    write("b", 2, 7.0, [2])  # ...and a later rerun of fold 2 alone
    jobs = [Job(m, RunConfig(model="unet")) for m in ("a", "b", "c")]
    assert _seconds(jobs, tmp_path) == {"a": 22.0, "b": 38.0}  # c: nothing finished


@pytest.mark.slow
def test_three_class_runs_get_their_own_folder_and_table(tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["reproduce", "--methods", "mtl_resunet", "--three-class", "--out", str(out), *TINY]
    assert main(argv) == 0
    binary = json.loads((out / "mtl_resunet" / "fold_0.json").read_text())
    three = json.loads((out / "three_class" / "mtl_resunet@3class" / "fold_0.json").read_text())
    assert three["class_names"] == ["benign", "malignant", "normal"]
    assert three["fold_manifest_hash"] != binary["fold_manifest_hash"]  # its own manifest
    table = (out / "three_class" / "tables" / "table_3class.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| mtl_resunet@3class"))
    assert "not run" not in row and "ref." in row
    assert "Three-class" in capsys.readouterr().out


def test_tables_without_p_adjust_keeps_a_reproduce_folders_own(tmp_path, monkeypatch, capsys):
    import mtl_bench.tables

    used = []

    def build_tables(results, **kwargs):
        used.append(kwargs["p_adjust"])
        return {}

    monkeypatch.setattr(mtl_bench.tables, "build_tables", build_tables)
    assert main(["tables", "--results", str(tmp_path)]) == 0  # not a reproduce folder: holm
    (tmp_path / "reproduce.json").write_text(json.dumps({"preset": "smoke", "p_adjust": "none"}))
    capsys.readouterr()
    assert main(["tables", "--results", str(tmp_path)]) == 0
    assert "--p-adjust none, as " + f"{tmp_path}'s reproduce.json says" in capsys.readouterr().err
    assert main(["tables", "--results", str(tmp_path), "--p-adjust", "holm"]) == 0
    (tmp_path / "reproduce.json").write_text("{")
    assert main(["tables", "--results", str(tmp_path)]) == 0
    assert (
        "reproduce.json: unreadable (JSONDecodeError): --p-adjust holm" in capsys.readouterr().err
    )
    assert used == ["holm", "none", "holm", "holm"]
