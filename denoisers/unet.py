r"""A small residual U-Net for CT post-processing (the "Net" :math:`\Psi` of graphLa+Psi).

The network maps an FBP image to a cleaned image,

.. math::  \Psi(x_{\mathrm{FBP}}) = x_{\mathrm{FBP}} + U_\theta(x_{\mathrm{FBP}}),

where :math:`U_\theta` is a U-Net: ``levels`` resolution levels with ``width * 2**l`` channels at
level ``l`` (two 3x3 convolutions + ReLU per level), 2x2 max pooling on the way down, bilinear
upsampling followed by a 3x3 convolution on the way up, skip connections by concatenation and a
final 1x1 convolution. There is no batch normalisation, so training and evaluation modes compute
the same function. The network is fully convolutional: it accepts any image side divisible by
:attr:`CTUNet.stride` (``2 ** (levels - 1)``), e.g. 128 and 256.

The paper uses 4 levels with 32 -> 256 channels; the shipped model (see ``data/weights/ct_unet.json``)
is narrower so that it trains in ~20 minutes on 2 CPU cores and its weights stay below 5 MB.
"""

from __future__ import annotations

import torch
from torch import nn

from operators._validate import check_tensor

__all__ = ["CTUNet"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class CTUNet(nn.Module):
    r"""Residual U-Net :math:`x \mapsto x + U_\theta(x)` for single-channel images.

    Args:
        width: channels at the finest level (doubled at each coarser level).
        levels: number of resolution levels (>= 2); the image side must be divisible by
            ``2 ** (levels - 1)``.

    Shapes: input and output (B, 1, N, N) (any H, W divisible by :attr:`stride`), float32.

    Example:
        >>> net = CTUNet(width=16, levels=4)
        >>> x_clean = net(x_fbp)  # x_fbp: (B, 1, 256, 256)
    """

    def __init__(self, width: int = 16, levels: int = 4):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width: expected a positive int, received {width!r}")
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
            raise ValueError(f"levels: expected an int >= 2, received {levels!r}")
        self.width = width
        self.levels = levels
        ch = [width * 2**lvl for lvl in range(levels)]
        self.down = nn.ModuleList([_block(1 if lvl == 0 else ch[lvl - 1], ch[lvl]) for lvl in range(levels)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    nn.Conv2d(ch[lvl + 1], ch[lvl], 3, padding=1),
                    nn.ReLU(inplace=True),
                )
                for lvl in range(levels - 1)
            ]
        )
        self.dec = nn.ModuleList([_block(2 * ch[lvl], ch[lvl]) for lvl in range(levels - 1)])
        self.out = nn.Conv2d(ch[0], 1, 1)

    @property
    def stride(self) -> int:
        """The image side must be a multiple of this number."""
        return 2 ** (self.levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network.

        Args:
            x: FBP images (B, 1, H, W), H and W divisible by :attr:`stride`.

        Returns:
            Cleaned images, same shape as ``x``.
        """
        check_tensor("x", x, ndim=4)
        if x.shape[1] != 1:
            raise ValueError(f"x: expected 1 channel (B, 1, H, W), received shape {tuple(x.shape)}")
        if x.shape[2] % self.stride or x.shape[3] % self.stride:
            raise ValueError(
                f"x: expected height and width divisible by {self.stride}, received shape {tuple(x.shape)}"
            )
        skips = []
        h = x
        for lvl, block in enumerate(self.down):
            if lvl > 0:
                h = self.pool(h)
            h = block(h)
            skips.append(h)
        for lvl in reversed(range(self.levels - 1)):
            h = self.up[lvl](h)
            h = self.dec[lvl](torch.cat([skips[lvl], h], dim=1))
        return x + self.out(h)

    def extra_repr(self) -> str:
        return f"width={self.width}, levels={self.levels}"
