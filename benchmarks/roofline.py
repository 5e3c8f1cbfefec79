"""Roofline ceiling of a model's training step from its layer shapes: how much MFU is possible.

    python -m benchmarks.roofline --models mtl_resunet,unet --device "NVIDIA H100 80GB HBM3"
    python -m benchmarks.roofline --csv results/throughput/nvidia-h100-80gb-hbm3-20261126.csv

Seconds, not minutes, on a CPU: only shapes are traced. Why it exists: issue #7 asks for ≥ 50 %
MFU, and before tuning kernels one must know whether the layer shapes allow it. Each convolution
of a training step is bounded by max(FLOPs / peak, bytes / bandwidth); a step cannot run faster
than the sum of its convolutions' bounds plus the memory traffic nothing can fuse away.

The traffic model (per image, compute dtype; the *least* any XLA program moves, so the ceilings
are optimistic):
- a convolution: forward reads input and kernel and writes output; backward, the input gradient
  reads output-gradient and kernel and writes input-gradient, the weight gradient reads input and
  output-gradient — 3 × (input + output) + 3 × kernel, the kernel spread over the batch;
- a BatchNorm in training after it (found as a reduction over N, H, W of an array of the conv
  output's shape): the statistics read the output once, normalise + ReLU read it and write the
  activation; backward two reductions read output-gradient and output, the input gradient reads
  both and writes one — 8 × output. Element-wise work between is fused (free);
- Adam: parameters, gradients and both moments in fp32 — 7 × 4 bytes per parameter per step;
- not counted: concatenation, pooling, upsampling copies, the loss, augmentation (more traffic:
  the real ceiling is lower still).
FLOPs are ``benchmarks.flops``'s (3 × forward), so the MFU here is the bench's MFU.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from typing import Any

DEFAULT_DEVICE = "NVIDIA H100 80GB HBM3"


@dataclass(frozen=True)
class ConvCost:
    """One forward convolution of one image, with what its training costs."""

    resolution: int  # output height
    train_flops: float  # 3 × forward
    act_bytes: float  # input + output, per image, compute dtype
    out_bytes: float
    kernel_bytes: float
    batchnorm: bool


def conv_costs(
    model: Any, image_size: int, dtype_bytes: int, in_channels: int = 1
) -> list[ConvCost]:
    """The forward convolutions of ``model`` at ``image_size``² (one image), in trace order, with
    matmuls on NHWC activations (a 2×2 transposed convolution done as one) counted among them."""
    from benchmarks.flops import TRAIN_FACTOR, _conv_macs, _sub_jaxprs, forward_jaxpr

    # The training forward (BatchNorm on batch statistics): what the step's convolutions see.
    jaxpr = forward_jaxpr(model, image_size, in_channels=in_channels, train=True)
    convs, reduced = [], set()

    def walk(j: Any) -> None:
        j = j.jaxpr if hasattr(j, "jaxpr") and not hasattr(j, "eqns") else j
        for e in j.eqns:
            if e.primitive.name == "conv_general_dilated":
                convs.append(e)
            elif e.primitive.name == "dot_general" and len(e.invars[0].aval.shape) == 4:
                convs.append(e)  # a matmul on an NHWC activation: the up-conv (layers.UpConv2x2)
            elif e.primitive.name == "reduce_sum":
                shape = e.invars[0].aval.shape
                if len(shape) == 4 and tuple(e.params["axes"]) == (0, 1, 2):
                    reduced.add(shape)  # BatchNorm statistics over N, H, W
            for v in e.params.values():
                for sub in _sub_jaxprs(v):
                    walk(sub)

    walk(jaxpr)
    out = []
    for e in convs:
        lhs, rhs, res = e.invars[0].aval.shape, e.invars[1].aval.shape, e.outvars[0].aval.shape
        o = math.prod(res) * dtype_bytes
        if e.primitive.name == "dot_general":
            (contract, _), _ = e.params["dimension_numbers"]
            macs = math.prod(res) * math.prod(lhs[d] for d in contract)
            side = round(math.sqrt(math.prod(res[:-1]) / res[0]))  # output pixels → square side
        else:
            macs, side = _conv_macs(e), res[1]
        out.append(
            ConvCost(
                resolution=side,
                train_flops=TRAIN_FACTOR * 2 * macs,
                act_bytes=math.prod(lhs) * dtype_bytes + o,
                out_bytes=o,
                kernel_bytes=math.prod(rhs) * dtype_bytes,
                batchnorm=res in reduced,
            )
        )
    return out


def roofline(
    costs: list[ConvCost], params: int, batch: int, peak_tflops: float, hbm_tb_s: float
) -> dict[str, Any]:
    """Per-resolution rows and the step's ceilings (µs per image, MFU %, images/s)."""
    peak, bw = peak_tflops * 1e12, hbm_tb_s * 1e12
    levels: dict[int, dict[str, float]] = {}
    flops = conv_s = bn_s = 0.0
    for c in costs:
        conv_bytes = 3 * c.act_bytes + 3 * c.kernel_bytes / batch
        t = max(c.train_flops / peak, conv_bytes / bw)
        b = 8 * c.out_bytes / bw if c.batchnorm else 0.0
        lv = levels.setdefault(c.resolution, {"convs": 0, "gflop": 0.0, "mb": 0.0, "us": 0.0})
        lv["convs"] += 1
        lv["gflop"] += c.train_flops / 1e9
        lv["mb"] += (conv_bytes + (8 * c.out_bytes if c.batchnorm else 0)) / 1e6
        lv["us"] += (t + b) * 1e6
        flops, conv_s, bn_s = flops + c.train_flops, conv_s + t, bn_s + b
    adam_s = 7 * 4 * params / batch / bw
    rows = [
        {
            "resolution": r,
            **v,
            "flop_per_byte": v["gflop"] * 1e3 / v["mb"],
            "pct_of_peak": 1e5 * v["gflop"] / (v["us"] * peak_tflops),
        }  # fmt: skip
        for r, v in sorted(levels.items(), reverse=True)
    ]
    ideal = flops / peak

    def ceiling(seconds: float) -> dict[str, float]:
        return {"us_per_img": seconds * 1e6, "mfu_pct": 100 * ideal / seconds, "img_s": 1 / seconds}

    return {
        "levels": rows,
        "train_gflop_per_img": flops / 1e9,
        "conv_only": ceiling(conv_s),
        "with_bn_adam": ceiling(conv_s + bn_s + adam_s),
    }


def report(name: str, model_kwargs: dict, image_size: int, precision: str, batch: int,
           device: str) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """The printed roofline of one registered model (and the numbers behind it)."""
    from tabulate import tabulate

    from benchmarks.peaks import find_peak, peak_tflops
    from mtl_bench.config import RunConfig
    from mtl_bench.fit import build_model
    from mtl_bench.registry import count_params

    peak = find_peak(device)
    if peak is None:
        raise ValueError(f"no peak/bandwidth known for device {device!r} (see benchmarks/peaks.py)")
    tflops, label = peak_tflops(device, precision)
    cfg = RunConfig(
        model=name, model_kwargs=model_kwargs, image_size=image_size, precision=precision
    )
    model = build_model(cfg, 2)
    r = roofline(
        conv_costs(model, image_size, 2 if precision == "bf16" else 4),
        count_params(model), batch, tflops, peak.hbm_tb_s,
    )  # fmt: skip
    table = tabulate(
        [[v["resolution"], v["convs"], v["gflop"], v["mb"], v["flop_per_byte"], v["us"],
          v["pct_of_peak"]] for v in r["levels"]],
        headers=["out res", "convs", "train GFLOP/img", "MB/img", "FLOP/B", "µs/img bound",
                 "% of peak"],
        floatfmt=".3g", tablefmt="github",
    )  # fmt: skip
    c, w = r["conv_only"], r["with_bn_adam"]
    text = (
        f"{name} at {image_size}², {precision}, batch {batch}, on {peak.name} ({label} "
        f"{tflops:g} TFLOP/s, {peak.hbm_tb_s:g} TB/s); ridge {tflops / peak.hbm_tb_s:.0f} FLOP/B\n"
        f"{table}\n"
        f"ceiling, convolutions only: {c['mfu_pct']:.0f} % MFU, {c['img_s']:.0f} img/s\n"
        f"ceiling, + BatchNorm and Adam traffic: {w['mfu_pct']:.0f} % MFU, {w['img_s']:.0f} img/s"
    )
    return text, r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.roofline", description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mtl_resunet", help="NAME[,NAME...]")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    p.add_argument("--batch-size", type=int, default=64, help="spreads kernel and Adam traffic")
    p.add_argument("--device", default=DEFAULT_DEVICE, help="a JAX device_kind, e.g. 'H200'")
    p.add_argument("--csv", default=None, help="set measured rows (strategy none) against it")
    args = p.parse_args(argv)
    try:
        from benchmarks.throughput_io import read_csv

        measured = read_csv(args.csv) if args.csv else []
        if measured:
            args.device = measured[0].get("device_kind") or args.device
        names = [m.strip() for m in args.models.split(",") if m.strip()]
        if args.csv and args.models == p.get_default("models"):
            names = sorted({r["model"] for r in measured if r.get("status") == "ok"})
        for name in names:
            text, r = report(name, {}, args.image_size, args.precision, args.batch_size,
                             args.device)  # fmt: skip
            print(text)
            ceilings = {args.batch_size: r}  # a row is set against its own batch's ceiling
            for row in measured:
                if (row["model"], row.get("strategy"), row.get("status")) != (name, "none", "ok"):
                    continue
                if (int(row["image_size"]), row["precision"]) != (args.image_size, args.precision):
                    continue
                got, batch = float(row["train_img_per_s"]), int(row["batch_size"])
                if batch not in ceilings:  # the batch spreads the Adam traffic: its own ceiling
                    ceilings[batch] = report(name, {}, args.image_size, args.precision, batch,
                                             args.device)[1]  # fmt: skip
                ceiling = ceilings[batch]["with_bn_adam"]["img_s"]
                print(
                    f"measured (batch {batch}): {got:.0f} img/s = {100 * got / ceiling:.0f} % of "
                    f"the BN+Adam ceiling at batch {batch} ({ceiling:.0f} img/s)"
                )
            print()
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f"benchmarks.roofline: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
