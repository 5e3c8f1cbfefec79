"""Folder layouts users bring: class folders in other case, non-PNG twins, upper-case names,
bad inputs beside stray files, a lesion in a normal image's mask."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from busi_fixture import Item, ellipse, make_busi_tree, write_png
from PIL import Image

from mtl_bench.data.check import check_busi
from mtl_bench.data.reader import DataWarning, read_busi
from mtl_bench.data.types import DataError


def tree(tmp_path: Path, classes=("benign", "malignant", "normal")) -> Path:
    root = tmp_path / "busi"
    make_busi_tree(root, {c: [Item(f"{c} (1)"), Item(f"{c} (2)")] for c in classes})
    return root


def said(fn, *args, **kwargs) -> tuple:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def test_class_folder_in_other_case_is_read_under_its_class(tmp_path):
    root = tree(tmp_path)
    (root / "benign").rename(root / "Benign")
    (root / "normal").rename(root / "NORMAL")
    ds, lines = said(read_busi, root, 32, "three_class")
    assert ds.ids[:2] == ["benign/benign (1)", "benign/benign (2)"] and lines == []
    assert ds.class_counts() == {"benign": 2, "malignant": 2, "normal": 2} and ds.skipped == []
    report = check_busi(root)  # auto: NORMAL/ counts as normal/
    assert report.class_set == "three_class" and report.ok and report.skipped == []
    ds, lines = said(read_busi, root, 32)  # binary: NORMAL/ left out quietly, but listed
    assert lines == [] and [(Path(p).name, r) for p, r in ds.skipped] == [
        ("NORMAL", "class not in class set 'binary'")
    ]


def test_two_folders_of_one_class_differing_in_case_are_an_error(tmp_path):
    root = tree(tmp_path)
    make_busi_tree(root, {"Benign": [Item("benign (9)")]})
    text = f"{root / 'Benign'}: second 'benign' class folder beside 'benign' (merge them)"
    for strict in (True, False):
        with pytest.raises(DataError, match=re.escape(text)):
            read_busi(root, 32, strict=strict)
    report = check_busi(root)
    assert [(p.kind, Path(p.path).name) for p in report.errors] == [
        ("ambiguous_class_folder", "Benign")
    ]
    assert report.skipped == []  # said once, as the error


def test_a_non_png_twin_is_named_in_the_pairing_error(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    b = root / "benign"
    Image.open(b / "benign (1).png").convert("RGB").save(b / "benign (1).jpg")
    (b / "benign (1).png").unlink()
    Image.open(b / "benign (2)_mask.png").save(b / "benign (2)_mask.jpg")
    (b / "benign (2)_mask.png").unlink()
    report = check_busi(root)
    details = {Path(p.path).name: p.detail for p in report.errors}
    assert details == {
        "benign (1)_mask.png": "mask without image (no 'benign (1).png'; "
        "'benign (1).jpg' is not a .png file)",
        "benign (2).png": "image without mask (no 'benign (2)_mask.png'; "
        "'benign (2)_mask.jpg' is not a .png file)",
    }


def test_upper_case_suffixes_and_mask_words_are_read(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    m = root / "malignant"
    lesion = ellipse((48, 48), (20, 20), (6, 9))
    write_png(m / "tmp.png", np.full((48, 48), 80, np.uint8), "RGB")
    (m / "tmp.png").rename(m / "malignant (3).PNG")
    for mask in ("malignant (3)_MASK.PNG", "malignant (3)_Mask_1.PNG"):
        write_png(m / "tmp.png", lesion.astype(np.uint8) * 255)
        (m / "tmp.png").rename(m / mask)
    ds, lines = said(read_busi, root, 48)
    k = ds.ids.index("malignant/malignant (3)")
    assert lines == [] and ds.masks[k].sum() == lesion.sum()


def test_bad_inputs_get_their_own_line_before_stray_files(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    for i in range(6):
        (root / "benign" / f"notes {i}.txt").write_text("x")
    (root / "benign" / "benign (2)_mask.png").unlink()
    ds, lines = said(read_busi, root, 32, strict=False)
    assert len(ds) == 3 and len(lines) == 2
    assert lines[0] == (
        f"1 file skipped: {root / 'benign' / 'benign (2).png'}: image without mask "
        "(no 'benign (2)_mask.png')"
    )
    assert lines[1].startswith("6 stray files skipped: ") and lines[1].endswith(
        "; … 1 more (`mtl-bench data check` lists them)"
    )


def test_a_lesion_in_a_normal_mask_is_warned(tmp_path):
    root = tree(tmp_path)
    write_png(root / "normal" / "normal (2)_mask.png", ellipse((48, 48), (9, 9), (3, 3)) * 255)
    ds, lines = said(read_busi, root, 48, "three_class")
    assert lines == [
        f"1 nonempty normal mask: {root / 'normal' / 'normal (2).png'}: 29 px of "
        "lesion in the mask of a normal image"
    ]
    assert ds.masks[ds.ids.index("normal/normal (2)")].sum() == 29  # kept as drawn


def test_the_parent_of_the_busi_folder_is_pointed_to_its_child(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    with pytest.raises(DataError) as err:
        read_busi(tmp_path, 32)
    assert str(err.value) == (
        f"{tmp_path / 'benign'}: missing (found: busi); 'busi' holds the class folders: "
        "give that folder (+1 more found before decoding any file; "
        f"`mtl-bench data check {tmp_path}` lists all)"
    )
    assert read_busi(root, 32).class_counts() == {"benign": 2, "malignant": 2}
    with pytest.raises(DataError) as err:  # one class folder given for the dataset
        read_busi(root / "benign", 32)
    assert str(err.value) == (  # one line on the folder given, not one per class inside it
        f"{root / 'benign'}: 'benign' is a class folder: give the folder that holds it ({root})"
    )
    shutil.rmtree(root / "malignant")
    (tmp_path / "dataset_info.json").write_text("{}")  # a TFDS build given for its source
    with pytest.raises(DataError, match=r"this is a TFDS build: give the BUSI folder it was built"):
        read_busi(tmp_path, 32)
    (root / "malignant").write_text("")  # a file where the class folder should be: said
    with pytest.raises(
        DataError, match=r"malignant: missing \(found: benign\); 'malignant' is a file"
    ):
        read_busi(root, 32)


def test_a_mask_drawn_in_colour_counts_by_its_strongest_channel(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    lesion = ellipse((48, 48), (24, 24), (8, 10))
    for name, colour in (("benign (1)", (255, 0, 0)), ("malignant (1)", (0, 0, 255))):
        rgb = np.zeros((48, 48, 3), np.uint8)
        rgb[lesion] = colour  # luma 76 / 29: a luma reading would find no lesion at all
        Image.fromarray(rgb).save(root / name.split()[0] / f"{name}_mask.png")
    ds, lines = said(read_busi, root, 48)
    assert lines == []
    for sid in ("benign/benign (1)", "malignant/malignant (1)"):
        np.testing.assert_array_equal(ds.masks[ds.ids.index(sid)], lesion)


def test_a_quoted_tilde_path_and_a_twin_image_named_with_the_one_read(tmp_path, monkeypatch):
    root = tree(tmp_path, ("benign", "malignant"))
    monkeypatch.setenv("HOME", str(tmp_path))
    report = check_busi("~/busi")  # as a config file or a script would pass it
    assert report.ok and report.class_set == "binary"
    write_png(root / "benign" / "benign (1).PNG", np.zeros((48, 48), np.uint8))
    report = check_busi(root)
    [problem] = report.errors
    assert problem.kind == "duplicate_image" and problem.detail == (
        "second image 'benign (1)' beside 'benign (1).PNG' (the one read)"
    )


def test_a_mask_drawn_black_on_white_is_said_and_kept(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    lesion = ellipse((48, 48), (24, 24), (8, 10))
    write_png(root / "benign" / "benign (2)_mask.png", (~lesion).astype(np.uint8) * 255)
    ds, lines = said(read_busi, root, 48)
    assert lines == [
        f"1 inverted mask: {root / 'benign' / 'benign (2).png'}: lesion covers 89% of the image "
        "and 100% of its border: drawn black on white? (used as it is)"
    ]
    np.testing.assert_array_equal(ds.masks[ds.ids.index("benign/benign (2)")], ~lesion)
    report = check_busi(root)
    assert report.ok and [p.kind for p in report.warnings] == ["inverted_mask"]


def test_a_twin_mask_in_other_case_is_named_and_a_pair_differing_in_case_is_hinted(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    write_png(root / "benign" / "benign (1)_MASK.png", np.full((48, 48), 255, np.uint8))
    report = check_busi(root)
    [problem] = report.errors  # not OR-merged with benign (1)_mask.png without a word
    # Names in sorted order, as for images: the upper-case one is read, the other named.
    assert problem.kind == "duplicate_mask" and Path(problem.path).name == "benign (1)_mask.png"
    assert (
        problem.detail
        == "second mask 'benign (1)_mask.png' beside 'benign (1)_MASK.png' (the one read)"
    )
    (root / "benign" / "benign (1)_MASK.png").unlink()
    (root / "malignant" / "malignant (2).png").rename(root / "malignant" / "Malignant (2).png")
    details = {Path(p.path).name: p.detail for p in check_busi(root).errors}
    assert details == {
        "Malignant (2).png": "image without mask (no 'Malignant (2)_mask.png'; "
        "'malignant (2)_mask.png' differs in case)",
        "malignant (2)_mask.png": "mask without image (no 'malignant (2).png'; "
        "'Malignant (2).png' differs in case)",
    }


def test_a_strip_or_a_thumbnail_is_kept_and_warned_as_predict_notes_it(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    write_png(root / "benign" / "benign (1).png", np.full((12, 200), 90, np.uint8))
    lesion = np.zeros((12, 200), np.uint8)
    lesion[3:9, 50:150] = 255
    write_png(root / "benign" / "benign (1)_mask.png", lesion)
    ds, lines = said(read_busi, root, 32)
    assert len(ds) == 4 and lines == [
        f"1 odd shape: {root / 'benign' / 'benign (1).png'}: 200x12 px (aspect 16.7:1): far "
        "from square or under 32 px a side"
    ]


def test_a_copy_named_mask_is_said_to_look_like_a_mask(tmp_path):
    # A file manager's copy "benign (1)_mask (1).png" is no mask name the reader knows: it is read
    # as an image, and its error says what it looks like instead of only "image without mask".
    root = tree(tmp_path, ("benign", "malignant"))
    shutil.copy(
        root / "benign" / "benign (1)_mask.png", root / "benign" / "benign (1)_mask (1).png"
    )
    [problem] = check_busi(root).errors
    assert Path(problem.path).name == "benign (1)_mask (1).png"
    assert problem.detail.endswith(
        "; it looks like a mask of 'benign (1)': masks are named NAME_mask.png or NAME_mask_K.png)"
    )
    # "_mask1" (no underscore before the number) too; the hint was lost after "mask" + digit.
    (root / "benign" / "benign (1)_mask (1).png").rename(root / "benign" / "benign (1)_mask1.png")
    [problem] = check_busi(root).errors
    assert "; it looks like a mask of 'benign (1)'" in problem.detail
    # An ordinary unpaired image gets no such hint.
    (root / "benign" / "benign (1)_mask1.png").unlink()
    (root / "benign" / "benign (2)_mask.png").unlink()
    [problem] = check_busi(root).errors
    assert problem.detail == "image without mask (no 'benign (2)_mask.png')"


def test_two_images_whose_names_differ_only_in_case_are_one_error(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    # A second image "Benign (1)" with its own mask: two files here, one on macOS or Windows.
    write_png(root / "benign" / "Benign (1).png", np.full((48, 48), 7, np.uint8))
    write_png(root / "benign" / "Benign (1)_mask.png", np.zeros((48, 48), np.uint8))
    [problem] = check_busi(root).errors
    assert problem.kind == "duplicate_image" and problem.path.endswith("benign (1).png")
    assert problem.detail.startswith(
        "second image 'benign (1).png' beside 'Benign (1).png' (the one read): names differing"
    )
    with pytest.raises(DataError, match=r"benign \(1\)\.png: second image"):
        read_busi(root, 48)


def test_an_animated_png_is_read_as_its_first_frame_and_said(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    lesion = ellipse((48, 48), (24, 24), (8, 10))
    first = Image.fromarray(lesion.astype(np.uint8) * 255)
    # A mask drawn over two frames: the second frame's lesion is data the reader leaves out.
    path = root / "benign" / "benign (1)_mask.png"
    first.save(
        path, save_all=True, append_images=[Image.fromarray(np.full((48, 48), 255, np.uint8))]
    )
    ds, lines = said(read_busi, root, 48)
    assert lines == [f"1 multi frame png: {path}: 2 frames: only the first is used"]
    np.testing.assert_array_equal(ds.masks[ds.ids.index("benign/benign (1)")], lesion)
    report = check_busi(root)
    assert report.ok and [(p.kind, p.path) for p in report.warnings] == [
        ("multi_frame_png", str(path))
    ]


def test_an_image_named_for_another_class_is_said_and_kept_in_its_folder(tmp_path):
    root = tree(tmp_path, ("benign", "malignant"))
    for suffix in (".png", "_mask.png"):  # sorted into the wrong folder, mask and all
        (root / "malignant" / f"malignant (2){suffix}").rename(
            root / "benign" / f"malignant (2){suffix}"
        )
    ds, lines = said(read_busi, root, 48)
    path = root / "benign" / "malignant (2).png"
    assert lines == [
        f"1 other class name: {path}: named like a malignant image but in the benign folder: "
        "labelled benign"
    ]
    assert ds.labels[ds.ids.index("benign/malignant (2)")] == 0
    assert [p.kind for p in check_busi(root).warnings] == ["other_class_name"]


def test_extra_masks_without_the_main_one_are_said(tmp_path):
    # BUSI's extra masks (_mask_1, _mask_2) sit beside NAME_mask.png; alone, they suggest that
    # the main mask was lost or renamed: read, and said.
    root = tree(tmp_path, ("benign", "malignant"))
    main = root / "malignant" / "malignant (2)_mask.png"
    main.rename(main.with_name("malignant (2)_mask_1.png"))
    ds, lines = said(read_busi, root, 48)
    path = root / "malignant" / "malignant (2).png"
    assert lines == [
        f"1 no main mask: {path}: masks 'malignant (2)_mask_1.png' but no "
        "'malignant (2)_mask.png': read as the lesion"
    ]
    assert ds.masks[ds.ids.index("malignant/malignant (2)")].any()
    assert [p.kind for p in check_busi(root).warnings] == ["no_main_mask"]
    # With the main mask back beside it, the extra one is BUSI's layout: nothing to say.
    main.write_bytes(main.with_name("malignant (2)_mask_1.png").read_bytes())
    assert check_busi(root).warnings == []


def test_a_class_folder_given_as_dot_or_out_of_the_class_set_is_still_said(tmp_path, monkeypatch):
    root = tree(tmp_path)
    monkeypatch.chdir(root / "benign")
    with pytest.raises(DataError, match=r"'benign' is a class folder: give the folder that holds"):
        read_busi(".", 32)
    with pytest.raises(DataError, match=r"'normal' is a class folder: give the folder that holds"):
        read_busi(root / "normal", 32)  # binary: normal is no class of the run, but is BUSI's


@pytest.mark.parametrize("size", [32.0, "32", True, (32,)])
def test_an_image_size_of_another_type_is_named(tmp_path, size):
    with pytest.raises(
        DataError, match=rf"image_size {re.escape(repr(size))}: expected a positive"
    ):
        read_busi(tree(tmp_path), size)
