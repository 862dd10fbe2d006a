"""Isotropic total variation: the gradient operator, its value, its dual-ball projection and an inexact prox.

With forward differences D (Neumann boundary, deepinv's ``TVDenoiser.nabla``), for an image x
of shape (B, C, H, W) [or (B, C, D, H, W)], ``Dx`` has shape (B, C, H, W, 2) [or (..., 3)] and

    TV(x) = sum_pixels || (D x)_pixel ||_2 .

The convex conjugate of ``alpha * ||.||_{2,1}`` is the indicator of the set
{p : ||p_pixel||_2 <= alpha for every pixel}; its prox is the pixel-wise projection
:func:`project_l2_ball_pixelwise`, the building block of primal-dual TV solvers.
:func:`tv_denoiser` is the prox itself, by a few warm-started primal-dual steps (the TV
z-step of ADMM-type methods: magnitude PnP, PSM-TV).
"""

from __future__ import annotations

from collections.abc import Callable

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


def tv_denoiser(n_iter: int = 10) -> Callable[[torch.Tensor, float], torch.Tensor]:
    r"""Prox of the isotropic 3D (or 2D) TV, :math:`\arg\min_z \tfrac12\|z - m\|^2 + \lambda\,TV(z)`.

    A few primal-dual (Chambolle-Pock) steps of deepinv's ``TVDenoiser``, which works on
    ``(B, C, Nx, Ny, Nz)`` volumes with forward differences and warm-starts from its previous
    call; an inexact prox is enough inside ADMM and keeps each outer iteration cheap.

    Args:
        n_iter: primal-dual iterations per call (>= 1).

    Returns:
        ``denoise(m, weight) -> tensor`` with ``weight`` = :math:`\lambda` (units of ``m``).
    """
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter: expected an integer >= 1, received {n_iter!r}")
    tv = TVDenoiser(n_it_max=n_iter, crit=0.0)

    def denoise(m: torch.Tensor, weight: float) -> torch.Tensor:
        return tv(m, ths=weight)

    return denoise
