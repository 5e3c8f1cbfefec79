"""The PyTorch side of the peer: build a twin, time its training step and inference.

Run only as a subprocess of ``benchmarks.torch_peer`` (``python -m benchmarks.torch_peer_child
JOB.json``), so that torch and JAX never share a process. Each finished measurement is printed
at once as one line ``PEER {json}``: if the parent's time box kills this process, what was
measured survives.

The timed training step mirrors the JAX one: gather a batch by index from device-resident uint8
arrays, convert, augment on the device (random flips and a rotation, ``affine_grid`` +
``grid_sample``), forward, soft Dice (masks) + focal (labels, γ = 2) loss, backward, Adam — under
``torch.autocast(bfloat16)`` for bf16. On CUDA: ``channels_last`` and ``cudnn.benchmark`` (the
settings a PyTorch user would pick for speed) and TF32 matmuls (fp32 as XLA computes it there); on
CPU denormals flush to zero, as XLA's do. ``compile`` mode wraps the model in ``torch.compile``
(default mode, static shapes, dynamo reset before each configuration: ``compile_fresh``); its
compile time is reported, not counted in the step time. Steps are summarised as the JAX side's are
(``step_stats.py``: medians, spreads, pipelined repeats).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from typing import Any

import torch
from torch.nn import functional as F

from benchmarks.step_stats import blocked_times, iqr_pct, pipelined_times, range_pct

# The references our classifiers were ported from (baselines/classifiers): torchvision by name,
# else timm; Inception-v3 without its auxiliary head (our default), MobileNet v1 from timm.
TORCHVISION_KWARGS = {"inception_v3": {"aux_logits": False, "init_weights": False}}
TIMM_NAMES = {"mobilenet": "mobilenetv1_100"}


class NoTwin(Exception):
    """The model has no PyTorch twin (reported as a skip, not an error)."""


def build_twin(spec: dict[str, Any], in_channels: int, num_classes: int):
    """(module, tasks, input channels the module takes) for a spec from ``torch_peer.twin_spec``."""
    kind = spec["kind"]
    if kind == "mtl_resunet":
        from benchmarks.torch_mtl_resunet import TorchMTLResUNet

        model = TorchMTLResUNet(in_channels=in_channels, num_classes=num_classes, **spec["kwargs"])
        return model, ("mask", "label"), in_channels
    if kind == "classic_unet":
        from benchmarks.torch_classic_unet import TorchClassicUNet

        return TorchClassicUNet(in_channels=in_channels, **spec["kwargs"]), ("mask",), in_channels
    if kind == "smp":
        import segmentation_models_pytorch as smp

        arch = getattr(smp, spec["arch"])
        model = arch(
            encoder_name=spec["encoder"], encoder_weights=None, in_channels=in_channels, classes=1
        )
        return model, ("mask",), in_channels
    if kind == "classifier":
        # Our classifiers keep their reference's RGB stem and replicate a grey input inside the
        # call; the twin gets the grey image repeated to 3 channels, the same work.
        import timm
        import torchvision

        name = spec["name"]
        if name in torchvision.models.list_models():
            extra = TORCHVISION_KWARGS.get(name, {})
            model = torchvision.models.get_model(
                name, weights=None, num_classes=num_classes, **extra
            )
            return model, ("label",), 3
        timm_name = TIMM_NAMES.get(name, name)
        if timm.is_model(timm_name):
            model = timm.create_model(
                timm_name, pretrained=False, in_chans=3, num_classes=num_classes
            )
            return model, ("label",), 3
        raise NoTwin(f"no torchvision or timm model named {name!r}")
    raise ValueError(f"unknown twin kind {kind!r}")


def _outputs(out: Any, tasks: tuple[str, ...]) -> dict[str, torch.Tensor]:
    if isinstance(out, dict):
        return out
    if hasattr(out, "logits"):  # torchvision Inception/GoogLeNet training outputs
        out = out.logits
    if isinstance(out, tuple | list):
        out = out[0]
    return {tasks[0]: out}


def _loss(out: dict[str, torch.Tensor], masks: torch.Tensor, labels: torch.Tensor):
    total = torch.zeros((), device=masks.device)
    if "mask" in out:
        p = torch.sigmoid(out["mask"].float()).flatten(1)
        t = masks.flatten(1)
        dice = (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
        total = total + (1 - dice).mean()
    if "label" in out:
        logp = F.log_softmax(out["label"].float(), -1).gather(1, labels[:, None])[:, 0]
        total = total + (-((1 - logp.exp()).clamp_min(1e-12) ** 2) * logp).mean()
    return total


def _augment(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b = images.shape[0]
    dev = images.device
    angle = (torch.rand(b, device=dev) * 2 - 1) * math.radians(30)
    sx = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0)
    sy = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos * sx, -sin, torch.zeros_like(cos)], -1),
         torch.stack([sin, cos * sy, torch.zeros_like(cos)], -1)], 1
    )  # fmt: skip
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    img = F.grid_sample(images, grid, mode="bilinear", align_corners=False)
    msk = F.grid_sample(masks, grid, mode="nearest", align_corners=False)
    return img, msk


def _timed(fn, warmup: int, steps: int, sync) -> tuple[float, float | None]:
    """(median seconds, IQR % of it) of ``steps`` synchronised calls after ``warmup`` calls: the
    JAX side's statistics (``step_stats.py``), so a ratio of the two compares like with like."""
    times = blocked_times(fn, warmup, steps, lambda _: sync())
    return statistics.median(times), iqr_pct(times)


def compile_fresh(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` under ``torch.compile``, compiled as if first in the process, for static shapes.

    One child times every configuration of a model (batch sizes, precisions) in turn. Dynamo's
    caches outlive a configuration: without the reset, the second batch size is recompiled as
    a dynamic-shape graph (slower code, and a compile time unlike the first's), and past
    ``recompile_limit`` (8) dynamo runs the model eagerly without a word. ``dynamic=False``
    keeps every graph specialised to its configuration's shapes, as the JAX side's are."""
    torch.compiler.reset()  # public wrapper of torch._dynamo.reset(); the disk cache stays
    return torch.compile(model, dynamic=False)


def time_config(job: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Train and inference images/s of the job's twin at one (batch, precision, size, mode)."""
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model, tasks, in_ch = build_twin(job["spec"], job["in_channels"], job["num_classes"])
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fmt = torch.channels_last if dev.type == "cuda" else torch.contiguous_format
    model = model.to(dev, memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    b, size = cfg["batch_size"], cfg["image_size"]
    gen = torch.Generator(device="cpu").manual_seed(0)
    n = 2 * b
    images = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=gen).to(dev)
    masks = torch.randint(0, 2, (n, 1, size, size), dtype=torch.uint8, generator=gen).to(dev)
    labels = torch.randint(0, job["num_classes"], (n,), generator=gen).to(dev)
    amp = cfg["precision"] == "bf16"
    net = model
    compile_s = None
    if cfg["mode"] == "compile":
        net = compile_fresh(model)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    counter = {"i": 0}

    def batch():
        idx = torch.arange(b, device=dev) + (counter["i"] % 2) * b
        counter["i"] += 1
        x = images[idx].float().div_(255.0)
        y = masks[idx].float()
        x, y = _augment(x, y)
        if in_ch != x.shape[1]:
            x = x.expand(-1, in_ch, -1, -1)
        return x.contiguous(memory_format=fmt), y, labels[idx]

    def train_step():
        x, y, lab = batch()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            out = _outputs(net(x), tasks)
        loss = _loss(out, y, lab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    model.train()
    t = time.perf_counter()
    loss = train_step()  # the first call compiles (compile mode) and warms cuDNN autotuning
    sync()
    compile_s = time.perf_counter() - t if cfg["mode"] == "compile" else None
    train_s, train_iqr = _timed(train_step, job["warmup"], job["steps"], sync)
    runs = pipelined_times(train_step, job["steps"], lambda _: sync())
    finite = bool(torch.isfinite(loss).item())
    model.eval()
    x_inf = torch.rand(b, in_ch, size, size, device=dev).contiguous(memory_format=fmt)

    @torch.no_grad()
    def infer():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            return net(x_inf)

    infer()  # eval mode is a new graph for torch.compile: compile outside the timing
    infer_s, infer_iqr = _timed(infer, job["warmup"], job["steps"], sync)
    return {
        **cfg,
        "status": "ok",
        "params": params,
        "train_img_per_s": b / train_s,
        "train_pipelined_img_per_s": b / statistics.median(runs),
        "infer_img_per_s": b / infer_s,
        "train_iqr_pct": train_iqr,
        "train_pipelined_spread_pct": range_pct(runs),
        "infer_iqr_pct": infer_iqr,
        "compile_s": compile_s,
        "loss_finite": finite,
        "torch_version": torch.__version__,
        "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m benchmarks.torch_peer_child JOB.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        job = json.load(f)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        # fp32 as the JAX side computes it: XLA runs fp32 convolutions *and* matmuls in TF32 on
        # GPUs by default; PyTorch does convolutions in TF32 (cudnn.allow_tf32) but matmuls in
        # full fp32 unless told, which would time the heads' Dense layers at another precision.
        torch.set_float32_matmul_precision("high")
    else:
        # XLA's CPU backend flushes denormal floats to zero; PyTorch computes them in full, which
        # x86 cores may do far more slowly. Flush here too so both sides do the same arithmetic.
        # (Seen once on a 2-core VM: eager steps of 22 ms and 1.9 s in one configuration, steady
        # with flushing; not reproduced since, so contention may have been the cause.) Set before
        # the first op: the intra-op worker threads start then and inherit this thread's
        # floating-point mode. On CUDA the kernels have their own flags: nothing to match.
        torch.set_flush_denormal(True)
    for cfg in job["configs"]:
        try:
            res = time_config(job, cfg)
        except NoTwin as e:
            res = {**cfg, "status": f"skipped: {e}"}
        except Exception as e:  # report and go on with the next configuration
            msg = " ".join(str(e).split())[:300]
            res = {**cfg, "status": f"error: {type(e).__name__}: {msg}"}
        print("PEER " + json.dumps(res), flush=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
