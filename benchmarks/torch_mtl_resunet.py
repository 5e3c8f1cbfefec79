"""The PyTorch twin of ``mtl_bench.model.MTLResUNet``, for the throughput peer only.

Same structure, widths, layer order and parameter count as the Flax model (a test checks the
count): residual units of conv3×3-BN-ReLU → conv3×3-BN-ReLU beside a k×k conv-BN-ReLU shortcut
(convs without bias, BN momentum/epsilon as Keras'), merged by concatenation of half-width paths
or by addition; 2×2 max-pool or stride-2 downsampling; 2×2 transposed-conv or nearest upsampling;
a 1×1 mask head; GAP of stage 4, the bridge and stage 6 → Dense 256 → ReLU → Dropout → Dense.
Tensors are NCHW, PyTorch's layout (``channels_last`` memory format is the caller's choice).
Imported only inside the peer subprocess: torch is never a dependency of ``mtl_bench``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

# Keras' BatchNormalization(momentum=0.99) keeps 0.99 of the old statistic; PyTorch's momentum is
# the weight of the new batch, hence 1 - 0.99.
BN_MOMENTUM, BN_EPS = 0.01, 1e-3


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )


class ResidualUnit(nn.Module):
    def __init__(
        self, in_ch: int, out_ch: int, *, stride: int = 1, merge: str = "concat", shortcut: int = 1
    ) -> None:
        super().__init__()
        if merge not in ("concat", "add"):
            raise ValueError(f"merge must be 'concat' or 'add', got {merge!r}")
        width = out_ch // 2 if merge == "concat" else out_ch
        self.merge = merge
        self.conv1 = ConvBNReLU(in_ch, width, 3, stride)
        self.conv2 = ConvBNReLU(width, width, 3)
        self.shortcut = ConvBNReLU(in_ch, width, shortcut, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.conv2(self.conv1(x))
        short = self.shortcut(x)
        return torch.cat([main, short], 1) if self.merge == "concat" else main + short


class TorchMTLResUNet(nn.Module):
    """``model(x) -> {"mask": (N, 1, H, W) logits, "label": (N, C) logits}``."""

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int = 2,
        widths: Sequence[int] = (64, 128, 256, 512, 1024),
        dense_units: int = 256,
        dropout: float = 0.5,
        merge: str = "concat",
        shortcut_kernel: int = 1,
        downsample: str = "maxpool",
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 5:
            raise ValueError(f"widths needs 5 entries, got {widths}")
        if downsample not in ("maxpool", "stride") or upsample not in ("transpose", "nearest"):
            raise ValueError(f"unknown downsample/upsample {downsample!r}/{upsample!r}")
        self.downsample, self.upsample = downsample, upsample
        stride = 2 if downsample == "stride" else 1
        unit = dict(merge=merge, shortcut=shortcut_kernel)
        enc, prev = [], in_channels
        for i, w in enumerate(widths):
            enc.append(ResidualUnit(prev, w, stride=1 if i == 0 else stride, **unit))
            prev = w
        self.encoder = nn.ModuleList(enc)
        ups, dec = [], []
        for w in reversed(widths[:-1]):
            if upsample == "transpose":
                ups.append(nn.ConvTranspose2d(prev, w, 2, stride=2))
                up_ch = w
            else:
                ups.append(nn.Upsample(scale_factor=2, mode="nearest"))
                up_ch = prev
            dec.append(ResidualUnit(up_ch + w, w, **unit))
            prev = w
        self.ups = nn.ModuleList(ups)
        self.decoder = nn.ModuleList(dec)
        self.seg_head = nn.Conv2d(prev, 1, 1)
        self.fc1 = nn.Linear(widths[3] + widths[4] + widths[3], dense_units)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(dense_units, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        skips, h = [], x
        for i, unit in enumerate(self.encoder):
            if i > 0 and self.downsample == "maxpool":
                h = F.max_pool2d(h, 2)
            h = unit(h)
            skips.append(h)
        decoded = []
        for up, unit, skip in zip(self.ups, self.decoder, reversed(skips[:-1]), strict=True):
            h = unit(torch.cat([up(h), skip], 1))
            decoded.append(h)
        feats = torch.cat([t.float().mean(dim=(2, 3)) for t in (skips[3], skips[4], decoded[0])], 1)
        z = self.drop(F.relu(self.fc1(feats)))
        return {"mask": self.seg_head(h), "label": self.fc2(z)}


def count_trainable(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
