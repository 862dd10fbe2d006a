r"""PnP-HVAE: a hierarchical VAE as the prior of a linear inverse problem.

Prost, Houdard, Almansa & Papadakis, "Inverse problem regularization with hierarchical variational
autoencoders", ICCV 2023. With a hierarchical VAE (:class:`denoisers.hvae.HVAE`: latents
:math:`z = (z_1, \dots, z_L)` coarse to fine, prior :math:`p(z_l \mid z_{<l}) = \mathcal N(\mu_l,
\sigma_l^2)`, encoder :math:`q(z_l \mid z_{<l}, x) = \mathcal N(\nu_l, \tau_l^2)`, Gaussian decoder
:math:`p(x \mid z) = \mathcal N(\mu_\theta(z), \gamma^2 I)` of fixed std :math:`\gamma`), the joint
objective over the image and the latents is

.. math::
    J(x, z) = \frac{1}{2s^2}\|Ax - y\|^2 + \frac{\beta}{2\gamma^2}\|x - \mu_\theta(z)\|^2
              - \sum_l \log p_{T_l}(z_l \mid z_{<l}),

with :math:`s > 0` the noise standard deviation of one measured entry of ``y`` (``noise_std``,
or from the relative ``noise_level``; :func:`recon.methods._data_term.data_noise`) and
:math:`p_{T}(z_l \mid z_{<l}) = \mathcal N(\mu_l, T^2\sigma_l^2)` the prior at temperature
:math:`T` (:math:`\sigma_l` is the paper's prior std, not a noise level), minimised alternately:

* **x-step** (exact): :math:`(A^TA + \lambda I)\,x = A^Ty + \lambda\,\mu_\theta(z)`,
  :math:`\lambda = \beta s^2/\gamma^2`; by FFT for a deepinv ``BlurFFT`` (circular blur), in
  closed form for deepinv ``Inpainting`` (:math:`A^TA` diagonal) and by warm-started CG otherwise
  (:func:`recon.methods._data_term.data_x_step`).
* **z-step** (the paper's approximation): the term :math:`-\beta\log p(x \mid z)` is replaced by
  :math:`-\beta\log q(z \mid x) + \beta\log p(z)` + const (the encoder approximates the posterior
  :math:`p(z \mid x) \propto p(x \mid z)\,p(z)`), which makes the z-objective separable level by
  level given the parents: top-down (:meth:`denoisers.hvae.HVAE.top_down`), each :math:`z_l`
  minimises

  .. math::
      \frac{\beta}{2\tau^2}\|z_l - \nu\|^2 + \frac{b}{2(T_l\sigma)^2}\|z_l - \mu\|^2,
      \qquad b = 1 - \beta T_l^2,

  (element-wise :math:`\nu, \tau, \mu, \sigma` at that level; :math:`-\beta\log\mathcal N(\mu,
  \sigma^2) - \log\mathcal N(\mu, T_l^2\sigma^2)` gives the :math:`b` term up to constants), whose
  minimiser is the precision-weighted mean (:func:`latent_update`)

  .. math::
      z_l = \frac{\beta\nu/\tau^2 + b\,\mu/(T_l\sigma)^2}{\beta/\tau^2 + b/(T_l\sigma)^2}
          = \frac{\beta (T_l\sigma)^2\,\nu + b\,\tau^2\mu}{\beta (T_l\sigma)^2 + b\,\tau^2}.

  The second form is the one computed: :math:`T_l = 0` gives :math:`z_l = \mu` (the prior at
  temperature 0 is a point mass at its mean), :math:`b = 0` (:math:`T_l = 1/\sqrt\beta`) gives
  :math:`z_l = \nu`. :math:`b < 0` (:math:`T_l > 1/\sqrt\beta`) makes the level objective concave
  in some directions (unbounded below where :math:`\beta/\tau^2 + b/(T_l\sigma)^2 \le 0`), so such
  temperatures are rejected. The encoder sees the x-step image clipped to [0, 1] (the range the
  HVAE was trained on), as in the reference implementation.

Output: the decoder mean :math:`\mu_\theta(z)` of the last iterate (the paper's output), not
clipped. The z-step is not the exact minimiser of :math:`J` over :math:`z` (the encoder is an
approximation), so :math:`J` need not decrease monotonically.

Defaults: temperatures 0.8 -> 0.6 linearly across the levels (the paper's), :math:`\beta = 0.5`
(the paper's 1) and the x-step image as output (the paper returns the decoder mean): with the
shipped train400 HVAE these gave the best mean PSNR of a sweep (the ``--sweep`` mode of the BSD68
version of ``demos/deblur_pnp_hvae.py``, issue 19) on the last 4 BSD68 images at 128 x 128 (2026-12-03; Gaussian 7.65/255, motion 2.55/255,
inpainting 3/255): 26.92 dB, against 26.25 at beta 1 with the x step and 25.44 for the paper's
decoder-mean output; 50 iterations for deblurring (use ``max_iter=100`` for inpainting:
the missing pixels are filled from the prior, which takes more iterations).

Start (``x0=None``): the blurred image ``y`` for ``BlurFFT``, :math:`A^Ty` otherwise (for
``Inpainting`` the observed image with zeros at the missing pixels), as in the reference code;
the first z-step runs on it before the first x-step.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from deepinv.physics import LinearPhysics

from denoisers.hvae import HVAE
from denoisers.zoo import available, load
from operators._validate import check_int, check_positive
from recon.methods._data_term import XStep, data_noise, data_x_step, noise_params, start_image, x_step_kind
from recon.methods.analysis_prior import check_problem
from recon.result import ReconInfo
from recon.solvers.base import IterativeSolver

__all__ = ["PNP_HVAE_OUTPUTS", "latent_update", "pnp_hvae", "temperature_schedule"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def latent_update(
    nu: torch.Tensor, tau: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, temperature: float, beta: float
) -> torch.Tensor:
    r"""The z-step at one level: :math:`\arg\min_z \frac{\beta}{2\tau^2}\|z - \nu\|^2 + \frac{b}{2(T\sigma)^2}\|z - \mu\|^2`.

    :math:`b = 1 - \beta T^2`; computed as :math:`(\beta (T\sigma)^2\nu + b\tau^2\mu) / (\beta
    (T\sigma)^2 + b\tau^2)` (see the module docstring), which is :math:`\mu` at :math:`T = 0`.

    Args:
        nu, tau: mean and std (> 0) of the encoder's posterior at this level, (B, C, h, w).
        mu, sigma: mean and std (> 0) of the prior at this level (the paper's :math:`\mu_l, \sigma_l`), same shape.
        temperature: :math:`T \ge 0` with :math:`\beta T^2 \le 1` (validated by the caller).
        beta: :math:`\beta > 0`.

    Returns:
        :math:`z` (B, C, h, w).
    """
    b = 1.0 - beta * temperature**2
    prior_var = (temperature * sigma).square()
    tau2 = tau.square()
    return (beta * prior_var * nu + b * tau2 * mu) / (beta * prior_var + b * tau2)


def _squared_norms(v: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean norm of each batch element, (B,) float64."""
    return v.flatten(1).double().square().sum(dim=1)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def temperature_schedule(temperatures: float | Sequence[float], n_levels: int, beta: float = 1.0) -> list[float]:
    r"""Per-level temperatures :math:`T_1, \dots, T_L` (coarse to fine) from a schedule.

    Args:
        temperatures: one number (every level); ``(T_first, T_last)``, a linear schedule
            :math:`T_l = T_{first} + (T_{last} - T_{first})\,(l - 1)/(L - 1)`; or ``L`` numbers,
            one per level. (With ``L = 2`` the two readings coincide.) Each :math:`T_l \ge 0`,
            finite, and :math:`\beta T_l^2 \le 1`.
        n_levels: the model's number of latent levels L.
        beta: :math:`\beta > 0`, for the bound above.

    Returns:
        L floats.

    Raises:
        TypeError: not a number or a sequence of numbers.
        ValueError: a length other than 2 or L, a negative or non-finite value, or
            :math:`T_l > 1/\sqrt\beta`.

    Example:
        >>> temperature_schedule((0.8, 0.6), 3)
        [0.8, 0.7, 0.6]
    """
    if _is_number(temperatures):
        temperatures = [temperatures]
    if isinstance(temperatures, (torch.Tensor, np.ndarray)):
        temperatures = temperatures.tolist()
    if isinstance(temperatures, (str, bytes)) or not isinstance(temperatures, Sequence):
        raise TypeError(
            f"temperatures: expected a number, (T_first, T_last) or {n_levels} numbers, received {type(temperatures).__name__}"
        )
    values = list(temperatures)
    if len(values) not in {1, 2, n_levels}:
        raise ValueError(
            f"temperatures: expected a number, (T_first, T_last) or {n_levels} values (one per level), "
            f"received {len(values)} values {values}"
        )
    if not all(_is_number(t) and math.isfinite(t) and t >= 0 for t in values):
        raise ValueError(f"temperatures: expected finite numbers >= 0, received {values}")
    if len(values) == 1:
        values = values * n_levels
    elif len(values) != n_levels:
        first, last = values
        values = [first + (last - first) * l / max(n_levels - 1, 1) for l in range(n_levels)]
    values = [float(t) for t in values]
    if max(values) > 1.0 / math.sqrt(beta):
        raise ValueError(
            f"temperatures: expected T <= 1 / sqrt(beta) = {1.0 / math.sqrt(beta):.4g} (b = 1 - beta T^2 >= 0; "
            f"the z-step objective is unbounded below otherwise), received {values} with beta = {beta:g}"
        )
    return values


def _load_model(model: object) -> HVAE:
    if isinstance(model, HVAE):
        return model
    if isinstance(model, str):
        if model not in available():
            raise ValueError(f"model: expected an HVAE or the name of one in denoisers.zoo ('hvae'), received {model!r}")
        net = load(model)
        if not isinstance(net, HVAE):
            raise TypeError(f"model: expected the name of an HVAE in denoisers.zoo, {model!r} is a {type(net).__name__}")
        return net
    raise TypeError(f"model: expected an HVAE or the name of one in denoisers.zoo ('hvae'), received {type(model).__name__}")


class PnPHVAESolver(IterativeSolver):
    r"""The alternating x- / z-minimisation of PnP-HVAE (see the module docstring).

    The iterate ``state["x"]`` is the decoder mean :math:`\mu_\theta(z_k)` (the output; the PSNR
    history and the NaN guard watch it); ``state["x_data"]`` is the last x-step image and
    ``state["z"]`` the latents. One iteration: x-step from the current decoder mean, then z-step.
    History objective: :math:`J(x_k, z_k)` summed over the batch, in nats (levels with
    :math:`T_l = 0` contribute no prior term: their :math:`z_l` is pinned to the prior mean);
    residual: the relative change of the decoder mean, :math:`\|\mu_k - \mu_{k-1}\| / \|\mu_k\|`.

    Args:
        model: the HVAE.
        physics: the forward operator A.
        y: measurements.
        x_step: :func:`~recon.methods._data_term.data_x_step` of ``(physics, y, s^2)``.
        noise_var: :math:`s^2` (the noise variance per measured entry), a float or one value per
            batch element (B, 1, 1, 1).
        temperatures: one :math:`T_l` per level.
        beta: :math:`\beta`.
        max_iter, tol, progress, reference, callback: see :class:`~recon.solvers.base.IterativeSolver`.
    """

    def __init__(
        self,
        model: HVAE,
        physics: LinearPhysics,
        y: torch.Tensor,
        x_step: XStep,
        noise_var: float | torch.Tensor,
        temperatures: list[float],
        beta: float,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.model, self.physics, self.y, self.x_step = model, physics, y, x_step
        self.temperatures, self.beta = temperatures, beta
        self.rho = beta / model.gamma**2  # weight of ||x - mu||^2 / 2; the x-step multiplies it by s^2
        #: 1 / (2 s^2) per batch element, (B,)
        self.data_weight = 0.5 / torch.as_tensor(noise_var, dtype=torch.float64, device=y.device).flatten().expand(y.shape[0])
        self.state: dict = {}

    def z_step(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Latents chosen top-down by :func:`latent_update`; returns ``(z, decoder mean, -log p_T(z))`` (the last (B,))."""
        neg_log_prior = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)

        def choose(level: int, nu, tau, mu, sigma):
            t = self.temperatures[level]
            z = latent_update(nu, tau, mu, sigma, t, self.beta)
            if t > 0.0:
                std = t * sigma
                nll = 0.5 * ((z - mu) / std).square() + torch.log(std) + _HALF_LOG_2PI
                neg_log_prior.add_(nll.flatten(1).sum(dim=1).double())
            return z

        z, mean = self.model.top_down(x.clamp(0.0, 1.0), choose)
        return z, mean, neg_log_prior

    def init_state(self, x0: torch.Tensor) -> dict:
        z, mean, _ = self.z_step(x0)
        self.state = {"x": mean, "x_data": x0, "z": z}
        return self.state

    def step(self, state: dict) -> tuple[float, float]:
        prev = state["x"]
        x = self.x_step(prev, self.rho, state["x_data"])
        z, mean, neg_log_prior = self.z_step(x)
        data = self.data_weight * _squared_norms(self.physics.A(x) - self.y)
        coupling = self.beta / (2.0 * self.model.gamma**2) * _squared_norms(x - mean)
        objective = float((data + coupling + neg_log_prior).sum())
        change = float(torch.linalg.vector_norm(mean - prev))
        state.update(x=mean, x_data=x, z=z)
        return objective, change / max(float(torch.linalg.vector_norm(mean)), torch.finfo(mean.dtype).tiny)


PNP_HVAE_OUTPUTS = ("decoder_mean", "x_step")
"""The images :func:`pnp_hvae` can return (``output=``)."""


def pnp_hvae(
    physics: LinearPhysics,
    y: torch.Tensor,
    *,
    noise_level: float | None = None,
    noise_std: float | None = None,
    temperatures: float | Sequence[float] = (0.8, 0.6),
    beta: float = 0.5,
    model: str | HVAE = "hvae",
    output: str = "x_step",
    max_iter: int = 50,
    x0: torch.Tensor | None = None,
    tol: float = 0.0,
    cg_iter: int = 50,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""Reconstruct with a hierarchical VAE prior by PnP-HVAE (see the module docstring).

    The HVAE is ``model=``, not ``prior=``: PnP-HVAE needs the network's encoder, prior and
    decoder level by level (:meth:`denoisers.hvae.HVAE.top_down`), not a denoiser map
    :math:`D(x, \sigma)`, so it does not fit the prior protocol of
    :mod:`recon.regularizers.prior` that ``prior=`` arguments accept.

    Args:
        physics: a deepinv ``LinearPhysics`` whose images are (B, 1, H, W) with H and W divisible
            by the model's stride (8 for the shipped ``hvae``), e.g. ``BlurFFT`` or ``Inpainting``;
            it must declare its image shape (``img_size``) when ``x0`` is given.
        y: measurements, real.
        noise_level: relative noise level :math:`\|e\|/\|Ax\|`, converted to the std :math:`s`
            per measured entry and batch element (:func:`recon.noise.require_noise`; a noise > 0); or
        noise_std: the noise standard deviation :math:`s` of one measured entry of ``y`` (units
            of ``y``; e.g. 7.65/255 for images in [0, 1]). Exactly one of the two.
        temperatures: one number, ``(T_first, T_last)`` for a linear schedule across the levels
            (default 0.8 -> 0.6), or one value per level, coarse to fine
            (:func:`temperature_schedule`); :math:`0 \le T_l \le 1/\sqrt\beta`.
        beta: :math:`\beta > 0`, the weight of the decoder term (default 0.5; the paper's 1).
        model: an :class:`denoisers.hvae.HVAE` or a ``denoisers.zoo`` name (default ``"hvae"``,
            the shipped weights).
        output: which image to return (default ``"x_step"``): ``"decoder_mean"`` (the paper's output, :math:`\mu_\theta(z)`,
            which can be no sharper than the model's encode-decode reconstruction) or ``"x_step"``
            (the last x-step image, which also honours the data term). The other one is in
            ``info.extra``.
        max_iter: iterations (>= 1); 50 for deblurring, 100 suggested for inpainting.
        x0: start, (B, *image shape); default ``y`` for ``BlurFFT``, else :math:`A^Ty`.
        tol: stop when the relative change of the decoder mean is <= tol (0: run ``max_iter``).
        cg_iter: CG iterations per x-step when A is neither ``BlurFFT`` nor ``Inpainting``.
        progress: tqdm bar (``None``: when stderr is a terminal).
        reference: ground truth (B, 1, H, W), used ONLY to record the PSNR of the decoder mean
            per iteration in the history.
        callback: ``callback(iteration, decoder_mean)`` after each iteration.

    Returns:
        ``(x, info)``: ``x`` the decoder mean :math:`\mu_\theta(z)` or the last x-step image
        (``output``), (B, 1, H, W) in ``y``'s dtype;
        ``info`` a :class:`~recon.result.ReconInfo`: ``history`` (objective :math:`J` in nats,
        residual = relative change of the decoder mean, PSNR with a reference), ``n_iter``,
        ``converged``, ``stop_reason``, ``seconds``; ``params``: ``noise_std`` and
        ``noise_level`` (lists, one per batch element), ``temperatures`` (one per level),
        ``beta``, ``gamma`` (the decoder std, image units), ``model`` (its name);
        ``extra``: ``x_step`` (the last x-step image, (B, 1, H, W)), ``decoder_mean`` (the last
        decoder mean), ``z`` (the L latents) and
        ``x_solver`` (``"fft"``, ``"mask"`` or ``"cg"``).

    Raises:
        ValueError / TypeError: bad arguments, named in the message (an image size not divisible
            by the stride names ``y``; an unknown model names ``model``).
        NonFiniteError: an iterate became NaN/Inf (carries the last finite decoder mean).

    Example:
        >>> physics = BlurFFT((1, 128, 128), filter=gaussian_blur(sigma=(1.6, 1.6)))
        >>> x, info = recon.pnp_hvae(physics, y, noise_std=7.65 / 255)                 # deblurring
        >>> x, info = recon.pnp_hvae(inpainting, y, noise_std=3 / 255, max_iter=100)   # inpainting
        >>> info.n_iter, info.params["temperatures"], info.extra["x_solver"]
    """
    t0 = time.perf_counter()
    y = check_problem(physics, y)
    beta = check_positive("beta", beta)
    if output not in PNP_HVAE_OUTPUTS:
        raise ValueError(f"output: expected one of {PNP_HVAE_OUTPUTS}, received {output!r}")
    net = _load_model(model)
    temps = temperature_schedule(temperatures, net.n_levels, beta)
    noise = data_noise(physics, y, noise_level=noise_level, noise_std=noise_std)
    start = start_image(physics, y, x0)
    if start.ndim != 4 or start.shape[1] != 1 or start.shape[2] % net.stride or start.shape[3] % net.stride:
        raise ValueError(
            f"y: expected images A^T y of shape (B, 1, H, W) with H and W divisible by the model's stride {net.stride}, "
            f"received images of shape {tuple(start.shape)}"
        )
    noise_var = noise.std_like(start) ** 2
    solver = PnPHVAESolver(
        net, physics, y, data_x_step(physics, y, noise_var, cg_iter=cg_iter), noise_var, temps, beta,
        max_iter=check_int("max_iter", max_iter), tol=check_positive("tol", tol, allow_zero=True),
        progress=progress, reference=reference, callback=callback,
    )  # fmt: skip
    with torch.no_grad():
        x, history = solver.run(start)
    params = noise_params(noise) | {
        "temperatures": temps, "beta": beta, "gamma": net.gamma, "model": model if isinstance(model, str) else type(net).__name__,
        "output": output,
    }  # fmt: skip
    state = solver.state
    info = ReconInfo.from_history(
        history, t0, params, x_step=state["x_data"], decoder_mean=x, z=state["z"], x_solver=x_step_kind(physics)
    )
    return (x if output == "decoder_mean" else state["x_data"].to(x.dtype)), info
