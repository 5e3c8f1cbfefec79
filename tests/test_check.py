"""Integrity and duplicate audit: findings by kind, exact/near groups, leakage, report output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from busi_fixture import (
    lesion_case,
    make_busi_tree,
    resized_noisy_copy,
    standard_spec,
    write_png,
)

from mtl_bench.data.check import check_busi
from mtl_bench.data.duplicates import (
    DuplicateGroup,
    default_near_threshold,
    duplicate_groups,
    group_index,
    hamming_pairs,
    phash,
)
from mtl_bench.data.types import DataError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_busi_tree(tmp_path / "BUSI", standard_spec())
    return tmp_path / "BUSI"


def test_clean_tree_is_ok_with_counts(root):
    report = check_busi(root)
    assert report.ok and report.errors == [] and report.warnings == [] and report.groups == []
    assert report.counts == {"benign": 5, "malignant": 4, "normal": 3}
    assert report.multi_mask == 1 and len(report.ids) == 12
    text = report.format()
    assert ": OK" in text and "benign 5, malignant 4, normal 3 (12 total)" in text
    assert "1 with several masks" in text and "0 of 12 images in groups (0.0 %)" in text
    binary = check_busi(root, class_set="binary")
    assert binary.counts == {"benign": 5, "malignant": 4} and binary.ok


def test_every_integrity_error_is_reported_by_kind_and_file(root):
    (root / "benign" / "benign (2)_mask.png").unlink()
    (root / "malignant" / "malignant (3).png").unlink()
    (root / "benign" / "benign (10).png").write_bytes(b"junk")
    write_png(root / "malignant" / "malignant (1)_mask.png", np.zeros((10, 12), np.uint8))
    (root / "normal" / "stray.txt").write_text("x")
    report = check_busi(root)
    assert not report.ok
    kinds = {p.kind: Path(p.path).name for p in report.errors}
    assert kinds == {
        "image_without_mask": "benign (2).png",
        "mask_without_image": "malignant (3)_mask.png",
        "undecodable": "benign (10).png",
        "size_mismatch": "malignant (1)_mask.png",
    }
    text = report.format()
    assert "FAILED (4 errors)" in text
    for line in (
        "benign/benign (2).png: image without mask",
        "  size_mismatch (1):",
        "malignant/malignant (1)_mask.png: mask is 12x10 px",
        "normal/stray.txt",
    ):
        assert line in text, line
    # A broken image still counts as found, but cannot take part in duplicate search.
    assert report.counts["benign"] == 5 and "benign/benign (10)" not in report.ids


def test_missing_class_folder_and_missing_root(root, tmp_path):
    for f in (root / "normal").iterdir():
        f.unlink()
    report = check_busi(root)
    assert [p.kind for p in report.errors] == ["empty_class_folder"] and not report.ok
    with pytest.raises(DataError, match="does not exist"):
        check_busi(tmp_path / "nowhere")


def test_warnings_do_not_fail_the_check(root):
    mask = np.zeros((48, 48), np.uint8)
    mask[5:9, 5:9] = 128
    mask[5, 5] = 255  # three values: binarised at > 127 and said (0/128 alone reads 128)
    write_png(root / "benign" / "benign (1)_mask.png", mask)
    write_png(root / "malignant" / "malignant (2)_mask.png", np.zeros((48, 48), np.uint8))
    report = check_busi(root)
    assert report.ok
    assert [(p.kind, Path(p.path).name) for p in report.warnings] == [
        ("nonbinary_mask", "benign (1)_mask.png"),
        ("empty_lesion_mask", "malignant (2).png"),
    ]
    assert "15 px neither 0 nor 255" in report.format()


def test_exact_near_and_cross_class_groups_in_a_folder(root):
    original, mask = lesion_case(7)
    write_png(root / "benign" / "benign (1).png", original)
    write_png(root / "benign" / "copy (1).png", original, "L")  # other PNG mode, same pixels
    write_png(root / "benign" / "copy (1)_mask.png", mask * 255)
    near = resized_noisy_copy(original, (60, 60), sigma=3.0)  # other size + noise
    write_png(root / "malignant" / "again (1).png", near)
    write_png(root / "malignant" / "again (1)_mask.png", np.zeros((60, 60), np.uint8) + 255)
    report = check_busi(root)
    assert report.ok
    assert len(report.groups) == 1
    group = report.groups[0]
    assert set(group.ids) == {"benign/benign (1)", "benign/copy (1)", "malignant/again (1)"}
    assert group.kind == "near" and group.cross_class
    assert report.leakage == [group] and report.in_groups == 3
    text = report.format()
    assert "1 exact" not in text and "near, LABEL LEAKAGE" in text
    assert (
        "3 of 14 images in groups (21.4 %)" in text
        and "label leakage: 1 group spans two classes" in text
    )
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["duplicates"]["leakage_groups"] == 1 and d["ok"] is True
    assert d["duplicates"]["groups"][0]["cross_class"] is True


def test_to_dict_is_json_and_complete(root):
    (root / "benign" / "benign (2)_mask.png").unlink()
    d = json.loads(json.dumps(check_busi(root).to_dict()))
    assert d["ok"] is False and d["images"] == 12 and d["counts"]["normal"] == 3
    assert d["errors"][0]["kind"] == "image_without_mask"
    assert d["errors"][0]["path"].endswith("benign (2).png")
    assert d["duplicates"]["near_threshold"] == default_near_threshold(8) == 6


# --- in-memory duplicate search --------------------------------------------------------------


def _cases(n: int, size: int = 48) -> np.ndarray:
    return np.stack([lesion_case(s, (size, size))[0] for s in range(n)])


def test_duplicate_groups_exact_and_near_in_memory():
    images = _cases(6)
    images[3] = images[0]  # exact copy
    small = resized_noisy_copy(images[1], (36, 36), sigma=0.0)
    images[5] = resized_noisy_copy(small, (48, 48), sigma=3.0, seed=5)  # resized + noise
    ids = [f"c/{i}" for i in range(6)]
    groups = duplicate_groups(images, ids, np.array([0, 0, 1, 1, 0, 0]))
    assert groups == [
        DuplicateGroup(("c/0", "c/3"), (0, 3), "exact", True),
        DuplicateGroup(("c/1", "c/5"), (1, 5), "near", False),
    ]
    # A negative threshold switches near matching off: only the exact pair remains.
    exact_only = duplicate_groups(images, ids, np.zeros(6), near_threshold=-1)
    assert exact_only == [DuplicateGroup(("c/0", "c/3"), (0, 3), "exact", False)]


def test_different_lesions_on_the_same_tissue_are_not_near_duplicates():
    # The hard case: identical background speckle, different lesion (BUSI images look alike).
    pairs = [(lesion_case(s)[0], lesion_case(s + 500, background_seed=s)[0]) for s in range(10)]
    images = np.stack([im for pair in pairs for im in pair])
    ids = [f"x/{i}" for i in range(20)]
    assert duplicate_groups(images, ids, np.zeros(20)) == []


def test_phash_is_stable_under_resize_and_noise():
    image = lesion_case(3, (64, 64))[0]
    copy = resized_noisy_copy(image, (41, 53), sigma=4.0)
    h = phash([image, copy, lesion_case(4, (64, 64))[0]])
    assert h.shape == (3, 64) and h.dtype == bool
    assert (h[0] != h[1]).sum() <= 4 < 20 <= (h[0] != h[2]).sum()


def test_hamming_pairs_matches_brute_force():
    bits = np.random.default_rng(0).random((50, 16)) < 0.5
    bits[7] = bits[3]
    got = {tuple(p) for p in hamming_pairs(bits, 4, block=7).tolist()}
    want = {(i, j) for i in range(50) for j in range(i + 1, 50) if (bits[i] != bits[j]).sum() <= 4}
    assert got == want and (3, 7) in got


def test_group_index_numbers_groups_and_singletons():
    groups = [
        DuplicateGroup(("a", "d"), (1, 3), "exact", False),
        DuplicateGroup(("c", "e", "f"), (2, 4, 5), "near", True),
    ]
    assert group_index(groups, 7).tolist() == [0, 1, 2, 1, 2, 2, 3]
    assert group_index([], 3).tolist() == [0, 1, 2]
    # By id: members missing from this subset are ignored, order follows the subset.
    assert group_index(groups, 4, ids=["f", "a", "b", "d"]).tolist() == [0, 1, 2, 1]
    with pytest.raises(ValueError, match="outside 0..2"):
        group_index(groups, 3)
    with pytest.raises(ValueError, match="two duplicate groups"):
        group_index(groups + [DuplicateGroup(("a", "b"), (1, 0), "near", False)], 7)


def test_duplicate_groups_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 images, 1 ids, 2 labels differ"):
        duplicate_groups(_cases(2), ["a"], np.zeros(2))


def test_check_report_groups_feed_group_index(root):
    original, _ = lesion_case(11)
    write_png(root / "malignant" / "malignant (2).png", original)
    write_png(root / "benign" / "benign (3).png", original)
    report = check_busi(root)
    (group,) = report.groups
    assert group.kind == "exact" and group.cross_class
    idx = group_index(report.groups, len(report.ids), ids=report.ids)
    a, b = report.ids.index("benign/benign (3)"), report.ids.index("malignant/malignant (2)")
    assert idx[a] == idx[b] and len(set(idx.tolist())) == len(report.ids) - 1


def test_class_set_auto_follows_the_folder(root):
    assert check_busi(root).class_set == "three_class"  # it has normal/
    import shutil

    shutil.rmtree(root / "normal")
    report = check_busi(root)  # a benign/malignant-only copy is fine for the binary tables
    assert report.class_set == "binary" and report.ok
    assert "(class set binary): OK" in report.format()
    assert not check_busi(root, class_set="three_class").ok  # asked for: normal is missing
