"""Prepared-dataset cache: what load_dataset returns, when it hits, when it rebuilds, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mtl_bench.data import prepare
from mtl_bench.data.phantom import synth_phantom, write_phantom
from mtl_bench.data.preprocess import preprocess
from mtl_bench.data.reader import read_busi
from mtl_bench.data.types import DataError, DataWarning

SIZE = 32


@pytest.fixture
def counted(monkeypatch):
    """Count the pre-processing runs inside load_dataset (each cache miss runs it once)."""
    calls = []

    def counting(images, method="mpghe", params=None, progress=None):
        calls.append(method)
        return preprocess(images, method, params, progress=progress)

    monkeypatch.setattr(prepare, "preprocess", counting)
    return calls


@pytest.fixture(scope="module")
def busi_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("busi") / "Dataset_BUSI_with_GT"
    write_phantom(root, 24, image_size=48, seed=3)
    return root


def entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir())


def test_synthetic_is_built_once_then_loaded(tmp_path, counted, monkeypatch):
    kw = dict(image_size=SIZE, synthetic_n=20, seed=1, cache_dir=tmp_path)
    first = prepare.load_dataset("synthetic", **kw)
    assert counted == ["mpghe"]
    assert first.source == "synthetic(n=20,seed=1,difficulty=0.5)"
    assert first.images.shape == (len(first), SIZE, SIZE) and first.images.dtype == np.uint8
    assert first.class_names == ("benign", "malignant")
    raw = synth_phantom(20, image_size=SIZE, seed=1, class_set="binary")
    assert first.ids == raw.ids and np.array_equal(first.masks, raw.masks)
    assert np.array_equal(first.images, preprocess(raw.images, "mpghe"))

    names = entries(tmp_path)
    assert len(names) == 2 and names[0].endswith(".json") and names[1].endswith(".npz")
    sidecar = json.loads((tmp_path / names[0]).read_text())
    assert sidecar["preprocess"] == "mpghe" and sidecar["image_size"] == SIZE
    assert sidecar["source"] == {"kind": "synthetic", "n": 20, "seed": 1, "difficulty": 0.5}

    def fail(*a, **k):
        raise AssertionError("a cache hit must not synthesise again")

    monkeypatch.setattr(prepare, "synth_phantom", fail)
    second = prepare.load_dataset("synthetic", **kw)
    assert counted == ["mpghe"]  # no second pre-processing: a cache hit
    assert second.fingerprint() == first.fingerprint() and second.source == first.source
    assert second.skipped == first.skipped and second.class_names == first.class_names


def test_every_parameter_is_in_the_key(tmp_path, counted):
    base = dict(image_size=SIZE, synthetic_n=12, cache_dir=tmp_path)
    prepare.load_dataset("synthetic", **base)
    prepare.load_dataset("synthetic", **{**base, "preprocess": "none"})
    prepare.load_dataset("synthetic", **{**base, "preprocess_params": {"detail_weight": 0.0}})
    prepare.load_dataset("synthetic", **{**base, "seed": 5})
    prepare.load_dataset("synthetic", **{**base, "difficulty": 0.2})
    prepare.load_dataset("synthetic", **{**base, "class_set": "three_class"})
    prepare.load_dataset("synthetic", **{**base, "image_size": 40})
    assert len(counted) == 7
    assert len([n for n in entries(tmp_path) if n.endswith(".npz")]) == 7
    prepare.load_dataset("synthetic", **{**base, "seed": 5})
    assert len(counted) == 7


def test_code_change_invalidates(tmp_path, counted, monkeypatch):
    kw = dict(image_size=SIZE, synthetic_n=9, preprocess="none", cache_dir=tmp_path)
    prepare.load_dataset("synthetic", **kw)
    monkeypatch.setattr(prepare, "_code_signature", lambda: "edited reader or phantom")
    prepare.load_dataset("synthetic", **kw)
    assert len(counted) == 2


def test_folder_matches_reader_and_is_cached(tmp_path, busi_folder, counted):
    ds = prepare.load_dataset(
        str(busi_folder), image_size=SIZE, preprocess="none", cache_dir=tmp_path
    )
    ref = read_busi(busi_folder, image_size=SIZE, class_set="binary")
    assert ds.fingerprint() == ref.fingerprint() and ds.source == ref.source
    assert ds.skipped == ref.skipped  # the normal class folder, listed as not in the set
    again = prepare.load_dataset(
        str(busi_folder), image_size=SIZE, preprocess="none", cache_dir=tmp_path
    )
    assert counted == ["none"] and again.fingerprint() == ds.fingerprint()


def test_folder_change_invalidates(tmp_path, counted):
    src = tmp_path / "copy"
    write_phantom(src, 16, image_size=40, seed=4)
    cache = tmp_path / "cache"
    first = prepare.load_dataset(str(src), image_size=SIZE, preprocess="none", cache_dir=cache)
    target = src / first.ids[0].replace("/", os.sep)  # e.g. benign/benign (1)
    image = target.with_name(target.name + ".png")
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: content may differ
    prepare.load_dataset(str(src), image_size=SIZE, preprocess="none", cache_dir=cache)
    assert len(counted) == 2


def test_hidden_files_do_not_invalidate(tmp_path, counted):
    # The reader skips names starting with "." (Finder's .DS_Store, AppleDouble ._NAME files,
    # hidden folders): their coming and going must not cost a rebuild.
    src = tmp_path / "copy"
    write_phantom(src, 16, image_size=40, seed=4)
    kw = dict(image_size=SIZE, preprocess="none", cache_dir=tmp_path / "cache")
    first = prepare.load_dataset(str(src), **kw)
    store = src / "benign" / ".DS_Store"
    store.write_bytes(b"\0" * 10)
    (src / "benign" / "._benign (1).png").write_bytes(b"resource fork")
    (src / ".DS_Store").write_bytes(b"root")
    (src / ".Trashes").mkdir()
    (src / ".Trashes" / "old.png").write_bytes(b"x")
    assert prepare.load_dataset(str(src), **kw).fingerprint() == first.fingerprint()
    store.write_bytes(b"\1" * 99)  # Finder rewrote it
    prepare.load_dataset(str(src), **kw)
    assert len(counted) == 1
    image = src / (first.ids[0] + ".png")  # a real image, edited: rebuilt
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    prepare.load_dataset(str(src), **kw)
    assert len(counted) == 2


def test_folders_the_reader_does_not_open_are_not_walked(tmp_path, counted, monkeypatch):
    # A class folder's sub-folder is listed by name and its images' count (the reader's skip
    # warning gives it), never deeper: a change below it, or to a non-image in it, keeps the cache.
    src = tmp_path / "copy"
    write_phantom(src, 16, image_size=40, seed=4)
    scans = tmp_path / "scans"  # a big folder of other files, linked in beside the classes
    (scans / "deep").mkdir(parents=True)
    (scans / "deep" / "a.dcm").write_bytes(b"x")
    (src / "raw_scans").symlink_to(scans)
    (src / "benign" / "old").mkdir()  # a sub-folder of a class folder: skipped by the reader
    (src / "benign" / "old" / "b.png").write_bytes(b"y")
    rows = prepare.folder_signature(src)
    assert ["raw_scans/", -2, 0] in rows and ["benign/old/", -2, 1] in rows
    assert not [r for r in rows if "deep" in r[0] or "b.png" in r[0]]
    kw = dict(image_size=SIZE, preprocess="none", cache_dir=tmp_path / "cache")
    with pytest.warns(DataWarning, match="old: sub-folder of 1 image file"):
        first = prepare.load_dataset(str(src), **kw)
    (scans / "deep" / "a.dcm").write_bytes(b"changed")
    (src / "benign" / "old" / "b.png").write_bytes(b"z")
    (src / "benign" / "old" / "notes.txt").write_bytes(b"z")
    with pytest.warns(DataWarning, match="as when the data was first read"):
        assert prepare.load_dataset(str(src), **kw).fingerprint() == first.fingerprint()
    assert len(counted) == 1  # no change the reader sees: no rebuild
    (src / "benign" / "old" / "c.png").write_bytes(b"z")  # its warning's count changes
    with pytest.warns(DataWarning, match=r"old: sub-folder of 2 image file\(s\)"):
        prepare.load_dataset(str(src), **kw)
    assert len(counted) == 2
    (src / "benign" / "old").rename(src / "benign" / "older")  # the skipped list changes
    with pytest.warns(DataWarning, match="older"):
        prepare.load_dataset(str(src), **kw)
    assert len(counted) == 3


def test_corrupt_entry_is_rebuilt(tmp_path, counted):
    kw = dict(image_size=SIZE, synthetic_n=12, preprocess="none", cache_dir=tmp_path)
    first = prepare.load_dataset("synthetic", **kw)
    npz = next(tmp_path.glob("*.npz"))
    npz.write_bytes(npz.read_bytes()[:100])
    second = prepare.load_dataset("synthetic", **kw)
    assert len(counted) == 2 and second.fingerprint() == first.fingerprint()
    assert prepare.load_dataset("synthetic", **kw).fingerprint() == first.fingerprint()
    assert len(counted) == 2
    assert not [n for n in entries(tmp_path) if n.startswith(".")]  # no temporary files left


def test_a_cache_that_cannot_be_written_is_said_and_the_data_still_read(tmp_path, counted):
    afile = tmp_path / "afile"
    afile.write_text("")
    kw = dict(image_size=SIZE, synthetic_n=12, preprocess="none")
    want = prepare.load_dataset("synthetic", cache_dir=tmp_path / "ok", **kw).fingerprint()
    for cache, why in ((afile, "a file"), (afile / "sub", "Not a directory")):
        with pytest.warns(
            DataWarning, match=rf"dataset cache {cache}: cannot write there \({why}\)"
        ):
            got = prepare.load_dataset("synthetic", cache_dir=cache, **kw)
        assert got.fingerprint() == want
    assert afile.read_text() == ""


def test_bad_inputs_fail_before_work(tmp_path, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("must fail before reading")

    monkeypatch.setattr(prepare, "read_busi", fail)
    monkeypatch.setattr(prepare, "synth_phantom", fail)
    with pytest.raises(DataError, match="'/no/such/dir' is neither 'synthetic' nor an existing"):
        prepare.load_dataset("/no/such/dir", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown pre-processing method 'hist'"):
        prepare.load_dataset("synthetic", preprocess="hist", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown parameter.*'gamma'"):
        prepare.load_dataset("synthetic", preprocess_params={"gamma": 2}, cache_dir=tmp_path)
    with pytest.raises(DataError, match="unknown class set 'four'"):
        prepare.load_dataset("synthetic", class_set="four", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="image_size must be an integer >= 8, got 4"):
        prepare.load_dataset("synthetic", image_size=4, cache_dir=tmp_path)
    assert not tmp_path.exists() or entries(tmp_path) == []


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MTL_BENCH_CACHE", str(tmp_path / "c"))
    assert prepare.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MTL_BENCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert prepare.default_cache_dir() == tmp_path / ".cache" / "mtl_bench" / "datasets"


def test_bench_prepare_runs(capsys):
    from benchmarks.bench_prepare import main

    main(["--n", "9", "--image-size", "32", "--no-tfds"])
    out = capsys.readouterr().out
    assert "9 images at 32²" in out
    for step in ("preprocess mpghe", "load_dataset(folder, mpghe): hit", "= folder → read → mpghe"):
        assert step in out


def test_a_cached_read_repeats_the_data_warnings(tmp_path):
    from mtl_bench.data.types import DataWarning

    src = tmp_path / "busi"
    write_phantom(src, 16, image_size=40, seed=4)
    (src / "benign" / "notes.txt").write_text("stray")
    kw = dict(image_size=SIZE, preprocess="none", cache_dir=tmp_path / "cache")
    with pytest.warns(DataWarning, match=r"1 stray file skipped: .*notes\.txt: not a \.png file$"):
        prepare.load_dataset(str(src), **kw)
    with pytest.warns(DataWarning, match=r"notes\.txt: .*\(as when the data was first read\)"):
        prepare.load_dataset(str(src), **kw)  # from the cache, still said


def test_bad_images_are_skipped_only_when_asked(tmp_path):
    from mtl_bench.data.types import DataWarning

    src = tmp_path / "busi"
    write_phantom(src, 16, image_size=40, seed=4)
    bad = src / "malignant" / "malignant (1).png"
    bad.write_bytes(b"not a png")
    kw = dict(image_size=SIZE, preprocess="none", cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match=r"malignant \(1\)\.png"):
        prepare.load_dataset(str(src), **kw)
    with pytest.warns(DataWarning, match=r"1 file skipped: .*malignant \(1\)\.png"):
        ds = prepare.load_dataset(str(src), strict=False, **kw)
    assert "malignant/malignant (1)" not in ds.ids
    assert str(bad) in [p for p, _ in ds.skipped]


def test_linked_class_folders_are_followed_and_a_dangling_link_is_named(tmp_path):
    # Class folders linked to save copying data: a file removed at the source must reach the run.
    src = tmp_path / "src"
    write_phantom(src, 16, image_size=40, seed=4)
    root = tmp_path / "linked"
    root.mkdir()
    for name in ("benign", "malignant"):
        (root / name).symlink_to(src / name, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)  # a cycle is listed once
    kw = dict(image_size=SIZE, preprocess="none", cache_dir=tmp_path / "cache")
    before = prepare.load_dataset(str(root), **kw)
    gone = before.ids[0]
    for suffix in (".png", "_mask.png"):
        (src / (gone + suffix)).unlink()
    after = prepare.load_dataset(str(root), **kw)
    assert len(after) == len(before) - 1 and gone not in after.ids
    dangling = root / "benign" / "benign (99).png"
    dangling.symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(DataError, match=r"benign \(99\)\.png"):
        prepare.load_dataset(str(root), **kw)
