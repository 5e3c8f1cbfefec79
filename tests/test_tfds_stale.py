"""A TFDS build is never reused for another or an edited BUSI folder (it was, by config name)."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import pytest

from mtl_bench.cli import main
from mtl_bench.data.phantom import write_phantom
from mtl_bench.data.reader import read_busi
from mtl_bench.data.tfds import load_tfds, prepare_tfds
from mtl_bench.data.types import DataError, DataWarning

SIZE = 32
BUSI = "Dataset_BUSI_with_GT"

# The package imports TFDS lazily, so the imports above work without it; the tests need it.
pytest.importorskip("tensorflow_datasets")


def _parent(path: Path, n: int, seed: int) -> Path:
    """A ``--manual-dir`` parent holding a phantom ``Dataset_BUSI_with_GT`` of ``n`` images."""
    write_phantom(path / BUSI, n, image_size=40, seed=seed)
    return path


def _shard_lengths(build: Path) -> list[str]:
    info = json.loads((build / "dataset_info.json").read_text())
    return [n for split in info["splits"] for n in split["shardLengths"]]


def _loaded(data_dir: Path):
    return load_tfds("busi", data_dir=data_dir, image_size=SIZE, preprocess="none")


def test_cli_second_manual_dir_is_not_answered_with_the_first(tmp_path, capsys):
    # The reported walk-through: the same data dir and size, a parent with 12 then one with 8.
    first, second = _parent(tmp_path / "parent", 12, 1), _parent(tmp_path / "parent2", 8, 2)
    common = ["data", "prepare", "--dataset", "busi", "--data-dir", str(tmp_path / "tfds")]
    common += ["--image-size", str(SIZE)]
    build = tmp_path / "tfds" / "busi" / f"{SIZE}px" / "1.1.0"
    assert main([*common, "--manual-dir", str(first)]) == 0
    assert _shard_lengths(build) == ["12"]
    assert main([*common, "--manual-dir", str(second)]) == 0
    assert _shard_lengths(build) == ["8"]
    ref = read_busi(second / BUSI, image_size=SIZE)
    assert _loaded(tmp_path / "tfds").fingerprint() == ref.fingerprint()
    assert f"prepared busi at {build}" in capsys.readouterr().out


def test_prepare_rebuilds_only_when_the_source_differs(tmp_path):
    first, second = _parent(tmp_path / "a", 9, 3), _parent(tmp_path / "b", 6, 4)
    data = tmp_path / "d"
    build = prepare_tfds("busi", data_dir=data, manual_dir=first, image_size=SIZE)
    meta = json.loads((build / "metadata.json").read_text())
    assert meta["source_root"] == str((first / BUSI).resolve())
    (record,) = build.glob("*.array_record*")
    stamp = record.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same folder again: reused, nothing to say
        prepare_tfds("busi", data_dir=data, manual_dir=first, image_size=SIZE)
        prepare_tfds("busi", data_dir=data, image_size=SIZE)  # nothing named: the build serves
    assert record.stat().st_mtime_ns == stamp
    pattern = f"rebuilding TFDS dataset busi/32px .*built from {first / BUSI}, not from {second}"
    pattern = re.escape(pattern).replace(re.escape(" .*"), " .*")
    with pytest.warns(DataWarning, match=pattern):
        prepare_tfds("busi", data_dir=data, manual_dir=second, image_size=SIZE)
    assert _loaded(data).fingerprint() == read_busi(second / BUSI, image_size=SIZE).fingerprint()
    # A build that records no source (an older mtl-bench's) cannot be trusted either.
    meta = json.loads((build / "metadata.json").read_text())
    (build / "metadata.json").write_text(json.dumps({"source": meta["source"]}))
    with pytest.warns(DataWarning, match="records no source folder"):
        prepare_tfds("busi", data_dir=data, manual_dir=first, image_size=SIZE)
    assert _loaded(data).fingerprint() == read_busi(first / BUSI, image_size=SIZE).fingerprint()


def test_an_edited_folder_is_stale_for_load_and_rebuilt_by_prepare(tmp_path):
    parent = _parent(tmp_path / "p", 9, 5)
    data = tmp_path / "d"
    prepare_tfds("busi", data_dir=data, manual_dir=parent, image_size=SIZE)
    for path in (parent / BUSI / "benign").glob("benign (1)*"):
        path.unlink()  # an image and its mask removed after the build
    with pytest.raises(DataError, match=r"busi/32px in .* is stale: .* has changed") as err:
        _loaded(data)
    assert "\n" not in str(err.value) and "mtl-bench data prepare" in str(err.value)
    with pytest.warns(DataWarning, match=r"has changed since it was built \(\d+ files then"):
        prepare_tfds("busi", data_dir=data, manual_dir=parent, image_size=SIZE)
    ds = _loaded(data)
    assert "benign/benign (1)" not in ds.ids
    assert ds.fingerprint() == read_busi(parent / BUSI, image_size=SIZE).fingerprint()
    # A folder that is gone leaves the build as the only copy: it still loads.
    shutil.rmtree(parent / BUSI)
    assert len(_loaded(data)) == len(ds)


def test_a_named_manual_dir_that_is_missing_is_an_error_even_when_built(tmp_path):
    data = tmp_path / "d"
    prepare_tfds("busi", data_dir=data, manual_dir=_parent(tmp_path / "p", 6, 6), image_size=SIZE)
    with pytest.raises(DataError, match=re.escape(f"expected the folder {tmp_path}/typo/{BUSI}")):
        prepare_tfds("busi", data_dir=data, manual_dir=tmp_path / "typo", image_size=SIZE)


def test_a_rebuild_that_fails_leaves_the_previous_build(tmp_path):
    first, second = _parent(tmp_path / "a", 9, 3), _parent(tmp_path / "b", 6, 4)
    (second / BUSI / "benign" / "benign (1).png").write_bytes(b"not a png")
    data = tmp_path / "d"
    prepare_tfds("busi", data_dir=data, manual_dir=first, image_size=SIZE)
    before = _loaded(data).fingerprint()
    with pytest.warns(DataWarning, match="rebuilding"), pytest.raises(DataError, match=r"benign"):
        prepare_tfds("busi", data_dir=data, manual_dir=second, image_size=SIZE)
    assert _loaded(data).fingerprint() == before  # TFDS had deleted it before building
    assert not list(data.rglob(".*.previous"))


def test_a_killed_build_leaves_nothing_a_rerun_does_not_settle(tmp_path):
    from lock_holder import held_elsewhere

    from mtl_bench.claim import Busy

    data = tmp_path / "d"
    build = prepare_tfds(
        "busi", data_dir=data, manual_dir=_parent(tmp_path / "a", 9, 3), image_size=SIZE
    )
    before = _loaded(data).fingerprint()
    # As a build and a rebuild killed midway leave them: TFDS's folder in progress, and the
    # build that the rebuild had set aside, with none in its place.
    (build.parent / f"incomplete.AB12CD_{build.name}" / "busi").mkdir(parents=True)
    build.rename(build.parent / f".{build.name}.previous")
    with pytest.warns(DataWarning) as said:
        assert prepare_tfds("busi", data_dir=data, image_size=SIZE) == build
    text = " ".join(str(w.message) for w in said)
    assert "killed before it finished" in text and "put back the build" in text
    assert sorted(p.name for p in build.parent.iterdir()) == [build.name]
    assert _loaded(data).fingerprint() == before  # the old build, not a rebuild
    # A second prepare of the same build while one runs is refused, and touches nothing.
    with held_elsewhere(build.parent / f".{build.name}.lock") as pid:
        with pytest.raises(Busy, match=rf"busi/32px in {re.escape(str(build))}: .*pid {pid}"):
            prepare_tfds("busi", data_dir=data, image_size=SIZE, overwrite=True)
    assert _loaded(data).fingerprint() == before


def test_a_prepare_that_fails_leaves_no_folder_behind(tmp_path):
    # The claim's lock lives in data_dir/busi/32px/: the folders made for it go again.
    with pytest.raises(DataError, match="nothere"):
        prepare_tfds(
            "busi", data_dir=tmp_path / "new", manual_dir=tmp_path / "nothere", image_size=SIZE
        )
    assert not (tmp_path / "new").exists()
