r"""A small residual CNN for multi-channel parameter maps (the CNN block of NLCG-Net).

.. math::  z = v + W_{\mathrm{out}} * \mathrm{ResBlocks}(W_{\mathrm{in}} * v),

with ``n_blocks`` residual blocks (3x3 conv, ReLU, 3x3 conv, skip) of ``width`` channels. The last
convolution starts at zero, so an untrained network is the identity: zero-shot training (NLCG-Net
trains from scratch on one scan) then starts exactly at its warm start. No normalisation layers,
so training and evaluation modes compute the same function; any image size works.
"""

from __future__ import annotations

import torch
from torch import nn

from operators._validate import check_tensor

__all__ = ["ResNet2D"]


class _ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.body(h)


class ResNet2D(nn.Module):
    """Residual CNN ``v -> v + f(v)`` on ``(B, channels, H, W)`` real images, identity at initialisation.

    Args:
        channels: input and output channels (3 for (Re M0, Im M0, R) maps).
        width: hidden channels.
        n_blocks: residual blocks.

    Example:
        >>> net = ResNet2D(3, width=32, n_blocks=4)
        >>> bool(torch.equal(net(torch.ones(1, 3, 8, 8)), torch.ones(1, 3, 8, 8)))
        True
    """

    def __init__(self, channels: int = 3, width: int = 32, n_blocks: int = 4):
        super().__init__()
        for name, val in (("channels", channels), ("width", width), ("n_blocks", n_blocks)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"{name}: expected an integer >= 1, received {val!r}")
        self.channels = channels
        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.blocks = nn.Sequential(*[_ResBlock(width) for _ in range(n_blocks)])
        self.tail = nn.Conv2d(width, channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """``v + f(v)``, shape and dtype of ``v`` (B, channels, H, W)."""
        check_tensor("v", v, ndim=4)
        if v.shape[1] != self.channels:
            raise ValueError(f"v: expected {self.channels} channels, received shape {tuple(v.shape)}")
        return v + self.tail(torch.relu(self.blocks(self.head(v))))
