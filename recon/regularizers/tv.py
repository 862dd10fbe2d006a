"""Isotropic total variation: the gradient operator, its value and its dual-ball projection.

With forward differences D (Neumann boundary, deepinv's ``TVDenoiser.nabla``), for an image x
of shape (B, C, H, W) [or (B, C, D, H, W)], ``Dx`` has shape (B, C, H, W, 2) [or (..., 3)] and

    TV(x) = sum_pixels || (D x)_pixel ||_2 .

The convex conjugate of ``alpha * ||.||_{2,1}`` is the indicator of the set
{p : ||p_pixel||_2 <= alpha for every pixel}; its prox is the pixel-wise projection
:func:`project_l2_ball_pixelwise`, the building block of primal-dual TV solvers.
"""

from __future__ import annotations

import torch
from deepinv.models import TVDenoiser

#: forward differences, (B, C, *spatial) -> (B, C, *spatial, ndim)
gradient = TVDenoiser.nabla
#: adjoint of :data:`gradient` (minus the divergence), (B, C, *spatial, ndim) -> (B, C, *spatial)
gradient_adjoint = TVDenoiser.nabla_adjoint

#: squared operator norm bound ||D||^2 <= 4 * ndim for forward differences
GRADIENT_SQNORM_2D = 8.0


def l21_norm(g: torch.Tensor) -> torch.Tensor:
    """sum over pixels of ||g[..., :]||_2 for g of shape (B, C, *spatial, ndim); shape (B,)."""
    return g.pow(2).sum(dim=-1).sqrt().reshape(g.shape[0], -1).sum(dim=1)


def tv_value(x: torch.Tensor) -> torch.Tensor:
    """Isotropic TV of each batch element, sum over channels and pixels; shape (B,)."""
    return l21_norm(gradient(x))


def project_l2_ball_pixelwise(p: torch.Tensor, radius: float | torch.Tensor) -> torch.Tensor:
    """Project each pixel's gradient vector p[..., :] onto the l2 ball of ``radius``.

    Args:
        p: dual variable of shape (B, C, *spatial, ndim).
        radius: ball radius (the TV weight alpha), a float or a tensor broadcastable to
            (B, C, *spatial, 1).

    Returns:
        Tensor of the shape of ``p``.
    """
    norm = p.pow(2).sum(dim=-1, keepdim=True).sqrt()
    return p / torch.clamp(norm / radius, min=1.0)
