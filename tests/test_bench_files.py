"""Where bench writes: a CSV name of its own per run, and no two runs rewriting one CSV."""

import csv

import pytest
from lock_holder import held_elsewhere

from benchmarks import timing
from benchmarks.csv_claim import claimed, new_csv_path
from benchmarks.throughput import main
from benchmarks.throughput_io import COLUMNS, read_csv


def test_two_runs_in_one_second_get_two_names(tmp_path):
    first = new_csv_path(tmp_path / "throughput", "cpu-20261129-145222")
    second = new_csv_path(tmp_path / "throughput", "cpu-20261129-145222")
    assert (first.name, second.name) == ("cpu-20261129-145222.csv", "cpu-20261129-145222-2.csv")
    with open(second, newline="") as f:  # a header at once: readable while the run measures
        assert tuple(csv.DictReader(f).fieldnames) == COLUMNS
    assert read_csv(first) == []


def test_a_second_bench_on_a_claimed_csv_is_refused_and_the_file_kept(
    tmp_path, monkeypatch, capsys
):
    # Each run rewrites its whole CSV: two at once used to keep only the last writer's rows.
    monkeypatch.setattr(timing, "measure", lambda spec: {"train_img_per_s": 1.0, "status": "ok"})
    path = tmp_path / "shared.csv"
    argv = ["--models", "mtl_resunet", "--batch-sizes", "2", "--precision", "fp32",
            "--image-size", "32", "--csv", str(path), "--compile-cache", "off"]  # fmt: skip
    assert main(argv) == 0
    with held_elsewhere(path.with_name(f".{path.name}.lock")) as pid:
        capsys.readouterr()
        assert main([*argv[:3], "4", *argv[4:]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"benchmarks.throughput: error: {path}: another run is writing it "
            f"(pid {pid}); give another --csv or --out, or wait for it to finish"
        ]
    assert [r["batch_size"] for r in read_csv(path)] == ["2"]
    # Once the other run is done, the file is free again and keeps both runs' rows.
    assert main([*argv[:3], "4", *argv[4:]]) == 0
    assert [r["batch_size"] for r in read_csv(path)] == ["2", "4"]
    assert not list(tmp_path.glob(".*.lock"))  # no lock file left behind


def test_the_claim_is_released_when_the_run_fails(tmp_path):
    path = tmp_path / "t.csv"
    with pytest.raises(RuntimeError), claimed(path):
        raise RuntimeError("a run that failed")
    with claimed(path):  # free again
        pass


def test_a_run_that_fails_before_its_first_row_leaves_no_empty_csv(tmp_path, monkeypatch):
    def fails(*a, **k):
        raise ValueError("the model failed to build")

    import benchmarks.throughput as throughput

    monkeypatch.setattr(throughput, "measure_model", fails)
    argv = ["--models", "mtl_resunet", "--batch-sizes", "2", "--precision", "fp32",
            "--image-size", "32", "--out", str(tmp_path), "--compile-cache", "off"]  # fmt: skip
    assert main(argv) == 2
    assert list((tmp_path / "throughput").glob("*.csv")) == []
