"""Baselines beside the proposed model; importing this package registers them all.

Segmentation (family "segmentation", output ``{"mask"}``): smp-faithful ``unet_<enc>``,
``unetplusplus_<enc>``, ``fpn_<enc>``, ``deeplabv3plus_<resnet>``; Ronneberger's ``unet``; ``daf``.
"""

from baselines import classic_unet, daf, deeplabv3plus, fpn, unet, unetplusplus  # noqa: F401
