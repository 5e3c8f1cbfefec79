"""The roofline ceiling: layer costs of a small conv net checked by hand, and the arithmetic."""

import jax
import pytest
from flax import nnx

from benchmarks.roofline import ConvCost, conv_costs, main, roofline
from mtl_bench import registry
from mtl_bench.registry import ModelInfo


class ConvBNNet(nnx.Module):
    def __init__(self, rngs, head_channels=2):  # 1: the output contract's mask, for the CLI
        self.conv = nnx.Conv(1, 4, (3, 3), use_bias=False, rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.head = nnx.Conv(4, head_channels, (1, 1), rngs=rngs)

    def __call__(self, x, train=False, rng=None):
        h = jax.nn.relu(self.bn(self.conv(x), use_running_average=not train))
        return {"mask": self.head(h), "label": h.mean(axis=(1, 2))[:, :2]}


def test_conv_costs_by_hand():
    first, head = conv_costs(ConvBNNet(nnx.Rngs(0)), 8, dtype_bytes=2)
    px = 8 * 8
    assert first.train_flops == 3 * 2 * px * 4 * 9  # 3 × (2 × MACs)
    assert first.act_bytes == (px * 1 + px * 4) * 2 and first.out_bytes == px * 4 * 2
    assert first.kernel_bytes == 9 * 4 * 2 and first.resolution == 8
    assert first.batchnorm and not head.batchnorm  # the head's output is never normalised
    assert head.train_flops == 3 * 2 * px * 2 * 4


def test_roofline_arithmetic():
    # Peak 1 TFLOP/s, 1 TB/s: one compute-bound and one memory-bound layer (+ BN), 1e6 params.
    costs = [
        ConvCost(32, train_flops=4e6, act_bytes=1e3, out_bytes=5e2, kernel_bytes=0, batchnorm=0),
        ConvCost(64, train_flops=1e6, act_bytes=1e6, out_bytes=1e5, kernel_bytes=0, batchnorm=1),
    ]  # fmt: skip
    r = roofline(costs, params=1_000_000, batch=28, peak_tflops=1.0, hbm_tb_s=1.0)
    # Layer 1: 4 µs of compute; layer 2: 3 MB → 3 µs; BN 0.8 µs; Adam 28 MB / 28 images → 1 µs.
    assert r["conv_only"]["us_per_img"] == pytest.approx(7.0)
    assert r["with_bn_adam"]["us_per_img"] == pytest.approx(8.8)
    assert r["conv_only"]["mfu_pct"] == pytest.approx(100 * 5 / 7)
    assert r["with_bn_adam"]["img_s"] == pytest.approx(1e6 / 8.8)
    assert [lv["resolution"] for lv in r["levels"]] == [64, 32]
    assert r["levels"][1]["pct_of_peak"] == pytest.approx(100.0)


def test_cli_prints_ceilings_and_rejects_unknown_device(monkeypatch, capsys):
    registry.list_models()
    info = ModelInfo("roof_tiny", lambda rngs, **_: ConvBNNet(rngs, 1), ("mask",), "proposed", {})
    monkeypatch.setitem(registry._REGISTRY, "roof_tiny", info)
    argv = ["--models", "roof_tiny", "--image-size", "16", "--precision", "fp32"]
    assert main(argv + ["--device", "NVIDIA H200"]) == 0
    out = capsys.readouterr().out
    assert "on H200" in out and "ceiling, convolutions only:" in out and "% MFU" in out
    assert main(argv + ["--device", "cpu"]) == 2
    assert "no peak/bandwidth known for device 'cpu'" in capsys.readouterr().err


def test_up_conv_as_matmul_is_counted_like_the_convolution():
    # layers.UpConv2x2 computes the transposed conv as a dot_general by default: the roofline must
    # still see it, at its output resolution, with the convolution's FLOPs and activation bytes.
    def costs(impl: str) -> list[ConvCost]:
        model = registry.create_model(
            "mtl_resunet", rngs=nnx.Rngs(0), widths=(4, 8, 16, 32, 64), up_conv=impl
        )
        return conv_costs(model, 32, dtype_bytes=2)

    matmul, conv = costs("matmul"), costs("dilated_conv")
    assert len(matmul) == len(conv) == 4 * 3 + 5 * 3 + 4 + 1  # units, up-convs, head
    key = lambda c: (c.resolution, c.train_flops, c.act_bytes, c.kernel_bytes)  # noqa: E731
    assert sorted(map(key, matmul)) == sorted(map(key, conv))


def test_measured_rows_are_set_against_their_own_batchs_ceiling(monkeypatch, capsys, tmp_path):
    # The batch spreads the Adam traffic: a batch-2 row against the batch-64 ceiling was off.
    import csv

    from benchmarks.roofline import report
    from benchmarks.throughput_io import COLUMNS

    registry.list_models()
    info = ModelInfo("roof_tiny", lambda rngs, **_: ConvBNNet(rngs, 1), ("mask",), "proposed", {})
    monkeypatch.setitem(registry._REGISTRY, "roof_tiny", info)
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for batch in (2, 64):
            w.writerow({"model": "roof_tiny", "status": "ok", "strategy": "none",
                        "image_size": 16, "precision": "fp32", "batch_size": batch,
                        "train_img_per_s": 1000.0, "device_kind": "NVIDIA H200"})  # fmt: skip
    argv = ["--csv", str(path), "--image-size", "16", "--precision", "fp32"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for batch in (2, 64):
        ceiling = report("roof_tiny", {}, 16, "fp32", batch, "NVIDIA H200")[1]
        img_s = ceiling["with_bn_adam"]["img_s"]
        want = f"measured (batch {batch}): 1000 img/s = {100_000 / img_s:.0f} % of the BN+Adam "
        assert want + f"ceiling at batch {batch} ({img_s:.0f} img/s)" in out
