"""One input of ``mtl-bench predict``: read and pre-processed as training reads its images, and
its mask and overlay PNGs written (``predict.py`` runs the model between the two)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mtl_bench.data.types import DataError
from mtl_bench.predict_files import OUTPUT_KINDS, output_path


def prepare_image(
    path: Path, size: int, method: str
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """(original grey image, model input (size, size) uint8, its notes by kind): the training
    pipeline, which refuses what training refuses (32-bit pixels, not zeroed)."""
    from mtl_bench.data.png import frame_count, load_grey_noted, resize_image
    from mtl_bench.data.preprocess import preprocess

    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: an empty file (0 bytes)")
    # The noted form: load_grey_png would warn once per file, a line each for a whole folder.
    grey, depth = load_grey_noted(path)
    frames = frame_count(path)
    small = resize_image(grey, (size, size))  # the reader's own resize
    notes = {"depth": depth} if depth else {}
    if frames > 1:
        notes["frames"] = f"{frames} frames: only the first was predicted"
    return grey, preprocess(small[None], method)[0], notes


def write_outputs(stem: Path, grey: np.ndarray, prob_map: np.ndarray | None) -> dict:
    """Write ``stem``'s mask PNG (the sigmoid map resized bilinearly to the input's own size,
    then thresholded at 0.5) and overlay PNG; the row's size and mask cells (size only for a
    classifier: ``prob_map`` None)."""
    from mtl_bench.figure_overlays import PRED_RGB, blend

    h, w = grey.shape
    if prob_map is None:
        return {"width": w, "height": h}
    prob = Image.fromarray(np.asarray(prob_map, dtype=np.float32))
    up = np.asarray(prob.resize((w, h), Image.Resampling.BILINEAR))
    mask = up > 0.5
    stem.parent.mkdir(parents=True, exist_ok=True)
    mask_png, overlay_png = (output_path(stem, k) for k in OUTPUT_KINDS)
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_png)
    rgb = np.clip(np.rint(blend(grey, mask, PRED_RGB) * 255), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(overlay_png)
    return {
        "width": w,
        "height": h,
        "mask_pixels": int(mask.sum()),
        "mask_fraction": round(float(mask.mean()), 6),
        "mask_png": str(mask_png),
        "overlay_png": str(overlay_png),
    }
