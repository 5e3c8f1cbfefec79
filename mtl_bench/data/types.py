"""Shared data types: the in-memory dataset every data path produces, class sets, errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

# Label indices are fixed so that a result file means the same thing whatever the class set:
# benign 0, malignant 1 (the positive class for binary metrics), normal 2 (three-class only).
CLASS_SETS: dict[str, tuple[str, ...]] = {
    "binary": ("benign", "malignant"),
    "three_class": ("benign", "malignant", "normal"),
}
ALL_CLASSES: tuple[str, ...] = CLASS_SETS["three_class"]


class DataError(ValueError):
    """A bad input, with a one-line message that names the file or value and what is wrong.

    The CLI prints ``str(err)`` and exits non-zero, without a traceback.
    """


class DataWarning(UserWarning):
    """A questionable but usable input (non-binary or empty lesion mask, stray file, duplicates
    across classes). The CLI prints each as one ``mtl-bench: warning: ...`` line."""


def class_names(class_set: str) -> tuple[str, ...]:
    """The class names of ``class_set`` in label order; a DataError for an unknown set."""
    try:
        return CLASS_SETS[class_set]
    except KeyError:
        raise DataError(
            f"unknown class set {class_set!r}: choose one of {', '.join(CLASS_SETS)}"
        ) from None


@dataclass
class Dataset:
    """Decoded, resized images and masks, ready for pre-processing and folds.

    images: (N, H, W) uint8 grey; masks: (N, H, W) uint8 in {0, 1}; labels: (N,) int32 indices
    into ``class_names``; ids: stable sample ids "<class>/<file stem>" used by fold manifests.
    ``skipped`` lists (path, reason) for every file that was not used, so nothing vanishes silently.
    ``source_fingerprint`` identifies the raw data whatever the size and pre-processing (see
    :func:`source_fingerprint`); "" where unknown (a subset, a TFDS read).
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    ids: list[str]
    class_names: tuple[str, ...]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""
    source_fingerprint: str = ""

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not (self.images.shape[0] == self.masks.shape[0] == self.labels.shape[0] == n):
            raise DataError(
                f"dataset arrays disagree in length: images {self.images.shape[0]}, "
                f"masks {self.masks.shape[0]}, labels {self.labels.shape[0]}, ids {n}"
            )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.images.shape[1:3])  # type: ignore[return-value]

    def fingerprint(self) -> str:
        """SHA-256 over ids, labels, images and masks: identical data gives an identical string."""
        h = hashlib.sha256()
        h.update("\n".join(self.ids).encode())
        for arr in (self.labels, self.images, self.masks):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def subset(self, index: np.ndarray) -> Dataset:
        """Rows ``index`` (in that order) as a new Dataset."""
        index = np.asarray(index, dtype=np.int64)
        return Dataset(
            images=self.images[index],
            masks=self.masks[index],
            labels=self.labels[index],
            ids=[self.ids[i] for i in index],
            class_names=self.class_names,
            skipped=list(self.skipped),
            source=self.source,
        )

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(c) for name, c in zip(self.class_names, counts, strict=True)}


def native_digest(image: np.ndarray, mask: np.ndarray) -> str:
    """SHA-256 of one image and its (OR-merged) mask as decoded, at their own size: what a
    source fingerprint is made of for a folder (re-encoding a PNG does not change it)."""
    h = hashlib.sha256()
    for arr in (np.asarray(image, np.uint8), np.asarray(mask, bool).astype(np.uint8)):
        h.update(repr(arr.shape).encode() + b"\0" + np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def source_fingerprint(ids: list[str], parts: list[str]) -> str:
    """SHA-256 over each id and what identifies its raw data (``parts``: a folder's
    :func:`native_digest` per image, or one generator description repeated for the phantom).

    Unlike :meth:`Dataset.fingerprint` it does not depend on the image size or pre-processing,
    so a results folder can check that a 299² classifier or a CLAHE ablation was given the data
    its folds were made from."""
    h = hashlib.sha256()
    for i, part in zip(ids, parts, strict=True):
        h.update(f"{i}\0{part}\n".encode())
    return h.hexdigest()
