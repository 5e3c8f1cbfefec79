"""Stratified, group-aware k-fold splits: made for a dataset (:func:`manifest_for`), and each
fold's rows found in a dataset checked against the manifest (:func:`fold_indices`). The
manifest itself, its hash and its file: ``manifest.py``.
"""

from __future__ import annotations

import numpy as np

from mtl_bench.data.duplicates import (
    DuplicateGroup,
    default_near_threshold,
    duplicate_groups,
    group_index,
)
from mtl_bench.data.manifest import (  # noqa: F401 (importable from here, as they were)
    MANIFEST_FORMAT,
    FoldManifest,
    load_manifest,
    write_manifest,
)
from mtl_bench.data.types import CLASS_SETS, DataError, Dataset


def _check_k(labels: np.ndarray, k: int, class_names: tuple[str, ...] | None = None) -> None:
    if int(k) != k or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    values, counts = np.unique(labels, return_counts=True)
    if len(values) == 0:
        raise DataError("cannot make folds of an empty dataset")
    smallest = int(np.argmin(counts))
    if counts[smallest] < k:
        name = _class_name(int(values[smallest]), class_names)
        raise DataError(
            f"k={k} folds need at least {k} samples per class, but class {name!r} has only "
            f"{int(counts[smallest])}"
        )


def make_folds(
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    k: int = 5,
    seed: int = 0,
    class_names: tuple[str, ...] | None = None,
) -> list[np.ndarray]:
    """Sorted test indices of ``k`` stratified folds; members of a group share a fold.

    ``labels``, ``groups``: (N,) ints (a singleton is its own group). Every index is in exactly
    one fold. Deterministic per ``seed`` and scikit-learn version (a manifest pins the result).
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    if labels.ndim != 1 or groups.shape != labels.shape:
        raise ValueError(f"labels {labels.shape} and groups {groups.shape}: need (N,) and (N,)")
    _check_k(labels, k, class_names)
    n_groups = len(np.unique(groups))
    if n_groups < k:
        raise DataError(f"k={k} folds need at least {k} groups, but the data has {n_groups}")
    _check_groups_per_class(labels, groups, k, class_names)
    # Imported here: scikit-learn costs about a second to import and only fold making needs it.
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=int(k), shuffle=True, random_state=int(seed))
    folds = [np.sort(test) for _, test in splitter.split(np.zeros(len(labels)), labels, groups)]
    for i, test in enumerate(folds):
        if len(test) == 0:
            raise DataError(f"fold {i} of k={k} came out empty: the duplicate groups are too big")
        train = np.setdiff1d(np.unique(labels), labels[np.setdiff1d(np.arange(len(labels)), test)])
        if train.size:  # its training part lacks a class: its loss weights would be undefined
            raise DataError(
                f"fold {i} of k={k} would train without class "
                f"{_class_name(int(train[0]), class_names)!r}: its duplicate groups all fell in "
                "that fold; use fewer folds or check the duplicates (`mtl-bench data check`)"
            )
    return folds


def _class_name(label: int, class_names: tuple[str, ...] | None) -> str | int:
    return class_names[label] if class_names and 0 <= label < len(class_names) else label


def _check_groups_per_class(
    labels: np.ndarray, groups: np.ndarray, k: int, class_names: tuple[str, ...] | None
) -> None:
    """Near-duplicates stay in one fold, so a class needs ``k`` groups, not only ``k`` images,
    to be in every fold's test part (and two to be in every training part): a class of copies
    was split without a word, and a fold then trained without it."""
    for label in np.unique(labels):
        n_groups = len(np.unique(groups[labels == label]))
        if n_groups < k:
            n = int(np.sum(labels == label))
            raise DataError(
                f"k={k} folds need at least {k} duplicate groups per class (near-duplicate "
                f"images stay in one fold), but class {_class_name(int(label), class_names)!r} "
                f"has {n} images in {n_groups} group(s); use fewer folds, or see "
                "`mtl-bench data check` for its duplicates"
            )


def manifest_for(
    dataset: Dataset,
    *,
    k: int = 5,
    seed: int = 0,
    near_threshold: int | None = None,
    hash_size: int = 8,
    groups: list[DuplicateGroup] | None = None,
    preprocess: str | None = None,
) -> FoldManifest:
    """Folds for ``dataset`` keeping ``duplicate_groups`` together, via :func:`make_folds`.

    ``groups`` (e.g. ``check_busi``'s on the raw folder, matched by id) replaces that search.
    ``preprocess`` is recorded in the description (a Dataset does not say).
    """
    set_names = {names: name for name, names in CLASS_SETS.items()}
    class_set = set_names.get(tuple(dataset.class_names))
    if class_set is None:
        raise DataError(f"dataset classes {list(dataset.class_names)} are not a known class set")
    if groups is None:
        threshold = default_near_threshold(hash_size) if near_threshold is None else near_threshold
        groups = duplicate_groups(
            dataset.images,
            dataset.ids,
            dataset.labels,
            hash_size=hash_size,
            near_threshold=threshold,
        )
    else:
        threshold = near_threshold
    group_of = group_index(groups, len(dataset), ids=dataset.ids)
    folds = make_folds(dataset.labels, group_of, k=k, seed=seed, class_names=dataset.class_names)
    present = set(dataset.ids)
    return FoldManifest(
        k=int(k),
        seed=int(seed),
        class_set=class_set,
        class_names=tuple(dataset.class_names),
        fold_ids=[[dataset.ids[i] for i in test] for test in folds],
        fold_labels=[[int(dataset.labels[i]) for i in test] for test in folds],
        fingerprint=dataset.fingerprint(),
        description={
            "source": dataset.source,
            # The raw data whatever the size and pre-processing: every method is checked
            # against it (the pixels, ``fingerprint``, only at this size and pre-processing).
            "source_fingerprint": dataset.source_fingerprint or None,
            "image_size": list(dataset.image_size),
            "preprocess": preprocess,
            "class_counts": dataset.class_counts(),
        },
        duplicate_groups=[
            {
                "ids": [s for s in g.ids if s in present],
                "kind": g.kind,
                "cross_class": g.cross_class,
            }
            for g in groups
            if sum(s in present for s in g.ids) > 1
        ],
        near_threshold=threshold,
    )


def fold_indices(
    manifest: FoldManifest, dataset: Dataset, fold: int, *, check_fingerprint: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices ``(train, test)`` of ``dataset`` for ``fold`` of ``manifest``.

    A DataError names the manifest, fold and difference when ``dataset`` is not the manifest's:
    other classes, ids missing or extra, labels changed, or other pixels (the fingerprint).
    ``check_fingerprint=False`` lets a run change the images on purpose (a pre-processing
    ablation) while keeping the folds of the same ids and labels.
    """
    where = f"{manifest.where}, fold {fold}"
    if int(fold) != fold or not 0 <= fold < manifest.k:
        raise ValueError(f"{where}: fold must be an integer in [0, {manifest.k}), got {fold!r}")
    if tuple(dataset.class_names) != tuple(manifest.class_names):
        raise DataError(
            f"{where}: dataset classes {list(dataset.class_names)} differ from the manifest's "
            f"{list(manifest.class_names)}"
        )
    row = {sample_id: i for i, sample_id in enumerate(dataset.ids)}
    if len(row) != len(dataset.ids):
        raise DataError(f"{where}: dataset {dataset.source or ''} has duplicate ids".strip())
    fold_of: dict[str, int] = {}
    for f, (ids, labels) in enumerate(zip(manifest.fold_ids, manifest.fold_labels, strict=True)):
        for sample_id, label in zip(ids, labels, strict=True):
            fold_of[sample_id] = f
            i = row.get(sample_id)
            if i is None:
                continue
            if int(dataset.labels[i]) != int(label):
                raise DataError(
                    f"{where}: sample {sample_id!r} is labelled {int(dataset.labels[i])} in the "
                    f"dataset but {label} in the manifest"
                )
    missing = [s for s in fold_of if s not in row]
    extra = [s for s in dataset.ids if s not in fold_of]
    for found, text in (
        (missing, "manifest id(s) not in the dataset"),
        (extra, "dataset id(s) not in the manifest"),
    ):
        if found:
            raise DataError(f"{where}: {len(found)} {text} (e.g. {found[0]!r})")
    if check_fingerprint and dataset.fingerprint() != manifest.fingerprint:
        raise DataError(
            f"{where}: dataset fingerprint {dataset.fingerprint()[:12]} differs from the "
            f"manifest's {manifest.fingerprint[:12]} (same ids, other pixels or order: check "
            f"image size and pre-processing, source {dataset.source!r})"
        )
    in_test = np.array([fold_of[s] == fold for s in dataset.ids], dtype=bool)
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)
