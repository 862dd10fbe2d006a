r"""The Gaussian data term of the plug-and-play methods: its start and its proximal step.

The plug-and-play methods (:mod:`recon.methods.pnp_hvae`, :mod:`recon.methods.pnp_baselines`)
weigh the data by the Gaussian log-likelihood :math:`\frac{1}{2 s^2}\|Ax - y\|^2`, with
:math:`s` = ``noise_std`` the noise standard deviation of one measured entry of ``y`` (given, or
from the relative ``noise_level`` by :func:`data_noise`). Their x-steps all solve

.. math::
    x = \arg\min_x \tfrac{1}{2 s^2}\|Ax - y\|^2 + \tfrac{\rho}{2}\|x - v\|^2
    \iff (A^T A + w I)\, x = A^T y + w\, v, \qquad w = s^2\rho,

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
from operators.shapes import image_shape
from recon.noise import Noise, require_noise
from recon.solvers import quadratic_x_step

__all__ = ["convolution_symbol", "data_noise", "data_x_step", "noise_params", "start_image", "x_step_kind"]

#: ``x_step(v, rho, x_prev) -> x``: the ADMM x-step signature of :class:`recon.solvers.ADMM`.
XStep = Callable[[torch.Tensor, "float | torch.Tensor", torch.Tensor], torch.Tensor]


def data_noise(physics: LinearPhysics, y: torch.Tensor, *, noise_level: float | None, noise_std: float | None) -> Noise:
    """The :class:`~recon.noise.Noise` of the Gaussian data term: exactly one of the two words, and a noise > 0.

    :func:`recon.noise.require_noise` (``noise_level`` relative, ``noise_std`` absolute per measured
    entry), then a zero noise is refused: the data weight :math:`1/(2s^2)` needs :math:`s > 0`.

    Raises:
        ValueError: neither or both given, a bad value, or a noise std of 0 for some batch element.
    """
    noise = require_noise(physics, y, noise_level=noise_level, noise_std=noise_std)
    if not bool((noise.std > 0).all()):
        raise ValueError(
            "noise_level / noise_std: expected a noise > 0 (the data weight is 1 / (2 noise_std^2)), received "
            f"noise_level={noise_level!r}, noise_std={noise_std!r}"
        )
    return noise


def noise_params(noise: Noise) -> dict[str, list[float]]:
    """``noise_std`` and ``noise_level`` of a method's ``info.params``: lists, one value per batch element."""
    return {"noise_std": noise.std.tolist(), "noise_level": noise.level.tolist()}


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


def data_x_step(
    physics: LinearPhysics, y: torch.Tensor, noise_var: float | torch.Tensor = 1.0, *, cg_iter: int = 50, cg_tol: float = 1e-6
) -> XStep:
    r"""The x-step :math:`\arg\min_x \frac{1}{2 s^2}\|Ax - y\|^2 + \frac{\rho}{2}\|x - v\|^2` (:math:`s^2` = ``noise_var``).

    Solved as in the module docstring: exactly for ``BlurFFT`` and ``Inpainting``, by CG
    (``cg_iter`` iterations at most, relative tolerance ``cg_tol``, warm-started from
    ``x_prev``) otherwise. Inputs are validated by the caller (this runs inside loops).

    Args:
        physics: the forward operator A.
        y: measurements (B, ...), real.
        noise_var: :math:`s^2` (``noise_std`` squared, units of ``y`` squared), a float or a
            tensor broadcasting over the images (one value per batch element).
        cg_iter: CG iterations per call (``"cg"`` path).
        cg_tol: CG relative residual tolerance (``"cg"`` path).

    Returns:
        ``x_step(v, rho, x_prev) -> x``, the signature of :class:`recon.solvers.ADMM`'s x-step;
        ``rho`` a float or a tensor broadcasting over the images.

    Example:
        >>> noise = data_noise(physics, y, noise_level=None, noise_std=0.03)
        >>> x_step = data_x_step(physics, y, noise_var=noise.std_like(y) ** 2)
        >>> x = x_step(mu, beta / gamma**2, x_prev)   # the PnP-HVAE x-step
    """
    kind = x_step_kind(physics)
    if kind == "cg":
        cg_step = quadratic_x_step(physics, y, max_iter=check_int("cg_iter", cg_iter), tol=check_positive("cg_tol", cg_tol))
        return lambda v, rho, x_prev: cg_step(v, noise_var * rho, x_prev)
    if kind == "mask":
        aty = physics.A_adjoint(y)
        gram = (physics.mask * physics.mask).to(aty.dtype)
        return lambda v, rho, x_prev: (aty + noise_var * rho * v) / (gram + noise_var * rho)
    symbol = convolution_symbol(physics, (y.shape[0], *image_shape(physics)), y.dtype)
    data_hat = symbol.conj() * torch.fft.fft2(y)
    gram = symbol.abs() ** 2

    def fft_step(v: torch.Tensor, rho: float | torch.Tensor, x_prev: torch.Tensor) -> torch.Tensor:
        w = noise_var * rho
        return torch.fft.ifft2((data_hat + w * torch.fft.fft2(v)) / (gram + w)).real

    return fft_step


def start_image(physics: LinearPhysics, y: torch.Tensor, x0: object = None) -> torch.Tensor:
    r"""The start of the plug-and-play iterations, (B, *image shape) in ``y``'s dtype.

    ``x0`` when given (validated against the image shape :func:`operators.shapes.image_shape`
    declares, copied); else ``y`` itself for ``BlurFFT`` (the blurred image) and :math:`A^T y`
    otherwise (for ``Inpainting`` the observed image with zeros at the missing pixels).

    Raises:
        TypeError: ``x0`` is not a real tensor, or it is given and ``physics`` declares no image shape.
        ValueError: ``x0`` has another shape.
    """
    if x0 is None:
        return y.clone() if x_step_kind(physics) == "fft" else physics.A_adjoint(y)
    check_tensor("x0", x0)
    shape = (y.shape[0], *image_shape(physics))
    if tuple(x0.shape) != shape:
        raise ValueError(f"x0: expected a tensor of shape {shape} (B, *image shape), received {tuple(x0.shape)}")
    return x0.to(y.dtype).clone()
