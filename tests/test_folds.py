"""Folds: stratified, group-aware, seeded; manifests round-trip, hash and guard their dataset."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from mtl_bench.data.folds import (
    FoldManifest,
    fold_indices,
    load_manifest,
    make_folds,
    manifest_for,
    write_manifest,
)
from mtl_bench.data.types import DataError, Dataset


def noise_dataset(n_benign: int = 25, n_malignant: int = 15, size: int = 32) -> Dataset:
    """Random-noise images (no two are near duplicates) with copies planted: 3 = 5 = 7, 30 = 31."""
    n = n_benign + n_malignant
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    images[5] = images[7] = images[3]
    images[31] = images[30]
    masks = (rng.random((n, size, size)) > 0.8).astype(np.uint8)
    labels = np.array([0] * n_benign + [1] * n_malignant, dtype=np.int32)
    ids = [f"{'benign' if y == 0 else 'malignant'}/case ({i})" for i, y in enumerate(labels)]
    return Dataset(images, masks, labels, ids, ("benign", "malignant"), source="noise")


def test_make_folds_partition_stratified_and_grouped():
    labels = np.array([0] * 50 + [1] * 23 + [2] * 12)
    groups = np.arange(85)
    groups[[10, 11, 12]] = 10  # a group of three benign samples
    groups[[60, 61]] = 60
    folds = make_folds(labels, groups, k=5, seed=3)
    assert len(folds) == 5
    together = np.concatenate(folds)
    assert sorted(together.tolist()) == list(range(85))  # every sample exactly once
    for test in folds:
        assert np.all(np.diff(test) > 0)
        counts = np.bincount(labels[test], minlength=3)
        # Stratified: each class split as evenly as its count allows (groups may shift one or two).
        assert np.all(np.abs(counts - np.array([10, 4.6, 2.4])) <= 2.5), counts
    fold_of = {int(i): f for f, test in enumerate(folds) for i in test}
    assert fold_of[10] == fold_of[11] == fold_of[12]
    assert fold_of[60] == fold_of[61]


def test_make_folds_seeded():
    labels = np.array([0] * 30 + [1] * 20)
    groups = np.arange(50)
    a = make_folds(labels, groups, k=5, seed=0)
    b = make_folds(labels, groups, k=5, seed=0)
    c = make_folds(labels, groups, k=5, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_make_folds_rejects_bad_k():
    labels = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        make_folds(labels, np.arange(13), k=1)
    with pytest.raises(DataError, match="class 'malignant' has only 3"):
        make_folds(labels, np.arange(13), k=4, class_names=("benign", "malignant"))
    with pytest.raises(DataError, match="at least 3 groups"):
        make_folds(np.array([0, 0, 0, 1, 1, 1]), np.array([0, 0, 0, 1, 1, 1]), k=3)


def test_a_class_with_fewer_duplicate_groups_than_folds_is_refused():
    # Two benign copies (one group) and four malignant images, k=2: the folds were made, and
    # fold 0 then trained on malignant only (or failed later on undefined class weights).
    labels, groups = np.array([0, 0, 1, 1, 1, 1]), np.array([0, 0, 1, 2, 3, 4])
    with pytest.raises(DataError, match=r"class 'benign' has 2 images in 1 group\(s\)"):
        make_folds(labels, groups, k=2, class_names=("benign", "malignant"))
    folds = make_folds(labels, np.arange(6), k=2)  # the same images without the duplicate: fine
    assert all(set(labels[np.setdiff1d(np.arange(6), f)]) == {0, 1} for f in folds)


def test_manifest_keeps_duplicates_in_one_fold_and_round_trips(tmp_path):
    ds = noise_dataset()
    m = manifest_for(ds, k=5, seed=0, preprocess="none")
    assert m.class_set == "binary" and m.k == 5 and m.fingerprint == ds.fingerprint()
    assert sorted(sorted(g["ids"]) for g in m.duplicate_groups) == [
        sorted([ds.ids[3], ds.ids[5], ds.ids[7]]),
        sorted([ds.ids[30], ds.ids[31]]),
    ]
    fold_of = {s: f for f, ids in enumerate(m.fold_ids) for s in ids}
    assert fold_of[ds.ids[3]] == fold_of[ds.ids[5]] == fold_of[ds.ids[7]]
    assert fold_of[ds.ids[30]] == fold_of[ds.ids[31]]
    assert sorted(fold_of) == sorted(ds.ids)
    assert m.description["preprocess"] == "none" and m.description["image_size"] == [32, 32]

    path = write_manifest(m, tmp_path / "sub" / "folds.json")
    assert not [p for p in path.parent.iterdir() if p.name != "folds.json"]  # no temp left
    loaded = load_manifest(path)
    assert loaded == m and loaded.hash() == m.hash() and loaded.path == str(path)
    assert json.loads(path.read_text())["hash"] == m.hash()


def test_hash_is_sha256_of_canonical_identity():
    ds = noise_dataset()
    m = manifest_for(ds, k=5, seed=0)
    ident = {
        "class_set": "binary",
        "fingerprint": ds.fingerprint(),
        "fold_ids": m.fold_ids,
        "k": 5,
        "seed": 0,
    }
    text = json.dumps(ident, sort_keys=True, separators=(",", ":"))
    assert m.hash() == hashlib.sha256(text.encode()).hexdigest()
    # Same data and seed: same folds, same hash; the description is not part of the identity.
    again = manifest_for(ds, k=5, seed=0, preprocess="mpghe")
    assert again.hash() == m.hash()
    assert manifest_for(ds, k=5, seed=1).hash() != m.hash()
    assert manifest_for(ds, k=3, seed=0).hash() != m.hash()


def test_load_manifest_errors(tmp_path):
    with pytest.raises(DataError, match="missing.json does not exist"):
        load_manifest(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json is not readable JSON"):
        load_manifest(bad)
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    with pytest.raises(DataError, match="not a manifest"):
        load_manifest(other)
    path = write_manifest(manifest_for(noise_dataset(), k=5), tmp_path / "m.json")
    data = json.loads(path.read_text())
    data["fold_ids"][0][0], data["fold_ids"][1][0] = data["fold_ids"][1][0], data["fold_ids"][0][0]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="m.json was modified"):
        load_manifest(path)
    # Outside the fold hash, the duplicate groups and description are guarded too: the groups
    # are the image-level tests' units, the description holds the source fingerprint.
    fresh = write_manifest(manifest_for(noise_dataset(), k=5), tmp_path / "d.json")
    clean = json.loads(fresh.read_text())
    ids = clean["fold_ids"][0][:2]
    edits = {
        "duplicate_groups": [{"ids": ids, "kind": "exact", "cross_class": False}],
        "description": {**clean["description"], "source": "other data"},
    }
    for key, value in edits.items():
        assert clean[key] != value
        fresh.write_text(json.dumps({**clean, key: value}))
        with pytest.raises(DataError, match=r"d.json was modified: .*\(details_hash\)"):
            load_manifest(fresh)
    # A folder from before details_hash is read as it was.
    old = {k: v for k, v in clean.items() if k != "details_hash"}
    fresh.write_text(json.dumps({**old, **edits}))
    assert load_manifest(fresh).duplicate_groups == edits["duplicate_groups"]
    data = json.loads(path.read_text())
    data["fold_ids"][0].append(data["fold_ids"][1][0])
    data["fold_labels"][0].append(0)
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="m.json is malformed: an id appears in more than one"):
        load_manifest(path)
    # Fields missing or of another type: named, not Python's internals nor letters counted.
    clean.pop("details_hash")
    for edit, said in (
        ({"fold_ids": "abc"}, "'fold_ids' must be a list, got \"abc\""),
        ({"fold_ids": None}, "'fold_ids' must be a list, got null"),
        ({"fold_labels": [["a"]] * 5}, "'fold_labels' must be a list of lists of int"),
        ({"k": True}, "'k' must be an integer, got true"),
        ({"extra": 1}, "unknown field(s) 'extra'"),
    ):
        fresh.write_text(json.dumps({**clean, **edit}))
        with pytest.raises(DataError, match=re.escape(f"d.json is malformed: {said}")):
            load_manifest(fresh)
    fresh.write_text(json.dumps({k: v for k, v in clean.items() if k != "fold_ids"}))
    with pytest.raises(DataError, match="d.json is malformed: no 'fold_ids'$"):
        load_manifest(fresh)


def test_fold_indices_partition(tmp_path):
    ds = noise_dataset()
    m = load_manifest(write_manifest(manifest_for(ds, k=4, seed=2), tmp_path / "m.json"))
    seen = []
    for f in range(4):
        train, test = fold_indices(m, ds, f)
        assert np.intersect1d(train, test).size == 0
        assert len(train) + len(test) == len(ds)
        assert [ds.ids[i] for i in test] == sorted(m.fold_ids[f], key=ds.ids.index)
        seen.extend(test.tolist())
    assert sorted(seen) == list(range(len(ds)))
    # The same samples in another row order map to the same ids per fold.
    perm = np.random.default_rng(0).permutation(len(ds))
    shuffled = ds.subset(perm)
    _, test = fold_indices(m, shuffled, 1, check_fingerprint=False)
    assert sorted(shuffled.ids[i] for i in test) == sorted(m.fold_ids[1])


def test_fold_indices_rejects_other_data(tmp_path):
    ds = noise_dataset()
    m = manifest_for(ds, k=5)
    write_manifest(m, tmp_path / "m.json")
    with pytest.raises(DataError, match=r"m\.json, fold 2: 1 manifest id\(s\) not in the dataset"):
        fold_indices(m, ds.subset(np.arange(1, len(ds))), 2)
    bigger = Dataset(
        np.concatenate([ds.images, ds.images[:1]]),
        np.concatenate([ds.masks, ds.masks[:1]]),
        np.concatenate([ds.labels, ds.labels[:1]]),
        [*ds.ids, "benign/new"],
        ds.class_names,
    )
    with pytest.raises(DataError, match=r"1 dataset id\(s\) not in the manifest .*'benign/new'"):
        fold_indices(m, bigger, 0)
    changed = ds.subset(np.arange(len(ds)))
    changed.images[0] = 255 - changed.images[0]
    with pytest.raises(DataError, match="fold 0: dataset fingerprint .* differs"):
        fold_indices(m, changed, 0)
    fold_indices(m, changed, 0, check_fingerprint=False)  # same ids and labels: allowed
    relabelled = ds.subset(np.arange(len(ds)))
    relabelled.labels[0] = 1
    with pytest.raises(DataError, match="'benign/case \\(0\\)' is labelled 1 in the dataset"):
        fold_indices(m, relabelled, 0, check_fingerprint=False)
    three = Dataset(ds.images, ds.masks, ds.labels, ds.ids, ("benign", "malignant", "normal"))
    with pytest.raises(DataError, match="dataset classes"):
        fold_indices(m, three, 0)
    with pytest.raises(ValueError, match="fold must be an integer in \\[0, 5\\)"):
        fold_indices(m, ds, 5)


def test_manifest_dataclass_is_plain_json(tmp_path):
    m = FoldManifest(2, 0, "binary", ("benign", "malignant"), [["a"], ["b"]], [[0], [1]], "f")
    loaded = load_manifest(write_manifest(m, tmp_path / "m.json"))
    assert loaded.class_names == ("benign", "malignant") and loaded.fold_ids == [["a"], ["b"]]
