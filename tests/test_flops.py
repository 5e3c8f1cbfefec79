"""FLOP counts against hand counts (conv variants, nested jaxprs, mtl_resunet's closed form) and
the peak table behind MFU."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from benchmarks.flops import count_flops, gflops_per_image, model_forward_flops
from benchmarks.peaks import device_slug, find_peak, mfu_percent, peak_tflops
from mtl_bench.registry import create_model


class ConvDense(nnx.Module):
    """conv 3×3 1→4 (SAME) on 8×8, flatten, dense 256→10."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), padding="SAME", rngs=rngs)
        self.dense = nnx.Linear(8 * 8 * 4, 10, rngs=rngs)

    def __call__(self, x, train=False, rng=None):
        h = jax.nn.relu(self.conv(x))
        return {"label": self.dense(h.reshape(h.shape[0], -1))}


def test_flops_of_a_small_conv_net_match_the_hand_count():
    model = ConvDense(nnx.Rngs(0))
    conv = 8 * 8 * 4 * (3 * 3 * 1)  # output pixels × out channels × taps × in channels
    dense = 256 * 10
    assert model_forward_flops(model, 8) == 2 * (conv + dense) == 9728
    assert model_forward_flops(model, 8, batch=3) == 3 * 9728
    g = gflops_per_image(model, 8)
    assert g["forward"] == pytest.approx(9728e-9) and g["train"] == pytest.approx(3 * 9728e-9)


@pytest.mark.parametrize(
    "layer, shape, macs",
    [
        # stride 2, SAME: 4×4 out × 6 × 9 taps × 2 in
        (lambda r: nnx.Conv(2, 6, (3, 3), strides=2, padding="SAME", rngs=r), (1, 8, 8, 2), 1728),
        # transposed 2×2 stride 2: 4×4 inputs × 8 in × 4 taps × 4 out (no inserted zeros)
        (
            lambda r: nnx.ConvTranspose(8, 4, (2, 2), strides=(2, 2), padding="VALID", rngs=r),
            (1, 4, 4, 8),
            2048,
        ),
        # 2 groups: 8×8 × 6 out × 9 taps × 2 in per group
        (lambda r: nnx.Conv(4, 6, (3, 3), feature_group_count=2, rngs=r), (1, 8, 8, 4), 6912),
        # dilated 3×3 (rate 2), VALID on 9×9: 5×5 out × 3 × 9 × 1
        (
            lambda r: nnx.Conv(1, 3, (3, 3), kernel_dilation=2, padding="VALID", rngs=r),
            (1, 9, 9, 1),
            675,
        ),
    ],
)
def test_flops_of_conv_variants(layer, shape, macs):
    conv = layer(nnx.Rngs(0))
    x = jnp.zeros(shape)
    assert count_flops(lambda x: conv(x), x) == 2 * macs


def test_flops_inside_nested_jaxprs():
    w = jnp.ones((5, 5))
    x = jax.ShapeDtypeStruct((2, 5), jnp.float32)

    @jax.custom_jvp
    def dense(x):
        return x @ w

    dense.defjvp(lambda p, t: (dense(p[0]), t[0] @ w))

    def scanned(x):  # 3 matmuls in a scan, 1 under remat inside a jit, 1 in a custom_jvp
        y, _ = jax.lax.scan(lambda c, _: (c @ w, None), x, None, length=3)
        y = jax.jit(jax.checkpoint(lambda y: y @ w))(y)
        return dense(y)

    assert count_flops(scanned, x) == 5 * 2 * (2 * 5 * 5)
    # cond counts its costliest branch (one matmul vs two)
    branchy = lambda x: jax.lax.cond(x[0, 0] > 0, lambda v: v @ w, lambda v: v @ w @ w, x)  # noqa: E731
    assert count_flops(branchy, x) == 2 * 2 * (2 * 5 * 5)


def mtl_resunet_closed_form(widths, size, dense=256, classes=2):
    """Forward MACs of mtl_resunet (concat merge, max-pool, 2×2 transposed up, 1×1 shortcut)."""
    macs, prev = 0, 1
    for i, w in enumerate(widths):  # encoder stages and the bridge
        s2, half = (size // 2**i) ** 2, w // 2
        macs += s2 * (9 * prev * half + 9 * half * half + prev * half)
        prev = w
    for j, w in enumerate(reversed(widths[:-1])):  # decoder: up-conv then a unit on 2w channels
        s = size // 2 ** (3 - j)
        macs += (s // 2) ** 2 * 4 * prev * w
        half = w // 2
        macs += s * s * (9 * 2 * w * half + 9 * half * half + 2 * w * half)
        prev = w
    macs += size * size * widths[0]  # 1×1 mask head
    macs += (2 * widths[3] + widths[4]) * dense + dense * classes
    return 2 * macs


@pytest.mark.parametrize(
    "widths, size", [((4, 8, 16, 32, 64), 32), ((64, 128, 256, 512, 1024), 256)]
)
def test_mtl_resunet_flops_match_the_closed_form(widths, size):
    model = nnx.eval_shape(lambda: create_model("mtl_resunet", widths=widths))
    assert model_forward_flops(model, size) == mtl_resunet_closed_form(widths, size)


def test_peak_table():
    assert find_peak("NVIDIA H100 80GB HBM3").name == "H100 SXM"
    assert find_peak("NVIDIA H100 PCIe").name == "H100 PCIe"
    assert find_peak("NVIDIA H200").name == "H200"
    assert find_peak("NVIDIA H200 NVL").name == "H200 NVL"  # a lower-clocked part
    assert find_peak("NVIDIA GH200 480GB").name == "GH200"  # an H100 die, not an H200
    assert find_peak("NVIDIA A100-SXM4-80GB").name == "A100"
    assert find_peak("NVIDIA L4").name == "L4"
    assert find_peak("TPU v5 lite").name == "TPU v5e"
    assert find_peak("TPU v5").name == "TPU v5p"
    assert find_peak("TPU v6 lite").name == "TPU v6e"
    assert find_peak("cpu") is None and find_peak("NVIDIA L40S") is None
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16")[0] == pytest.approx(989.4)
    assert peak_tflops("NVIDIA H100 80GB HBM3", "fp32")[0] == pytest.approx(494.7)
    assert peak_tflops("cpu", "bf16")[0] is None
    assert mfu_percent(494.7e12, 989.4) == pytest.approx(50.0)
    assert mfu_percent(1e12, None) is None
    assert device_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    with pytest.raises(ValueError, match="precision"):
        peak_tflops("cpu", "fp16")
