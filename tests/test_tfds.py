"""TFDS builders without TensorFlow: build, read back equal to the reader, one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mtl_bench.data.phantom import synth_phantom, write_phantom
from mtl_bench.data.prepare import load_dataset
from mtl_bench.data.reader import read_busi
from mtl_bench.data.tfds import load_tfds, prepare_tfds
from mtl_bench.data.types import DataError

SIZE = 32
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory) -> Path:
    manual = tmp_path_factory.mktemp("manual")
    write_phantom(manual / "Dataset_BUSI_with_GT", 15, image_size=48, seed=2)
    return manual


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, manual_dir) -> Path:
    data = tmp_path_factory.mktemp("tfds")
    prepare_tfds("busi", data_dir=data, manual_dir=manual_dir, image_size=SIZE)
    prepare_tfds("busi_synthetic", data_dir=data, image_size=SIZE, synthetic_n=12, seed=1)
    return data


def test_synthetic_round_trip(data_dir):
    ds = load_tfds(
        "busi_synthetic",
        data_dir=data_dir,
        image_size=SIZE,
        synthetic_n=12,
        seed=1,
        class_set="three_class",
        preprocess="none",
    )
    ref = synth_phantom(12, image_size=SIZE, seed=1, class_set="three_class")
    assert ds.ids == ref.ids and ds.class_names == ref.class_names
    assert ds.fingerprint() == ref.fingerprint()  # same pixels, masks, labels, order
    assert ds.source == "tfds:busi_synthetic/32px_n12_seed1_d0p5[train] from " + ref.source
    binary = load_tfds("busi_synthetic", data_dir=data_dir, image_size=SIZE, synthetic_n=12, seed=1)
    assert set(binary.labels.tolist()) == {0, 1} and "normal" not in " ".join(binary.ids)
    assert len(binary) == int((ref.labels < 2).sum())
    assert any("class not in class set 'binary'" in reason for _, reason in binary.skipped)


def test_busi_matches_reader_and_prepared_cache(data_dir, manual_dir, tmp_path):
    root = manual_dir / "Dataset_BUSI_with_GT"
    ds = load_tfds("busi", data_dir=data_dir, image_size=SIZE, preprocess="none")
    ref = read_busi(root, image_size=SIZE, class_set="binary")
    assert ds.ids == ref.ids and ds.fingerprint() == ref.fingerprint()
    assert ds.source == f"tfds:busi/32px[train] from {ref.source}"
    # Pre-processed at load time exactly as the cache does: a manifest fits either path.
    mp = load_tfds("busi", data_dir=data_dir, image_size=SIZE, preprocess="mpghe")
    cached = load_dataset(str(root), image_size=SIZE, preprocess="mpghe", cache_dir=tmp_path)
    assert mp.fingerprint() == cached.fingerprint()
    assert not np.array_equal(mp.images, ds.images)
    half = load_tfds(
        "busi",
        data_dir=data_dir,
        image_size=SIZE,
        split="train[:50%]",
        preprocess="none",
        class_set="three_class",
    )
    assert 0 < len(half) < 15


def test_build_is_reused_and_overwrite_rebuilds(tmp_path):
    manual = tmp_path / "manual"
    write_phantom(manual / "Dataset_BUSI_with_GT", 9, image_size=40, seed=5)
    path = prepare_tfds("busi", data_dir=tmp_path / "d", manual_dir=manual, image_size=SIZE)
    assert path == tmp_path / "d" / "busi" / "32px" / "1.1.0"
    (record,) = path.glob("*.array_record*")
    assert record.name == "busi-train.array_record-00000-of-00001"
    stamp = record.stat().st_mtime_ns
    # Reused: the manual folder is not needed again.
    assert prepare_tfds("busi", data_dir=tmp_path / "d", image_size=SIZE) == path
    assert record.stat().st_mtime_ns == stamp
    # Overwrite from another copy; manual_dir may also be the BUSI folder itself.
    other = write_phantom(tmp_path / "other", 12, image_size=40, seed=6)
    prepare_tfds("busi", data_dir=tmp_path / "d", manual_dir=other, image_size=SIZE, overwrite=True)
    ds = load_tfds("busi", data_dir=tmp_path / "d", image_size=SIZE, preprocess="none")
    assert ds.fingerprint() == read_busi(other, image_size=SIZE).fingerprint()


def test_class_folders_in_other_case_build_as_the_reader_reads_them(tmp_path):
    # manual_dir is the BUSI folder itself, so finding it rests on the class folders' names.
    root = write_phantom(tmp_path / "busi", 9, image_size=40, seed=7)
    for name, other in (("benign", "Benign"), ("malignant", "Malignant"), ("normal", "NORMAL")):
        (root / name).rename(root / other)
    data = tmp_path / "d"
    prepare_tfds("busi", data_dir=data, manual_dir=root, image_size=SIZE)
    ds = load_tfds("busi", data_dir=data, image_size=SIZE, preprocess="none")
    ref = read_busi(root, image_size=SIZE)
    assert ds.ids == ref.ids and ds.fingerprint() == ref.fingerprint()
    assert ds.ids[0].startswith("benign/")  # ids keep the lower-case class


def test_two_folders_of_one_class_are_refused_in_one_line(tmp_path):
    root = write_phantom(tmp_path / "busi", 9, image_size=40, seed=7)
    second = root / "Benign"
    second.mkdir()
    for f in sorted((root / "benign").iterdir())[:2]:  # an image and its mask
        f.rename(second / f.name)
    text = f"{second}: second 'benign' class folder beside 'benign' (merge them)"
    with pytest.raises(DataError, match=re.escape(text)) as err:
        prepare_tfds("busi", data_dir=tmp_path / "d", manual_dir=root, image_size=SIZE)
    assert "\n" not in str(err.value)


def test_builder_used_directly_names_the_manual_folder(tmp_path):
    from mtl_bench.data.tfds import _builder

    cls, config, kwargs = _builder("busi", tmp_path, SIZE, None, 0, 0.5)
    with pytest.raises(DataError, match="put Dataset_BUSI_with_GT in --manual-dir DIR"):
        cls(config=config, file_format="array_record", **kwargs).download_and_prepare()


def test_errors_are_one_line(tmp_path, data_dir):
    default_manual = tmp_path / "downloads" / "manual"
    cases = [
        (
            lambda: prepare_tfds("busi", data_dir=tmp_path, image_size=SIZE),
            f"expected the folder {default_manual}/Dataset_BUSI_with_GT",
        ),
        (
            lambda: prepare_tfds("busi", data_dir=tmp_path, manual_dir=tmp_path / "m"),
            f"expected the folder {tmp_path}/m/Dataset_BUSI_with_GT",
        ),
        (
            lambda: load_tfds("busi", data_dir=data_dir, image_size=64),
            "busi/64px in .* is not built: run `mtl-bench data prepare --dataset busi`",
        ),
        (
            lambda: load_tfds("busi", data_dir=data_dir, image_size=SIZE, split="test"),
            "cannot read split 'test' .*Unknown split 'test'",
        ),
        (lambda: prepare_tfds("busy"), "unknown TFDS dataset 'busy'"),
        (
            lambda: load_tfds("busi", data_dir=data_dir, image_size=SIZE, preprocess="x"),
            "unknown pre-processing method 'x'",
        ),
    ]
    for i, (call, pattern) in enumerate(cases):
        kind = ValueError if i == len(cases) - 1 else DataError  # preprocess's own ValueError
        with pytest.raises(kind, match=pattern) as err:
            call()
        assert "\n" not in str(err.value)


NO_TF_SCRIPT = """
import sys, warnings
from pathlib import Path
warnings.simplefilter("ignore")
from mtl_bench.data.folds import fold_indices, manifest_for
from mtl_bench.data.phantom import write_phantom
from mtl_bench.data.prepare import load_dataset
from mtl_bench.data.reader import read_busi
from mtl_bench.data.tfds import load_tfds, prepare_tfds

tmp = Path(sys.argv[1])
root = write_phantom(tmp / "manual" / "Dataset_BUSI_with_GT", 9, image_size=32)
assert len(read_busi(root, image_size=32)) > 0
ds = load_dataset(str(root), image_size=32, cache_dir=tmp / "c")
train, test = fold_indices(manifest_for(ds, k=2), ds, 0)
assert len(train) + len(test) == len(ds) > 0
assert len(load_dataset("synthetic", image_size=32, synthetic_n=9, cache_dir=tmp / "c")) > 0
prepare_tfds("busi", data_dir=tmp / "t", manual_dir=tmp / "manual", image_size=32)
prepare_tfds("busi_synthetic", data_dir=tmp / "t", image_size=32, synthetic_n=9)
assert len(load_tfds("busi", data_dir=tmp / "t", image_size=32)) > 0
assert len(load_tfds("busi_synthetic", data_dir=tmp / "t", image_size=32, synthetic_n=9)) > 0
assert "tensorflow" not in sys.modules, "a data path imported TensorFlow"
print("NO_TF_OK")
"""


def test_every_data_path_runs_without_tensorflow(tmp_path):
    # A fresh interpreter: other tests' imports can neither hide nor cause a TensorFlow import.
    # Without TensorFlow installed a path that needs it fails outright (TFDS's PNG encoder did,
    # before the builders encoded with Pillow); with it installed, the sys.modules check bites.
    # (A meta-path hook refusing "tensorflow" cannot be used: etils probes with find_spec.)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(NO_TF_SCRIPT), str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "NO_TF_OK" in proc.stdout, proc.stderr[-3000:]


def test_a_missing_tfds_package_says_how_to_get_it(monkeypatch, tmp_path):
    import importlib.util

    from mtl_bench.data.tfds import prepare_tfds

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "array_record" else real(name, *a),
    )
    with pytest.raises(ImportError, match=r"TFDS path needs array_record .*`pip install -e \.`"):
        prepare_tfds("busi_synthetic", data_dir=tmp_path, image_size=32, synthetic_n=8)
    assert not any(tmp_path.iterdir())
