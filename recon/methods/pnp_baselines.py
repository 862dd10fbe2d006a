r"""The baselines of PnP-HVAE: PnP-ADMM and RED with a denoiser, and Wiener deconvolution.

All three weigh the data by the Gaussian log-likelihood :math:`\frac{1}{2\sigma^2}\|Ax - y\|^2`
(:math:`\sigma` the noise std of one entry of ``y``, given as ``sigma`` or through the relative
``noise_level``, :func:`recon.methods._data_term.noise_std`). TV, the fourth baseline of the
PnP-HVAE demo, is :func:`recon.tv`.

* :func:`pnp_admm` (plug-and-play ADMM, Venkatakrishnan et al. 2013; Chan et al. 2017): ADMM on
  :math:`\frac{1}{2\sigma^2}\|Ax - y\|^2 + g(z)`, :math:`x = z`, with the prox of :math:`g`
  replaced by a denoiser :math:`D`,

  .. math::
      x^{k+1} &= \arg\min_x \tfrac{1}{2\sigma^2}\|Ax - y\|^2 + \tfrac{1}{2\sigma_d^2}\|x - (z^k - u^k)\|^2,\\
      z^{k+1} &= D(x^{k+1} + u^k), \qquad u^{k+1} = u^k + x^{k+1} - z^{k+1},

  :math:`\sigma_d` (``denoiser_sigma``) the noise level the prior step is taken to remove: the ADMM
  penalty is :math:`1/\sigma_d^2`. A blind denoiser (``denoisers.dncnn.DnCNN``) does not take
  :math:`\sigma_d`, which then only sets how strongly each x-step is pulled to the data.
* :func:`red` (regularization by denoising, Romano, Elad & Milanfar 2017, their ADMM scheme):

  .. math::
      \min_x \tfrac{1}{2\sigma^2}\|Ax - y\|^2 + \tfrac{\lambda}{2}\langle x, x - D(x)\rangle,

  ADMM with penalty :math:`\beta` (default :math:`\beta = \lambda`): the x-step as above with
  :math:`1/\sigma_d^2` replaced by :math:`\beta`, the z-step one RED fixed-point step
  :math:`z \leftarrow (\lambda D(z) + \beta(x + u)) / (\lambda + \beta)`
  (:func:`recon.regularizers.red.red_fixed_point_step`). Its fixed points solve
  :math:`A^T(Ax - y)/\sigma^2 + \lambda(x - D(x)) = 0` whatever :math:`\beta`.
* :func:`wiener`: the linear minimum-mean-square-error deconvolution of a circular blur for a
  signal of unknown mean and white spectrum of power :math:`S` per pixel (``signal_power``),

  .. math::
      \hat x(\xi) = \frac{\overline{\hat K(\xi)}\,\hat y(\xi)}{|\hat K(\xi)|^2 + \sigma^2/S}
      \quad (\xi \ne 0), \qquad \hat x(0) = \hat y(0)/\hat K(0),

  i.e. the exact minimiser of :math:`\tfrac12\|Ax - y\|^2 + \tfrac{\sigma^2}{2S}\|x - \bar x\|^2`
  (:math:`\bar x` the mean of :math:`x`, so the mean brightness is taken from the data and not
  shrunk). It is defined for deepinv ``BlurFFT`` only (not for inpainting).

The x-steps are exact for ``BlurFFT`` (FFT) and ``Inpainting`` (closed form) and warm-started CG
otherwise (:func:`recon.methods._data_term.data_x_step`). Denoisers are callables on (B, 1, H, W)
images (blind: no noise-level input), called without gradients. Stopping: Boyd's relative
primal / dual residuals of :class:`recon.solvers.ADMM` below ``tol`` or ``max_iter`` iterations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from deepinv.physics import LinearPhysics

from operators._validate import check_int, check_positive
from recon.methods._data_term import check_start, convolution_symbol, data_x_step, default_start, noise_std
from recon.methods.analysis_prior import check_problem
from recon.regularizers.red import red_fixed_point_step
from recon.solvers import ADMM
from recon.solvers.base import check_callable

__all__ = ["pnp_admm", "red", "wiener"]

Denoiser = Callable[[torch.Tensor], torch.Tensor]


def _no_grad(denoiser: Denoiser) -> Denoiser:
    """``denoiser`` called without autograd, its output cast back to the input's dtype."""

    def apply(v: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return denoiser(v).to(v.dtype)

    return apply


def _run_admm(
    physics: LinearPhysics,
    y: torch.Tensor,
    std: float | torch.Tensor,
    z_step: Callable[[torch.Tensor, float], torch.Tensor],
    rho: float,
    start: torch.Tensor,
    max_iter: int,
    tol: float,
    cg_iter: int,
    progress: bool | None,
    reference: torch.Tensor | None,
    callback: Callable[[int, torch.Tensor], None] | None,
) -> tuple[torch.Tensor, dict]:
    """The ADMM shared by :func:`pnp_admm` and :func:`red`, x-step weight ``rho`` on ``||x - v||^2 / 2``."""
    solver = ADMM(
        data_x_step(physics, y, std**2, cg_iter=cg_iter), z_step, rho, max_iter=check_int("max_iter", max_iter),
        tol=check_positive("tol", tol, allow_zero=True), progress=progress, reference=reference, callback=callback,
    )  # fmt: skip
    x, history = solver.run(start)
    sigma = std if isinstance(std, float) else std.flatten().tolist()
    return x, {"iterations": history.iterations, "history": history, "sigma": sigma}


def _start(physics: LinearPhysics, y: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
    start = default_start(physics, y)
    return start if x0 is None else check_start(x0, start)


def pnp_admm(
    physics: LinearPhysics,
    y: torch.Tensor,
    denoiser: Denoiser,
    noise_level: float | None = None,
    sigma: float | None = None,
    *,
    denoiser_sigma: float,
    max_iter: int = 100,
    tol: float = 1e-4,
    cg_iter: int = 50,
    x0: torch.Tensor | None = None,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, dict]:
    r"""Plug-and-play ADMM with a denoiser (see the module docstring).

    Args:
        physics: a deepinv ``LinearPhysics`` (``BlurFFT``, ``Inpainting``, or any other: CG x-steps).
        y: measurements, real.
        denoiser: ``D(x) -> x'`` on (B, 1, H, W) images, e.g. a ``denoisers.dncnn.DnCNN``.
        noise_level: relative noise level :math:`\|e\|/\|Ax\|`; or
        sigma: the noise std per entry of ``y`` (exactly one of the two).
        denoiser_sigma: :math:`\sigma_d > 0` (units of the image): the ADMM penalty is :math:`1/\sigma_d^2`
            (no default: tune it, e.g. ``demos/deblur_pnp_hvae.py --tune``).
        max_iter: ADMM iterations at most.
        tol: Boyd's relative residual tolerance (0: run ``max_iter``).
        cg_iter: CG iterations per x-step (generic operators only).
        x0: start (the shape of :math:`A^Ty`); default ``y`` for ``BlurFFT``, else :math:`A^Ty`.
        progress: tqdm bar (``None``: when stderr is a terminal).
        reference: ground truth, used ONLY to record PSNR per iteration.
        callback: ``callback(iteration, x)`` after each iteration.

    Returns:
        ``(x, info)``: the last x-step image and ``info`` with ``iterations``, ``history``,
        ``sigma`` and ``denoiser_sigma``.

    Example:
        >>> x, info = pnp_admm(physics, y, load("dncnn_natural"), sigma=7.65 / 255, denoiser_sigma=0.05)
    """
    y = check_problem(physics, y)
    den = _no_grad(check_callable("denoiser", denoiser))
    std = noise_std(physics, y, sigma, noise_level)
    sd = check_positive("denoiser_sigma", denoiser_sigma)
    x, info = _run_admm(
        physics, y, std, lambda v, rho: den(v), 1.0 / sd**2, _start(physics, y, x0), max_iter, tol, cg_iter,
        progress, reference, callback,
    )  # fmt: skip
    return x, info | {"denoiser_sigma": sd}


def red(
    physics: LinearPhysics,
    y: torch.Tensor,
    denoiser: Denoiser,
    noise_level: float | None = None,
    sigma: float | None = None,
    *,
    lam: float,
    beta: float | None = None,
    max_iter: int = 100,
    tol: float = 1e-4,
    cg_iter: int = 50,
    x0: torch.Tensor | None = None,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, dict]:
    r"""Regularization by denoising, by ADMM (see the module docstring).

    Args:
        physics, y, denoiser, noise_level, sigma, max_iter, tol, cg_iter, x0, progress, reference,
            callback: as for :func:`pnp_admm`.
        lam: RED weight :math:`\lambda > 0`, in units of 1 / image units squared (the data term
            :math:`\frac{1}{2\sigma^2}\|Ax-y\|^2` is dimensionless); no default: tune it.
        beta: ADMM penalty :math:`\beta > 0` (same units); default :math:`\lambda`.

    Returns:
        ``(x, info)``: the last x-step image and ``info`` with ``iterations``, ``history``,
        ``sigma``, ``lam`` and ``beta``.

    Example:
        >>> x, info = red(physics, y, load("dncnn_natural"), sigma=7.65 / 255, lam=400.0)
    """
    y = check_problem(physics, y)
    den = _no_grad(check_callable("denoiser", denoiser))
    std = noise_std(physics, y, sigma, noise_level)
    lam = check_positive("lam", lam)
    beta = lam if beta is None else check_positive("beta", beta)
    start = _start(physics, y, x0)
    current = {"z": start}

    def z_step(v: torch.Tensor, rho: float) -> torch.Tensor:
        current["z"] = red_fixed_point_step(current["z"], v, den, lam, rho)
        return current["z"]

    x, info = _run_admm(physics, y, std, z_step, beta, start, max_iter, tol, cg_iter, progress, reference, callback)
    return x, info | {"lam": lam, "beta": beta}


def wiener(
    physics: LinearPhysics,
    y: torch.Tensor,
    noise_level: float | None = None,
    sigma: float | None = None,
    *,
    signal_power: float,
) -> tuple[torch.Tensor, dict]:
    r"""Wiener deconvolution of a circular blur (see the module docstring).

    Args:
        physics: a deepinv ``BlurFFT`` with a kernel of nonzero sum.
        y: blurred noisy images (B, C, H, W), real.
        noise_level: relative noise level :math:`\|e\|/\|Ax\|`; or
        sigma: the noise std per pixel (exactly one of the two).
        signal_power: :math:`S > 0`, the assumed signal variance per pixel around the mean
            (image units squared; the regularisation weight is :math:`\sigma^2/S`); no default:
            tune it (the variance of a natural image, ~0.05 on [0, 1], under-regularises, its
            spectrum being far from white).

    Returns:
        ``(x, info)`` with ``info = {"sigma", "signal_power", "weight"}`` (``weight`` :math:`= \sigma^2/S`).

    Raises:
        TypeError: ``physics`` is not a ``BlurFFT``.
        ValueError: bad numbers, or a kernel of zero sum.

    Example:
        >>> x, info = wiener(physics, y, sigma=7.65 / 255, signal_power=0.003)
    """
    y = check_problem(physics, y)
    symbol = convolution_symbol(physics, tuple(y.shape), y.dtype)
    if symbol is None:
        raise TypeError(f"physics: expected a deepinv BlurFFT (a circular blur), received {type(physics).__name__}")
    if bool((symbol[..., 0, 0].abs() == 0).any()):
        raise ValueError("physics: expected a blur kernel of nonzero sum (K^(0) != 0), received a zero-mean kernel")
    std = noise_std(physics, y, sigma, noise_level)
    power = check_positive("signal_power", signal_power)
    weight = std**2 / power
    weights = torch.zeros_like(symbol.real) + weight  # (B or 1, C, H, W)
    weights[..., 0, 0] = 0.0  # the mean is not penalised
    x = torch.fft.ifft2(symbol.conj() * torch.fft.fft2(y) / (symbol.abs() ** 2 + weights)).real
    info = {"sigma": std if isinstance(std, float) else std.flatten().tolist(), "signal_power": power}
    return x, info | {"weight": weight if isinstance(weight, float) else weight.flatten().tolist()}
