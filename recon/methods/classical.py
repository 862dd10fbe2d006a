"""Classical reconstructions: FBP, Tikhonov (gradient penalty) and isotropic TV.

Noise convention (everywhere in regrecon): ``noise_level = ||e|| / ||A x||``. From noisy data the
noise norm is estimated as ``delta = noise_level * ||y|| / sqrt(1 + noise_level^2)``
(:func:`recon.noise.noise_norm_estimate`), and the discrepancy principle targets
``||A x - y|| = tau * delta``.
"""

from __future__ import annotations

import math

import torch
from deepinv.physics import LinearPhysics

from operators._validate import check_option, check_positive
from recon.noise import noise_norm_estimate
from recon.parameter_choice import discrepancy_alpha, minimize_log_alpha
from recon.methods.analysis_prior import AnalysisPrior, check_exclusive, check_problem, reconstruct
from recon.regularizers.tv import GRADIENT_SQNORM_2D, gradient, gradient_adjoint, l21_norm, project_l2_ball_pixelwise
from recon.solvers import op_norm, solve_spd


#: isotropic TV as an analysis prior: L = forward differences, R = sum of pixel-wise l2 norms
TV_PRIOR = AnalysisPrior(
    op=gradient,
    adjoint=gradient_adjoint,
    norm=math.sqrt(GRADIENT_SQNORM_2D),
    project=project_l2_ball_pixelwise,
    value=l21_norm,
)


def fbp(physics: LinearPhysics, y: torch.Tensor, filter: str = "ram-lak") -> tuple[torch.Tensor, dict]:
    """Filtered back-projection.

    Args:
        physics: a CT operator with an ``fbp`` method (``ParallelBeamCT`` / ``FanBeamCT``).
        y: sinogram (B, C, n_angles, n_detectors).
        filter: "ram-lak", "shepp-logan", "cosine" or "hann".

    Returns:
        ``(x, info)`` with x of shape (B, C, N, N) and ``info = {"filter": filter}``.

    Example:
        >>> x, _ = recon.fbp(physics, y, filter="hann")
    """
    check_problem(physics, y)
    if not hasattr(physics, "fbp"):
        raise TypeError(f"physics: expected a CT operator with an fbp method, received {type(physics).__name__}")
    return physics.fbp(y, filter=filter), {"filter": filter}


def tikhonov(
    physics: LinearPhysics,
    y: torch.Tensor,
    alpha: float | None = None,
    noise_level: float | None = None,
    rule: str = "discrepancy",
    tau: float = 1.01,
    cg_iter: int = 100,
    cg_tol: float = 1e-5,
    n_probes: int = 4,
) -> tuple[torch.Tensor, dict]:
    """Tikhonov with a gradient penalty: argmin_x 1/2 ||A x - y||^2 + alpha/2 ||D x||^2.

    Solved from the normal equations M_alpha x = A^T y, M_alpha = A^T A + alpha D^T D, by
    conjugate gradients (deepinv's CG through :func:`recon.solvers.solve_spd`); D is the
    forward-difference gradient. The parameter is fixed, or chosen per batch element by

    * ``rule="discrepancy"`` (needs ``noise_level``): ||A x - y|| = tau * ||e||;
    * ``rule="gcv"`` (no noise level needed): generalized cross-validation,
      alpha = argmin m ||A x_alpha - y||^2 / (m - tr(A M_alpha^{-1} A^T))^2, with the trace
      estimated by Hutchinson's estimator on ``n_probes`` fixed Rademacher probes (one extra CG
      solve per probe and trial alpha), searched over six decades around ||A||^2 / ||D||^2.

    Args:
        physics: linear operator A, images (B, C, N, N).
        y: measurements (B, C, ...) with m entries per batch element, real.
        alpha: fixed parameter (dimensionless weight on ||Dx||^2); exclusive with the rules.
        noise_level: relative noise ||e|| / ||A x||, for ``rule="discrepancy"``.
        rule: "discrepancy" or "gcv"; used when ``alpha`` is None.
        tau: discrepancy safety factor (>= 1).
        cg_iter: CG iterations per solve (warm-started across trial alphas).
        cg_tol: relative CG tolerance.
        n_probes: Hutchinson probes for ``rule="gcv"``.

    Returns:
        ``(x, info)``; ``info["alpha"]`` is a list of one alpha per batch element, ``info["rule"]``
        the rule used and ``info["trials"]`` the (alpha, misfit or GCV value) pairs evaluated.

    Example:
        >>> x, info = recon.tikhonov(physics, y, noise_level=0.02)
        >>> x, info = recon.tikhonov(physics, y, rule="gcv")
    """
    y = check_problem(physics, y)
    check_option("rule", rule, ("discrepancy", "gcv"))
    if rule == "discrepancy" or alpha is not None:
        check_exclusive(alpha, noise_level)
    elif noise_level is not None:
        raise ValueError(f"noise_level: expected None with rule='gcv' (GCV needs no noise level), received {noise_level!r}")

    def solve(a: float, rhs: torch.Tensor, x0: torch.Tensor | None) -> torch.Tensor:
        op = lambda v: physics.A_adjoint(physics.A(v)) + a * gradient_adjoint(gradient(v))  # noqa: E731
        return solve_spd(op, rhs, x0=x0, max_iter=cg_iter, tol=cg_tol)

    if alpha is not None:
        a = check_positive("alpha", alpha)
        return solve(a, physics.A_adjoint(y), None), {"alpha": [a] * y.shape[0], "rule": "fixed", "trials": []}
    check_positive("tau", tau)
    scale = op_norm(physics, x0=physics.A_adjoint(y[:1]), max_iter=30, tol=1e-3) ** 2 / GRADIENT_SQNORM_2D
    outs, alphas, trials = [], [], []
    for b in range(y.shape[0]):
        yb = y[b : b + 1]
        rhs = physics.A_adjoint(yb)
        if rule == "discrepancy":
            check_positive("noise_level", noise_level)
            target = tau * float(noise_norm_estimate(yb, noise_level)[0])
            res = discrepancy_alpha(
                lambda a, x0: solve(a, rhs, x0), lambda x: float((physics.A(x) - yb).norm()), target, scale * noise_level
            )
            best, tried = res.alpha, res.trials
            outs.append(res.x)
        else:
            best, tried, x_best = _gcv_search(physics, yb, rhs, solve, scale, n_probes)
            outs.append(x_best)
        alphas.append(best)
        trials.append(tried)
    return torch.cat(outs), {"alpha": alphas, "rule": rule, "trials": trials}


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
    alpha: float | None = None,
    noise_level: float | None = None,
    tau: float = 1.01,
    nonneg: bool = True,
    max_iter: int = 500,
    tol: float = 1e-4,
    x0: torch.Tensor | None = None,
    step_ratio: float = 0.01,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    """Isotropic TV reconstruction by Chambolle-Pock (PDHG) with K = [A / s; D].

    Fixed alpha:   argmin_x 1/2 ||A x - y||^2 + alpha TV(x)  [+ indicator(x >= 0)].
    Discrepancy:   argmin_x TV(x)  s.t.  ||A x - y|| <= tau * ||e||   [+ x >= 0],
    which is the penalised problem with the alpha that the discrepancy principle picks; that
    alpha is recovered from the dual variable q of the data block: alpha = s ||A x - y|| / ||q||.
    The scale s = ||A|| / ||D|| balances the two blocks so one step size pair fits both.

    Args:
        physics: linear operator A, images (B, C, N, N).
        y: measurements, real.
        alpha: fixed TV weight (units of the data misfit per unit of TV); give this OR
            ``noise_level``.
        noise_level: relative noise ||e|| / ||A x|| for the discrepancy principle.
        tau: discrepancy safety factor.
        nonneg: constrain x >= 0 (attenuation images are non-negative).
        max_iter: PDHG iterations at most.
        tol: stop when the relative change of both the image and the dual variable is <= tol.
        x0: initial image (default: zeros).
        step_ratio: primal/dual step ratio r: tau = r c / ||K||, sigma = c / (r ||K||), c = 0.99.
        progress: tqdm bar (default: when attached to a terminal).
        reference: ground truth used ONLY to record PSNR in the history.

    Returns:
        ``(x, info)`` with ``info["alpha"]`` (one per batch element), ``info["history"]`` and
        ``info["iterations"]``.

    Example:
        >>> x, info = recon.tv(physics, y, noise_level=0.02)
    """
    y = check_problem(physics, y)
    x, alphas, hist = reconstruct(
        physics, y, TV_PRIOR, alpha, noise_level, tau, nonneg, max_iter, tol, x0, step_ratio, progress, reference
    )
    return x, {"alpha": alphas, "history": hist, "iterations": hist.iterations}
