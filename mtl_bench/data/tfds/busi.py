"""TFDS builder ``busi``: the BUSI breast-ultrasound dataset from a manually downloaded copy.

Stores the resized grey images and OR-merged masks (read by
:func:`mtl_bench.data.reader.read_busi`), not pre-processed ones: pre-processing is a parameter
of :func:`mtl_bench.data.tfds.load_tfds`, so one build serves every pre-processing method.
One ``train`` split holds every image; the cross-validation folds come from a fold manifest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import tensorflow_datasets as tfds

from mtl_bench.data.prepare import folder_signature
from mtl_bench.data.reader import read_busi
from mtl_bench.data.reader_scan import class_folders
from mtl_bench.data.tfds import _common
from mtl_bench.data.types import DataError

FOLDER = "Dataset_BUSI_with_GT"
CLASS_FOLDERS = ("benign", "malignant", "normal")


def find_busi_root(manual_dir: str | Path) -> Path:
    """``manual_dir/Dataset_BUSI_with_GT``, or ``manual_dir`` itself when it holds the classes.

    Class folders count in any case (``Benign/``), by the reader's own rule, so that every folder
    the reader accepts is found here; two folders of one class are found too, and refused with
    the reader's one-line error when the build reads them. A DataError names the expected folder
    when neither is there.
    """
    manual_dir = Path(manual_dir).expanduser()
    inner = manual_dir / FOLDER
    if inner.is_dir():
        return inner
    found = class_folders(manual_dir)
    if all(found[c] for c in CLASS_FOLDERS):
        return manual_dir
    raise DataError(
        f"BUSI not found: expected the folder {inner} (with benign/, malignant/ and normal/ "
        f"inside); download it from {_common.HOMEPAGE} and unpack it into {manual_dir}"
    )


def source_listing(root: str | Path) -> dict[str, str | int]:
    """What a build reads from ``root``: the resolved folder and a digest of its listing.

    The digest covers relative names, sizes and mtimes (no file is read), so it is cheap enough
    to recompute on every prepare and load, yet changes when a file is added, removed or edited.
    """
    rows = folder_signature(Path(root))
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
    return {
        "source_root": str(Path(root).resolve()),
        "source_listing": digest,
        "source_files": len(rows),
    }


def stale_reason(metadata: Mapping, now: Mapping) -> str | None:
    """Why a build with ``metadata`` does not hold the folder ``now`` (a :func:`source_listing`);
    None when it does."""
    then = metadata.get("source_root")
    if then is None or "source_listing" not in metadata:
        return "it records no source folder (made by an older mtl-bench)"
    if then != now["source_root"]:
        return f"it was built from {then}, not from {now['source_root']}"
    if metadata["source_listing"] != now["source_listing"]:
        files = f"{metadata.get('source_files')} files then, {now['source_files']} now"
        return f"{then} has changed since it was built ({files})"
    return None


class Busi(tfds.core.GeneratorBasedBuilder):
    """BUSI (Al-Dhabyani et al. 2020): 780 images, 437 benign, 210 malignant, 133 normal."""

    VERSION = _common.VERSION
    RELEASE_NOTES = _common.RELEASE_NOTES
    BUILDER_CONFIGS = [_common.size_config(256)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Download the BUSI dataset ("Dataset_BUSI_with_GT", e.g. from {_common.HOMEPAGE} or its
    Kaggle mirror), unpack it, and put the `{FOLDER}` folder (holding benign/, malignant/ and
    normal/) in the manual directory: `--manual-dir DIR` with `DIR/{FOLDER}/benign/...`, or
    `<data_dir>/downloads/manual/{FOLDER}` by default.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return _common.info(self, "BUSI breast ultrasound: grey image, lesion mask, class.")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        # TFDS's own error for a missing manual dir is a multi-line paragraph that does not name
        # the folder we need: replace it with a one-line DataError that does.
        try:
            manual_dir = dl_manager.manual_dir
        except AssertionError:
            raise DataError(
                f"BUSI not found: the manual directory is missing or empty; put {FOLDER} in "
                f"--manual-dir DIR (default <data_dir>/downloads/manual)"
            ) from None
        root = find_busi_root(manual_dir)
        # Listed before reading: a file edited during the read makes the build look stale on the
        # next prepare (so it is rebuilt), never fresh.
        listing = source_listing(root)
        # Read everything here, outside TFDS's example loop, so a DataError reaches the caller
        # as itself rather than wrapped by TFDS.
        dataset = read_busi(
            root, image_size=self.builder_config.image_size, class_set="three_class"
        )
        _common.record_metadata(self, dataset)
        # What prepare_tfds and load_tfds compare against, so a build from another folder (or an
        # edited one) is never taken for this one.
        self.info.metadata.update(listing)
        return {"train": self._generate_examples(dataset)}

    def _generate_examples(self, dataset):
        yield from _common.examples(dataset)
