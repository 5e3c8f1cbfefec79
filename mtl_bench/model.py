"""The proposed multi-task Residual-U-Net (Chowdary et al., Ultrasonic Imaging 2022).

Nine levels built from the residual unit of ``layers.ResidualUnit``::

    stage 1  encoder  H      widths[0]        stage 6  decoder  H/8   widths[3]
    stage 2  encoder  H/2    widths[1]        stage 7  decoder  H/4   widths[2]
    stage 3  encoder  H/4    widths[2]        stage 8  decoder  H/2   widths[1]
    stage 4  encoder  H/8    widths[3]        stage 9  decoder  H     widths[0]
    stage 5  bridge   H/16   widths[4]        1×1 conv → mask logit

Classification branch (paper Fig. 2): global average pooling of stage 4 (last encoder), stage 5
(bridge) and stage 6 (first decoder) → concatenate → Dense 256 ReLU → Dropout 0.5 → Dense
``num_classes`` logits (softmax lives in the loss and metrics).

Choices the paper leaves open (each a constructor argument; defaults in brackets):
- downsampling between encoder stages: 2×2 max-pool as in U-Net [``downsample="maxpool"``], or a
  stride-2 first convolution as in ResUNet (``"stride"``);
- upsampling: 2×2 transposed conv, U-Net's up-conv [``upsample="transpose"``], or ``"nearest"``;
  the transposed conv computed as one matrix product per input pixel [``up_conv="matmul"``] or
  as the input-dilated convolution it lowers to (``"dilated_conv"``: same values, but its weight
  gradient is a slow cuDNN kernel on an H100 — ``layers.UpConv2x2``);
- residual merge: concatenation of two half-width paths [``merge="concat"``], or ``"add"``;
- shortcut kernel: 1×1 [``shortcut_kernel=1``];
- BatchNorm momentum 0.99 / epsilon 1e-3, Keras' defaults, since the authors used TensorFlow.
Input height and width must be divisible by 16 (four halvings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mtl_bench.fold_conv import conv_general_dilated
from mtl_bench.layers import (
    Merge,
    ResidualUnit,
    UpConvImpl,
    Upsample,
    global_avg_pool,
    max_pool2,
)
from mtl_bench.registry import register_model

_DTYPES = {
    "float32": jnp.float32,
    "fp32": jnp.float32,
    "bfloat16": jnp.bfloat16,
    "bf16": jnp.bfloat16,
}


def resolve_dtype(dtype: str | jnp.dtype) -> jnp.dtype:
    """'fp32'/'bf16' (or a jnp dtype) → jnp dtype; an unknown name is a one-line error."""
    if isinstance(dtype, str):
        try:
            return _DTYPES[dtype]
        except KeyError:
            raise ValueError(f"unknown dtype {dtype!r}: use one of {', '.join(_DTYPES)}") from None
    return dtype


def _positive(value: object) -> bool:
    """A positive integer (numpy's too; not a bool, a float or a string)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0


class MTLResUNet(nnx.Module):
    """Multi-task Residual-U-Net: ``model(x, train, rng) -> {"mask", "label"}``."""

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int = 2,
        widths: Sequence[int] = (64, 128, 256, 512, 1024),
        dense_units: int = 256,
        dropout: float = 0.5,
        merge: Merge = "concat",
        shortcut_kernel: int = 1,
        downsample: Literal["maxpool", "stride"] = "maxpool",
        upsample: Literal["transpose", "nearest"] = "transpose",
        up_conv: UpConvImpl = "matmul",
        dtype: str | jnp.dtype = "float32",
        rngs: nnx.Rngs,
    ) -> None:
        if len(widths) != 5 or not all(_positive(w) for w in widths):
            raise ValueError(
                f"widths needs 5 positive integers (4 encoder stages + bridge), got {widths!r}"
            )
        widths = tuple(int(w) for w in widths)
        for name, value, low in (("in_channels", in_channels, 1), ("num_classes", num_classes, 2)):
            if not _positive(value) or value < low:  # one class: its softmax is always 1
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.in_channels = in_channels
        if downsample not in ("maxpool", "stride"):
            raise ValueError(f"downsample must be 'maxpool' or 'stride', got {downsample!r}")
        dt = resolve_dtype(dtype)
        self.dtype = dt
        self.downsample = downsample
        unit = dict(merge=merge, shortcut_kernel=shortcut_kernel, dtype=dt, rngs=rngs)
        stride = 2 if downsample == "stride" else 1

        enc, prev = [], in_channels
        for i, w in enumerate(widths):  # stages 1-4 and the bridge (stage 5)
            enc.append(ResidualUnit(prev, w, stride=1 if i == 0 else stride, **unit))
            prev = w
        self.encoder = nnx.List(enc)

        ups, dec = [], []
        for w in reversed(widths[:-1]):  # stages 6-9
            ups.append(Upsample(prev, w, mode=upsample, up_conv=up_conv, dtype=dt, rngs=rngs))
            up_ch = w if upsample == "transpose" else prev
            dec.append(ResidualUnit(up_ch + w, w, **unit))
            prev = w
        self.ups = nnx.List(ups)
        self.decoder = nnx.List(dec)
        self.seg_head = nnx.Conv(
            prev, 1, (1, 1), dtype=dt, conv_general_dilated=conv_general_dilated, rngs=rngs
        )

        gap_ch = widths[3] + widths[4] + widths[3]
        self.fc1 = nnx.Linear(gap_ch, dense_units, rngs=rngs)
        self.drop = nnx.Dropout(dropout)
        self.fc2 = nnx.Linear(dense_units, num_classes, rngs=rngs)

    def __call__(
        self, x: jax.Array, train: bool = False, rng: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        shape = getattr(x, "shape", None)  # a list or a scalar: said as the baselines say it
        if shape is None or len(shape) != 4 or shape[-1] != self.in_channels:
            raise ValueError(
                f"mtl_resunet expects NHWC input with {self.in_channels} channel(s), got "
                f"{shape if shape is not None else type(x).__name__}"
            )
        if x.shape[1] % 16 or x.shape[2] % 16:
            raise ValueError(f"input must be NHWC with H and W divisible by 16, got {x.shape}")
        h = x.astype(self.dtype)
        skips = []
        for i, unit in enumerate(self.encoder):
            if i > 0 and self.downsample == "maxpool":
                h = max_pool2(h)
            h = unit(h, train)
            skips.append(h)
        stage4, bridge = skips[3], skips[4]
        decoded = []
        for up, unit, skip in zip(self.ups, self.decoder, reversed(skips[:-1]), strict=True):
            h = unit(jnp.concatenate([up(h), skip], axis=-1), train)
            decoded.append(h)
        mask = self.seg_head(h).astype(jnp.float32)

        feats = jnp.concatenate(
            [global_avg_pool(stage4), global_avg_pool(bridge), global_avg_pool(decoded[0])], -1
        )
        z = jax.nn.relu(self.fc1(feats))
        z = self.drop(z, deterministic=not train or rng is None, rngs=rng)
        return {"mask": mask, "label": self.fc2(z).astype(jnp.float32)}


@register_model("mtl_resunet", tasks=("mask", "label"), family="proposed")
def mtl_resunet(
    *,
    rngs: nnx.Rngs,
    in_channels: int = 1,
    num_classes: int = 2,
    image_size: int | None = None,
    widths: Sequence[int] = (64, 128, 256, 512, 1024),
    dense_units: int = 256,
    dropout: float = 0.5,
    merge: Merge = "concat",
    shortcut_kernel: int = 1,
    downsample: Literal["maxpool", "stride"] = "maxpool",
    upsample: Literal["transpose", "nearest"] = "transpose",
    up_conv: UpConvImpl = "matmul",
    dtype: str = "float32",
) -> MTLResUNet:
    """The paper's model; ``image_size`` is only checked (fully convolutional + GAP)."""
    if image_size is not None and (not _positive(image_size) or image_size % 16):
        raise ValueError(f"mtl_resunet needs image_size divisible by 16, got {image_size!r}")
    return MTLResUNet(
        in_channels=in_channels,
        num_classes=num_classes,
        widths=widths,
        dense_units=dense_units,
        dropout=dropout,
        merge=merge,
        shortcut_kernel=shortcut_kernel,
        downsample=downsample,
        upsample=upsample,
        up_conv=up_conv,
        dtype=dtype,
        rngs=rngs,
    )
