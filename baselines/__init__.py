"""Baselines beside the proposed model; importing this package registers them all.

Segmentation (family "segmentation", output ``{"mask"}``): smp-faithful ``unet_<enc>``,
``unetplusplus_<enc>``, ``fpn_<enc>``, ``deeplabv3plus_<resnet>``; Ronneberger's ``unet``; ``daf``.
Classification (family "classification", output ``{"label"}``): ``baselines.classifiers``.
"""

from baselines import (  # noqa: F401
    classic_unet,
    classifiers,
    daf,
    deeplabv3plus,
    fpn,
    unet,
    unetplusplus,
)
