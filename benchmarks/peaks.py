"""Dense peak TFLOP/s and memory bandwidth per accelerator, for MFU and the roofline.

Numbers are vendor datasheet peaks *without* structured sparsity (NVIDIA quotes "with sparsity"
figures that are twice the dense ones; those are halved here). For fp32 training on NVIDIA GPUs
the TF32 tensor-core peak is used, because XLA runs fp32 convolutions and matmuls in TF32 by
default there; on TPUs fp32 matmuls at JAX's default precision are single bf16 passes, so the bf16
peak applies. CPUs have no entry: MFU is left blank rather than guessed.

Bandwidths are the datasheets' HBM/GDDR figures (A100: the 80 GB SXM part's 2.04 TB/s; the 40 GB
part has 1.56). Sources: NVIDIA H100 / H200 / GH200 / A100 / L4 product datasheets; Google Cloud
TPU system architecture pages (v4, v5e, v5p, v6e "Trillium").
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Peak:
    name: str  # the card the numbers are for
    bf16: float  # dense bf16 TFLOP/s
    fp32: float  # the peak fp32 *training* runs against (TF32 tensor cores, TPU bf16 passes)
    fp32_kind: str  # what ``fp32`` is: "tf32 dense" or "bf16 passes"
    hbm_tb_s: float  # device memory bandwidth, TB/s


# Matched in order against the lower-cased ``device_kind``; specific variants come first.
_TABLE: tuple[tuple[str, Peak], ...] = (
    (r"h100.*pcie", Peak("H100 PCIe", 756.0, 378.0, "tf32 dense", 2.0)),
    (r"h100.*nvl", Peak("H100 NVL", 835.5, 417.5, "tf32 dense", 3.9)),
    (r"h100", Peak("H100 SXM", 989.4, 494.7, "tf32 dense", 3.35)),
    # GH200's GPU is an H100 die (989 dense bf16) with HBM3 (96 GB, 4.0 TB/s) or HBM3e (144 GB,
    # 4.9): the lower bandwidth is used. Both GH200 and H200 NVL would otherwise match "h200".
    (r"gh200", Peak("GH200", 989.4, 494.7, "tf32 dense", 4.0)),
    (r"h200.*nvl", Peak("H200 NVL", 835.5, 417.5, "tf32 dense", 4.8)),
    (r"h200", Peak("H200", 989.4, 494.7, "tf32 dense", 4.8)),
    (r"a100", Peak("A100", 312.0, 156.0, "tf32 dense", 2.039)),
    (r"\bl4\b", Peak("L4", 121.0, 60.0, "tf32 dense", 0.3)),
    (r"tpu v4", Peak("TPU v4", 275.0, 275.0, "bf16 passes", 1.2)),
    (r"tpu v5 ?lite|tpu v5e", Peak("TPU v5e", 197.0, 197.0, "bf16 passes", 0.819)),
    (r"tpu v5p|tpu v5$", Peak("TPU v5p", 459.0, 459.0, "bf16 passes", 2.765)),
    (r"tpu v6 ?lite|tpu v6e|trillium", Peak("TPU v6e", 918.0, 918.0, "bf16 passes", 1.64)),
)


def find_peak(device_kind: str) -> Peak | None:
    """The peak entry for a JAX ``device_kind`` string, or None (CPU, unknown cards)."""
    kind = device_kind.strip().lower()
    for pattern, peak in _TABLE:
        if re.search(pattern, kind):
            return peak
    return None


def peak_tflops(device_kind: str, precision: str) -> tuple[float | None, str]:
    """(dense peak TFLOP/s or None, a label saying which peak) for ``precision`` fp32 | bf16."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
    peak = find_peak(device_kind)
    if peak is None:
        return None, f"no peak known for {device_kind!r}"
    if precision == "bf16":
        return peak.bf16, f"{peak.name} bf16 dense"
    return peak.fp32, f"{peak.name} fp32 as {peak.fp32_kind}"


def mfu_percent(train_flops_per_s: float, peak: float | None) -> float | None:
    """Achieved / peak FLOP/s in percent; None without a peak."""
    if peak is None or not peak > 0:
        return None
    return 100.0 * train_flops_per_s / (peak * 1e12)


def device_slug(device_kind: str) -> str:
    """'NVIDIA H100 80GB HBM3' → 'nvidia-h100-80gb-hbm3' (file names)."""
    slug = re.sub(r"[^a-z0-9]+", "-", device_kind.lower()).strip("-")
    return slug or "unknown-device"
