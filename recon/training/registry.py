"""The registry of training recipes: one :class:`~recon.training.loop.TrainSpec` per shipped model.

Example:
    >>> spec = REGISTRY["ct_dncnn"]
    >>> net = spec.build(width=spec.defaults["width"], depth=spec.defaults["depth"])  # untrained
"""

from __future__ import annotations

from recon.training import ct_dncnn, ct_unet, dncnn_natural, hvae, mimo_unet3d
from recon.training.loop import TrainSpec

__all__ = ["REGISTRY"]

#: Recipe of each shipped model, by the name ``denoisers.zoo.load`` takes.
REGISTRY: dict[str, TrainSpec] = {
    "ct_unet": ct_unet.SPEC,
    "mimo_unet3d": mimo_unet3d.SPEC,
    "ct_dncnn": ct_dncnn.SPEC,
    "dncnn_natural": dncnn_natural.SPEC,
    "hvae": hvae.SPEC,
}
