"""Result files with wrong per-image values, wrong JSON types or two files for one fold are
refused with a one-line DataError naming the file and the first bad entry (results_checks).

Each case here was once read without an error: a binary label 7 moved pooled ACC and the McNemar
p, a null label silently dropped its image, ``tasks: "label"`` became a tuple of characters."""

import json
import re
from pathlib import Path

import pytest
from fixtures_results import refresh_metrics, result_path, write_fixture_results

from mtl_bench.data.types import DataError
from mtl_bench.results_io import load_results, per_image, read_result

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _fill(key, value):
    """An edit setting every entry of per_image[key] to ``value``."""
    return lambda r: r["per_image"].update({key: [value] * len(r["per_image"]["id"])})


def _set(*keys_value):
    """An edit setting r[k1][k2]... = value."""
    *keys, last, value = keys_value

    def edit(r):
        for k in keys:
            r = r[k]
        r[last] = value

    return edit


def _write_edited(root, method, tasks, edit, fold=0) -> Path:
    write_fixture_results(root, {method: {"tasks": tasks}}, n_folds=2, n_images=8)
    path = result_path(root, method, fold)
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    return path


def _refused(root, path, message) -> str:
    with pytest.raises(DataError, match=message) as err:
        load_results(root)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
    return msg


BOTH, SEG, CLS = ("mask", "label"), ("mask",), ("label",)


@pytest.mark.parametrize(
    ("method", "tasks", "edit", "message"),
    [
        ("vgg16", CLS, _fill("label", 7), r"per_image\.label\[0\] = 7: expected a class index "
         r"in \[0, 2\)"),
        ("vgg16", CLS, _fill("label", None), r"per_image\.label\[0\] = null"),
        ("vgg16", CLS, _fill("label", 1.0), r"per_image\.label\[0\] = 1\.0"),
        ("vgg16", CLS, _fill("label", "1"), r'per_image\.label\[0\] = "1"'),
        ("vgg16", CLS, _fill("label", True), r"per_image\.label\[0\] = true"),
        ("vgg16", CLS, _fill("label", -1), r"per_image\.label\[0\] = -1"),
        ("unet", SEG, _fill("label", 2), r"per_image\.label\[0\] = 2"),  # no classifier, still
        ("unet", SEG, _fill("DC", 5.0), r"per_image\.DC\[0\] = 5\.0: expected null or a number "
         r"in \[0, 1\]"),
        ("unet", SEG, _fill("JSI", -0.1), r"per_image\.JSI\[0\] = -0\.1"),
        ("unet", SEG, _fill("JSI", "0.5"), r'per_image\.JSI\[0\] = "0\.5"'),
        ("unet", SEG, _fill("DC", float("nan")), r"per_image\.DC\[0\] = NaN"),
        ("vgg16", CLS, _fill("prob", [5.0, -4.0]), r"per_image\.prob\[0\] = \[5\.0, -4\.0\]: "
         r"expected 2 numbers in \[0, 1\] summing to 1"),
        ("vgg16", CLS, _set("per_image", "prob", 3, [0.5, 0.4]), r"per_image\.prob\[3\] = "
         r"\[0\.5, 0\.4\]"),
        ("vgg16", CLS, _set("per_image", "prob", 2, [0.5, None]), r"per_image\.prob\[2\] is not "
         r"a list of 2 probabilities: \[0\.5, null\]"),
        ("vgg16", CLS, _set("per_image", "prob", 1, [1, "0"]), r"per_image\.prob\[1\] is not"),
        ("vgg16", CLS, _set("per_image", "id", 1, ["a"]), r'per_image\.id\[1\] = \["a"\]: '
         r"expected an image id string"),
        ("vgg16", CLS, _set("per_image", "id", 0, 3), r"per_image\.id\[0\] = 3"),
        ("vgg16", CLS, lambda r: r["per_image"]["id"].__setitem__(2, r["per_image"]["id"][1]),
         r"per_image\.id\[2\] = .*: expected an id used once in the file \(per_image\.id\[1\]"),
        ("mtl_resunet", BOTH, lambda r: r["per_image"]["label"].pop(), r"per_image\.label has 3 "
         "entries, per_image.id has 4"),
    ],
)  # fmt: skip
def test_bad_per_image_values_name_the_file_and_the_first_bad_entry(
    tmp_path, method, tasks, edit, message
):
    path = _write_edited(tmp_path, method, tasks, edit)
    _refused(tmp_path, path, message)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("metrics", [0.5]), r"metrics = \[0\.5\]: expected an object"),
        (_set("tasks", "label"), r'tasks = "label": expected a list of distinct names from '
         r'"mask", "label"'),
        (_set("tasks", 3), r"tasks = 3: expected a list"),
        (_set("tasks", ["mask", "segment"]), r'tasks = \["mask", "segment"\]'),
        (_set("class_names", "ab"), r'class_names = "ab": expected a list of distinct strings'),
        (_set("class_names", 2), r"class_names = 2: expected a list"),
        (_set("class_names", ["benign", "benign"]), r"class_names = \["),
        (_set("config", "model_kwargs", [1]), r"config\.model_kwargs = \[1\]: expected an object"),
        (_set("config", "model_kwargs", "widths=4"), r'config\.model_kwargs = "widths=4"'),
        (_set("config", [1, 2]), r"config = \[1, 2\]: expected an object"),
        (_set("fold_manifest_hash", 12), r"fold_manifest_hash must be a string"),
        (_set("schema", True), r"unsupported result schema True"),
        (_set("metrics", "segmentation", "DC", 10**400), r"metrics\.segmentation\.DC = "
         r"1000000000\d*\.\.\. \(401 characters\) is outside \[0, 1\]"),
        (_set("metrics", "segmentation", "DC", float("nan")), r"DC = nan is outside \[0, 1\]"),
        (_fill("label", 10**400), r"per_image\.label\[0\] = 1000000000\d*\.\.\. \(401 char"),
        (_fill("DC", 10**400), r"per_image\.DC\[0\] = 1000000000"),
        (_fill("prob", [10**400, 0]), r"per_image\.prob\[0\] is not a list of 2 probabilities"),
    ],
)  # fmt: skip
def test_wrong_json_types_and_oversized_numbers_name_the_file_and_field(tmp_path, edit, message):
    path = _write_edited(tmp_path, "mtl_resunet", BOTH, edit)
    _refused(tmp_path, path, message)


def test_true_is_not_fold_1(tmp_path):
    # true == 1 in Python: fold_1.json saying "fold": true passed the name check.
    path = _write_edited(tmp_path, "unet", SEG, _set("fold", True), fold=1)
    _refused(tmp_path, path, r"fold True is not in 0\.\.n_folds-1")


def test_an_integer_python_cannot_parse_is_malformed_json(tmp_path):
    path = _write_edited(tmp_path, "unet", SEG, lambda r: None)
    text = path.read_text().replace('"wall_time_s": 1.5', '"wall_time_s": ' + "9" * 5000)
    path.write_text(text)
    _refused(tmp_path, path, r"malformed JSON \(Exceeds the limit")


def test_a_zero_padded_fold_file_beside_its_fold_is_refused_naming_both(tmp_path):
    # Two rows for one fold made pandas fail later with "cannot reindex on an axis with
    # duplicate labels"; cv never pads fold numbers.
    write_fixture_results(tmp_path, {"unet": {"tasks": SEG}}, n_folds=2, n_images=8)
    one = result_path(tmp_path, "unet", 1)
    padded = one.with_name("fold_01.json")
    padded.write_text(one.read_text())
    with pytest.raises(DataError) as err:
        load_results(tmp_path)
    msg = str(err.value)
    assert str(one) in msg and str(padded) in msg and "fold 1 of unet" in msg, msg
    one.unlink()  # alone, the padded name is refused too rather than read as fold 1
    _refused(tmp_path, padded, re.escape("named without leading zeros (fold_1.json)"))


def _swap_probs(r):  # per_image from another run: the same images, other probabilities
    r["per_image"]["prob"] = [row[::-1] for row in r["per_image"]["prob"]]


@pytest.mark.parametrize(
    ("method", "tasks", "edit", "message"),
    [
        ("vgg16", CLS, _set("metrics", "classification", "ACC", 0.99),
         r"metrics\.classification\.ACC = 0\.99 disagrees with its per_image values, which give "
         r"[0-9.]+ \(edited by hand, per_image from another run, or an older writer\?\)"),
        ("vgg16", CLS, _set("metrics", "classification", "AUC", None),
         r"metrics\.classification\.AUC = null disagrees with its per_image values, which "
         r"give [0-9]"),
        ("vgg16", CLS, _swap_probs, r"metrics\.classification\.ACC = .* disagrees"),
        ("unet", SEG, _set("metrics", "segmentation", "DC", 0.5),
         r"metrics\.segmentation\.DC = 0\.5 disagrees with its per_image values"),
        ("mtl_resunet", BOTH, _fill("JSI", 0.25), r"metrics\.segmentation\.JSI = .* disagrees "
         r"with its per_image values, which give 0\.25 "),
    ],
)  # fmt: skip
def test_fold_metrics_that_disagree_with_the_per_image_values_are_refused(
    tmp_path, method, tasks, edit, message
):
    # The Mean ± SD columns come from the fold metrics, the pooled values and tests beside them
    # from per_image: a file where they disagree would make one table contradict itself.
    path = _write_edited(tmp_path, method, tasks, edit)
    _refused(tmp_path, path, message)


def test_a_good_file_passes_with_the_nulls_the_writer_leaves(tmp_path):
    # JSI / DC null where empty_policy="exclude" leaves a normal image out; prob null for a
    # segmenter; probabilities summing to 1 within float32 rounding; integers 0 / 1 as
    # probabilities; no class_names (older files): the probability rows give the class count.
    def edit(r):
        per = r["per_image"]
        per["JSI"][0] = per["DC"][0] = None
        per["prob"][1] = [1, 0]
        per["prob"][2] = [0.3, 0.7000005]
        r.pop("class_names")
        refresh_metrics(r)  # the fold metrics as the writer would give them for these values

    path = _write_edited(tmp_path, "mtl_resunet", BOTH, edit)
    results = load_results(tmp_path)
    assert results.loc[0, "path"] == str(path) and results.loc[0, "class_names"] == ()
    img = per_image(results, "mtl_resunet")
    assert len(img) == 8 and img["DC"].isna().sum() == 1 and img["label"].notna().all()


def test_every_committed_result_file_passes_the_checks():
    # The table inputs: results/<run>/<method>/fold_K.json of each run with tables/ (as
    # test_committed_results; protocol/ keeps a measured fold outside a method folder).
    runs = [t.parent for t in RESULTS.glob("*/tables")]
    paths = [p for r in runs for p in sorted(r.glob("*/fold_*.json"))]
    paths = [p for p in paths if re.fullmatch(r"fold_\d+\.json", p.name)]
    assert len(paths) >= 100
    for p in paths:
        row = read_result(p)
        assert row["class_names"] and row["tasks"], p


def test_the_tables_command_reports_a_bad_label_in_one_line(tmp_path, capsys):
    from mtl_bench.cli import main

    path = _write_edited(tmp_path, "mtl_resunet", BOTH, _fill("label", 7))
    assert main(["tables", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"mtl-bench: error: {path}: per_image.label[0] = 7") and err.count("\n") == 1
    )
    assert not (tmp_path / "tables").exists()
