r"""Regularization on the magnitude of a complex image: the magnitude proximal map.

For a penalty that only sees magnitudes, :math:`\Phi(x) = R(|x|)` on complex :math:`x`, the
proximal map separates into magnitude and phase (Oral & Oktem, IEEE TCI 2024, Theorem 1):

.. math::
    \mathrm{prox}_{\Phi}(u) = \mathrm{prox}_{R + \iota_{\ge 0}}(|u|)\; e^{j\angle u},

i.e. the real prox of :math:`R` restricted to non-negative vectors, applied to the magnitude
:math:`|u|`, with the phase of :math:`u` kept (any phase where :math:`u = 0`). The reason: for a
fixed magnitude :math:`m`, :math:`\|m e^{j\phi} - u\|^2` is smallest with the phase of :math:`u`,
and then equals :math:`\|m - |u|\|^2`. :func:`magnitude_prox` turns any real non-negative prox or
denoiser into this map: with :func:`recon.regularizers.prior.as_denoiser` of any prior of the one
protocol (:mod:`recon.regularizers.prior`), e.g. the two classical magnitude priors of the paper,
``"l1"`` (:class:`~recon.regularizers.prior.L1Prior`, the soft threshold) and 3D TV
(:class:`~recon.regularizers.prior.TVPrior`), or a trained denoiser ``D(m, sigma)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["magnitude_prox"]


def magnitude_prox(real_prox: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    r"""Lift a real prox / denoiser of magnitudes to complex inputs: :math:`D(|u|)\,e^{j\angle u}`.

    Args:
        real_prox: ``real_prox(m, *args, **kwargs) -> m'`` on real magnitudes ``m >= 0`` of any
            shape, e.g. ``as_denoiser(as_prior("l1"))`` (``real_prox(m, s)``, the soft threshold
            at :math:`s^2`, by the strength rule of :mod:`recon.regularizers.prior`) or a trained
            denoiser ``D(m, sigma)``. Its output is clamped at 0 (the prox of
            :math:`R + \iota_{\ge 0}` when ``real_prox`` is the prox of a separable :math:`R`; for a
            denoiser, a magnitude cannot be negative).

    Returns:
        ``prox(u, *args, **kwargs) -> complex tensor`` of ``u``'s shape and dtype; the extra
        arguments (a threshold, a noise level) are passed on to ``real_prox``.

    Example:
        >>> prox = magnitude_prox(as_denoiser(as_prior("l1")))
        >>> prox(torch.tensor([3 + 4j, 0.1j]), 1.0)      # threshold 1: |u| = 5 -> 4, same phase; 0.1 -> 0
        tensor([2.4000+3.2000j, 0.0000+0.0000j])
    """
    if not callable(real_prox):
        raise TypeError(f"real_prox: expected a callable, received {type(real_prox).__name__}")

    def prox(u: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if not u.is_complex():
            raise TypeError(f"u: expected a complex tensor, received {u.dtype}")
        mag = torch.clamp(real_prox(u.abs(), *args, **kwargs), min=0.0).to(u.real.dtype)
        return torch.polar(mag, u.angle())

    return prox

