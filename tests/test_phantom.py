"""The synthetic phantom: counts, determinism, lesion appearance per class, the BUSI layout."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image
from skimage.measure import label, regionprops

from mtl_bench.data.phantom import (
    BUSI_COUNTS,
    MARKER,
    phantom_counts,
    synth_phantom,
    write_phantom,
)
from mtl_bench.data.types import DataError

SIZE = 64


@pytest.fixture(scope="module")
def lesions() -> object:
    """40 benign and 40 malignant images at the default difficulty."""
    return synth_phantom(image_size=SIZE, seed=0, counts={"benign": 40, "malignant": 40})


def _largest(mask: np.ndarray):
    return max(regionprops(label(mask)), key=lambda r: r.area)


def test_arrays_ids_and_labels() -> None:
    ds = synth_phantom(12, image_size=SIZE, seed=1)
    assert ds.images.shape == ds.masks.shape == (12, SIZE, SIZE)
    assert ds.images.dtype == ds.masks.dtype == np.uint8
    assert ds.labels.dtype == np.int32
    assert set(np.unique(ds.masks)) <= {0, 1}
    assert ds.class_names == ("benign", "malignant", "normal")
    assert ds.class_counts() == {"benign": 7, "malignant": 3, "normal": 2}
    expected = [f"benign/benign ({k})" for k in range(1, 8)]
    expected += [f"malignant/malignant ({k})" for k in (1, 2, 3)]
    expected += ["normal/normal (1)", "normal/normal (2)"]
    assert ds.ids == expected
    assert ds.labels.tolist() == [0] * 7 + [1] * 3 + [2] * 2
    assert 20 < ds.images.mean() < 200  # neither blank nor saturated


def test_counts_follow_busi_ratio() -> None:
    assert phantom_counts() == BUSI_COUNTS == {"benign": 437, "malignant": 210, "normal": 133}
    assert phantom_counts(780) == BUSI_COUNTS
    assert phantom_counts(class_set="binary") == {"benign": 437, "malignant": 210}
    assert phantom_counts(12) == {"benign": 7, "malignant": 3, "normal": 2}
    assert phantom_counts(3) == {"benign": 1, "malignant": 1, "normal": 1}
    assert phantom_counts(1) == {"benign": 1, "malignant": 0, "normal": 0}
    weights = np.array([437, 210, 133]) / 780
    for n in range(3, 300):
        got = np.array(list(phantom_counts(n).values()))
        assert got.sum() == n and got.min() >= 1
        assert np.all(np.abs(got - n * weights) < 1.5), (n, got)
    binary = phantom_counts(10, "binary")
    assert binary == {"benign": 7, "malignant": 3}
    assert len(synth_phantom(10, image_size=16, class_set="binary")) == 10
    # numpy integers are integers too
    ds = synth_phantom(np.int64(4), image_size=np.int32(16), seed=np.uint8(1))
    assert len(ds) == 4 and ds.image_size == (16, 16)


def test_explicit_counts() -> None:
    assert phantom_counts(counts={"benign": 2, "malignant": 1}) == {
        "benign": 2,
        "malignant": 1,
        "normal": 0,
    }
    assert phantom_counts(5, counts={"malignant": 5})["malignant"] == 5
    ds = synth_phantom(image_size=16, counts={"normal": 2, "malignant": 1})
    assert ds.ids == ["malignant/malignant (1)", "normal/normal (1)", "normal/normal (2)"]


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"n": 0}, "n must be"),
        ({"n": -3}, "n must be"),
        ({"n": 2.5}, "n must be"),
        ({"n": True}, "n must be"),
        ({"image_size": 8}, "image_size"),
        ({"image_size": "64"}, "image_size"),
        ({"seed": -1}, "seed"),
        ({"difficulty": 1.5}, "difficulty"),
        ({"difficulty": float("nan")}, "difficulty"),
        ({"difficulty": "hard"}, "difficulty"),
        ({"class_set": "four"}, "class set"),
        ({"counts": {"cancer": 3}}, "'cancer'"),
        ({"counts": {"benign": -1}}, "counts['benign']"),
        ({"counts": {"benign": 0}}, "no images"),
        ({"counts": [3, 1]}, "must map"),
        ({"seed": np.int64(-2)}, "seed"),
        ({"n": 4, "counts": {"benign": 3}}, "n=4"),
        ({"class_set": "binary", "counts": {"normal": 3}}, "'normal'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict, needle: str) -> None:
    with pytest.raises(DataError, match="phantom|class set") as err:
        synth_phantom(**{"image_size": 16, **kwargs})
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_deterministic_per_seed_and_per_image() -> None:
    a = synth_phantom(12, image_size=SIZE, seed=5)
    b = synth_phantom(12, image_size=SIZE, seed=5)
    assert a.fingerprint() == b.fingerprint()
    c = synth_phantom(12, image_size=SIZE, seed=6)
    assert all(not np.array_equal(x, y) for x, y in zip(a.images, c.images, strict=True))
    # Image K of a class has its own sub-seed: n, the class set and the other classes do not
    # change it.
    bigger = synth_phantom(30, image_size=SIZE, seed=5)
    binary = synth_phantom(9, image_size=SIZE, seed=5, class_set="binary")
    for other in (bigger, binary):
        for i, id_ in enumerate(a.ids):
            if id_ in other.ids:
                j = other.ids.index(id_)
                assert np.array_equal(a.images[i], other.images[j]), id_
                assert np.array_equal(a.masks[i], other.masks[j]), id_
    assert sum(id_ in binary.ids for id_ in a.ids) == 9


def test_same_anatomy_at_any_size() -> None:
    # Fields are drawn in cycles per image, so a larger image shows the same lesion.
    small = synth_phantom(6, image_size=32, seed=2).masks[:4].astype(bool)
    large = synth_phantom(6, image_size=64, seed=2).masks[:4]
    down = large.reshape(4, 32, 2, 32, 2).mean(axis=(2, 4)) >= 0.5
    iou = (small & down).sum(axis=(1, 2)) / (small | down).sum(axis=(1, 2))
    assert iou.min() > 0.7, iou


def test_mask_areas() -> None:
    ds = synth_phantom(60, image_size=SIZE, seed=3)
    area = ds.masks.mean(axis=(1, 2))
    normal = ds.labels == 2
    assert normal.sum() == 10 and np.all(area[normal] == 0)
    assert area[~normal].min() >= 0.01 and area[~normal].max() <= 0.4


def test_malignant_taller_and_less_convex(lesions) -> None:
    props = [_largest(m) for m in lesions.masks]
    ratio = np.array([(p.bbox[2] - p.bbox[0]) / (p.bbox[3] - p.bbox[1]) for p in props])
    solidity = np.array([p.solidity for p in props])
    benign, malignant = lesions.labels == 0, lesions.labels == 1
    assert ratio[malignant].mean() > 1.0 > 0.85 > ratio[benign].mean()
    assert solidity[malignant].mean() < solidity[benign].mean() - 0.05
    # Overlap, not separation: some lesions look like the other class.
    assert ratio[benign].max() > ratio[malignant].min()


def _posterior_ratio(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean grey under the lesion's middle over the mean grey beside it, same depth."""
    r0, c0, r1, c1 = _largest(mask).bbox
    h, w = r1 - r0, c1 - c0
    rows = slice(r1, min(image.shape[0], r1 + max(2, h // 2)))
    below = image[rows, c0 + w // 4 : c1 - w // 4]
    beside = np.concatenate(
        [image[rows, max(0, c0 - w // 2) : c0], image[rows, c1 : c1 + w // 2]], 1
    )
    return float(below.mean() / max(1.0, beside.mean()))


def test_posterior_enhancement_and_shadowing(lesions) -> None:
    post = np.array(
        [_posterior_ratio(i, m) for i, m in zip(lesions.images, lesions.masks, strict=True)]
    )
    benign, malignant = post[lesions.labels == 0], post[lesions.labels == 1]
    assert benign.mean() > 1.0 > malignant.mean()  # enhancement vs shadowing


def _contrast(ds) -> float:
    """Mean |grey inside lesion - grey in a band just outside it|, lesion images only."""
    from scipy.ndimage import binary_dilation

    out = []
    for img, m in zip(ds.images, ds.masks.astype(bool), strict=True):
        if m.any():
            ring = binary_dilation(m, iterations=4) & ~m
            out.append(abs(img[m].mean() - img[ring].mean()))
    return float(np.mean(out))


def test_difficulty_lowers_contrast_and_adds_speckle() -> None:
    easy = synth_phantom(20, image_size=SIZE, seed=4, difficulty=0.0)
    hard = synth_phantom(20, image_size=SIZE, seed=4, difficulty=1.0)
    assert np.array_equal(easy.masks[easy.labels == 2], hard.masks[hard.labels == 2])
    assert _contrast(hard) < 0.8 * _contrast(easy)
    # Speckle: pixel-to-pixel differences grow with difficulty.
    rough = [np.abs(np.diff(d.images.astype(float), axis=2)).mean() for d in (easy, hard)]
    assert rough[1] > 1.1 * rough[0]


def _files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_write_layout_modes_and_mask_union(tmp_path) -> None:
    calls = []
    out = write_phantom(
        tmp_path / "busi", 12, image_size=SIZE, seed=1, progress=lambda *a: calls.append(a)
    )
    assert out == tmp_path / "busi"
    assert calls == [(i, 12) for i in range(1, 13)]
    marker = json.loads((out / MARKER).read_text())
    assert marker["complete"] is True and marker["seed"] == 1 and marker["image_size"] == SIZE
    assert marker["counts"] == {"benign": 7, "malignant": 3, "normal": 2}
    ds = synth_phantom(12, image_size=SIZE, seed=1)
    expected = {MARKER}
    for id_ in ds.ids:
        expected |= {f"{id_}.png", f"{id_}_mask.png"}
    # K = 2 (mod 40) has a second lesion in its own mask file.
    expected |= {"benign/benign (2)_mask_1.png", "malignant/malignant (2)_mask_1.png"}
    assert _files(out) == expected
    for id_, img, mask in zip(ds.ids, ds.images, ds.masks, strict=True):
        with Image.open(out / f"{id_}.png") as im:
            assert im.mode == "RGB" and im.size == (SIZE, SIZE)
            rgb = np.asarray(im)
        assert np.array_equal(rgb[..., 0], img) and np.array_equal(rgb[..., 2], img)
        union = np.zeros((SIZE, SIZE), bool)
        for path in sorted(out.glob(f"{id_}_mask*.png")):
            with Image.open(path) as im:
                assert im.mode == "L"
                m = np.asarray(im)
            assert set(np.unique(m)) <= {0, 255}
            if path.name.endswith("_mask_1.png"):
                assert m.any() and not (m.astype(bool) & union).any()  # a separate lesion
            union |= m > 0
        assert np.array_equal(union, mask.astype(bool)), id_


def test_rewrite_replaces_previous_output(tmp_path) -> None:
    root = write_phantom(tmp_path / "p", 12, image_size=16)
    write_phantom(root, 4, image_size=16, seed=2)
    expected = {f"{i}{s}.png" for i in synth_phantom(4, image_size=16).ids for s in ("", "_mask")}
    assert _files(root) == expected | {MARKER, "benign/benign (2)_mask_1.png"}
    assert json.loads((root / MARKER).read_text())["seed"] == 2


def test_refuses_foreign_folders(tmp_path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match=MARKER) as err:
        write_phantom(foreign, 3, image_size=16)
    assert str(foreign) in str(err.value)
    assert _files(foreign) == {"notes.txt"}
    # A phantom folder with a stranger inside is refused too, and nothing is deleted.
    root = write_phantom(tmp_path / "p", 3, image_size=16)
    (root / "benign" / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match="holiday.jpg"):
        write_phantom(root, 3, image_size=16)
    assert "benign/benign (1).png" in _files(root)
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="not a folder"):
        write_phantom(tmp_path / "file", 3, image_size=16)


def test_reader_round_trip(tmp_path) -> None:
    from mtl_bench.data.reader import read_busi

    root = write_phantom(tmp_path / "busi", 12, image_size=SIZE, seed=7)
    ref = synth_phantom(12, image_size=SIZE, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reader may mention the marker file
        got = read_busi(root, image_size=SIZE, class_set="three_class")
    assert all(p.endswith(MARKER) for p, _ in got.skipped), got.skipped
    assert got.ids == ref.ids
    assert np.array_equal(got.labels, ref.labels)
    assert np.array_equal(got.masks, ref.masks)
    assert np.array_equal(got.images, ref.images)
