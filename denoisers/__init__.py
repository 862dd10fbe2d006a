"""Denoisers: networks and classical proxes, with offline weight loading.

``load(name)`` returns a shipped network (weights from the package data ``denoisers.weights``, kept
in the repository's ``data/weights``, checked by sha256); ``python -m recon.training NAME``
reproduces the weights. Shipped names: ``"ct_unet"`` (2D CT post-processing U-Net),
``"mimo_unet3d"`` (3D U-Net magnitude denoiser for MIMO imaging), ``"ct_dncnn"``
(:class:`denoisers.dncnn.DnCNN`, blind Gaussian denoiser of dynamic-object frames, the RED denoiser
of RED-PSM), ``"hvae"`` (:class:`denoisers.hvae.HVAE`, the hierarchical VAE prior of PnP-HVAE) and
``"dncnn_natural"`` (a DnCNN blind denoiser of grayscale natural-like images, the PnP-ADMM / RED
baselines' denoiser in the PnP-HVAE demo).
"""

from denoisers.zoo import available, load

__all__ = ["load", "available"]
