"""The training engine: batching, loss falls, resume equality, NaN stop, determinism."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from train_fixture import TINY, split, tiny_data

from mtl_bench.batches import _epoch_table, fold_arrays
from mtl_bench.cv import run_cv
from mtl_bench.data.phantom import synth_phantom
from mtl_bench.fit import fit_fold
from mtl_bench.metrics import segmentation_metrics_from_counts
from mtl_bench.train import TrainingDiverged


@pytest.fixture(scope="module")
def data():
    return tiny_data()


def test_epoch_table_covers_every_sample_once():
    table, weight = _epoch_table(jax.random.key(0), 21, 8, 3)
    table, weight = np.asarray(table), np.asarray(weight)
    assert table.shape == weight.shape == (3, 8)
    real = table.ravel()[weight.ravel() > 0]
    assert sorted(real.tolist()) == list(range(21))  # each once; 3 padded slots weigh 0
    assert weight.sum() == 21
    other, _ = _epoch_table(jax.random.key(1), 21, 8, 3)
    assert not np.array_equal(table, np.asarray(other))  # reshuffled per epoch key


def test_resume_gives_identical_metrics(data, tmp_path):
    train, test = split(len(data))
    full = fit_fold(TINY, data, train, test, ckpt_dir=tmp_path / "a", quiet=True)
    again = fit_fold(TINY, data, train, test, quiet=True)
    # Same seed and config: identical numbers on CPU (determinism).
    np.testing.assert_array_equal(full.test_eval["counts"], again.test_eval["counts"])
    np.testing.assert_array_equal(full.test_eval["prob"], again.test_eval["prob"])
    # "Interrupted" after epoch 1, then resumed to 2 epochs.
    half = dataclasses.replace(TINY, epochs=1)
    fit_fold(half, data, train, test, ckpt_dir=tmp_path / "b", quiet=True)
    resumed = fit_fold(TINY, data, train, test, ckpt_dir=tmp_path / "b", resume=True, quiet=True)
    assert resumed.epochs_run == 2 and resumed.extras["resumed_after_epoch"] == 1
    assert full.extras["resumed_after_epoch"] == 0
    np.testing.assert_array_equal(full.test_eval["counts"], resumed.test_eval["counts"])
    # Interrupted with no checkpoint saved (checkpoint_every=0): its curve is all that is left;
    # the resume retrains from the start and says so, in the record and in reproduce's line.
    from mtl_bench.fold_io import write_curve
    from mtl_bench.reproduce_outputs import fold_summary

    write_curve(tmp_path / "curve.csv", full.curve[:1])
    kw = dict(ckpt_dir=tmp_path / "c", curve_path=tmp_path / "curve.csv", quiet=True)
    again = fit_fold(TINY, data, train, test, resume=True, **kw)
    assert again.extras["resume_lost_epochs"] == 1 and again.extras["resumed_after_epoch"] == 0
    np.testing.assert_array_equal(full.test_eval["counts"], again.test_eval["counts"])
    assert resumed.extras["resume_lost_epochs"] == full.extras["resume_lost_epochs"] == 0
    record = {"metrics": {"segmentation": None, "classification": None}, "wall_time_s": 3}
    for extras, says in [
        (resumed.extras, "resumed after epoch 1 of 2 [3 s]"),
        (again.extras, "retrained from the start (1 epoch of the interrupted run unsaved) [3 s]"),
    ]:
        (tmp_path / "f.json").write_text(json.dumps({**record, **extras, "epochs_run": 2}))
        assert fold_summary(tmp_path / "f.json") == says
    np.testing.assert_allclose(full.test_eval["prob"], resumed.test_eval["prob"], rtol=0, atol=0)
    # Resuming under other settings would record a run that did not happen: refused.
    for other, says in [
        (dataclasses.replace(TINY, lr=TINY.lr * 2), "lr: "),
        (dataclasses.replace(TINY, epochs=1), "epochs: 2 trained already → 1"),
        (dataclasses.replace(TINY, optimizer_flatten=True), "optimizer_flatten: False → True"),
    ]:
        with pytest.raises(ValueError, match="other settings") as err:
            fit_fold(other, data, train, test, ckpt_dir=tmp_path / "b", resume=True, quiet=True)
        assert says in str(err.value)


def test_eval_batching_does_not_change_results(data):
    train, test = split(len(data))
    cfg = dataclasses.replace(TINY, epochs=1, checkpoint_every=0)
    run = fit_fold(cfg, data, train, test, quiet=True, keep_state=True)
    engine = run.engine
    arrays = engine.place_data(fold_arrays(data.images, data.masks, data.labels), for_eval=True)
    a = engine.evaluate(run.state, arrays, test)
    engine.cfg = dataclasses.replace(cfg, eval_batch_size=3)  # 8 = 3 + 3 + 2 (padded)
    engine._eval = jax.jit(engine.steps.evaluate)
    b = engine.evaluate(run.state, arrays, test)
    np.testing.assert_array_equal(a["counts"], b["counts"])
    np.testing.assert_allclose(a["prob"], b["prob"], rtol=1e-6)


@pytest.mark.slow
def test_loss_falls_and_dice_beats_background():
    ds = synth_phantom(48, image_size=32, seed=5, class_set="binary", difficulty=0.2)
    cfg = dataclasses.replace(
        TINY, epochs=12, checkpoint_every=0, lr=1e-2, model_kwargs={"widths": (8, 16, 32, 64, 128)}
    )
    train, test = split(48)
    run = fit_fold(cfg, ds, train, test, quiet=True)
    losses = [r["loss"] for r in run.curve]
    assert losses[-1] < 0.8 * losses[0]
    seg = segmentation_metrics_from_counts(run.test_eval["counts"])
    # Predicting all background scores Dice 0 on every lesion image.
    assert seg["DC"] > 0.1


def test_nan_loss_stops_cleanly_and_writes_nothing(tmp_path, monkeypatch):
    import mtl_bench.cv
    import mtl_bench.fit

    # A NaN weight diverges at once; check_config would refuse it, so it is bypassed here.
    monkeypatch.setattr(mtl_bench.cv, "check_config", lambda cfg: None)
    monkeypatch.setattr(mtl_bench.fit, "check_config", lambda cfg: None)
    cfg = dataclasses.replace(TINY, w_seg=float("nan"), epochs=1)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1 of"):
        run_cv(cfg, tmp_path, folds=[0], quiet=True)
    assert not (tmp_path / "mtl_resunet" / "fold_0.json").exists()


def test_cv_writes_schema_and_resume_skips(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_BENCH_CACHE", str(tmp_path / "cache"))
    cfg = dataclasses.replace(TINY, epochs=1, checkpoint_every=0)
    paths = run_cv(cfg, tmp_path / "res", quiet=True)
    assert sorted(paths) == [0, 1]
    rec = json.loads(paths[0].read_text())
    assert rec["schema"] == 1 and rec["method"] == "mtl_resunet" and rec["fold"] == 0
    manifest = json.loads((tmp_path / "res" / "folds.json").read_text())
    assert rec["fold_manifest_hash"] == manifest["hash"]
    assert set(rec["metrics"]["segmentation"]) >= {"JSI", "DC", "ACC", "PRE", "REC", "SPE"}
    assert set(rec["metrics"]["classification"]) >= {"ACC", "PRE", "REC", "SPE", "F1", "AUC"}
    assert rec["per_image"]["id"] == manifest["fold_ids"][0]
    assert rec["config"]["epochs"] == 1 and rec["train_img_per_s"] > 0
    mtime = paths[0].stat().st_mtime_ns
    run_cv(cfg, tmp_path / "res", resume=True, quiet=True)  # finished folds are not rerun
    assert paths[0].stat().st_mtime_ns == mtime
    # ... unless they ran with other settings: skipping them would mix two protocols.
    with pytest.raises(ValueError, match=r"fold_0.json: finished with other settings \(epochs"):
        run_cv(dataclasses.replace(cfg, epochs=2), tmp_path / "res", resume=True, quiet=True)
    # The folder's manifest decides the folds: a different fold_seed is recorded as used.
    again = run_cv(
        dataclasses.replace(cfg, fold_seed=7), tmp_path / "res", folds=[0], resume=True, quiet=True
    )
    assert again[0].stat().st_mtime_ns == mtime


def test_bf16_trains_with_fp32_master_weights(data):
    train, test = split(len(data))
    cfg = dataclasses.replace(TINY, epochs=1, checkpoint_every=0, precision="bf16")
    run = fit_fold(cfg, data, train, test, quiet=True, keep_state=True)
    assert np.isfinite(run.curve[0]["loss"])
    dtypes = {x.dtype for x in jax.tree.leaves(run.state["params"])}
    assert dtypes == {np.dtype("float32")}  # master weights stay fp32
    stats = {x.dtype for x in jax.tree.leaves(run.state["rest"])}
    assert stats == {np.dtype("float32")}  # BatchNorm statistics too
    assert run.test_eval["prob"].dtype == np.float32
    assert np.isfinite(run.test_eval["prob"]).all()
