r"""The baselines of PnP-HVAE: PnP-ADMM and RED with a prior, and Wiener deconvolution.

All three weigh the data by the Gaussian log-likelihood :math:`\frac{1}{2s^2}\|Ax - y\|^2`
(:math:`s` the noise std of one measured entry of ``y``, given as ``noise_std`` or through the
relative ``noise_level``; :func:`recon.methods._data_term.data_noise`). TV, the fourth baseline of the
PnP-HVAE demo, is :func:`recon.sobolev_fit` with ``s=0, method="tv_admm"``.

``prior=`` (PnP-ADMM, RED) takes the package's one prior protocol
(:mod:`recon.regularizers.prior`): a registered name (``"dncnn_natural"``, ``"tv"``, ...), a
``deepinv.optim.Prior``, or a denoiser callable :math:`D(x, \sigma)`. Both methods apply it as
the map :math:`D(x, \sigma_d)` of :func:`~recon.regularizers.prior.as_denoiser` at
``denoiser_sigma`` :math:`= \sigma_d` (image units), the Gaussian noise std the prior step is taken
to remove (the one strength rule of :mod:`recon.regularizers.prior`: :math:`D_{\sigma_d}` for a
denoiser prior, :math:`\mathrm{prox}_{\sigma_d^2 R}` for an explicit prior :math:`R`). A blind
denoiser (a DnCNN of :mod:`denoisers.zoo`) ignores :math:`\sigma_d`. Denoisers run without
gradients, their output cast to the image dtype.

* :func:`pnp_admm` (plug-and-play ADMM, Venkatakrishnan et al. 2013; Chan et al. 2017): ADMM on
  :math:`\frac{1}{2s^2}\|Ax - y\|^2 + g(z)`, :math:`x = z`, with the prox of :math:`g`
  replaced by the prior step :math:`D`,

  .. math::
      x^{k+1} &= \arg\min_x \tfrac{1}{2s^2}\|Ax - y\|^2 + \tfrac{1}{2\sigma_d^2}\|x - (z^k - u^k)\|^2,\\
      z^{k+1} &= D(x^{k+1} + u^k, \sigma_d), \qquad u^{k+1} = u^k + x^{k+1} - z^{k+1}:

  the ADMM penalty is :math:`\rho = 1/\sigma_d^2`. With an explicit prior :math:`R` this is exact
  ADMM for :math:`\min_x \frac{1}{2s^2}\|Ax - y\|^2 + R(x)` (the z-step is
  :math:`\mathrm{prox}_{R/\rho}`), and :math:`\sigma_d` only sets the speed. With a blind
  denoiser :math:`\sigma_d` only sets how strongly each x-step is pulled to the data.
* :func:`red` (regularization by denoising, Romano, Elad & Milanfar 2017, their ADMM scheme):

  .. math::
      \min_x \tfrac{1}{2s^2}\|Ax - y\|^2 + \tfrac{\lambda}{2}\langle x, x - D(x, \sigma_d)\rangle,

  whose gradient RED takes to be :math:`\lambda(x - D(x, \sigma_d))`
  (:func:`recon.regularizers.red.red_gradient`); ADMM with penalty :math:`\beta` (default
  :math:`\beta = \lambda`): the x-step as above with :math:`1/\sigma_d^2` replaced by
  :math:`\beta`, the z-step one RED fixed-point step :math:`z \leftarrow (\lambda D(z, \sigma_d) +
  \beta(x + u)) / (\lambda + \beta)` (:func:`recon.regularizers.red.red_fixed_point_step`). Its
  fixed points solve :math:`A^T(Ax - y)/s^2 + \lambda(x - D(x, \sigma_d)) = 0` whatever :math:`\beta`.
* :func:`wiener`: the linear minimum-mean-square-error deconvolution of a circular blur for a
  signal of unknown mean and white spectrum of power :math:`S` per pixel (``signal_power``),

  .. math::
      \hat x(\xi) = \frac{\overline{\hat K(\xi)}\,\hat y(\xi)}{|\hat K(\xi)|^2 + s^2/S}
      \quad (\xi \ne 0), \qquad \hat x(0) = \hat y(0)/\hat K(0),

  i.e. the exact minimiser of :math:`\tfrac12\|Ax - y\|^2 + \tfrac{s^2}{2S}\|x - \bar x\|^2`
  (:math:`\bar x` the mean of :math:`x`, so the mean brightness is taken from the data and not
  shrunk). It is defined for deepinv ``BlurFFT`` only (not for inpainting).

The x-steps are exact for ``BlurFFT`` (FFT) and ``Inpainting`` (closed form) and warm-started CG
otherwise (:func:`recon.methods._data_term.data_x_step`). Stopping: Boyd's relative primal / dual
residuals of :class:`recon.solvers.ADMM` below ``tol`` or ``max_iter`` iterations.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import deepinv
import torch
from deepinv.physics import LinearPhysics

from operators._validate import check_int, check_positive
from recon.methods._data_term import convolution_symbol, data_noise, data_x_step, noise_params, start_image
from recon.methods.analysis_prior import check_problem
from recon.noise import Noise
from recon.regularizers.prior import Denoiser, as_denoiser, as_prior, prior_name
from recon.regularizers.red import red_fixed_point_step
from recon.result import ReconInfo
from recon.solvers import ADMM

__all__ = ["pnp_admm", "red", "wiener"]

PriorLike = str | deepinv.optim.Prior | Denoiser


def _prior_step(prior: object, denoiser_sigma: float) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict]:
    """The prior step ``v -> D(v, denoiser_sigma)`` of the module docstring, and its params."""
    resolved = as_prior(prior, name="prior")
    sd = check_positive("denoiser_sigma", denoiser_sigma)
    denoise = as_denoiser(resolved)

    def apply(v: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return denoise(v, sd).to(v.dtype)

    return apply, {"prior": prior_name(resolved), "denoiser_sigma": sd}


def _run_admm(
    physics: LinearPhysics,
    y: torch.Tensor,
    noise: Noise,
    z_step: Callable[[torch.Tensor, float], torch.Tensor],
    rho: float,
    start: torch.Tensor,
    max_iter: int,
    tol: float,
    cg_iter: int,
    progress: bool | None,
    reference: torch.Tensor | None,
    callback: Callable[[int, torch.Tensor], None] | None,
    t0: float,
    params: dict,
) -> tuple[torch.Tensor, ReconInfo]:
    """The ADMM shared by :func:`pnp_admm` and :func:`red`, x-step weight ``rho`` on ``||x - v||^2 / 2``."""
    solver = ADMM(
        data_x_step(physics, y, noise.std_like(start) ** 2, cg_iter=cg_iter), z_step, rho,
        max_iter=check_int("max_iter", max_iter), tol=check_positive("tol", tol, allow_zero=True), progress=progress,
        reference=reference, callback=callback,
    )  # fmt: skip
    x, history = solver.run(start)
    return x, ReconInfo.from_history(history, t0, noise_params(noise) | params, z=solver.state["z"])


def pnp_admm(
    physics: LinearPhysics,
    y: torch.Tensor,
    *,
    prior: PriorLike,
    denoiser_sigma: float,
    noise_level: float | None = None,
    noise_std: float | None = None,
    max_iter: int = 100,
    tol: float = 1e-4,
    cg_iter: int = 50,
    x0: torch.Tensor | None = None,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""Plug-and-play ADMM with a prior (see the module docstring).

    Args:
        physics: a deepinv ``LinearPhysics`` (``BlurFFT``, ``Inpainting``, or any other: CG
            x-steps); it must declare its image shape (``img_size``) when ``x0`` is given.
        y: measurements, real.
        prior: a registered name (``"dncnn_natural"``, ``"tv"``, ...), a ``deepinv.optim.Prior``
            or a denoiser callable ``D(x, sigma)`` on (B, C, H, W) images
            (:mod:`recon.regularizers.prior`). A blind network ``net(x)`` is passed as
            ``lambda x, sigma: net(x)`` (or by its zoo name).
        denoiser_sigma: :math:`\sigma_d > 0` (image units): the denoiser strength; for
            explicit priors the prox weight is ``denoiser_sigma**2``
            (:mod:`recon.regularizers.prior`). Also the ADMM penalty :math:`1/\sigma_d^2`. No
            default: tune it, e.g. ``demos/deblur_pnp_hvae.py --tune``.
        noise_level: relative noise level :math:`\|e\|/\|Ax\|`; or
        noise_std: the noise std :math:`s` per measured entry of ``y`` (units of ``y``); exactly
            one of the two.
        max_iter: ADMM iterations at most.
        tol: Boyd's relative residual tolerance (0: run ``max_iter``).
        cg_iter: CG iterations per x-step (generic operators only).
        x0: start, (B, *image shape); default ``y`` for ``BlurFFT``, else :math:`A^Ty`.
        progress: tqdm bar (``None``: when stderr is a terminal).
        reference: ground truth, used ONLY to record PSNR per iteration.
        callback: ``callback(iteration, x)`` after each iteration.

    Returns:
        ``(x, info)``: the last x-step image (B, *image shape) and a
        :class:`~recon.result.ReconInfo` (``history``: ADMM residuals, PSNR with a reference;
        ``n_iter``, ``converged``, ``stop_reason``, ``seconds``); ``params``: ``noise_std`` and
        ``noise_level`` (lists, one per batch element), ``prior`` (its name), ``denoiser_sigma``
        and ``rho`` (:math:`1/\sigma_d^2`); ``extra``: ``z`` (the last prior-step image).

    Raises:
        ValueError / TypeError: bad arguments, named in the message.
        NonFiniteError: an iterate became NaN/Inf.

    Example:
        >>> x, info = pnp_admm(physics, y, prior="dncnn_natural", noise_std=7.65 / 255, denoiser_sigma=0.018)
        >>> info.n_iter, info.params["rho"]
    """
    t0 = time.perf_counter()
    y = check_problem(physics, y)
    step, params = _prior_step(prior, denoiser_sigma)
    noise = data_noise(physics, y, noise_level=noise_level, noise_std=noise_std)
    rho = 1.0 / params["denoiser_sigma"] ** 2
    return _run_admm(
        physics, y, noise, lambda v, rho: step(v), rho, start_image(physics, y, x0), max_iter, tol, cg_iter,
        progress, reference, callback, t0, params | {"rho": rho},
    )  # fmt: skip


def red(
    physics: LinearPhysics,
    y: torch.Tensor,
    *,
    prior: PriorLike,
    lam: float,
    denoiser_sigma: float,
    beta: float | None = None,
    noise_level: float | None = None,
    noise_std: float | None = None,
    max_iter: int = 100,
    tol: float = 1e-4,
    cg_iter: int = 50,
    x0: torch.Tensor | None = None,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""Regularization by denoising, by ADMM (see the module docstring).

    Args:
        physics, y, prior, noise_level, noise_std, max_iter, tol, cg_iter, x0, progress, reference,
            callback: as for :func:`pnp_admm`.
        lam: RED weight :math:`\lambda > 0`, in units of 1 / image units squared (the data term
            :math:`\frac{1}{2s^2}\|Ax-y\|^2` is dimensionless); no default: tune it.
        denoiser_sigma: :math:`\sigma_d > 0` (image units): the denoiser strength; for
            explicit priors the prox weight is ``denoiser_sigma**2``
            (:mod:`recon.regularizers.prior`); a blind denoiser ignores it. No default (RED's
            results depend on it).
        beta: ADMM penalty :math:`\beta > 0` (units of ``lam``); default :math:`\lambda`.

    Returns:
        ``(x, info)``: the last x-step image and a :class:`~recon.result.ReconInfo` as for
        :func:`pnp_admm`; ``params``: ``noise_std``, ``noise_level`` (lists), ``prior``,
        ``denoiser_sigma``, ``lam`` and ``beta``; ``extra``: ``z`` (the last RED z-step image).

    Example:
        >>> x, info = red(physics, y, prior="dncnn_natural", noise_std=7.65 / 255, lam=3200.0, denoiser_sigma=0.03)
    """
    t0 = time.perf_counter()
    y = check_problem(physics, y)
    step, params = _prior_step(prior, denoiser_sigma)
    noise = data_noise(physics, y, noise_level=noise_level, noise_std=noise_std)
    lam = check_positive("lam", lam)
    beta = lam if beta is None else check_positive("beta", beta)
    start = start_image(physics, y, x0)
    current = {"z": start}

    def z_step(v: torch.Tensor, rho: float) -> torch.Tensor:
        current["z"] = red_fixed_point_step(current["z"], v, step, lam, rho)
        return current["z"]

    return _run_admm(
        physics, y, noise, z_step, beta, start, max_iter, tol, cg_iter, progress, reference, callback, t0,
        params | {"lam": lam, "beta": beta},
    )  # fmt: skip


def wiener(
    physics: LinearPhysics,
    y: torch.Tensor,
    *,
    signal_power: float,
    noise_level: float | None = None,
    noise_std: float | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""Wiener deconvolution of a circular blur (see the module docstring).

    Args:
        physics: a deepinv ``BlurFFT`` with a kernel of nonzero sum.
        y: blurred noisy images (B, C, H, W), real.
        signal_power: :math:`S > 0`, the assumed signal variance per pixel around the mean
            (image units squared; the regularisation weight is :math:`s^2/S`); no default:
            tune it (the variance of a natural image, ~0.05 on [0, 1], under-regularises, its
            spectrum being far from white).
        noise_level: relative noise level :math:`\|e\|/\|Ax\|`; or
        noise_std: the noise std :math:`s` per pixel (units of ``y``); exactly one of the two.

    Returns:
        ``(x, info)``: ``x`` (B, C, H, W) and a closed-form :class:`~recon.result.ReconInfo`
        (``n_iter`` 0, empty history, ``seconds``); ``params``: ``noise_std``, ``noise_level``
        (lists, one per batch element) and ``signal_power``; ``extra``: ``weight``
        (:math:`s^2/S`, a list, one per batch element).

    Raises:
        TypeError: ``physics`` is not a ``BlurFFT``.
        ValueError: bad numbers, or a kernel of zero sum.

    Example:
        >>> x, info = wiener(physics, y, noise_std=7.65 / 255, signal_power=0.01)
        >>> info.extra["weight"]
    """
    t0 = time.perf_counter()
    y = check_problem(physics, y)
    symbol = convolution_symbol(physics, tuple(y.shape), y.dtype)
    if symbol is None:
        raise TypeError(f"physics: expected a deepinv BlurFFT (a circular blur), received {type(physics).__name__}")
    if bool((symbol[..., 0, 0].abs() == 0).any()):
        raise ValueError("physics: expected a blur kernel of nonzero sum (K^(0) != 0), received a zero-mean kernel")
    noise = data_noise(physics, y, noise_level=noise_level, noise_std=noise_std)
    power = check_positive("signal_power", signal_power)
    weight = noise.std_like(y) ** 2 / power
    weights = torch.zeros_like(symbol.real) + weight  # (B, C, H, W)
    weights[..., 0, 0] = 0.0  # the mean is not penalised
    x = torch.fft.ifft2(symbol.conj() * torch.fft.fft2(y) / (symbol.abs() ** 2 + weights)).real
    params = noise_params(noise) | {"signal_power": power}
    return x, ReconInfo.closed_form(t0, params, weight=weight.flatten().tolist())
