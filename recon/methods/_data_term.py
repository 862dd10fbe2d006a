r"""The Gaussian data term of the plug-and-play methods: its noise level, its start and its proximal step.

The plug-and-play methods (:mod:`recon.methods.pnp_hvae`, :mod:`recon.methods.pnp_baselines`)
weigh the data by the Gaussian log-likelihood :math:`\frac{1}{2\sigma^2}\|Ax - y\|^2`, with
:math:`\sigma` the noise standard deviation of one entry of ``y`` (:func:`noise_std`). Their
x-steps all solve

.. math::
    x = \arg\min_x \tfrac{1}{2\sigma^2}\|Ax - y\|^2 + \tfrac{\rho}{2}\|x - v\|^2
    \iff (A^T A + w I)\, x = A^T y + w\, v, \qquad w = \sigma^2\rho,

by :func:`data_x_step`, exactly where the operator allows (:func:`x_step_kind`):

* ``"fft"``: deepinv ``BlurFFT`` (a periodic convolution, :math:`A = F^{-1}\operatorname{diag}
  (\hat K) F`), diagonal in Fourier: :math:`\hat x = (\overline{\hat K}\hat y + w\hat v) /
  (|\hat K|^2 + w)`, :math:`\hat K` from :func:`convolution_symbol`;
* ``"mask"``: deepinv ``Inpainting`` (:math:`A = \operatorname{diag}(m)`), pixel by pixel:
  :math:`x = (A^T y + w v) / (m^2 + w)`;
* ``"cg"``: any other ``LinearPhysics``, by warm-started conjugate gradients
  (:func:`recon.solvers.quadratic_x_step`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from deepinv.physics import BlurFFT, Inpainting, LinearPhysics

from operators._validate import check_int, check_positive, check_tensor
from recon.noise import noise_norm_estimate
from recon.solvers import quadratic_x_step

__all__ = ["check_start", "convolution_symbol", "data_x_step", "default_start", "noise_std", "x_step_kind"]

#: ``x_step(v, rho, x_prev) -> x``: the ADMM x-step signature of :class:`recon.solvers.ADMM`.
XStep = Callable[[torch.Tensor, "float | torch.Tensor", torch.Tensor], torch.Tensor]


def convolution_symbol(physics: LinearPhysics, u_shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor | None:
    r"""The DFT :math:`\hat K` of a periodic convolution (deepinv ``BlurFFT``), else ``None``.

    :math:`\hat K = \mathrm{fft2}(K\delta)` with :math:`\delta` the unit impulse at the origin, shape
    ``(1, C, H, W)`` (one symbol per channel), so that :math:`Ku = \mathrm{ifft2}(\hat K\,
    \mathrm{fft2}(u))` for images ``u`` of shape ``u_shape`` = (B, C, H, W).
    """
    if not isinstance(physics, BlurFFT):
        return None
    impulse = torch.zeros((1,) + tuple(u_shape[1:]), dtype=dtype)
    impulse[..., 0, 0] = 1.0
    return torch.fft.fft2(physics.A(impulse))


def x_step_kind(physics: LinearPhysics) -> str:
    """How :func:`data_x_step` solves the normal equations of ``physics``: ``"fft"``, ``"mask"`` or ``"cg"``."""
    if isinstance(physics, BlurFFT):
        return "fft"
    if isinstance(physics, Inpainting) and isinstance(physics.mask, torch.Tensor):
        return "mask"
    return "cg"


def _measured_entries(physics: LinearPhysics, y: torch.Tensor) -> torch.Tensor:
    """Entries of ``y`` that carry a measurement, per batch element (B,): the observed pixels for inpainting."""
    if x_step_kind(physics) == "mask":
        observed = (physics.mask != 0).expand(y.shape)
        return observed.reshape(y.shape[0], -1).sum(dim=1).to(y.dtype)
    return torch.full((y.shape[0],), float(y[0].numel()), dtype=y.dtype, device=y.device)


def noise_std(
    physics: LinearPhysics, y: torch.Tensor, sigma: float | None, noise_level: float | None
) -> float | torch.Tensor:
    r"""The noise standard deviation :math:`\sigma` per entry of ``y``, given directly or by the relative level.

    Exactly one of ``sigma`` and ``noise_level``. From the package's relative convention
    ``noise_level`` :math:`= \|e\| / \|Ax\|`, :math:`\sigma = \hat\delta / \sqrt m` per batch
    element, with :math:`\hat\delta` = :func:`recon.noise.noise_norm_estimate` and :math:`m` the
    number of measured entries (all entries of ``y``; the observed pixels for ``Inpainting``,
    whose missing pixels are noise-free zeros).

    Args:
        physics: the forward operator.
        y: measurements (B, ...).
        sigma: noise std per entry (> 0, units of ``y``), or ``None``.
        noise_level: relative noise level (> 0), or ``None``.

    Returns:
        ``sigma`` as a float, or a (B, 1, ..., 1) tensor (one value per batch element, broadcasting
        over ``y``) from ``noise_level``.

    Raises:
        ValueError: both or neither given, or a value that is not a finite positive number.
    """
    if (sigma is None) == (noise_level is None):
        raise ValueError(
            f"sigma / noise_level: expected exactly one of them (the noise std per entry, or the relative level "
            f"||e|| / ||Ax||), received sigma={sigma!r}, noise_level={noise_level!r}"
        )
    if sigma is not None:
        return check_positive("sigma", sigma)
    check_positive("noise_level", noise_level)
    std = noise_norm_estimate(y, noise_level) / _measured_entries(physics, y).sqrt()
    return std.reshape((-1,) + (1,) * (y.ndim - 1))


def default_start(physics: LinearPhysics, y: torch.Tensor) -> torch.Tensor:
    r"""The start of the plug-and-play iterations: ``y`` itself for ``BlurFFT`` (the blurred image), else :math:`A^T y`.

    For ``Inpainting`` :math:`A^T y` is the observed image with zeros at the missing pixels.
    """
    return y.clone() if x_step_kind(physics) == "fft" else physics.A_adjoint(y)


def data_x_step(
    physics: LinearPhysics, y: torch.Tensor, noise_var: float | torch.Tensor = 1.0, *, cg_iter: int = 50, cg_tol: float = 1e-6
) -> XStep:
    r"""The x-step :math:`\arg\min_x \frac{1}{2 s}\|Ax - y\|^2 + \frac{\rho}{2}\|x - v\|^2` (``s`` = ``noise_var``).

    Solved as in the module docstring: exactly for ``BlurFFT`` and ``Inpainting``, by CG
    (``cg_iter`` iterations at most, relative tolerance ``cg_tol``, warm-started from
    ``x_prev``) otherwise. Inputs are validated by the caller (this runs inside loops).

    Args:
        physics: the forward operator A.
        y: measurements (B, ...), real.
        noise_var: :math:`\sigma^2`, a float or a tensor broadcasting over the images (one value
            per batch element).
        cg_iter: CG iterations per call (``"cg"`` path).
        cg_tol: CG relative residual tolerance (``"cg"`` path).

    Returns:
        ``x_step(v, rho, x_prev) -> x``, the signature of :class:`recon.solvers.ADMM`'s x-step;
        ``rho`` a float or a tensor broadcasting over the images.

    Example:
        >>> x_step = data_x_step(physics, y, noise_var=sigma**2)
        >>> x = x_step(mu, beta / gamma**2, x_prev)   # the PnP-HVAE x-step
    """
    kind = x_step_kind(physics)
    if kind == "cg":
        cg_step = quadratic_x_step(physics, y, max_iter=check_int("cg_iter", cg_iter), tol=check_positive("cg_tol", cg_tol))
        return lambda v, rho, x_prev: cg_step(v, noise_var * rho, x_prev)
    aty = physics.A_adjoint(y)
    if kind == "mask":
        gram = (physics.mask * physics.mask).to(aty.dtype)
        return lambda v, rho, x_prev: (aty + noise_var * rho * v) / (gram + noise_var * rho)
    symbol = convolution_symbol(physics, tuple(aty.shape), aty.dtype)
    data_hat = symbol.conj() * torch.fft.fft2(y)
    gram = symbol.abs() ** 2

    def fft_step(v: torch.Tensor, rho: float | torch.Tensor, x_prev: torch.Tensor) -> torch.Tensor:
        w = noise_var * rho
        return torch.fft.ifft2((data_hat + w * torch.fft.fft2(v)) / (gram + w)).real

    return fft_step


def check_start(x0: object, like: torch.Tensor) -> torch.Tensor:
    """Validate a user start ``x0`` against the image shape ``like``; returns a copy in ``like``'s dtype."""
    check_tensor("x0", x0)
    if x0.shape != like.shape:
        raise ValueError(f"x0: expected a tensor of shape {tuple(like.shape)} (that of A^T y), received {tuple(x0.shape)}")
    return x0.to(like.dtype).clone()
