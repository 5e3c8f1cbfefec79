"""Load a dataset ready for training: read or synthesise, pre-process once, cache the result.

The cache holds one compressed ``.npz`` per combination of source and parameters, plus a JSON
sidecar that says what went into it. The key hashes the source (a folder's relative file paths,
sizes and modification times; the phantom's parameters), every parameter, and the source code of
the reader, PNG decoding, phantom and pre-processing modules, so editing any of them invalidates
old entries instead of silently serving images made by other code. The sidecar also keeps the
data warnings of the read (skipped files, empty masks): a cached read repeats them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mtl_bench.atomic import atomic_write
from mtl_bench.data import preprocess as preprocess_module
from mtl_bench.data.phantom import synth_phantom
from mtl_bench.data.preprocess import preprocess
from mtl_bench.data.reader import read_busi
from mtl_bench.data.types import DataError, Dataset, DataWarning, class_names

# Bump when the layout of the cached arrays changes.
CACHE_FORMAT = 1
SYNTHETIC = "synthetic"


def default_cache_dir() -> Path:
    """``$MTL_BENCH_CACHE`` if set, else ``~/.cache/mtl_bench/datasets``."""
    env = os.environ.get("MTL_BENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mtl_bench" / "datasets"


def _hidden(name: str) -> bool:
    # The reader's rule (reader_scan: a name starting with "."), for files and folders alike:
    # what it never opens must not invalidate a cache either.
    return name.startswith(".")


def folder_signature(root: Path) -> list[list]:
    """Sorted ``[relative path, size, mtime_ns]`` of what the reader can read: the files in
    ``root`` and in its class folders (``benign/`` … in any case), one level deep, as it reads.

    Cheap (no file is read) yet changes when a file is added, removed, replaced or edited.
    Hidden files and folders (``.DS_Store``, ``._NAME``) are left out, as the reader skips
    them: Finder rewriting ``.DS_Store`` must not force a rebuild. Other folders (a sub-folder
    of scans, a link to a disk of them) are listed by name (size -2) and, in a class folder, by
    the number of images in them, which the reader's skip warning gives (``folder_images``: a
    capped walk, a link one level), so other changes in them do not throw the cache away. Links
    are followed, as the reader follows them (class folders linked to save copying); a broken
    link is listed as size -1 for the reader to name.
    """
    from mtl_bench.data.reader_scan import class_folders, folder_images

    classes = {p.name for found in class_folders(root).values() for p in found}
    rows = []

    def listing(folder: Path, walk: bool) -> None:
        for entry in os.scandir(folder):
            if _hidden(entry.name):
                continue
            path = Path(entry.path)
            rel = path.relative_to(root).as_posix()
            if entry.is_dir():
                if walk and entry.name in classes:
                    listing(path, walk=False)
                else:  # in a class folder, its images' count: the reader's warning gives it
                    rows.append([rel + "/", -2, 0 if walk else folder_images(path)])
                continue
            try:
                st = path.stat()
                rows.append([rel, st.st_size, st.st_mtime_ns])
            except FileNotFoundError:  # a dangling link
                rows.append([rel, -1, 0])

    listing(Path(root), walk=True)
    rows.sort()
    return rows


def _code_signature() -> str:
    # Every module that shapes the pixels: the reader, PNG decoding and resizing, the phantom
    # (split over several files, hence the patterns, which also catch future siblings),
    # pre-processing and the types; and the versions of the libraries that decode, resize and
    # equalise (an upgrade that changes Pillow's resampling or CLAHE must not serve old pixels).
    import PIL
    import scipy
    import skimage

    h = hashlib.sha256()
    for lib in (PIL, scipy, skimage, np):
        h.update(f"{lib.__name__}={lib.__version__}\0".encode())
    here = Path(__file__).parent
    for pattern in ("reader*.py", "png*.py", "phantom*.py", "preprocess*.py", "types.py"):
        for path in sorted(here.glob(pattern)):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _save(path: Path, dataset: Dataset, meta: dict) -> None:
    """Write the arrays, then the sidecar (``meta`` and the read's data warnings): an entry
    counts only once both exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "images": dataset.images,
        "masks": dataset.masks,
        "labels": dataset.labels,
        "ids": np.array(dataset.ids, dtype=str),
        "class_names": np.array(dataset.class_names, dtype=str),
        "skipped": np.array(dataset.skipped, dtype=str).reshape(-1, 2),
        "source": np.array(dataset.source),
        "source_fingerprint": np.array(dataset.source_fingerprint),
    }
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    text = (json.dumps(meta, indent=1, sort_keys=True, default=repr) + "\n").encode()
    atomic_write(path.with_suffix(".json"), lambda f: f.write(text))


def _load(path: Path) -> Dataset | None:
    """The cached dataset, or None when the entry is absent or unreadable (it is then rebuilt).

    The data warnings of the read that made the entry are given again, so a cached read says
    what the first one said (skipped files, empty masks)."""
    if not (path.is_file() and path.with_suffix(".json").is_file()):
        return None
    try:
        said = json.loads(path.with_suffix(".json").read_text("utf-8")).get("data_warnings", [])
    except (OSError, ValueError, AttributeError):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            dataset = Dataset(
                images=z["images"],
                masks=z["masks"],
                labels=z["labels"],
                ids=[str(s) for s in z["ids"]],
                class_names=tuple(str(s) for s in z["class_names"]),
                skipped=[(str(p), str(r)) for p, r in z["skipped"]],
                source=str(z["source"]),
                source_fingerprint=str(z["source_fingerprint"]),  # absent: an older entry
            )
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # rebuilt, and the rebuild warns itself
    for message in said:
        warnings.warn(f"{message} (as when the data was first read)", DataWarning, stacklevel=3)
    return dataset


def _source(
    data: str, image_size: int, class_set: str, synth: dict, strict: bool, progress
) -> tuple[dict, Callable[[], Dataset]]:
    """What identifies the raw data (for the cache key), and a function that produces it."""
    if data == SYNTHETIC:

        def make() -> Dataset:
            ds = synth_phantom(
                synth["n"],
                image_size=image_size,
                seed=synth["seed"],
                difficulty=synth["difficulty"],
                class_set=class_set,
            )
            n = len(ds) if synth["n"] is None else synth["n"]
            ds.source = f"synthetic(n={n},seed={synth['seed']},difficulty={synth['difficulty']})"
            return ds

        return {"kind": SYNTHETIC, **synth}, make
    root = Path(data).expanduser()
    if not root.is_dir():
        raise DataError(f"data {data!r} is neither 'synthetic' nor an existing folder")
    root = root.resolve()
    files = json.dumps(folder_signature(root)).encode()

    def read() -> Dataset:
        return read_busi(
            root, image_size=image_size, class_set=class_set, strict=strict, progress=progress
        )

    key = {"kind": "folder", "root": str(root), "strict": strict}
    return {**key, "files_sha256": hashlib.sha256(files).hexdigest()}, read


def load_dataset(
    data: str = SYNTHETIC,
    *,
    image_size: int = 256,
    class_set: str = "binary",
    preprocess: str = "mpghe",
    preprocess_params: dict | None = None,
    synthetic_n: int | None = None,
    seed: int = 0,
    difficulty: float = 0.5,
    strict: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """The dataset ``data`` at ``image_size``, pre-processed with ``preprocess``, via the cache.

    ``data`` is ``"synthetic"`` (the phantom; ``synthetic_n`` None means BUSI's counts: 780
    images, 647 without "normal"; ``seed`` and ``difficulty`` are its parameters) or a
    BUSI-layout folder (a path; "synthetic" always means the phantom), read by
    :func:`~mtl_bench.data.reader.read_busi` with ``strict`` (False: skip bad files). The first
    call builds and caches the result under ``cache_dir`` (default :func:`default_cache_dir`);
    later calls with the same source and parameters load it (entries are never evicted: delete
    the folder to reclaim space). ``progress(done, total)`` follows reading, then pre-processing.
    """
    class_names(class_set)  # a DataError now for an unknown set, before any work
    if int(image_size) != image_size or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}")
    # Unknown method or parameters fail here, on an empty stack, before minutes of reading.
    preprocess_module.preprocess(np.zeros((0, 8, 8), np.uint8), preprocess, preprocess_params)
    synth = {"n": synthetic_n, "seed": seed, "difficulty": difficulty}
    key_source, produce = _source(data, int(image_size), class_set, synth, strict, progress)
    meta = {
        "cache_format": CACHE_FORMAT,
        "code": _code_signature(),
        "source": key_source,
        "image_size": int(image_size),
        "class_set": class_set,
        "preprocess": preprocess,
        "preprocess_params": preprocess_params or {},
    }
    key = hashlib.sha256(json.dumps(meta, sort_keys=True, default=repr).encode()).hexdigest()
    path = Path(cache_dir or default_cache_dir()) / f"{key[:24]}.npz"
    cached = _load(path)
    if cached is not None:
        return cached
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", DataWarning)
        dataset = produce()
    for w in said:  # shown now, and kept with the entry for the reads that find it cached
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    data_warnings = [str(w.message) for w in said if issubclass(w.category, DataWarning)]
    dataset.images = _apply(dataset.images, preprocess, preprocess_params, progress)
    try:
        _save(path, dataset, {**meta, "data_warnings": data_warnings})
    except OSError as e:  # the cache only saves time: a read-only home must not stop a run
        why = "a file" if path.parent.is_file() else e.strerror or e
        warnings.warn(
            f"dataset cache {path.parent}: cannot write there ({why}); the data "
            "was read without caching it (set MTL_BENCH_CACHE to a writable folder)",
            DataWarning,
            stacklevel=2,
        )
    return dataset


def _apply(images: np.ndarray, method: str, params: dict | None, progress) -> np.ndarray:
    # Indirection so the module-level name ``preprocess`` (patched by tests counting calls) is
    # looked up at call time, not shadowed by load_dataset's ``preprocess`` argument.
    return preprocess(images, method, params, progress=progress)
