"""A results folder's folds are tied to the raw data they were made from, at any input size and
pre-processing: a 299² classifier or a CLAHE ablation cannot run on other or edited images under
the same ids; a method's kept folds cannot mix settings (``--folds`` subsets)."""

import dataclasses
import json

import pytest
from busi_fixture import make_busi_tree, standard_spec, write_png

from mtl_bench.config import RunConfig
from mtl_bench.cv import run_cv
from mtl_bench.cv_data import MANIFEST_NAME, dataset_for, fold_splits, shared_manifest
from mtl_bench.data.folds import load_manifest
from mtl_bench.data.types import DataError

TINY = RunConfig(
    model_kwargs={"widths": (4, 8, 16, 32, 64), "dense_units": 16},
    synthetic_n=24,
    image_size=32,
    folds=2,
    epochs=1,
    batch_size=8,
    preprocess="none",
    checkpoint_every=0,
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_BENCH_CACHE", str(tmp_path / "cache"))


def _folder(tmp_path, cfg):
    """A results folder holding only the fold manifest made from ``cfg``'s data."""
    out = tmp_path / "res"
    manifest = shared_manifest(cfg, dataset_for(cfg, quiet=True), out, quiet=True)
    return out, manifest


def _splits(manifest, cfg):
    return fold_splits(manifest, dataset_for(cfg, quiet=True), [0, 1], cfg)


def test_another_phantom_is_refused_at_any_size_and_preprocessing(tmp_path):
    out, manifest = _folder(tmp_path, TINY)
    assert manifest.description["source_fingerprint"]
    elsewhere = dataclasses.replace(TINY, image_size=48, preprocess="clahe")
    assert set(_splits(manifest, elsewhere)) == {0, 1}  # the same phantom: the folds apply
    other = dataclasses.replace(elsewhere, synthetic_seed=1)  # same ids and labels, other scenes
    fix = "give this run --set synthetic_n=24 --set synthetic_seed=0 --set synthetic_difficulty=0.5"
    with pytest.raises(DataError, match=r"not those the folds were made from \(source finger"):
        _splits(manifest, other)
    with pytest.raises(DataError, match=fix):
        run_cv(other, out, quiet=True)  # before any training
    assert not (out / "mtl_resunet").exists()


def test_an_edited_file_is_refused_and_a_reencoded_one_is_not(tmp_path):
    root = tmp_path / "BUSI"
    items = make_busi_tree(root, standard_spec(4))
    cfg = dataclasses.replace(TINY, data=str(root), synthetic_n=None)
    _, manifest = _folder(tmp_path, cfg)
    big = dataclasses.replace(cfg, image_size=40, preprocess="clahe")
    # The same grey pixels written again in another PNG mode: still the folds' data.
    path, item = root / "benign" / "benign (2).png", items["benign/benign (2)"]
    grey = item.image
    assert item.mode != "P"
    write_png(path, grey, "P")
    assert set(_splits(manifest, big)) == {0, 1}
    # One pixel of one image changed: refused at another size and pre-processing too ...
    edited = grey.copy()
    edited[0, 0] ^= 0xFF
    write_png(path, edited)
    changed = "BUSI changed since this folder's folds were made: restore its files"
    with pytest.raises(DataError, match=changed):
        _splits(manifest, big)
    # ... and at the folds' own (the pixel fingerprint), with the same advice: the folder passed
    # is the folder named, so "pass that --data" would send the user in a circle.
    with pytest.raises(DataError, match=rf"dataset fingerprint .* differs.*{changed}"):
        _splits(manifest, cfg)


def test_a_manifest_from_before_source_fingerprints_still_serves(tmp_path):
    out, _ = _folder(tmp_path, TINY)
    path = out / MANIFEST_NAME
    data = json.loads(path.read_text())
    del data["description"]["source_fingerprint"]  # not in the hash: the folds are the same
    del data["details_hash"]  # which came with it
    path.write_text(json.dumps(data))
    other = dataclasses.replace(TINY, image_size=48, synthetic_seed=1)
    assert set(_splits(load_manifest(path), other)) == {0, 1}  # unchecked, as before


@pytest.mark.parametrize("resume", [False, True])
def test_a_folds_subset_cannot_mix_settings_with_the_kept_folds(tmp_path, resume):
    out, _ = _folder(tmp_path, TINY)
    (out / "mtl_resunet").mkdir()
    finished = {"config": {**json.loads(json.dumps(TINY.to_dict(), default=str)), "lr": 0.5}}
    (out / "mtl_resunet" / "fold_0.json").write_text(json.dumps(finished))
    fix = "--resume would mix them" if resume else "train every fold \\(`cv` without --folds\\)"
    with pytest.raises(ValueError, match=rf"fold_0.json: finished with other settings \(lr.*{fix}"):
        run_cv(TINY, out, folds=[1], resume=resume, quiet=True)
    assert not (out / "mtl_resunet" / "fold_1.json").exists()
