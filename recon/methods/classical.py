r"""Classical reconstructions: FBP, Tikhonov (gradient penalty) and isotropic TV.

Noise words (everywhere in regrecon, :mod:`recon.noise`): ``noise_level`` is the relative level
:math:`\|e\| / \|Ax\|`, ``noise_std`` the absolute standard deviation per measurement entry (units
of ``y``). Either gives the noise norm :math:`\delta = \|e\|` per batch element
(:attr:`recon.noise.Noise.norm`; from a level, :math:`\delta = r\|y\|/\sqrt{1 + r^2}`), and the
discrepancy principle targets :math:`\|Ax - y\| = \tau\,\delta`.
"""

from __future__ import annotations

import math
import time

import torch
from deepinv.physics import LinearPhysics

from operators._validate import check_option, check_positive
from operators.shapes import image_shape
from recon.methods.analysis_prior import AnalysisPrior, alpha_or_noise, check_problem, discrepancy_params, reconstruct
from recon.parameter_choice import discrepancy_alpha, minimize_log_alpha
from recon.regularizers.tv import GRADIENT_SQNORM_2D, gradient, gradient_adjoint, l21_norm, project_l2_ball_pixelwise
from recon.result import ReconInfo
from recon.solvers import op_norm, solve_spd

#: isotropic TV as an analysis prior: L = forward differences, R = sum of pixel-wise l2 norms
TV_PRIOR = AnalysisPrior(
    op=gradient,
    adjoint=gradient_adjoint,
    norm=math.sqrt(GRADIENT_SQNORM_2D),
    project=project_l2_ball_pixelwise,
    value=l21_norm,
)


def fbp(physics: LinearPhysics, y: torch.Tensor, *, filter: str = "ram-lak") -> tuple[torch.Tensor, ReconInfo]:  # noqa: A002
    r"""Filtered back-projection :math:`x = A^T (h * y)` with a ramp filter :math:`h` (windowed).

    Args:
        physics: a CT operator with an ``fbp`` method (``ParallelBeamCT`` / ``FanBeamCT``).
        y: sinogram (B, C, n_angles, n_detectors), real, in the units of the line integrals.
        filter: ramp window: ``"ram-lak"`` (none), ``"shepp-logan"``, ``"cosine"`` or ``"hann"``.

    Returns:
        ``(x, info)``: x of shape (B, C, N, N) (attenuation per pixel side); ``info`` a
        :class:`~recon.result.ReconInfo` of a closed-form method (empty history, ``n_iter = 0``,
        ``stop_reason = "closed form"``) with ``params = {"filter": filter}``.

    Example:
        >>> x, info = recon.fbp(physics, y, filter="hann")
    """
    t0 = time.perf_counter()
    y = check_problem(physics, y)
    if not hasattr(physics, "fbp"):
        raise TypeError(f"physics: expected a CT operator with an fbp method, received {type(physics).__name__}")
    return physics.fbp(y, filter=filter), ReconInfo.closed_form(t0, {"filter": filter})


def tikhonov(
    physics: LinearPhysics,
    y: torch.Tensor,
    *,
    alpha: float | None = None,
    noise_level: float | None = None,
    noise_std: float | None = None,
    rule: str = "discrepancy",
    tau: float = 1.01,
    cg_iter: int = 100,
    cg_tol: float = 1e-5,
    n_probes: int = 4,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""Tikhonov with a gradient penalty: :math:`\arg\min_x \tfrac12\|Ax - y\|^2 + \tfrac\alpha2\|Dx\|^2`.

    Solved from the normal equations :math:`M_\alpha x = A^T y`,
    :math:`M_\alpha = A^T A + \alpha D^T D`, by conjugate gradients (deepinv's CG through
    :func:`recon.solvers.solve_spd`); :math:`D` is the forward-difference gradient. The
    parameter is fixed, or chosen per batch element by

    * ``rule="discrepancy"`` (needs ``noise_level`` or ``noise_std``): :math:`\|Ax - y\| = \tau\|e\|`,
      a root search in :math:`\log\alpha` (:func:`recon.parameter_choice.discrepancy_alpha`)
      started at :math:`\alpha_0 = r\,\|A\|^2 / \|D\|^2` (r the relative noise level);
    * ``rule="gcv"`` (no noise estimate): generalized cross-validation,
      :math:`\alpha = \arg\min\, m\|Ax_\alpha - y\|^2 / (m - \mathrm{tr}(A M_\alpha^{-1} A^T))^2`,
      the trace estimated by Hutchinson's estimator on ``n_probes`` fixed Rademacher probes (one
      extra CG solve per probe and trial alpha), searched over six decades around
      :math:`\|A\|^2 / \|D\|^2`.

    Args:
        physics: linear operator A, images (B, C, N, N) (the shape it declares).
        y: measurements (B, C, ...) with m entries per batch element, real.
        alpha: fixed parameter (dimensionless weight on :math:`\|Dx\|^2`); exclusive with the rules.
        noise_level: relative noise :math:`\|e\| / \|Ax\|`, for ``rule="discrepancy"``.
        noise_std: absolute noise std per entry of ``y`` (units of ``y``), instead of ``noise_level``.
        rule: ``"discrepancy"`` or ``"gcv"``; used when ``alpha`` is None.
        tau: discrepancy safety factor (>= 1).
        cg_iter: CG iterations per solve (warm-started across trial alphas).
        cg_tol: relative CG tolerance.
        n_probes: Hutchinson probes for ``rule="gcv"``.

    Returns:
        ``(x, info)``: x of shape (B, C, N, N); ``info`` a :class:`~recon.result.ReconInfo` of a
        closed-form method (empty history, ``n_iter = 0``) with

        * ``params["alpha"]``: one alpha per batch element (list), ``params["rule"]``:
          ``"fixed"``, ``"discrepancy"`` or ``"gcv"``; with the discrepancy rule also ``tau`` and
          ``noise_level`` / ``noise_std`` (lists, per batch element, both words);
        * ``extra["trials"]``: per batch element, the (alpha, misfit or GCV value) pairs evaluated.

    Example:
        >>> x, info = recon.tikhonov(physics, y, noise_level=0.02)
        >>> x, info = recon.tikhonov(physics, y, rule="gcv")
        >>> info.params["alpha"]
    """
    t0 = time.perf_counter()
    y = check_problem(physics, y)
    check_option("rule", rule, ("discrepancy", "gcv"))
    if rule == "gcv" and alpha is None:
        if noise_level is not None or noise_std is not None:
            raise ValueError(
                "noise_level / noise_std: expected None with rule='gcv' (GCV needs no noise estimate), "
                f"received noise_level={noise_level!r}, noise_std={noise_std!r}"
            )
        noise = None
    else:
        noise = alpha_or_noise(physics, y, alpha=alpha, noise_level=noise_level, noise_std=noise_std)

    def solve(a: float, rhs: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
        op = lambda v: physics.A_adjoint(physics.A(v)) + a * gradient_adjoint(gradient(v))  # noqa: E731
        return solve_spd(op, rhs, x0=x0, max_iter=cg_iter, tol=cg_tol)

    if alpha is not None:
        a = check_positive("alpha", alpha)
        x = solve(a, physics.A_adjoint(y), None)
        return x, ReconInfo.closed_form(t0, {"alpha": [a] * y.shape[0], "rule": "fixed"}, trials=[])
    check_positive("tau", tau)
    like = torch.zeros((1, *image_shape(physics)), dtype=y.dtype, device=y.device)
    scale = op_norm(physics, x0=like, max_iter=30, tol=1e-3) ** 2 / GRADIENT_SQNORM_2D
    outs, alphas, trials = [], [], []
    for b in range(y.shape[0]):
        yb = y[b : b + 1]
        rhs = physics.A_adjoint(yb)
        if rule == "discrepancy":
            res = discrepancy_alpha(
                lambda a, x0: solve(a, rhs, x0),
                lambda x: float((physics.A(x) - yb).norm()),
                tau * float(noise.norm[b]),
                scale * float(noise.level[b]),
            )
            best, tried = res.alpha, res.trials
            outs.append(res.x)
        else:
            best, tried, x_best = _gcv_search(physics, yb, rhs, solve, scale, n_probes)
            outs.append(x_best)
        alphas.append(best)
        trials.append(tried)
    params = {"alpha": alphas, "rule": rule, **discrepancy_params(noise, tau)}
    return torch.cat(outs), ReconInfo.closed_form(t0, params, trials=trials)


def _gcv_search(physics: LinearPhysics, yb: torch.Tensor, rhs: torch.Tensor, solve, scale: float, n_probes: int):
    """GCV over alpha in [scale * 1e-4, scale * 1e2] for one batch element; (alpha, trials, x)."""
    if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 1:
        raise ValueError(f"n_probes: expected an integer >= 1, received {n_probes!r}")
    gen = torch.Generator().manual_seed(0)
    probes = [(2 * torch.randint(0, 2, yb.shape, generator=gen) - 1).to(yb) for _ in range(n_probes)]
    probe_rhs = [physics.A_adjoint(z) for z in probes]
    warm: dict[str, torch.Tensor | None] = {"x": None, **{f"p{k}": None for k in range(n_probes)}}
    sols: dict[float, torch.Tensor] = {}
    m = yb.numel()

    def gcv(a: float) -> float:
        warm["x"] = solve(a, rhs, warm["x"])
        sols[a] = warm["x"]
        trace = 0.0
        for k, (z, r) in enumerate(zip(probes, probe_rhs)):
            warm[f"p{k}"] = solve(a, r, warm[f"p{k}"])
            trace += float((z * physics.A(warm[f"p{k}"])).sum()) / n_probes
        return m * float((physics.A(warm["x"]) - yb).pow(2).sum()) / (m - trace) ** 2

    best, tried = minimize_log_alpha(gcv, scale * 1e-4, scale * 1e2)
    return best, tried, sols[best]


def tv(
    physics: LinearPhysics,
    y: torch.Tensor,
    *,
    alpha: float | None = None,
    noise_level: float | None = None,
    noise_std: float | None = None,
    tau: float = 1.01,
    nonneg: bool = True,
    max_iter: int = 500,
    tol: float = 1e-4,
    x0: torch.Tensor | None = None,
    step_ratio: float = 0.01,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""Isotropic TV reconstruction by Chambolle-Pock (PDHG) with :math:`K = [A / s;\ D]`.

    .. math::
        \text{fixed } \alpha:&\quad \arg\min_x \tfrac12\|Ax - y\|^2 + \alpha\,TV(x)
            \quad [+\ \iota_{x \ge 0}]\\
        \text{discrepancy}:&\quad \arg\min_x TV(x) \ \text{ s.t. }\ \|Ax - y\| \le \tau\|e\|
            \quad [+\ \iota_{x \ge 0}]

    with :math:`TV(x) = \sum_p \|(Dx)_p\|_2`. The second is the penalised problem with the alpha
    that the discrepancy principle picks; that alpha is recovered from the dual variable :math:`q`
    of the data block: :math:`\alpha = s\|Ax - y\| / \|q\|`. The scale :math:`s = \|A\| / \|D\|`
    balances the two blocks so one step size pair fits both
    (:func:`recon.methods.analysis_prior.reconstruct`).

    Args:
        physics: linear operator A, images (B, C, N, N) (the shape it declares).
        y: measurements (B, ...), real.
        alpha: fixed TV weight (units of the data misfit per unit of TV); give this OR a noise
            estimate (``noise_level`` or ``noise_std``).
        noise_level: relative noise :math:`\|e\| / \|Ax\|` for the discrepancy principle.
        noise_std: absolute noise std per entry of ``y`` (units of ``y``), instead of ``noise_level``.
        tau: discrepancy safety factor.
        nonneg: constrain :math:`x \ge 0` (attenuation images are non-negative).
        max_iter: PDHG iterations at most.
        tol: stop when the relative change of both the image and the dual variable is <= tol.
        x0: initial image (B, C, N, N) (default: zeros).
        step_ratio: primal/dual step ratio r: tau = r c / ||K||, sigma = c / (r ||K||), c = 0.99.
        progress: tqdm bar (default: when attached to a terminal).
        reference: ground truth used ONLY to record PSNR in the history.

    Returns:
        ``(x, info)``: x of shape (B, C, N, N); ``info`` a :class:`~recon.result.ReconInfo` with
        the PDHG ``history`` (objective, relative change, PSNR with a ``reference``), ``n_iter``,
        ``converged``, ``stop_reason``, ``seconds``, and ``params``: ``alpha`` (one per batch
        element, given or chosen), ``nonneg``, and with a noise estimate ``tau``, ``noise_level``
        and ``noise_std`` (lists, per batch element).

    Example:
        >>> x, info = recon.tv(physics, y, noise_level=0.02)
        >>> info.params["alpha"], info.n_iter, info.converged
    """
    t0 = time.perf_counter()
    y = check_problem(physics, y)
    noise = alpha_or_noise(physics, y, alpha=alpha, noise_level=noise_level, noise_std=noise_std)
    x, alphas, hist = reconstruct(
        physics, y, TV_PRIOR, alpha=alpha, noise=noise, tau=tau, nonneg=nonneg, max_iter=max_iter, tol=tol, x0=x0,
        step_ratio=step_ratio, progress=progress, reference=reference,
    )
    return x, ReconInfo.from_history(hist, t0, {"alpha": alphas, "nonneg": nonneg, **discrepancy_params(noise, tau)})
