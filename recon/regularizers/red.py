r"""Regularization by denoising (RED; Romano, Elad & Milanfar, SIAM J. Imaging Sci. 2017).

For a denoiser :math:`D` the RED penalty is

.. math::  \rho(f) = \tfrac12 f^T (f - D(f)).

When :math:`D` is locally homogeneous (:math:`D(c f) = c D(f)` for c near 1) and its Jacobian is
symmetric, :math:`\nabla \rho(f) = f - D(f)`; RED uses that residual as the gradient whatever
the denoiser is. In an ADMM splitting with :math:`\lambda \rho(f) + \tfrac{\beta}{2}\|f - v\|^2`,
setting the gradient to zero, :math:`\lambda (f - D(f)) + \beta (f - v) = 0`, and freezing
:math:`D(f)` at the current iterate gives RED's fixed-point step (:func:`red_fixed_point_step`)

.. math::  f \leftarrow \frac{\lambda D(f) + \beta v}{\lambda + \beta}.

Here ``denoiser`` is the map :math:`f \mapsto D(f)` at the strength the calling method fixed:
for a prior of the package's protocol (:mod:`recon.regularizers.prior`: a name, a
``deepinv.optim.Prior`` or a callable :math:`D(x, \sigma)`) the method resolves it with
:func:`~recon.regularizers.prior.as_denoiser` and passes ``lambda f: D(f, denoiser_sigma)`` (the
one strength rule of that module, e.g. :func:`recon.methods.pnp_baselines.red`); the implicit
prior whose gradient is :math:`x - D(x, \sigma)` is :class:`recon.regularizers.prior.DenoiserPrior`.
Denoisers act on batches of single-channel images (B, 1, H, W); :func:`framewise` applies one to
the frames of a (P, H, W) stack in chunks, without gradients.

Example:
    >>> denoise = lambda f: as_denoiser(as_prior("dncnn_natural"))(f, 0.03)
    >>> f = red_fixed_point_step(f, v, denoise, lam=0.3, beta=0.1)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["framewise", "red_gradient", "red_penalty", "red_fixed_point_step"]

#: ``f -> D(f)``: a denoiser at a fixed strength, on (B, 1, H, W) images
Denoiser = Callable[[torch.Tensor], torch.Tensor]


def red_penalty(f: torch.Tensor, denoiser: Denoiser) -> torch.Tensor:
    r""":math:`\rho(f) = \frac12 \langle f, f - D(f)\rangle` summed over all entries (0-d tensor)."""
    return 0.5 * torch.sum(f * (f - denoiser(f)))


def red_gradient(f: torch.Tensor, denoiser: Denoiser) -> torch.Tensor:
    r"""RED's gradient :math:`f - D(f)` (exact for a locally homogeneous D with a symmetric Jacobian)."""
    return f - denoiser(f)


def red_fixed_point_step(f: torch.Tensor, v: torch.Tensor, denoiser: Denoiser, lam: float, beta: float) -> torch.Tensor:
    r"""One RED fixed-point step :math:`(\lambda D(f) + \beta v) / (\lambda + \beta)` for the proximal target ``v``."""
    return (lam * denoiser(f) + beta * v) / (lam + beta)


def framewise(denoiser: Denoiser, chunk: int = 32) -> Denoiser:
    """A (P, H, W) -> (P, H, W) map that denoises each frame with ``denoiser`` on (chunk, 1, H, W) batches."""

    def apply(frames: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            parts = [denoiser(block[:, None])[:, 0] for block in torch.split(frames, chunk)]
        return torch.cat(parts)

    return apply
