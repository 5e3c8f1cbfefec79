"""Files written whole: readers never see a part, a failed write leaves the old file, and the
file gets the user's usual permissions (``mkstemp`` alone gives 0600, unreadable on a shared
results folder)."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from mtl_bench import atomic
from mtl_bench.atomic import atomic_write
from mtl_bench.data.folds import FoldManifest, write_manifest
from mtl_bench.fold_record import write_json_atomic
from mtl_bench.pred_masks import save_predicted_masks


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
def test_files_get_the_umask_permissions_not_0600(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_MODE", 0o644)  # as under the common umask 022
    write_json_atomic(tmp_path / "fold_0.json", {"a": 1})
    save_predicted_masks(tmp_path / "m.npz", ["x"], np.zeros((1, 4, 4), bool))
    manifest = FoldManifest(
        k=2, seed=0, class_set="binary", class_names=["benign", "malignant"],
        fold_ids=[["a"], ["b"]], fold_labels=[[0], [1]], fingerprint="f",
    )  # fmt: skip
    write_manifest(manifest, tmp_path / "folds.json")
    for name in ("fold_0.json", "m.npz", "folds.json"):
        assert _mode(tmp_path / name) == 0o644, name
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = atomic_write(tmp_path / "sub" / "r.json", lambda f: f.write("old\n"), text=True)
    assert path.read_text() == "old\n"

    def fail(f):
        f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail, text=True)
    assert path.read_text() == "old\n" and not list(path.parent.glob(".*.tmp"))


def test_an_out_folder_that_cannot_hold_results_is_refused_before_any_work(tmp_path, monkeypatch):
    from mtl_bench.atomic import check_out_folder
    from mtl_bench.cli import main

    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ValueError, match=r"^--out .*afile is a file, not a folder$"):
        check_out_folder(afile)
    with pytest.raises(ValueError, match=r"^--out .*afile/new: .*afile is a file, not a folder$"):
        check_out_folder(afile / "new")
    ro = tmp_path / "ro"  # a read-only mount (root may write past mode bits: access() is asked)
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != ro and real(p, mode))
    with pytest.raises(ValueError, match=r"^--out .*ro: not writable$"):
        check_out_folder(ro)
    with pytest.raises(ValueError, match=r"^--out .*ro/a/b: not writable \(.*ro is not\)$"):
        check_out_folder(ro / "a" / "b")
    check_out_folder(tmp_path / "new" / "deeper")  # a new folder under a writable one: fine
    assert not (tmp_path / "new").exists()  # and nothing is made
    for argv in (["cv", "--model", "mtl_resunet"], ["data", "folds"], ["reproduce"]):
        assert main([*argv, "--out", str(ro / "r")]) == 2
    assert list(ro.iterdir()) == []


def test_a_damaged_mask_archive_is_one_line_naming_it(tmp_path):
    from baselines.moon_features_extract import _load_npz
    from mtl_bench.data.types import DataError
    from mtl_bench.pred_masks import load_predicted_masks

    bad = tmp_path / "fold_0_masks.npz"
    bad.write_bytes(b"PK\x03\x04" + bytes(300))  # a zip's first bytes: numpy hands it to zipfile
    for load in (load_predicted_masks, _load_npz):
        with pytest.raises(DataError, match=r"fold_0_masks\.npz: .*not a zip file"):
            load(bad)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_proc_is_no_out_folder_even_for_root(capsys):
    from mtl_bench.cli import main

    for argv in (["cv", "--model", "moon_features"], ["data", "folds"], ["data", "synth"]):
        assert main([*argv, "--out", "/proc/x"]) == 2
        err = capsys.readouterr().err
        assert (
            err
            == "mtl-bench: error: --out /proc/x: cannot write in /proc (it takes no new files)\n"
        )
