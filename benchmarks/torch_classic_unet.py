"""The PyTorch twin of ``baselines.classic_unet.ClassicUNet`` (``unet``), for the throughput peer.

Same network: five levels of (3×3 conv [→ BN] → ReLU) × 2 at ``base_width`` × (1, 2, 4, 8, 16),
2×2 max-pool down, 2×2 stride-2 transposed conv up, skip concatenation (skip first, as the Flax
model), a 1×1 head to one logit; optional bottleneck dropout. This is the "plain UNet-64" of the
brief's reference figures. Imported only inside the peer subprocess.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _double_conv(in_ch: int, out_ch: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c_in in (in_ch, out_ch):
        layers.append(nn.Conv2d(c_in, out_ch, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class TorchClassicUNet(nn.Module):
    """``model(x) -> {"mask": (N, 1, H, W) logits}``."""

    def __init__(
        self,
        *,
        in_channels: int = 1,
        base_width: int = 64,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        widths = [base_width * 2**i for i in range(5)]
        self.down = nn.ModuleList()
        prev = in_channels
        for w in widths:
            self.down.append(_double_conv(prev, w, batch_norm))
            prev = w
        self.ups, self.up_convs = nn.ModuleList(), nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.ups.append(nn.ConvTranspose2d(prev, w, 2, stride=2))
            self.up_convs.append(_double_conv(2 * w, w, batch_norm))
            prev = w
        self.drop = nn.Dropout(dropout)
        self.head = nn.Conv2d(prev, 1, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        skips = []
        for i, block in enumerate(self.down):
            x = block(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        x = self.drop(x)
        for up, block, skip in zip(self.ups, self.up_convs, reversed(skips[:-1]), strict=True):
            x = block(torch.cat([skip, up(x)], 1))
        return {"mask": self.head(x)}
