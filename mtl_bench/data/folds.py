"""Stratified, group-aware k-fold splits and the fold manifest every result file points to.

A :class:`FoldManifest` pins the test ids of each fold together with the fingerprint of the data
they were made from. Its :meth:`FoldManifest.hash` is what a result file stores as
``fold_manifest_hash``: two runs with the same hash were evaluated on the same folds, because the
hash covers the ids of every fold (not just the seed that produced them, which could split
differently under another scikit-learn version).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mtl_bench.data.types import DataError, Dataset

MANIFEST_FORMAT = 1


def _check_k(labels: np.ndarray, k: int, class_names: tuple[str, ...] | None = None) -> None:
    if int(k) != k or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    values, counts = np.unique(labels, return_counts=True)
    if len(values) == 0:
        raise DataError("cannot make folds of an empty dataset")
    smallest = int(np.argmin(counts))
    if counts[smallest] < k:
        label = int(values[smallest])
        name = class_names[label] if class_names and 0 <= label < len(class_names) else label
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
    """Test indices of each of ``k`` stratified folds; members of a group share a fold.

    ``labels`` and ``groups`` are (N,) integer arrays (a singleton is its own group). Every index
    appears in exactly one fold; each array is sorted. Deterministic for a given ``seed`` (and
    scikit-learn version: persist the result with :class:`FoldManifest` to keep it fixed).
    """
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    if labels.ndim != 1 or groups.shape != labels.shape:
        raise ValueError(
            f"labels and groups must be (N,) arrays of one length, got {labels.shape} and "
            f"{groups.shape}"
        )
    _check_k(labels, k, class_names)
    n_groups = len(np.unique(groups))
    if n_groups < k:
        raise DataError(f"k={k} folds need at least {k} groups, but the data has {n_groups}")
    # Imported here: scikit-learn costs about a second to import and only fold making needs it.
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=int(k), shuffle=True, random_state=int(seed))
    folds = [np.sort(test) for _, test in splitter.split(np.zeros(len(labels)), labels, groups)]
    for i, test in enumerate(folds):
        if len(test) == 0:
            raise DataError(f"fold {i} of k={k} came out empty: the duplicate groups are too big")
    return folds


@dataclass
class FoldManifest:
    """The folds of one dataset: test ids and labels per fold, and what they were made from.

    ``fold_ids[i]`` are the test ids of fold ``i`` (training uses every other fold).
    ``duplicate_groups`` lists the ids of each multi-member duplicate group kept within one fold.
    ``path`` is where it was loaded from or written to (for error messages; not serialised).
    """

    k: int
    seed: int
    class_set: str
    class_names: tuple[str, ...]
    fold_ids: list[list[str]]
    fold_labels: list[list[int]]
    fingerprint: str
    description: dict = field(default_factory=dict)
    duplicate_groups: list[list[str]] = field(default_factory=list)
    near_threshold: float | None = None
    path: str | None = field(default=None, compare=False)

    def identity(self) -> dict:
        """The fields the hash covers: which samples are tested in which fold, of what data."""
        return {
            "k": int(self.k),
            "seed": int(self.seed),
            "class_set": self.class_set,
            "fingerprint": self.fingerprint,
            "fold_ids": [list(ids) for ids in self.fold_ids],
        }

    def hash(self) -> str:
        """SHA-256 of the canonical JSON (sorted keys, no spaces) of :meth:`identity`."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("path")
        data["class_names"] = list(self.class_names)
        return {"format": MANIFEST_FORMAT, "hash": self.hash(), **data}

    @property
    def where(self) -> str:
        return f"fold manifest {self.path}" if self.path else "fold manifest"


def write_manifest(manifest: FoldManifest, path: str | os.PathLike) -> Path:
    """Write ``manifest`` as JSON to ``path`` atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest.to_json(), indent=1, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    manifest.path = str(path)
    return path


def load_manifest(path: str | os.PathLike) -> FoldManifest:
    """Read a manifest written by :func:`write_manifest`; a DataError names the file on any flaw.

    The stored hash is checked against the content, so a hand-edited fold list is caught.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"fold manifest {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"fold manifest {path} is not readable JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise DataError(
            f"fold manifest {path} has no 'format': {MANIFEST_FORMAT} (not a manifest?)"
        )
    stored_hash = data.pop("hash", None)
    data.pop("format")
    try:
        manifest = FoldManifest(**data)
        manifest.class_names = tuple(manifest.class_names)
        if len(manifest.fold_ids) != manifest.k or len(manifest.fold_labels) != manifest.k:
            raise ValueError(f"k={manifest.k} but {len(manifest.fold_ids)} folds listed")
        actual_hash = manifest.hash()
    except (TypeError, ValueError) as e:
        raise DataError(f"fold manifest {path} is malformed: {e}") from None
    if stored_hash != actual_hash:
        raise DataError(
            f"fold manifest {path} was modified: stored hash {stored_hash} != content hash "
            f"{actual_hash}"
        )
    manifest.path = str(path)
    return manifest


def fold_indices(
    manifest: FoldManifest, dataset: Dataset, fold: int, *, check_fingerprint: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` of ``dataset`` for ``fold`` of ``manifest`` (sorted).

    A DataError names the manifest, the fold and what differs when the dataset is not the one
    the manifest was made for: other classes, ids missing or extra, labels changed, or (with
    ``check_fingerprint``) other pixels. ``check_fingerprint=False`` is for runs that share the
    folds of the same samples but change the images on purpose (a pre-processing ablation).
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
    if missing or extra:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} manifest ids missing from the dataset (e.g. {missing[0]!r})"
            )
        if extra:
            parts.append(f"{len(extra)} dataset ids not in the manifest (e.g. {extra[0]!r})")
        raise DataError(f"{where}: dataset does not match: {'; '.join(parts)}")
    if check_fingerprint and dataset.fingerprint() != manifest.fingerprint:
        raise DataError(
            f"{where}: dataset fingerprint {dataset.fingerprint()[:12]} differs from the "
            f"manifest's {manifest.fingerprint[:12]} (same ids, other pixels or order: check "
            f"image size and pre-processing, source {dataset.source!r})"
        )
    in_test = np.array([fold_of[s] == fold for s in dataset.ids], dtype=bool)
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)
