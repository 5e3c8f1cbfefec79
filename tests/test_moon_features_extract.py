"""moon_features' 48 features on known shapes, the mask sources, settings and registration."""

import math

import numpy as np
import pytest
from skimage.draw import disk, ellipse, polygon

from baselines.moon_features import DEFAULTS, fit_moon, moon_settings
from baselines.moon_features_extract import (
    FEATURE_NAMES,
    extract_all,
    extract_features,
    predicted_masks,
)
from mtl_bench.config import RunConfig
from mtl_bench.data.types import DataError
from mtl_bench.registry import create_model, model_info

SIZE = 64


def feats(image, mask) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, extract_features(image, mask), strict=True))


def shape_mask(kind: str) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), np.uint8)
    if kind == "disk":
        m[disk((30, 32), 12)] = 1
    elif kind == "wide":  # wider than tall: "parallel" to the skin
        m[ellipse(30, 32, 6, 18)] = 1
    elif kind == "tall":
        m[ellipse(30, 32, 18, 6)] = 1
    elif kind == "star":  # spiculated margin
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        r = np.where(np.arange(24) % 2 == 0, 16, 7)
        m[polygon(30 + r * np.sin(t), 32 + r * np.cos(t), m.shape)] = 1
    return m


def test_morphology_on_known_shapes():
    grey = np.full((SIZE, SIZE), 100, np.uint8)
    d, w, t, s = (feats(grey, shape_mask(k)) for k in ("disk", "wide", "tall", "star"))
    assert d["circularity"] > 0.85 and d["eccentricity"] < 0.2 and d["solidity"] > 0.95
    assert d["area"] == pytest.approx(shape_mask("disk").sum() / SIZE**2)
    assert d["depth_width_ratio"] == pytest.approx(1.0)
    assert w["depth_width_ratio"] < 0.5 < 2 < t["depth_width_ratio"]
    # |orientation| from the vertical: a tall lesion's major axis is vertical (0), a wide one's
    # horizontal (pi/2).
    assert t["orientation"] < 0.1 and w["orientation"] > math.pi / 2 - 0.1
    assert w["eccentricity"] > 0.9 and t["eccentricity"] > 0.9
    # The spiculated margin is irregular by every margin measure.
    assert s["solidity"] < d["solidity"] - 0.2 and s["nrl_sd"] > 2 * d["nrl_sd"]
    assert s["circularity"] < d["circularity"] and s["ellipse_norm_circumference"] > 1.2
    assert d["n_components"] == 1 and d["mask_empty"] == 0


def test_glcm_on_a_checkerboard():
    # 0/255 checkerboard → grey levels 0 and 31 after quantisation. At distance 1, horizontal
    # and vertical neighbours always differ (contrast 31² = 961), diagonal ones never (0).
    board = ((np.indices((SIZE, SIZE)).sum(axis=0) % 2) * 255).astype(np.uint8)
    f = feats(board, shape_mask("disk"))
    assert f["glcm_contrast_d1_mean"] == pytest.approx(961 / 2)
    assert f["glcm_contrast_d1_range"] == pytest.approx(961)
    assert f["glcm_contrast_d2_mean"] == pytest.approx(0)  # even distance: same colour
    flat = feats(np.full((SIZE, SIZE), 90, np.uint8), shape_mask("disk"))
    assert flat["glcm_energy_d1_mean"] == pytest.approx(1) and flat["glcm_contrast_d4_mean"] == 0
    assert flat["glcm_homogeneity_d2_mean"] == pytest.approx(1)


def test_intensity_and_posterior_acoustic_features():
    mask = shape_mask("disk")
    rows, cols = np.nonzero(mask)
    below, c0, c1 = rows.max() + 1, cols.min(), cols.max() + 1  # posterior band: below the box
    img = np.full((SIZE, SIZE), 100, np.uint8)
    img[mask == 1] = 40
    plain = feats(img, mask)
    assert plain["lesion_mean"] == pytest.approx(40) and plain["lesion_sd"] == pytest.approx(0)
    assert math.isnan(plain["lesion_skew"])  # undefined for a constant lesion: imputed later
    assert plain["margin_contrast"] == pytest.approx(40 - 100)
    assert plain["post_minus_beside"] == pytest.approx(0)
    enhanced, shadowed = img.copy(), img.copy()
    enhanced[below:, c0:c1] = 160
    shadowed[below:, c0:c1] = 20
    e, s = feats(enhanced, mask), feats(shadowed, mask)
    assert e["post_mean"] == pytest.approx(160) and e["post_minus_beside"] == pytest.approx(60)
    assert s["post_minus_beside"] == pytest.approx(-80)
    assert s["post_over_beside"] == pytest.approx(0.2)
    bottom = np.zeros_like(mask)
    bottom[50:, 20:40] = 1  # lesion at the bottom edge: no posterior band
    assert math.isnan(feats(img, bottom)["post_mean"])


def test_empty_mask_uses_a_central_box():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (SIZE, SIZE), dtype=np.uint8)
    box = np.zeros((SIZE, SIZE), np.uint8)
    box[16:48, 16:48] = 1
    empty, boxed = feats(img, np.zeros_like(box)), feats(img, box)
    assert empty["mask_empty"] == 1 and boxed["mask_empty"] == 0
    assert {k: v for k, v in empty.items() if k != "mask_empty"} == pytest.approx(
        {k: v for k, v in boxed.items() if k != "mask_empty"}, nan_ok=True
    )
    x = extract_all(np.stack([img, img]), np.stack([box, np.zeros_like(box)]))
    assert x.shape == (2, len(FEATURE_NAMES)) == (2, 48)
    with pytest.raises(ValueError, match="same shape"):
        extract_features(img, box[:32])


def test_predicted_masks_sources_and_errors(tmp_path):
    ids = ["benign/a", "malignant/b"]
    masks = np.stack([shape_mask("disk"), shape_mask("wide")])
    path = tmp_path / "pred.npz"
    np.savez(path, ids=np.array(ids), masks=masks)
    got = predicted_masks(str(path), ids[::-1], (SIZE, SIZE))
    assert got.dtype == np.uint8 and (got == masks[::-1]).all()
    assert (predicted_masks(dict(zip(ids, masks, strict=True)), ids, (SIZE, SIZE)) == masks).all()
    assert (predicted_masks(lambda i: masks[: len(i)], ids, (SIZE, SIZE)) == masks).all()
    with pytest.raises(DataError, match=r"pred\.npz: no predicted mask for 1 .*'normal/c'"):
        predicted_masks(path, [*ids, "normal/c"], (SIZE, SIZE))
    with pytest.raises(DataError, match=r"mask of 'benign/a' is \(64, 64\), images are \(32, 32\)"):
        predicted_masks(path, ids, (32, 32))
    with pytest.raises(DataError, match="not found"):
        predicted_masks(tmp_path / "nope.npz", ids, (SIZE, SIZE))
    np.savez(tmp_path / "bad.npz", ids=np.array(ids))
    with pytest.raises(DataError, match=r"bad\.npz: .*needs arrays 'ids' and 'masks'"):
        predicted_masks(tmp_path / "bad.npz", ids, (SIZE, SIZE))
    with pytest.raises(DataError, match="only 0 and 1"):
        predicted_masks({i: m * 0.7 for i, m in zip(ids, masks, strict=True)}, ids, (SIZE, SIZE))
    with pytest.raises(DataError, match="returned 1 masks for 2 ids"):
        predicted_masks(lambda i: masks[:1], ids, (SIZE, SIZE))


def test_settings_validation():
    ok = moon_settings(RunConfig(model_kwargs={"classifiers": "svc", "C_grid": 3}))
    assert ok["classifiers"] == ("svc",) and ok["C_grid"] == (3.0,)
    assert moon_settings(RunConfig())["inner_folds"] == DEFAULTS["inner_folds"]
    bad = [
        ({"widths": 3}, "does not take model_kwargs widths"),
        ({"classifiers": ("rf",)}, "classifiers must be among"),
        ({"C_grid": (1, -1)}, "C_grid must be positive"),
        ({"inner_folds": 1}, "inner_folds must be an integer >= 2"),
        ({"mask_source": "oracle"}, "mask_source must be one of"),
        ({"mask_source": "predicted"}, "needs model_kwargs.predicted_masks"),
    ]
    for kwargs, msg in bad:
        with pytest.raises(ValueError, match=msg):
            moon_settings(RunConfig(model_kwargs=kwargs))
    with pytest.raises(ValueError, match="class_weights must be inverse_frequency or none"):
        moon_settings(RunConfig(class_weights="balanced"))


def test_registered_without_a_forward_pass():
    info = model_info("moon_features")
    assert info.fit is fit_moon and info.tasks == ("label",) and info.family == "classification"
    with pytest.raises(
        ValueError, match="without a forward pass.*mtl-bench cv --model moon_features"
    ):
        create_model("moon_features")
