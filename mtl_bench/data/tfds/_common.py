"""What the ``busi`` and ``busi_synthetic`` builders share: features, configs, example encoding.

Imported only by the builder modules, which :mod:`mtl_bench.data.tfds` imports lazily, so the
top-level ``tensorflow_datasets`` import here never runs unless a TFDS path is used.

No TensorFlow is needed: images and masks are handed to TFDS as PNG bytes made by Pillow (TFDS
would otherwise call ``tf.image.encode_png``), records are array_record, and reading goes
through ``tfds.data_source``, which decodes with Pillow.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from mtl_bench.data.types import ALL_CLASSES, Dataset

# A new version whenever the reader reads a file differently: a build is judged stale by its
# file listing only, so an older build of the same files would keep the old reading.
VERSION = tfds.core.Version("1.1.0")
RELEASE_NOTES = {
    "1.0.0": "Resized grey images and OR-merged masks; no pre-processing.",
    "1.1.0": "Label-map masks (0/1/2) read as lesion where non-zero; alpha-drawn masks by alpha.",
}
HOMEPAGE = "https://scholar.cu.edu.eg/?q=afahmy/pages/dataset"
CITATION = """@article{aldhabyani2020busi,
  title   = {Dataset of breast ultrasound images},
  author  = {Al-Dhabyani, Walid and Gomaa, Mohammed and Khaled, Hussien and Fahmy, Aly},
  journal = {Data in Brief}, volume = {28}, pages = {104863}, year = {2020}}"""


@dataclasses.dataclass
class SizeConfig(tfds.core.BuilderConfig):
    """A square ``image_size`` (pixels) that images and masks are resized to."""

    image_size: int = 256


@dataclasses.dataclass
class SyntheticConfig(SizeConfig):
    """The phantom's parameters besides the size: ``n`` images (None: 780), seed, difficulty."""

    n: int | None = None
    seed: int = 0
    difficulty: float = 0.5


def size_config(image_size: int) -> SizeConfig:
    return SizeConfig(name=f"{image_size}px", image_size=image_size)


def synthetic_config(
    image_size: int, n: int | None = None, seed: int = 0, difficulty: float = 0.5
) -> SyntheticConfig:
    # Config names become folder names: no dots (they would read as a version separator).
    d = f"{difficulty:g}".replace(".", "p").replace("-", "m")
    name = f"{image_size}px_n{'all' if n is None else n}_seed{seed}_d{d}"
    return SyntheticConfig(name=name, image_size=image_size, n=n, seed=seed, difficulty=difficulty)


def features(image_size: int) -> tfds.features.FeaturesDict:
    """image, mask (H, W, 1) uint8; label benign/malignant/normal; id; reader row ``index``."""
    shape = (image_size, image_size, 1)
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=shape, dtype=np.uint8, encoding_format="png"),
            "mask": tfds.features.Image(shape=shape, dtype=np.uint8, encoding_format="png"),
            "label": tfds.features.ClassLabel(names=list(ALL_CLASSES)),
            "id": tfds.features.Text(),
            # The row in the reader's order: loading sorts by it, so a dataset read through TFDS
            # has the same order, hence the same fingerprint, as one read from the folder.
            "index": tfds.features.Scalar(dtype=np.int32),
        }
    )


def info(builder: tfds.core.GeneratorBasedBuilder, description: str) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=builder,
        description=description,
        features=features(builder.builder_config.image_size),
        metadata=tfds.core.MetadataDict(),
        homepage=HOMEPAGE,
        citation=CITATION,
    )


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return buf.getvalue()


def record_metadata(builder: tfds.core.GeneratorBasedBuilder, dataset: Dataset) -> None:
    """Keep the source and the skipped files with the built dataset (metadata.json)."""
    builder.info.metadata["source"] = dataset.source
    builder.info.metadata["skipped"] = [list(item) for item in dataset.skipped]


def examples(dataset: Dataset) -> Iterator[tuple[str, dict]]:
    """TFDS (key, example) pairs of a three-class ``dataset``, keyed by sample id."""
    if tuple(dataset.class_names) != ALL_CLASSES:
        raise ValueError(
            f"TFDS builders store all classes {ALL_CLASSES}, got {dataset.class_names}"
        )
    for i, sample_id in enumerate(dataset.ids):
        yield (
            sample_id,
            {
                "image": _png(dataset.images[i]),
                "mask": _png(dataset.masks[i]),
                "label": int(dataset.labels[i]),
                "id": sample_id,
                "index": i,
            },
        )
