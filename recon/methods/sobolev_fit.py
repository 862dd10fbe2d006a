r"""Reconstruction with an :math:`H^s` data fidelity (Zhu, Hu, Lou, Yang, "Implicit regularization
effects of the Sobolev norms in image processing").

The data misfit is measured in the Sobolev norm of the data grid,

.. math::  \Phi_s(u) = \tfrac12 \|K u - f\|_{H^s}^2 = \tfrac12 \langle K u - f,\ W_s (K u - f)\rangle,
           \qquad W_s = (I - \Delta)^s,

with the frequency convention of :class:`~recon.regularizers.sobolev.SobolevNorm` (angular
frequency :math:`\xi = 2\pi k / L`, ``scale`` = L; the default :math:`L = 2\pi` makes
:math:`\xi` the integer number of cycles per image). Two uses:

* **implicit** (``method="gd"`` or ``"cg"``): minimise :math:`\Phi_s` alone and stop early.
  Gradient descent :math:`u \leftarrow u - \eta K^* W_s (K u - f)` reduces the error in a
  Fourier mode of a periodic convolution by the factor :math:`1 - \eta |\hat K|^2 w_s` per
  iteration, so :math:`s < 0` fits the high frequencies (where white noise dominates) later and
  the iteration count acts as the regularization parameter. ``"cg"`` is conjugate gradients on
  the normal equations :math:`K^* W_s K u = K^* W_s f`, i.e. CG in the :math:`H^s` metric of the
  data (CGLS on :math:`W_s^{1/2} K`): the same implicit filter reached in far fewer iterations.
  Both stop by the discrepancy principle, per batch element, on the L2 residual:
  :math:`\|K u - f\|_2 \le \tau\delta`, with :math:`\delta = \|e\|` the noise norm from
  ``noise_level`` or ``noise_std`` (:attr:`recon.noise.Noise.norm`). The stopping statistic is the same
  for every s, so the iterations it picks are comparable across s (an :math:`H^s`-weighted
  discrepancy would stop negative s as soon as the low frequencies fit).
* **explicit** (``method="tv_admm"``): :math:`\min_u \Phi_s(u) + \lambda\,\mathrm{TV}(u)` by ADMM
  with the splitting :math:`d = D u`, D the periodic forward differences (the same periodic
  boundary as the :math:`H^s` weights): the d-step is the isotropic shrinkage with threshold
  :math:`\lambda / \rho`, the dual update :math:`b \leftarrow b + D u - d`, and the u-step solves
  :math:`(K^* W_s K + \rho D^* D) u = K^* W_s f + \rho D^*(d - b)`: exactly and diagonally in
  Fourier when K is a periodic convolution (deepinv's ``BlurFFT``),

  .. math::  \hat u = \frac{\overline{\hat K} w_s \hat f + \rho \sum_j \overline{\hat D_j}\,
             \widehat{(d - b)}_j}{|\hat K|^2 w_s + \rho \sum_j |\hat D_j|^2},

  and by warm-started CG otherwise.

Shapes: images ``(B, C, H, W)``; the data ``f = y`` is a grid in its last two axes (e.g. an
image for deblurring, a sinogram for CT).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from deepinv.physics import LinearPhysics

from operators._validate import check_int, check_option, check_positive, check_tensor
from operators.shapes import image_shape
from recon.methods._data_term import convolution_symbol, noise_params
from recon.methods.analysis_prior import check_problem
from recon.noise import resolve_noise
from recon.result import ReconInfo
from recon.regularizers.sobolev import SobolevNorm
from recon.regularizers.tv import project_l2_ball_pixelwise
from recon.solvers import ADMM, op_norm, quadratic_x_step
from recon.solvers.base import IterativeSolver

__all__ = ["periodic_gradient", "periodic_gradient_adjoint", "sobolev_fit"]

METHODS = ("gd", "cg", "tv_admm")


def periodic_gradient(u: torch.Tensor) -> torch.Tensor:
    """Periodic forward differences, (B, C, H, W) -> (B, C, H, W, 2): ``u[i+1] - u[i]`` with wrap-around."""
    return torch.stack([torch.roll(u, -1, dims=-2) - u, torch.roll(u, -1, dims=-1) - u], dim=-1)


def periodic_gradient_adjoint(g: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`periodic_gradient`, (B, C, H, W, 2) -> (B, C, H, W) (minus the divergence)."""
    gy, gx = g[..., 0], g[..., 1]
    return torch.roll(gy, 1, dims=-2) - gy + torch.roll(gx, 1, dims=-1) - gx


def _per_element(v: torch.Tensor) -> torch.Tensor:
    """Sum of |v|^2 over all axes but the batch axis, shape (B,)."""
    return (v.abs() ** 2).reshape(v.shape[0], -1).sum(dim=1)


def _batch_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real part of <a, b> per batch element, shape (B,)."""
    return (a.conj() * b).real.reshape(a.shape[0], -1).sum(dim=1)


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


class SobolevDescent(IterativeSolver):
    r"""Gradient descent or CG on :math:`\tfrac12\|Ku - f\|_{H^s}^2`, with per-element discrepancy stopping.

    Every batch element is an independent problem: CG's step lengths are per element, and an
    element that meets :math:`\|K u_b - f_b\|_2 \le \tau\delta_b` is frozen at that iterate
    (when ``early_stop``) while the others go on; the run ends when all are frozen. History
    residual: the largest :math:`\|K u_b - f_b\| / (\tau\delta_b)` over the batch (so 1 is the
    discrepancy target; :math:`\|Ku_b - f_b\| / \|f_b\|` without a noise level); objective:
    :math:`\Phi_s` summed over the batch.
    """

    def __init__(
        self,
        K: Callable[[torch.Tensor], torch.Tensor],
        KT: Callable[[torch.Tensor], torch.Tensor],
        hs: SobolevNorm,
        f: torch.Tensor,
        method: str,
        step: float,
        target: torch.Tensor | None,
        early_stop: bool,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.K, self.KT, self.hs, self.f = K, KT, hs, f
        self.method, self.eta, self.target, self.early_stop = method, step, target, early_stop

    def init_state(self, x0: torch.Tensor) -> dict:
        u = x0.clone()
        r = self.f - self.K(u)  # data residual f - K u
        weighted = self.hs.apply(r)
        z = self.KT(weighted)  # minus the gradient
        b = u.shape[0]
        state = {
            "x": u, "r": r, "weighted": weighted, "z": z, "p": z.clone(), "gamma": _per_element(z),
            "active": torch.ones(b, dtype=torch.bool, device=u.device),
            "met": torch.full((b,), -1, dtype=torch.long),
            "iteration": 0,
        }
        self._check_discrepancy(state)
        self.state = state
        return state

    def _check_discrepancy(self, state: dict) -> None:
        """Record (and, with early stopping, freeze) the elements whose residual meets the target."""
        if self.target is None:
            return
        met_now = (_per_element(state["r"]).sqrt() <= self.target) & (state["met"] < 0).to(self.target.device)
        state["met"][met_now.cpu()] = state["iteration"]
        if self.early_stop:
            state["active"] &= ~met_now
            if not bool(state["active"].any()):
                state["stop"] = "discrepancy principle"
                state["converged"] = True

    def step(self, state: dict) -> tuple[float, float]:
        active = _expand(state["active"].to(state["x"].real.dtype), state["x"])
        direction = state["z"] if self.method == "gd" else state["p"]
        Kd = self.K(direction)
        if self.method == "gd":
            alpha = self.eta * active
        else:
            curvature = torch.clamp(_batch_dot(Kd, self.hs.apply(Kd)), min=torch.finfo(Kd.real.dtype).tiny)
            alpha = _expand(state["gamma"] / curvature, state["x"]) * active
        state["x"] = state["x"] + alpha * direction
        state["r"] = state["r"] - _expand(alpha.reshape(-1), Kd) * Kd
        state["weighted"] = self.hs.apply(state["r"])
        state["z"] = self.KT(state["weighted"])
        if self.method == "cg":
            gamma = _per_element(state["z"])
            beta = gamma / torch.clamp(state["gamma"], min=torch.finfo(gamma.dtype).tiny)
            state["p"] = state["z"] + _expand(beta, state["z"]) * state["p"]
            state["gamma"] = gamma
        state["iteration"] += 1
        self._check_discrepancy(state)
        res = _per_element(state["r"]).sqrt()
        scale = self.target if self.target is not None else _per_element(self.f).sqrt()
        objective = 0.5 * float(_batch_dot(state["r"], state["weighted"]).sum())
        return objective, float((res / torch.clamp(scale, min=torch.finfo(res.dtype).tiny)).max())


def _shrink(lam: float) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """Isotropic shrinkage of pixel gradient vectors by lam / rho (the prox of (lam / rho) ||.||_{2,1})."""

    def z_step(v: torch.Tensor, rho: float) -> torch.Tensor:
        return v - project_l2_ball_pixelwise(v, lam / rho)

    return z_step


def _fourier_x_step(
    symbol: torch.Tensor, hs: SobolevNorm, f: torch.Tensor
) -> Callable[[torch.Tensor, float, torch.Tensor], torch.Tensor]:
    """Exact u-step of H^s + TV ADMM for a periodic convolution, diagonal in Fourier."""
    grid = tuple(f.shape[-2:])
    w = hs.weight(grid, 1.0, f.dtype, f.device)
    numerator_data = symbol.conj() * w * torch.fft.fft2(f)
    impulse = torch.zeros((1, 1) + grid, dtype=f.dtype, device=f.device)
    impulse[..., 0, 0] = 1.0
    d_hat = torch.fft.fft2(periodic_gradient(impulse).movedim(-1, 0))  # (2, 1, 1, H, W)
    d_sq = (d_hat.abs() ** 2).sum(dim=0)
    data_sq = symbol.abs() ** 2 * w
    if bool((data_sq[..., 0, 0] <= 0).any()):
        raise ValueError("physics: expected a convolution with nonzero mean (K^(0) != 0) for the TV-ADMM u-step")

    def x_step(v: torch.Tensor, rho: float, x_prev: torch.Tensor) -> torch.Tensor:
        v_hat = torch.fft.fft2(v.movedim(-1, 0))
        numerator = numerator_data + rho * (d_hat.conj() * v_hat).sum(dim=0)
        return torch.fft.ifft2(numerator / (data_sq + rho * d_sq)).real

    return x_step


def sobolev_fit(
    physics: LinearPhysics,
    y: torch.Tensor,
    *,
    s: float = -1.0,
    method: str = "gd",
    scale: float = 2.0 * math.pi,
    noise_level: float | None = None,
    noise_std: float | None = None,
    tau: float = 1.01,
    early_stop: bool = True,
    lam: float | None = None,
    rho: float | None = None,
    step: float | None = None,
    max_iter: int = 500,
    tol: float = 1e-5,
    cg_iter: int = 20,
    x0: torch.Tensor | None = None,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""Reconstruct with the :math:`H^s` data misfit: implicit (early-stopped GD / CG) or with TV.

    Args:
        physics: a deepinv ``LinearPhysics`` K whose output is a grid in its last two axes and
            that declares its image shape (``img_size`` / ``img_shape``,
            :func:`operators.shapes.image_shape`).
        y: measurements f, real, shape ``(B, C, h, w)``.
        s: Sobolev exponent (finite; s < 0 down-weights high frequencies of the residual).
        method: ``"gd"`` (gradient descent, step :math:`1/\|W_s^{1/2}K\|^2` unless ``step``),
            ``"cg"`` (CG in the :math:`H^s` metric) or ``"tv_admm"`` (:math:`H^s` + TV by ADMM).
        scale: side length L of the periodic data grid in the units of :math:`\xi`
            (:math:`\xi = 2\pi k / L`; default :math:`2\pi`, integer cycles per image); > 0.
        noise_level: relative noise :math:`\|e\| / \|Kx\|` for the discrepancy principle
            (``"gd"`` / ``"cg"``); or
        noise_std: the noise std per entry of ``y`` (units of ``y``), the same use. At most one of
            the two; neither runs ``max_iter`` iterations.
        tau: discrepancy factor (>= 1): stop when :math:`\|Ku - f\|_2 \le \tau\delta`.
        early_stop: freeze each batch element at the first iterate meeting the discrepancy
            principle (default). ``False`` runs all ``max_iter`` iterations and only records that
            iteration in ``info.extra["discrepancy_iteration"]`` (to draw whole convergence curves).
        lam: TV weight :math:`\lambda > 0` (required for ``"tv_admm"``; in units of the misfit per
            unit of TV, so it depends on s and ``scale``).
        rho: ADMM penalty (default ``10 * lam``).
        step: gradient-descent step :math:`\eta` (default :math:`1/\|W_s^{1/2} K\|^2` by the power method).
        max_iter: iteration budget (>= 1).
        tol: ADMM relative tolerance (``"tv_admm"`` only).
        cg_iter: CG iterations per ADMM u-step when K is not a periodic convolution.
        x0: start (default zeros), (B, *image shape).
        progress: tqdm bar (``None``: when stderr is a terminal).
        reference: ground truth, used ONLY for the PSNR recorded in the history.
        callback: ``callback(iteration, u)`` after each iteration.

    Returns:
        ``(u, info)``: the reconstruction (B, C, H, W) and a :class:`~recon.result.ReconInfo`
        (``history``: objective :math:`\Phi_s` (+ TV) and residual, PSNR with a reference;
        ``n_iter``, ``converged``, ``stop_reason``, ``seconds``); ``params``: ``method``, ``s``,
        ``scale``, with a noise estimate ``noise_std``, ``noise_level`` (lists, one per batch
        element) and ``tau`` (``"gd"`` / ``"cg"``), ``step`` (``"gd"``), ``lam`` and ``rho``
        (``"tv_admm"``); ``extra``: ``discrepancy_iteration`` ((B,) long tensor: the first
        iteration meeting the principle, -1 if never or without a noise estimate; ``"gd"`` /
        ``"cg"``).

    Raises:
        ValueError / TypeError: bad arguments (named in the message).
        NonFiniteError: an iterate became NaN/Inf (carries the last finite one).

    Example:
        >>> u, info = recon.sobolev_fit(physics, y, s=-1.0, method="cg", noise_level=0.05)
        >>> info.n_iter, info.extra["discrepancy_iteration"]
        >>> u, info = recon.sobolev_fit(physics, y, s=-1.0, method="tv_admm", lam=1e-3)
    """
    t0 = time.perf_counter()
    f = check_problem(physics, y)
    method = check_option("method", method, METHODS)
    if f.ndim != 4:
        raise ValueError(f"y: expected a batch of data grids (B, C, h, w), received shape {tuple(f.shape)}")
    hs = SobolevNorm(s, ndim=2, scale=scale)
    max_iter = check_int("max_iter", max_iter)
    noise = resolve_noise(physics, f, noise_level=noise_level, noise_std=noise_std)
    tau = check_positive("tau", tau)
    if tau < 1.0:
        raise ValueError(f"tau: expected a number >= 1, received {tau!r}")
    K, KT = physics.A, physics.A_adjoint
    u0 = torch.zeros((f.shape[0], *image_shape(physics)), dtype=f.dtype, device=f.device)
    if x0 is not None:
        if check_tensor("x0", x0).shape != u0.shape:
            raise ValueError(f"x0: expected a tensor of shape {tuple(u0.shape)}, received {tuple(x0.shape)}")
        u0 = x0
    common = {"max_iter": max_iter, "progress": progress, "reference": reference, "callback": callback}
    params: dict = {"method": method, "s": hs.s, "scale": hs.scale[0]}

    if method == "tv_admm":
        if lam is None:
            raise ValueError("lam: expected the TV weight (a number > 0) for method='tv_admm', received None")
        lam = check_positive("lam", lam)
        rho = 10.0 * lam if rho is None else check_positive("rho", rho)
        symbol = convolution_symbol(physics, tuple(u0.shape), f.dtype)
        if symbol is not None:
            x_step = _fourier_x_step(symbol, hs, f)
        else:
            x_step = quadratic_x_step(
                lambda u: hs.apply(K(u), 0.5), hs.apply(f, 0.5), lambda r: KT(hs.apply(r, 0.5)),
                K=periodic_gradient, K_adjoint=periodic_gradient_adjoint, max_iter=check_int("cg_iter", cg_iter),
            )
        solver = ADMM(
            x_step, _shrink(lam), rho, K=periodic_gradient, K_adjoint=periodic_gradient_adjoint,
            tol=check_positive("tol", tol, allow_zero=True), **common,
        )
        u, history = solver.run(u0)
        return u, ReconInfo.from_history(history, t0, params | {"lam": lam, "rho": rho})

    target = None
    if noise is not None:
        target = tau * noise.norm
        params |= noise_params(noise) | {"tau": tau}
    if method == "gd":
        lipschitz = op_norm(lambda u: hs.apply(K(u), 0.5), lambda r: KT(hs.apply(r, 0.5)), u0) ** 2
        step = 1.0 / lipschitz if step is None else check_positive("step", step)
        params["step"] = step
    solver = SobolevDescent(K, KT, hs, f, method, params.get("step", 0.0), target, bool(early_stop), **common)
    u, history = solver.run(u0)
    return u, ReconInfo.from_history(history, t0, params, discrepancy_iteration=solver.state["met"])
