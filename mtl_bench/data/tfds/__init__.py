"""TFDS builders ``busi`` and ``busi_synthetic`` (array_record, no TensorFlow), build and load.

``tensorflow_datasets`` and ``grain`` are imported inside the functions here, and the builder
modules (which import TFDS at their top) only from those functions, so importing this package
costs nothing and the core runs with only the JAX stack.

The builders store resized, *not* pre-processed, images; :func:`load_tfds` pre-processes at load
time, so one build serves MPGHE, CLAHE and none alike. Both have a single ``train`` split with
every sample (the folds come from a fold manifest) and the features image and mask (H, W, 1)
uint8, label ClassLabel(benign, malignant, normal), id, and index (the reader's row order).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mtl_bench.data.types import DataError, Dataset, DataWarning, class_names

DATASETS: tuple[str, ...] = ("busi", "busi_synthetic")
# absl warnings that every call here would print, though nothing is wrong: configs are made per
# image size on purpose, and images are decoded with Pillow (no OpenCV) on purpose.
_EXPECTED_WARNINGS = ("Using custom data configuration", "OpenCV is not installed")


class _DropExpected(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_EXPECTED_WARNINGS)


def _quiet_absl() -> None:
    absl = logging.getLogger("absl")
    if not any(isinstance(f, _DropExpected) for f in absl.filters):
        absl.addFilter(_DropExpected())


def _require(*modules: str) -> None:
    """An ImportError naming what is missing and how to get it: these are the project's own
    dependencies (training runs without them; the TFDS path does not), so a bare "No module
    named ..." would not say that reinstalling the project is the fix."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"the TFDS path needs {', '.join(missing)} (not installed here): reinstall the "
            "project with `pip install -e .` (its dependencies), or train from the BUSI folder "
            "or the phantom without TFDS"
        )


def _builder(
    dataset: str,
    data_dir: str | os.PathLike | None,
    image_size: int,
    synthetic_n: int | None,
    seed: int,
    difficulty: float,
):
    """The builder class and config for ``dataset`` with these parameters."""
    if dataset not in DATASETS:
        raise DataError(f"unknown TFDS dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    if int(image_size) != image_size or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}")
    if not isinstance(difficulty, int | float) or isinstance(difficulty, bool):
        raise DataError(f"phantom difficulty must be a number, got {difficulty!r}")
    _quiet_absl()
    _require("tensorflow_datasets", "array_record")
    from mtl_bench.data.tfds import _common

    if dataset == "busi":
        from mtl_bench.data.tfds.busi import Busi as cls

        config = _common.size_config(int(image_size))
    else:
        from mtl_bench.data.tfds.busi_synthetic import BusiSynthetic as cls

        config = _common.synthetic_config(int(image_size), synthetic_n, seed, difficulty)
    # TFDS refuses a new config object named like a registered one: pass the registered one.
    config = cls.builder_configs.get(config.name, config)
    kwargs = {"data_dir": os.fspath(data_dir)} if data_dir is not None else {}
    return cls, config, kwargs


def prepare_tfds(
    dataset: str,
    *,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    image_size: int = 256,
    synthetic_n: int | None = None,
    seed: int = 0,
    difficulty: float = 0.5,
    overwrite: bool = False,
) -> Path:
    """Build ``dataset`` ("busi" or "busi_synthetic") as array_record files; return its folder.

    ``data_dir`` defaults to TFDS's (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``). For
    "busi", ``manual_dir`` holds ``Dataset_BUSI_with_GT`` (default ``data_dir/downloads/manual``).
    An existing build is reused unless ``overwrite``, or, for "busi", unless it was built from
    another folder than the one found now or that folder's listing has changed: it is then
    rebuilt, with a DataWarning saying why. Failures are one-line DataErrors.
    """
    cls, config, kwargs = _builder(dataset, data_dir, image_size, synthetic_n, seed, difficulty)
    from mtl_bench.data.tfds.build_dir import build_claim

    builder = cls(config=config, file_format="array_record", **kwargs)
    what = f"TFDS dataset {dataset}/{config.name} in {builder.data_dir}"
    with build_claim(Path(builder.data_dir), what) as restored:
        if restored:  # the builder looked before the build was put back
            builder = cls(config=config, file_format="array_record", **kwargs)
        return _build(builder, dataset, config.name, manual_dir, overwrite)


def _build(builder, dataset: str, name: str, manual_dir, overwrite: bool) -> Path:
    """``prepare_tfds`` under its claim: reuse or (re)build, a failed rebuild put back."""
    import tensorflow_datasets as tfds

    from mtl_bench.data.tfds.build_dir import kept_until_replaced

    built = Path(builder.data_dir, "dataset_info.json").is_file()
    if dataset == "busi":
        from mtl_bench.data.tfds.busi import find_busi_root, source_listing, stale_reason

        named = manual_dir is not None
        manual_dir = Path(manual_dir or Path(builder.data_dir_root) / "downloads" / "manual")
        try:
            root = find_busi_root(manual_dir)  # a DataError naming the folder before TFDS starts
        except DataError:
            if overwrite or not built or named:
                raise
            root = None  # no folder named and none at the default place: the build is all there is
        # TFDS reuses a build by its config name alone (the image size), whatever folder it came
        # from: compare what the build recorded with the folder found now, so a second folder is
        # never answered with the first one's data.
        why = stale_reason(builder.info.metadata, source_listing(root)) if built and root else None
        if why and not overwrite:
            warnings.warn(
                f"rebuilding TFDS dataset {dataset}/{name} in {builder.data_dir}: {why}",
                DataWarning,
                stacklevel=2,
            )
            overwrite = True
    mode = (
        tfds.download.GenerateMode.FORCE_REDOWNLOAD
        if overwrite
        else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
    )
    download_config = tfds.download.DownloadConfig(
        manual_dir=os.fspath(manual_dir) if manual_dir else None, download_mode=mode
    )
    target = Path(builder.data_dir)
    try:
        with kept_until_replaced(target, replace=overwrite and built):
            builder.download_and_prepare(download_config=download_config)
    except DataError:
        raise
    except Exception as e:  # TFDS internals: reduce to one line, keep the chain for debugging
        first = (str(e).strip().splitlines() or [""])[0]
        raise DataError(
            f"building TFDS dataset {dataset}/{name} in {builder.data_dir} failed: "
            f"{type(e).__name__}: {first}"
        ) from e
    return target


def _refuse_stale(builder, where: str, image_size: int) -> None:
    """A DataError when the folder a "busi" build was made from has changed since.

    A folder that is gone is no error: the build is a self-contained copy of what it read.
    """
    from mtl_bench.data.tfds.busi import source_listing, stale_reason

    metadata = builder.info.metadata
    root = metadata.get("source_root")
    why = stale_reason(metadata, source_listing(root)) if root and Path(root).is_dir() else None
    if why:
        raise DataError(
            f"TFDS dataset {where} is stale: {why}; rebuild it with `mtl-bench data prepare "
            f"--dataset busi --manual-dir DIR --image-size {image_size}` (same --data-dir)"
        )


def load_tfds(
    dataset: str,
    *,
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    class_set: str = "binary",
    image_size: int = 256,
    synthetic_n: int | None = None,
    seed: int = 0,
    difficulty: float = 0.5,
    preprocess: str = "mpghe",
    preprocess_params: dict | None = None,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Read a dataset built by :func:`prepare_tfds` into a :class:`Dataset`, pre-processed.

    Reads through ``tfds.data_source`` and a grain ``MapDataset`` in batches of ``batch_size``.
    Rows come back in the reader's order, so with the same pre-processing the fingerprint equals
    that of :func:`mtl_bench.data.prepare.load_dataset` on the same data. Classes outside
    ``class_set`` are dropped and listed in ``skipped``.
    """
    names = class_names(class_set)
    from mtl_bench.data.preprocess import preprocess as apply_preprocess

    apply_preprocess(np.zeros((0, 8, 8), np.uint8), preprocess, preprocess_params)  # validate
    cls, config, kwargs = _builder(dataset, data_dir, image_size, synthetic_n, seed, difficulty)
    builder = cls(config=config, file_format="array_record", **kwargs)
    where = f"{dataset}/{config.name} in {builder.data_dir}"
    if not Path(builder.data_dir, "dataset_info.json").is_file():
        raise DataError(
            f"TFDS dataset {where} is not built: run `mtl-bench data prepare --dataset {dataset}`"
            f" (or prepare_tfds) with this data dir and image size {image_size} first"
        )
    if dataset == "busi":
        _refuse_stale(builder, where, image_size)
    _require("grain")
    import grain
    import tensorflow_datasets as tfds

    try:
        source = tfds.data_source(
            cls.name,
            split=split,
            data_dir=kwargs.get("data_dir"),
            download=False,
            builder_kwargs={"config": config, "file_format": "array_record"},
        )
    except Exception as e:  # e.g. an unknown split: one line, not TFDS's traceback
        first = (str(e).strip().splitlines() or [""])[0]
        raise DataError(f"cannot read split {split!r} of TFDS dataset {where}: {first}") from e
    batches = grain.MapDataset.source(source).batch(batch_size)
    parts: dict[str, list] = {"image": [], "mask": [], "label": [], "id": [], "index": []}
    for batch in batches:
        for key, values in parts.items():
            values.append(np.asarray(batch[key]))
    if not parts["id"]:
        raise DataError(f"split {split!r} of TFDS dataset {where} is empty")
    arrays = {key: np.concatenate(values) for key, values in parts.items()}
    order = np.argsort(arrays["index"], kind="stable")
    labels = arrays["label"][order].astype(np.int32)
    keep = order[labels < len(names)]
    skipped = [tuple(item) for item in builder.info.metadata.get("skipped", [])]
    dropped = len(order) - len(keep)
    if dropped:
        other = ", ".join(c for c in builder.info.features["label"].names if c not in names)
        skipped.append((f"{where}: {other}", f"class not in class set {class_set!r} ({dropped})"))
    images = arrays["image"][keep, ..., 0]
    source_name = f"tfds:{dataset}/{config.name}[{split}]"
    origin = builder.info.metadata.get("source")  # what the build read: folder or phantom
    return Dataset(
        images=apply_preprocess(images, preprocess, preprocess_params, progress=progress),
        masks=arrays["mask"][keep, ..., 0],
        labels=arrays["label"][keep].astype(np.int32),
        ids=[s.decode() if isinstance(s, bytes) else str(s) for s in arrays["id"][keep]],
        class_names=names,
        skipped=skipped,
        source=f"{source_name} from {origin}" if origin else source_name,
    )
