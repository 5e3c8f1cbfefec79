"""The fold manifest every result file points to (``RESULTS/folds.json``), and its file.

:meth:`FoldManifest.hash` is what a result file stores as ``fold_manifest_hash``: runs with one
hash were evaluated on the same folds, since it covers every fold's ids (not just the seed, which
could split differently under another scikit-learn version) and the data's fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from mtl_bench.atomic import atomic_write
from mtl_bench.data.types import DataError

MANIFEST_FORMAT = 1


@dataclass
class FoldManifest:
    """Test ids and labels per fold (``fold_ids[i]``: fold i; training uses the others).

    ``duplicate_groups``: the multi-member groups kept within one fold (ids, kind, cross_class),
    found with Hamming ``near_threshold``. ``path``: for messages only, not serialised.
    """

    k: int
    seed: int
    class_set: str
    class_names: tuple[str, ...]
    fold_ids: list[list[str]]
    fold_labels: list[list[int]]
    fingerprint: str
    description: dict = field(default_factory=dict)
    duplicate_groups: list[dict] = field(default_factory=list)
    near_threshold: int | None = None
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

    def details_hash(self) -> str:
        """SHA-256 of what :meth:`hash` leaves out but a run uses: the duplicate groups (the
        tables' units for image-level tests and CIs) and the description (its
        ``source_fingerprint``). Kept apart so the fold hash of older folders stays valid."""
        details = [self.description, self.duplicate_groups, self.near_threshold]
        text = json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("path")
        data["class_names"] = list(self.class_names)
        details = {"details_hash": self.details_hash()}
        return {"format": MANIFEST_FORMAT, "hash": self.hash(), **details, **data}

    def validate(self) -> None:
        """A ValueError unless there are k folds, a label per id and every id once."""
        ids = [s for fold in self.fold_ids for s in fold]
        if len(self.fold_ids) != self.k or len(self.fold_labels) != self.k:
            raise ValueError(f"k={self.k} but {len(self.fold_ids)} folds listed")
        if [len(f) for f in self.fold_ids] != [len(f) for f in self.fold_labels]:
            raise ValueError("fold_ids and fold_labels differ in length")
        if len(set(ids)) != len(ids):
            raise ValueError("an id appears in more than one place")

    @property
    def where(self) -> str:
        return f"fold manifest {self.path}" if self.path else "fold manifest"


def write_manifest(manifest: FoldManifest, path: str | os.PathLike) -> Path:
    """Write ``manifest`` as JSON to ``path`` atomically (temporary file + ``os.replace``)."""
    text = json.dumps(manifest.to_json(), indent=1, sort_keys=True) + "\n"
    path = atomic_write(path, lambda f: f.write(text), text=True)
    manifest.path = str(path)
    return path


# The stored fields and their JSON types: a missing one was "__init__() missing 1 required
# positional argument", and a string of fold ids was counted by its letters.
_FIELDS = {"k": int, "seed": int, "class_set": str, "class_names": list, "fold_ids": list,
           "fold_labels": list, "fingerprint": str}  # fmt: skip


def _check_fields(data: dict, path: Path) -> None:
    where = f"fold manifest {path} is malformed"
    unknown = sorted(set(data) - {f.name for f in fields(FoldManifest)} - {"path"})
    if unknown:
        raise DataError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    for name, kind in _FIELDS.items():
        if name not in data:
            raise DataError(f"{where}: no {name!r}")
        value = data[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            want = {int: "an integer", str: "a string", list: "a list"}[kind]
            raise DataError(f"{where}: {name!r} must be {want}, got {json.dumps(value)[:40]}")
    for name, item in (("fold_ids", str), ("fold_labels", int)):
        if not all(isinstance(f, list) and all(isinstance(x, item) for x in f) for f in data[name]):
            raise DataError(f"{where}: {name!r} must be a list of lists of {item.__name__}")


def load_manifest(path: str | os.PathLike) -> FoldManifest:
    """Read a :func:`write_manifest` file; a DataError names it on any flaw, including a stored
    hash that does not match the content (a hand-edited fold list)."""
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
    stored_details = data.pop("details_hash", None)  # absent in folders made before it
    data.pop("format")
    _check_fields(data, path)
    try:
        manifest = FoldManifest(**data)
        manifest.class_names = tuple(manifest.class_names)
        manifest.validate()
        actual_hash = manifest.hash()
    except (TypeError, ValueError) as e:
        raise DataError(f"fold manifest {path} is malformed: {e}") from None
    if stored_hash != actual_hash:
        raise DataError(
            f"fold manifest {path} was modified: stored hash {stored_hash} != content hash "
            f"{actual_hash}"
        )
    if stored_details is not None and stored_details != manifest.details_hash():
        raise DataError(
            f"fold manifest {path} was modified: its duplicate groups or description differ "
            "from those it was written with (details_hash)"
        )
    manifest.path = str(path)
    return manifest
