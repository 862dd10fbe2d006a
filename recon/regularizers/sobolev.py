r"""Sobolev :math:`H^s` norms on periodic grids, for data fidelity with implicit regularization.

For a function sampled on a periodic grid of :math:`n_1 \times \dots \times n_d` points
(d = 1, 2 or 3) covering a box of side lengths :math:`L_1, \dots, L_d` (``scale``),

.. math::  \|u\|_{H^s}^2 = \sum_\xi (1 + |\xi|^2)^s\, |\hat u(\xi)|^2,

with :math:`\hat u` the orthonormal DFT (``torch.fft.fftn(..., norm="ortho")``) and the angular
frequencies :math:`\xi_j = 2\pi k_j / L_j`, :math:`k_j` the integer DFT index in
:math:`[-n_j/2, n_j/2)` (``torch.fft.fftfreq(n) * n``). The frequency convention is this one
throughout: with the default :math:`L_j = 2\pi` (the torus :math:`[0, 2\pi)^d`),
:math:`\xi_j = k_j` is the integer wavenumber, so a mode of k cycles per image has weight
:math:`(1 + |k|^2)^s` whatever the grid size. A larger ``scale`` lowers every :math:`|\xi|` and
moves the norm towards L2; a smaller one stretches the weights' range.

Properties: :math:`s = 0` is the (sum-of-squares) L2 norm by Parseval; :math:`s < 0` down-weights
high frequencies (:math:`s = -1` is close to the quadratic Wasserstein metric), :math:`s > 0`
emphasises them. The operator :math:`W_s u = \mathcal F^{-1}((1 + |\xi|^2)^s \hat u)`, i.e.
:math:`(I - \Delta)^s` with :math:`\Delta` the Laplacian of the box, is symmetric positive
definite with inverse :math:`W_{-s}`, and :math:`\|u\|_{H^s}^2 = \langle u, W_s u\rangle`.
:math:`W_t` applied to an L2 gradient gives the gradient in the :math:`H^{-t}` metric
(a preconditioner). Real input gives real output (the weights are even in :math:`\xi`).

Shapes: the grid is the last ``ndim`` axes of a tensor ``(B, *lead, *grid)``; norms are per batch
element (axis 0), summed over every other axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from operators._validate import check_tensor

__all__ = ["SobolevNorm"]


class SobolevNorm:
    r"""The :math:`H^s` norm, its operator :math:`W_s = (I - \Delta)^s` and the :math:`H^s` misfit.

    Args:
        s: the Sobolev exponent (any finite real).
        ndim: number of trailing grid axes d (1, 2 or 3).
        scale: side length(s) :math:`L` of the periodic box, one number or one per grid axis
            (> 0); default :math:`2\pi` (integer wavenumbers).

    Example:
        >>> hs = SobolevNorm(s=-1.0, ndim=2)
        >>> hs.norm(torch.randn(4, 1, 64, 64))            # (4,)
        >>> value, grad = hs.misfit(physics.A, physics.A_adjoint, u, y)
    """

    def __init__(self, s: float, ndim: int = 2, scale: float | Sequence[float] = 2.0 * math.pi):
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
            raise ValueError(f"s: expected a finite real number, received {s!r}")
        if isinstance(ndim, bool) or not isinstance(ndim, int) or ndim not in (1, 2, 3):
            raise ValueError(f"ndim: expected 1, 2 or 3 grid axes, received {ndim!r}")
        scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale,) * ndim
        if len(scales) != ndim or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in scales
        ):
            raise ValueError(f"scale: expected one or {ndim} finite lengths > 0, received {scale!r}")
        self.s, self.ndim, self.scale = float(s), ndim, tuple(float(v) for v in scales)
        self._cache: dict[tuple, torch.Tensor] = {}

    def weight(self, grid: Sequence[int], power: float = 1.0, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        r""":math:`(1 + |\xi|^2)^{s \cdot \mathrm{power}}` on a grid of shape ``grid``, in DFT (unshifted) order."""
        key = (tuple(grid), power, dtype, str(device))
        if key not in self._cache:
            axes = [
                (2.0 * math.pi / length) * torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
                for n, length in zip(grid, self.scale, strict=True)
            ]
            xi2 = sum(torch.meshgrid(*[a**2 for a in axes], indexing="ij"))
            self._cache[key] = ((1.0 + xi2) ** (self.s * power)).to(dtype=dtype, device=device)
        return self._cache[key]

    def _grid(self, name: str, u: torch.Tensor) -> tuple[int, ...]:
        check_tensor(name, u, real=False)
        if u.ndim < self.ndim + 1:
            raise ValueError(
                f"{name}: expected a batch of {self.ndim}-D grids (B, ..., {', '.join('n' + str(i + 1) for i in range(self.ndim))}), "
                f"received shape {tuple(u.shape)}"
            )
        return tuple(u.shape[-self.ndim :])

    def apply(self, u: torch.Tensor, power: float = 1.0) -> torch.Tensor:
        r""":math:`W_s^{\mathrm{power}} u = \mathcal F^{-1}((1 + |\xi|^2)^{s \cdot \mathrm{power}} \hat u)`; ``power=-1`` inverts."""
        grid = self._grid("u", u)
        dims = tuple(range(-self.ndim, 0))
        real_dtype = u.real.dtype if u.is_complex() else u.dtype
        w = self.weight(grid, power, real_dtype, u.device)
        out = torch.fft.ifftn(w * torch.fft.fftn(u, dim=dims, norm="ortho"), dim=dims, norm="ortho")
        return out if u.is_complex() else out.real

    def norm(self, u: torch.Tensor) -> torch.Tensor:
        r""":math:`\|u\|_{H^s}` per batch element, shape (B,), in the real dtype of ``u``."""
        grid = self._grid("u", u)
        dims = tuple(range(-self.ndim, 0))
        real_dtype = u.real.dtype if u.is_complex() else u.dtype
        spectrum = torch.fft.fftn(u, dim=dims, norm="ortho").abs() ** 2
        return (self.weight(grid, 1.0, real_dtype, u.device) * spectrum).reshape(u.shape[0], -1).sum(dim=1).sqrt()

    def misfit(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        adjoint: Callable[[torch.Tensor], torch.Tensor],
        u: torch.Tensor,
        f: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Value and gradient of :math:`\tfrac12 \|K u - f\|_{H^s}^2` (summed over the batch).

        Args:
            forward: :math:`K`, whose output is a grid (its last ``ndim`` axes), e.g. ``physics.A``.
            adjoint: :math:`K^*`, e.g. ``physics.A_adjoint``.
            u: the current estimate.
            f: the data, of the shape of ``forward(u)``.

        Returns:
            ``(value, gradient)``: a 0-d tensor and :math:`K^* W_s (K u - f)` of the shape of ``u``.
        """
        residual = forward(u) - f
        weighted = self.apply(residual)
        value = 0.5 * torch.sum((residual.conj() * weighted).real)
        return value, adjoint(weighted)

    def __repr__(self) -> str:
        return f"SobolevNorm(s={self.s:g}, ndim={self.ndim}, scale={self.scale})"
