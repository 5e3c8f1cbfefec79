"""benchmarks/protocol_time.py: the fit loop's timing fields and the protocol extrapolation."""

import csv
import dataclasses
import json
import math
import statistics

import pytest

from benchmarks import protocol_time as pt
from mtl_bench.config import RunConfig
from mtl_bench.cv import run_cv

TINY = RunConfig(
    model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16},
    synthetic_n=24,
    image_size=32,
    folds=2,
    epochs=3,
    batch_size=8,
    lr_decay_every=0,
    preprocess="none",
    checkpoint_every=1,
    eval_batch_size=8,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("protocol")
    with pytest.MonkeyPatch.context() as mp:  # the prepared-data cache stays in tmp
        mp.setenv("MTL_BENCH_CACHE", str(out / "cache"))
        run_cv(TINY, out / "res", folds=[0], quiet=True)
    return out / "res"


def test_fit_loop_records_where_the_time_went(run_dir):
    rec = json.loads((run_dir / "mtl_resunet" / "fold_0.json").read_text())
    assert rec["checkpoints_saved"] == 3  # checkpoint_every=1, 3 epochs
    assert rec["train_images"] == 12  # 24 phantom images, 2 folds
    for k in ("setup_s", "eval_s", "checkpoint_s"):
        assert 0 < rec[k] < rec["wall_time_s"], k
    assert 0 <= rec["checkpoint_close_s"] < rec["wall_time_s"]  # the last background write
    assert 0 < rec["checkpoint_first_s"] <= rec["checkpoint_s"]  # the first save's share


def test_the_first_saves_one_time_cost_is_counted_once(run_dir, tmp_path):
    # 3 saves: a first of 4.3 s (a compile in it) and two of 0.3 s. The protocol's 50 saves cost
    # 50 × 0.3 + 4.0 s, not 50 × the mean of 1.63 s.
    mdir = tmp_path / "mtl_resunet"
    mdir.mkdir()
    rec = json.loads((run_dir / "mtl_resunet" / "fold_0.json").read_text())
    rec.update(checkpoint_s=4.9, checkpoint_first_s=4.3)
    (mdir / "fold_0.json").write_text(json.dumps(rec))
    (mdir / "fold_0_curve.csv").write_bytes(
        (run_dir / "mtl_resunet" / "fold_0_curve.csv").read_bytes()
    )
    t = pt.fold_timing(mdir, mdir / "fold_0.json")
    assert (t["save_s"], t["save_once_s"]) == (pytest.approx(0.3), pytest.approx(4.0))
    base = dict(t, save_s=0.0, save_once_s=0.0)
    assert pt.extrapolate(t, 500, 10) - pt.extrapolate(base, 500, 10) == pytest.approx(19.0)
    line = pt.report(tmp_path, None, 500, 10, 5)[1]
    assert "checkpoint 0.30 s (+ 0.00 s in the epoch after it, + 4.00 s once," in line
    # A file from before the field: every save as the mean, as before.
    del rec["checkpoint_first_s"]
    (mdir / "fold_0.json").write_text(json.dumps(rec))
    t = pt.fold_timing(mdir, mdir / "fold_0.json")
    assert (t["save_s"], t["save_once_s"]) == (pytest.approx(4.9 / 3), 0.0)


def test_extrapolation_is_the_documented_sum(run_dir):
    mdir = run_dir / "mtl_resunet"
    rec = json.loads((mdir / "fold_0.json").read_text())
    with open(mdir / "fold_0_curve.csv", newline="") as f:
        epoch_s = [12 / float(r["img_per_s"]) for r in csv.DictReader(f)]
    t = pt.fold_timing(mdir, mdir / "fold_0.json")
    assert t["first_epoch_s"] == pytest.approx(epoch_s[0])
    assert t["epoch_s"] == pytest.approx(statistics.median(epoch_s[1:]))
    want = (
        rec["setup_s"]
        + epoch_s[0]
        + 499 * t["epoch_s"]
        + math.ceil(500 / 10) * (rec["checkpoint_s"] - rec["checkpoint_first_s"]) / 2
        + max(rec["checkpoint_first_s"] - (rec["checkpoint_s"] - rec["checkpoint_first_s"]) / 2, 0)
        + rec["checkpoint_close_s"]
        + rec["eval_s"]
    )
    assert pt.extrapolate(t, 500, 10) == pytest.approx(want)
    lines = pt.report(run_dir, None, 500, 10, 5)
    assert lines[-1].startswith(f"paper protocol from the training loop: {5 * want / 60:.1f} min")
    assert "(every fold as the one measured)" in lines[-1]


def test_the_epoch_after_a_save_is_charged_to_the_save(run_dir, tmp_path):
    # A save's background write slowed the next epoch (611-941 against 1370 img/s on the H200):
    # the median later epoch leaves those epochs out, and their excess goes to each save that
    # has an epoch after it. Saves after epochs 2, 4, 6 (every 2): epochs 3 and 5 follow one.
    mdir = tmp_path / "mtl_resunet"
    mdir.mkdir()
    rec = json.loads((run_dir / "mtl_resunet" / "fold_0.json").read_text())
    rec["config"]["checkpoint_every"] = 2
    rec.update(train_images=100, checkpoints_saved=3)
    (mdir / "fold_0.json").write_text(json.dumps(rec))
    rates = [10, 200, 100, 200, 50, 200]  # seconds per epoch: 10, .5, 1, .5, 2, .5
    rows = "".join(f"{e},0,0,0,0,{r}\n" for e, r in enumerate(rates, 1))
    (mdir / "fold_0_curve.csv").write_text("epoch,loss,dice_loss,focal_loss,lr,img_per_s\n" + rows)
    t = pt.fold_timing(mdir, mdir / "fold_0.json")
    assert t["epoch_s"] == pytest.approx(0.5) and t["save_next_s"] == pytest.approx(1.0)
    # 500 epochs, a save every 10: 50 saves, 49 with an epoch after them.
    base = dict(t, save_next_s=0.0)
    assert pt.extrapolate(t, 500, 10) - pt.extrapolate(base, 500, 10) == pytest.approx(49.0)
    assert "(+ 1.00 s in the epoch after it," in pt.report(tmp_path, None, 500, 10, 5)[1]
    # A save after every epoch leaves no epoch to measure the slowdown against: none charged.
    rec["config"]["checkpoint_every"] = 1
    (mdir / "fold_0.json").write_text(json.dumps(rec))
    assert pt.fold_timing(mdir, mdir / "fold_0.json")["save_next_s"] == 0.0


def test_only_the_first_fold_of_each_shape_compiles(tmp_path, monkeypatch):
    # 29 images in 3 stratified folds: test sets of 10, 10 and 9 images. Padded to 32 rows, as
    # the fit loop pads them, all three folds have one shape: only fold 0 compiles.
    from mtl_bench import fit

    monkeypatch.setenv("MTL_BENCH_CACHE", str(tmp_path / "cache"))
    cfg = dataclasses.replace(TINY, folds=3, synthetic_n=29)
    run_cv(cfg, tmp_path / "res", folds=[0], quiet=True)
    manifest = json.loads((tmp_path / "res" / "folds.json").read_text())
    assert [len(f) for f in manifest["fold_ids"]] == [10, 10, 9]
    assert pt.fold_plan(tmp_path / "res", 3) == [True, False, False]
    # Unpadded (rows a multiple of 1), folds 0 and 2 would compile and fold 1 reuse fold 0's
    # program; measured fold 1 then stands for the cached folds.
    monkeypatch.setattr(fit, "ROW_MULTIPLE", 1)
    run_cv(cfg, tmp_path / "res", folds=[1], quiet=True)
    assert pt.fold_plan(tmp_path / "res", 3) == [True, False, True]
    assert pt.fold_plan(tmp_path / "res", 5) is None  # another protocol: no plan from this one
    mdir = tmp_path / "res" / "mtl_resunet"
    cold, warm = (
        pt.extrapolate(pt.fold_timing(mdir, mdir / f"fold_{f}.json"), 50, 10) for f in (0, 1)
    )
    lines = pt.report(tmp_path / "res", None, 50, 10, 3, overhead_s=12.0)
    want = (2 * cold + warm + 12.0) / 60
    assert lines[-1].startswith(
        f"paper protocol from the training loop: {want:.1f} min = 2 fold(s)"
    )
    assert "1 from the compilation cache" in lines[-1] and "+ 12 s outside the folds" in lines[-1]
    # With an inner validation split a fold's training rows depend on its draw by duplicate
    # group, which the manifest does not give: no plan, every fold as the mean measured one.
    assert pt.fold_plan(tmp_path / "res", 3, val_fraction=0.2) is None
    rec = json.loads((mdir / "fold_1.json").read_text())
    rec["config"]["val_fraction"] = 0.2
    (mdir / "fold_1.json").write_text(json.dumps(rec))
    lines = pt.report(tmp_path / "res", None, 50, 10, 3)
    assert lines[-1].startswith(
        f"paper protocol from the training loop: {1.5 * (cold + warm) / 60:.1f}"
    )
    assert "(an inner validation split: every fold as the mean measured one)" in lines[-1]
    # A compiling fold's file without checkpoint_first_s (mtl-bench before 2026-11-29): its saves
    # beyond the cached fold's rate are its one-time cost, counted once.
    rec["config"]["val_fraction"] = 0.0
    (mdir / "fold_1.json").write_text(json.dumps(rec))
    rate = pt.fold_timing(mdir, mdir / "fold_1.json")["save_s"]
    old = json.loads((mdir / "fold_0.json").read_text())
    del old["checkpoint_first_s"]
    old["checkpoint_s"] = old["checkpoints_saved"] * rate + 7.0
    (mdir / "fold_0.json").write_text(json.dumps(old))
    t0 = pt.fold_timing(mdir, mdir / "fold_0.json")
    cold = pt.extrapolate(dict(t0, save_s=rate, save_once_s=7.0), 50, 10)
    lines = pt.report(tmp_path / "res", None, 50, 10, 3)
    assert lines[-2] == (
        "  first-save cost of fold(s) 0: its saves beyond the cached folds' rate (a file without "
        "checkpoint_first_s)"
    )
    assert "the epoch after it, + 7.00 s once," in lines[1]
    assert lines[-1].startswith(
        f"paper protocol from the training loop: {(2 * cold + warm) / 60:.1f} min = 2 fold(s)"
    )


def test_unreadable_inputs_are_one_line_errors(run_dir, tmp_path, capsys):
    assert pt.main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such results folder" in capsys.readouterr().err
    old = tmp_path / "old" / "unet"
    old.mkdir(parents=True)
    rec = json.loads((run_dir / "mtl_resunet" / "fold_0.json").read_text())
    for k in ("setup_s", "checkpoints_saved"):
        del rec[k]
    (old / "fold_0.json").write_text(json.dumps(rec))
    assert pt.main([str(tmp_path / "old")]) == 2
    err = capsys.readouterr().err.strip()
    want = "fold_0.json: no setup_s, checkpoints_saved (an older mtl-bench or a fold-parallel run"
    assert want in err and "\n" not in err
    assert pt.main([str(run_dir), "--method", "unet"]) == 2
    assert "no fold_K.json result files" in capsys.readouterr().err


def test_one_epoch_runs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "one"
    run_cv(dataclasses.replace(TINY, epochs=1), out, folds=[0], quiet=True)
    with pytest.raises(pt.ProtocolError, match="1 epoch"):
        pt.report(out, "mtl_resunet", 500, 10, 5)


def test_measure_runs_the_loop_and_keeps_the_fold_files(tmp_path, capsys):
    out = tmp_path / "protocol"
    assert pt.main(["--measure", str(out), "--tiny", "--epochs", "400"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    # Fold 0, then fold 1 (60 images in 5 folds: all of fold 0's size); the checkpoints stayed
    # in the temporary folder.
    assert sorted(p.name for p in out.iterdir()) == [
        "estimate.txt", "fold_0.json", "fold_0_curve.csv", "fold_1.json", "fold_1_curve.csv",
        "folds.json", "measure.json",
    ]  # fmt: skip
    assert (out / "estimate.txt").read_text().splitlines() == printed[-4:]
    assert printed[-4].startswith(f"{out}: 2 fold(s) measured")
    # No "fold K: PATH" of the temporary folder, gone by now: the folder the files are in.
    assert printed[:-4] == [f"fold files, learning curves and folds.json: {out}"]
    assert "1 fold(s) compiling" in printed[-1] and "4 from the compilation cache" in printed[-1]
    assert "(400 epochs, a checkpoint every 10," in printed[-1]
    assert json.loads((out / "fold_0.json").read_text())["checkpoints_saved"] == 3  # every 2
    outside = json.loads((out / "measure.json").read_text())["outside_folds_s"]
    assert 0 < outside and f"+ {outside:.0f} s outside the folds" in printed[-1]
    # The folder reports again as measured (same files, same lines).
    assert pt.report(out, None, 400, 10, 5) == printed[-4:]
    # The warm fold loaded its programs from the fresh compilation cache (the cache hits are
    # counted above): a shorter first epoch than the cold fold's, which compiled. Only shorter:
    # on 2 busy cores a fixed ratio failed (14.1 s vs 20.5 s) though every program was a hit.
    first = [pt.fold_timing(out, out / f"fold_{f}.json")["first_epoch_s"] for f in (0, 1)]
    assert first[1] < first[0], first


def test_measure_refuses_its_folder_before_the_run(tmp_path, capsys, monkeypatch):
    # A file, or a folder holding an earlier measurement (its fold files would be mixed in):
    # refused at once, not after minutes of a lent GPU.
    from mtl_bench import cli

    ran = []
    monkeypatch.setattr(cli, "main", lambda argv: ran.append(argv) or 0)
    (tmp_path / "afile").write_text("x")
    assert pt.main(["--measure", str(tmp_path / "afile"), "--tiny"]) == 2
    assert "afile is a file, not a folder" in capsys.readouterr().err
    used = tmp_path / "used"
    used.mkdir()
    (used / "fold_0.json").write_text("{}")
    assert pt.main(["--measure", str(used), "--tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("holds an earlier measurement (fold_0.json): give a new or empty folder")
    assert ran == [] and "\n" not in err
    with pytest.raises(SystemExit):  # a negative interval: refused as --epochs 0 is
        pt.main([str(used), "--checkpoint-every", "-5"])
    assert "--checkpoint-every -5: must be >= 0" in capsys.readouterr().err


def test_results_or_measure_not_both(tmp_path):
    with pytest.raises(SystemExit):
        pt.main([str(tmp_path), "--measure", str(tmp_path)])
    with pytest.raises(SystemExit):
        pt.main([])
