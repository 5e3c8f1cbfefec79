"""Fold-parallel training equals sequential training fold by fold."""

import dataclasses
import re

import numpy as np
import pytest

from mtl_bench.config import RunConfig
from mtl_bench.data.phantom import synth_phantom
from mtl_bench.fit import fit_fold
from mtl_bench.fold_parallel import fit_folds_parallel

CFG = RunConfig(
    model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16},
    image_size=32,
    epochs=2,
    batch_size=8,
    lr=3e-3,
    lr_decay_every=1,  # the schedule must follow each fold's own epoch length
    lr_decay_factor=0.5,
    preprocess="none",
    checkpoint_every=0,
    eval_batch_size=8,
)


def _uneven_folds():
    """40 phantom images and two folds of different sizes: 2 and 3 steps per epoch at batch 8
    (the shorter fold idles on the last)."""
    ds = synth_phantom(40, image_size=32, seed=2, class_set="binary")
    idx = np.random.default_rng(1).permutation(len(ds))
    return ds, [(np.sort(idx[:12]), np.sort(idx[30:])), (np.sort(idx[10:30]), np.sort(idx[:10]))]


@pytest.mark.slow
@pytest.mark.parametrize("fold_conv", ["grouped", "unrolled"])
def test_fold_parallel_matches_sequential(fold_conv):
    cfg = dataclasses.replace(CFG, fold_conv=fold_conv)
    ds, splits = _uneven_folds()
    together = fit_folds_parallel(cfg, ds, splits, folds=[0, 1], quiet=True)
    for fold, (train, test) in enumerate(splits):
        alone = fit_fold(CFG, ds, train, test, fold=fold, quiet=True)
        got = together[fold]
        np.testing.assert_allclose(
            [r["loss"] for r in got.curve], [r["loss"] for r in alone.curve], rtol=1e-4
        )
        np.testing.assert_allclose(got.test_eval["prob"], alone.test_eval["prob"], atol=1e-4)
        diff = np.abs(got.test_eval["counts"] - alone.test_eval["counts"]).sum()
        assert diff <= 8, diff


def test_fold_parallel_rejects_unsupported_combinations():
    ds = synth_phantom(12, image_size=32, seed=2, class_set="binary")
    split = [(np.arange(8), np.arange(8, 12))]
    with pytest.raises(ValueError, match="parallel='none' only"):
        fit_folds_parallel(dataclasses.replace(CFG, parallel="jit"), ds, split, folds=[0])
    with pytest.raises(ValueError, match="val_fraction"):
        fit_folds_parallel(dataclasses.replace(CFG, val_fraction=0.2), ds, split, folds=[0])
    with pytest.raises(ValueError, match=r"1 splits for 2 folds \(\[0, 1\]\): one per fold"):
        fit_folds_parallel(CFG, ds, split, folds=[0, 1])
    with pytest.raises(ValueError, match=r"fold_conv.*one of grouped"):
        fit_folds_parallel(dataclasses.replace(CFG, fold_conv="dense"), ds, split, folds=[0])
    with pytest.raises(ValueError, match="state_layout='packed' applies to sequential folds"):
        fit_folds_parallel(dataclasses.replace(CFG, state_layout="packed"), ds, split, folds=[0])


@pytest.mark.slow
def test_bench_fold_parallel_times_the_real_loop_both_ways(capsys):
    from benchmarks import bench_fold_parallel

    bench_fold_parallel.main(
        [
            "--image-size",
            "16",
            "--n",
            "20",
            "--folds",
            "2",
            "--widths",
            "2,2,2,2,2",
            "--batch-size",
            "4",
            "--epochs",
            "1",
        ]  # fmt: skip
    )
    out = capsys.readouterr().out
    rates = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("sequential folds", "fold-parallel"):
            rates[cells[0]] = (float(cells[1]), float(cells[2]))
    assert set(rates) == {"sequential folds", "fold-parallel"}
    assert all(rate > 0 and wall > 0 for rate, wall in rates.values())
    # The printed ratio is of the unrounded rates; the table shows them rounded to whole images/s
    # (285 and 594 gave 0.48× printed against 0.47× from the cells): within that rounding.
    par, seq = rates["fold-parallel"][0], rates["sequential folds"][0]
    printed = re.search(r"fold-parallel / sequential: ([0-9.]+)×", out)
    assert printed, out
    low, high = (par - 0.5) / (seq + 0.5), (par + 0.5) / (seq - 0.5)
    assert low - 0.005 <= float(printed[1]) <= high + 0.005, (printed[1], par, seq)
    assert out.startswith("device: cpu, 2 folds, 16², batch 4/fold, fp32, 1 timed epochs")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
        (["--widths", "4,8"], "argument --widths: must be 5 positive integers"),
        (["--n", "10", "--image-size", "16"], "k=5 folds need at least 5 samples per class"),
    ],
)
def test_bench_fold_parallel_bad_arguments_are_one_line_errors(argv, message, capsys):
    from benchmarks import bench_fold_parallel

    with pytest.raises(SystemExit) as exc:
        bench_fold_parallel.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.slow
def test_a_frozen_backbone_thaws_after_each_folds_own_epochs():
    # Folds of 2 and 3 steps per epoch, backbone frozen for 1 epoch: the short fold must thaw
    # after its own 2 steps (it stayed frozen for the longest fold's 3), as it does alone.
    cfg = dataclasses.replace(
        CFG, model="mobilenet", model_kwargs={"freeze_backbone_epochs": 1}, lr_decay_every=0,
        lr=1e-4,  # 3e-3 trains this MobileNet chaotically: float noise grows past any tolerance
    )  # fmt: skip
    ds, splits = _uneven_folds()
    together = fit_folds_parallel(cfg, ds, splits, folds=[0, 1], quiet=True)
    for fold, (train, test) in enumerate(splits):
        alone = fit_fold(cfg, ds, train, test, fold=fold, quiet=True)
        got = together[fold]  # frozen one step too long, fold 0 was 0.0018 off (loss 6.27, 5.87)
        np.testing.assert_allclose(got.test_eval["prob"], alone.test_eval["prob"], atol=1e-4)
        np.testing.assert_allclose(
            [r["loss"] for r in got.curve], [r["loss"] for r in alone.curve], rtol=1e-3
        )
