"""What the ROC, learning-curve and overlay figures say: labels, panels and keys."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from fixtures_results import write_fixture_results
from matplotlib.colors import to_rgb

from mtl_bench import figure_curves, figures
from mtl_bench.data.types import Dataset
from mtl_bench.figure_overlays import PRED_RGB, TRUTH_RGB, image_title, overlay_figure
from mtl_bench.results_io import load_results

METHODS = {
    "mtl_resunet": {},
    "unet": {"tasks": ("mask",)},
    "vgg16": {"tasks": ("label",), "cls_quality": 0.6},
}


@pytest.fixture()
def kept(monkeypatch):
    """Figures handed to ``figures._save``, by file name, instead of being written."""
    seen = {}

    def keep(fig, path):
        seen[path.name] = fig
        return path

    monkeypatch.setattr(figures, "_save", keep)
    return seen


def test_roc_legend_names_pooled_auc_and_the_folds_mean(tmp_path, kept):
    records = write_fixture_results(tmp_path, METHODS, n_folds=3, n_images=30)
    results = load_results(tmp_path)
    figures.roc_figure(results, tmp_path / "roc.png")
    ax = kept["roc.png"].axes[0]
    pooled = figures.pooled_roc(results)
    want = []
    for method in ("mtl_resunet", "vgg16"):  # unet has no probabilities
        aucs = [r["metrics"]["classification"]["AUC"] for r in records[method].values()]
        mean, sd = np.mean(aucs), np.std(aucs, ddof=1)
        want.append(f"{method} (pooled AUC {pooled[method][2]:.3f}; folds {mean:.3f} ± {sd:.3f})")
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == want
    assert "pooled" in ax.get_title()
    assert "pooled AUC: one AUC over all folds' test images" in legend.get_title().get_text()


def test_roc_with_three_classes_says_which_auc_is_which(tmp_path, kept):
    # The curve is malignant vs rest, the tables' AUC macro one-vs-rest: both named.
    three = ("benign", "malignant", "normal")
    write_fixture_results(tmp_path, ["mtl_resunet"], n_folds=2, n_images=30, class_names=three)
    figures.roc_figure(load_results(tmp_path), tmp_path / "roc.png")
    ax = kept["roc.png"].axes[0]
    assert "malignant vs rest" in ax.get_title()
    (label,) = [t.get_text() for t in ax.get_legend().get_texts()]
    # The pooled figure is this curve's (malignant vs rest), not the tables' pooled macro AUC.
    assert "pooled malignant-vs-rest AUC" in label and "; folds' macro AUC " in label
    key = ax.get_legend().get_title().get_text()
    assert key.startswith("pooled malignant-vs-rest AUC: ") and "can differ from" in key


def _panels(fig):
    return [(ax.get_title(), ax.get_ylabel()) for ax in fig.axes]


def test_curves_leave_out_loss_parts_the_model_does_not_train(tmp_path, kept):
    write_fixture_results(tmp_path, METHODS, n_folds=2, n_images=8, curve_epochs=3)
    curve = tmp_path / "mtl_resunet" / "fold_0_curve.csv"
    pd.read_csv(curve).assign(val_score=0.5).to_csv(curve, index=False)
    figure_curves.curve_figures(tmp_path, tmp_path / "figures")
    # The fixture's curves have non-zero Dice and focal parts for every method: the result
    # records' tasks decide.
    assert _panels(kept["mtl_resunet.png"]) == [
        ("training loss (Dice + focal)", "loss"),
        ("training Dice loss", "loss"),
        ("training focal loss", "loss"),
        ("validation score", "Dice and AUC (mean)"),
    ]
    assert _panels(kept["unet.png"]) == [("training loss (Dice)", "loss")]
    ticks = kept["unet.png"].axes[0].get_xticks()  # 3 epochs: whole-number ticks only
    assert len(ticks) and all(float(t).is_integer() for t in ticks)
    assert _panels(kept["vgg16.png"]) == [("training loss (focal)", "loss")]
    assert kept["unet.png"].get_suptitle() == "unet: learning curves"


def test_curves_without_a_result_record_drop_an_all_zero_part(tmp_path, kept):
    # A run still going has curves but no fold_K.json: a part that is 0.0 at every epoch of
    # every fold is one the model lacks.
    write_fixture_results(tmp_path, ["mtl_resunet"], n_folds=2, n_images=8)
    (tmp_path / "running").mkdir()
    for fold, focal in ((0, 0.0), (1, 0.0)):
        pd.DataFrame(
            {"epoch": [1, 2], "loss": [0.9, 0.8], "dice_loss": [0.9, 0.8],
             "focal_loss": [focal, focal], "val_score": [0.3, 0.4]}
        ).to_csv(tmp_path / "running" / f"fold_{fold}_curve.csv", index=False)  # fmt: skip
    figure_curves.curve_figures(tmp_path, tmp_path / "figures")
    assert _panels(kept["running.png"]) == [
        ("training loss (Dice)", "loss"),
        ("validation score", "Dice / AUC"),
    ]


def test_overlay_has_a_colour_key_and_names_the_true_class(tmp_path, monkeypatch):
    closed = []
    monkeypatch.setattr(plt, "close", closed.append)  # keep the figure to look at
    ids = ["benign/benign (3)", "malignant/malignant (7)"]
    masks = np.zeros((2, 16, 16), np.uint8)
    masks[:, 4:9, 4:9] = 1
    ds = Dataset(
        images=np.full((2, 16, 16), 128, np.uint8),
        masks=masks,
        labels=np.array([0, 1], np.int32),
        ids=ids,
        class_names=("benign", "malignant"),
    )
    dc = pd.DataFrame({"m": [0.5, 0.25]}, index=ids)
    cases = [(ids[0], "typical benign"), (ids[1], "hard malignant")]
    overlay_figure(tmp_path / "o.png", ds, {"m": dict(zip(ids, masks > 0, strict=True))}, dc, cases)
    fig = closed[0]
    monkeypatch.undo()
    plt.close(fig)
    (key,) = fig.legends
    texts = [t.get_text() for t in key.get_texts()]
    assert texts[0].startswith("ground truth") and texts[1].startswith("predicted mask")
    colours = [to_rgb(h.get_facecolor()) for h in key.legend_handles]
    np.testing.assert_allclose(colours, [TRUTH_RGB, PRED_RGB])
    assert (
        fig.axes[0].get_title() == "typical case (median DC)\ntrue class: benign\nimage: benign (3)"
    )


def test_image_title_states_kind_true_class_and_id():
    assert image_title("malignant/malignant (21)", "hard malignant") == (
        "hard case (lowest DC)\ntrue class: malignant\nimage: malignant (21)"
    )
    assert image_title("plain", "odd") == "odd\ntrue class: plain\nimage: plain"


def test_figures_refuse_what_the_tables_refuse_and_mark_a_partial_pool(tmp_path, kept):
    from mtl_bench.data.types import DataError

    write_fixture_results(tmp_path, {"mtl_resunet": {}, "vgg16": {"manifest_hash": "f" * 64}})
    with pytest.raises(DataError, match=r"figures of .*different fold manifests: .*ffffffffffff"):
        figures.build_figures(tmp_path)
    assert not (tmp_path / "figures").exists()  # refused before anything is drawn
    other = tmp_path / "partial"
    write_fixture_results(other, ["mtl_resunet"], n_folds=3, n_images=30)
    (other / "mtl_resunet" / "fold_2.json").unlink()
    figures.roc_figure(load_results(other), other / "roc.png")
    (label,) = [t.get_text() for t in kept["roc.png"].axes[0].get_legend().get_texts()]
    assert label.endswith("; 2 of 3 folds)")
