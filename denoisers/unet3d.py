r"""A 3D U-Net Gaussian denoiser for real non-negative volumes (magnitude PnP prior for MIMO imaging).

The network is the deep prior of magnitude plug-and-play (Oral & Oktem, IEEE TCI 2024): it is
applied to the magnitude :math:`|x|` of a complex 3D reflectivity while the phase is kept. Given a
noisy magnitude :math:`m` with Gaussian noise of standard deviation :math:`\sigma` it returns

.. math::  D(m, \sigma) = m - R_\theta([m, \sigma \mathbf{1}]),

where :math:`R_\theta` (residual learning: it predicts the noise) is a U-Net whose input has two
channels, the magnitude and a constant noise-level map filled with :math:`\sigma`. Each of the
``len(widths)`` resolution levels has two Conv3d 3x3x3 + BatchNorm3d + ReLU blocks; 2x2x2 max
pooling goes down, a 2x2x2 stride-2 transposed convolution goes up, skip connections concatenate,
and a final 1x1x1 convolution outputs the noise estimate.

Any volume size is accepted: the input is replicate-padded at the far end of each spatial axis to a
multiple of :attr:`UNet3D.stride` (``2 ** (len(widths) - 1)``) and the output is cropped back.

The paper uses 3 levels with 32/64/128 channels; the default here is 16/32/64 so that the shipped
model (``data/weights/mimo_unet3d.json``) trains in about 20-25 minutes on one CPU thread and its
weights stay far below the 5 MB limit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from operators._validate import check_tensor

__all__ = ["UNet3D"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in (c_in, c_out):
        layers += [nn.Conv3d(c, c_out, 3, padding=1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class UNet3D(nn.Module):
    r"""Residual 3D U-Net denoiser :math:`(m, \sigma) \mapsto m - R_\theta([m, \sigma])`.

    Args:
        widths: channels per resolution level, finest first (at least 2 levels). Default
            (16, 32, 64): half the paper's 32/64/128, to fit the 2-core CPU training budget and
            the 5 MB weight limit.

    Shapes: ``x`` (B, 1, Nx, Ny, Nz) real, any sizes; output the same shape and dtype. The
    computation runs in the parameters' dtype (float32 unless the module was cast).

    Example:
        >>> net = UNet3D()
        >>> m_clean = net(m_noisy, sigma=0.1)  # m_noisy: (B, 1, 25, 25, 49)
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        ok = isinstance(widths, Sequence) and len(widths) >= 2
        ok = ok and all(not isinstance(w, bool) and isinstance(w, int) and w >= 1 for w in widths)
        if not ok:
            raise ValueError(f"widths: expected a sequence of >= 2 positive ints, received {widths!r}")
        self.widths = tuple(widths)
        ch = self.widths
        self.enc = nn.ModuleList([_block(2 if lvl == 0 else ch[lvl - 1], ch[lvl]) for lvl in range(len(ch))])
        self.pool = nn.MaxPool3d(2)
        self.up = nn.ModuleList([nn.ConvTranspose3d(ch[lvl + 1], ch[lvl], 2, stride=2) for lvl in range(len(ch) - 1)])
        self.dec = nn.ModuleList([_block(2 * ch[lvl], ch[lvl]) for lvl in range(len(ch) - 1)])
        self.out = nn.Conv3d(ch[0], 1, 1)

    @property
    def stride(self) -> int:
        """Volumes are padded internally to a multiple of this number along each spatial axis."""
        return 2 ** (len(self.widths) - 1)

    def _sigma_map(self, sigma: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Validate ``sigma`` and return it as a (B, 1, 1, 1, 1) tensor of ``x``'s dtype and device."""
        batch = x.shape[0]
        if isinstance(sigma, torch.Tensor):
            check_tensor("sigma", sigma, ndim=1)
            if sigma.shape[0] != batch:
                raise ValueError(f"sigma: expected shape ({batch},) to match x, received {tuple(sigma.shape)}")
            s = sigma.to(device=x.device, dtype=x.dtype)
        elif isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
            s = torch.full((batch,), float(sigma), device=x.device, dtype=x.dtype)
        else:
            raise TypeError(f"sigma: expected a float or a (B,) tensor, received {type(sigma).__name__}")
        if bool((s < 0).any()):
            raise ValueError(f"sigma: expected non-negative noise levels, received min {float(s.min())!r}")
        return s.reshape(batch, 1, 1, 1, 1)

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """Denoise magnitudes.

        Args:
            x: noisy magnitudes (B, 1, Nx, Ny, Nz), float32 or float64, any sizes.
            sigma: noise standard deviation (same units as ``x``, trained on [0, 0.2] for
                magnitudes in [0, 1]): a float for the whole batch or a (B,) tensor.

        Returns:
            Denoised magnitudes, same shape and dtype as ``x``.
        """
        check_tensor("x", x, ndim=5)
        if x.shape[1] != 1:
            raise ValueError(f"x: expected 1 channel (B, 1, Nx, Ny, Nz), received shape {tuple(x.shape)}")
        spatial = x.shape[2:]
        h = x.to(self.out.weight.dtype)
        s = self._sigma_map(sigma, h)
        pad: list[int] = []
        for n in reversed(spatial):  # F.pad lists the last axis first
            pad += [0, -n % self.stride]
        h = F.pad(h, pad, mode="replicate") if any(pad) else h
        h = torch.cat([h, s.expand_as(h)], dim=1)
        skips = []
        for lvl, block in enumerate(self.enc):
            if lvl > 0:
                h = self.pool(h)
            h = block(h)
            skips.append(h)
        for lvl in reversed(range(len(self.widths) - 1)):
            h = self.dec[lvl](torch.cat([skips[lvl], self.up[lvl](h)], dim=1))
        noise = self.out(h)[..., : spatial[0], : spatial[1], : spatial[2]]
        return x - noise.to(x.dtype)

    def extra_repr(self) -> str:
        return f"widths={self.widths}"
