"""Images the reader does not read where they lie: a pair in JPEG and a sub-folder of PNGs. They
were left out while ``data check`` said OK with no warning, and training said "stray files"."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from busi_fixture import Item, make_busi_tree
from PIL import Image

from mtl_bench.data.check import check_busi
from mtl_bench.data.reader import DataWarning, read_busi


def test_a_jpeg_pair_and_a_sub_folder_of_pngs_are_warned_as_unread_images(tmp_path):
    root = tmp_path / "busi"
    make_busi_tree(
        root, {c: [Item(f"{c} ({i})") for i in (1, 2, 3)] for c in ("benign", "malignant")}
    )
    b = root / "benign"
    for name in ("benign (1)", "benign (1)_mask"):  # the pair in JPEG only
        Image.open(b / f"{name}.png").convert("L").save(b / f"{name}.jpg")
        (b / f"{name}.png").unlink()
    (root / "malignant" / "batch2").mkdir()
    for name in ("malignant (3)", "malignant (3)_mask"):
        shutil.move(root / "malignant" / f"{name}.png", root / "malignant" / "batch2")
    (root / "malignant" / "empty").mkdir()  # holds no image: a stray folder, as before
    (root / "malignant" / "empty" / "._x.png").write_bytes(b"")  # a macOS fork: no image

    report = check_busi(root)
    assert report.ok  # still readable: the rest is used
    unread = {Path(p.path).name: p.detail for p in report.warnings if p.kind == "unread_images"}
    assert unread == {
        "benign (1).jpg": "a JPEG image, not read: the reader reads PNG only (convert it)",
        "benign (1)_mask.jpg": "a JPEG image, not read: the reader reads PNG only (convert it)",
        "batch2": "sub-folder of 2 image file(s), not read: the reader reads the class folder "
        "itself",
    }
    assert "unread_images (3):" in report.format()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = read_busi(root, 32)
    lines = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(ds) == 4
    assert (
        lines[0].startswith("3 unread images skipped: ") and "batch2: sub-folder of 2" in lines[0]
    )
    assert lines[1] == f"1 stray file skipped: {root / 'malignant' / 'empty'}: sub-folder"


def test_a_named_pipe_with_an_image_name_is_skipped_not_opened(tmp_path):
    # Opening it blocked a reader thread forever: `data check` hung, and Ctrl-C did not stop it.
    import os

    root = tmp_path / "busi"
    make_busi_tree(root, {c: [Item(f"{c} ({i})") for i in (1, 2)] for c in ("benign", "malignant")})
    os.mkfifo(root / "benign" / "benign (9).png")
    # In a thread with a deadline: a regression must fail here, not hang the whole suite.
    import threading

    got = []
    worker = threading.Thread(target=lambda: got.append(check_busi(root)), daemon=True)
    worker.start()
    worker.join(60)
    if not got:  # release the reader blocked in open() (else the interpreter's exit waits too)
        os.close(os.open(root / "benign" / "benign (9).png", os.O_WRONLY | os.O_NONBLOCK))
    assert got, "data check did not finish: it opened the pipe"
    report = got[0]
    skipped = dict(report.skipped)
    assert skipped[str(root / "benign" / "benign (9).png")].startswith("not a regular file")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert len(read_busi(root, 32)) == 4


def test_images_deeper_in_a_sub_folder_are_counted_but_not_in_hidden_folders(tmp_path):
    # One level only had said "sub-folder" of benign/batch1/patientA/*.png: dropped unwarned.
    root = tmp_path / "busi"
    make_busi_tree(
        root, {c: [Item(f"{c} ({i})") for i in (1, 2, 3)] for c in ("benign", "malignant")}
    )
    deep = root / "benign" / "batch1" / "patientA"
    deep.mkdir(parents=True)
    for name in ("benign (3)", "benign (3)_mask"):
        shutil.move(root / "benign" / f"{name}.png", deep)
    (root / "malignant" / "notes" / ".ipynb_checkpoints").mkdir(parents=True)
    (root / "malignant" / "notes" / ".ipynb_checkpoints" / "x.png").write_bytes(b"")
    report = check_busi(root)
    unread = {Path(p.path).name: p.detail for p in report.warnings if p.kind == "unread_images"}
    assert list(unread) == ["batch1"] and unread["batch1"].startswith("sub-folder of 2 image")
    assert dict(report.skipped)[str(root / "malignant" / "notes")] == "sub-folder"
