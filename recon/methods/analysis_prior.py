"""Reconstruction with an analysis prior R(Lx) by PDHG: the engine behind ``tv`` and ``graphla``.

Problems solved, for a linear operator A, a regularization operator L (finite differences, a
graph Laplacian, ...) and a norm-like R whose conjugate's prox is a projection:

    fixed alpha:   argmin_x 1/2 ||A x - y||^2 + alpha R(L x)          [+ indicator(x >= 0)]
    discrepancy:   argmin_x R(L x)   s.t.  ||A x - y|| <= tau * ||e||  [+ x >= 0]

The second is the penalised problem at the alpha the discrepancy principle picks; that alpha is
read from the dual q of the data block at the end: alpha = s ||A x - y|| / ||q||.
Chambolle-Pock runs on K = [A / s; L] with s = ||A|| / ||L||, so one step pair fits both blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from deepinv.physics import LinearPhysics

from operators._validate import check_positive, check_tensor
from recon.noise import noise_norm_estimate
from recon.solvers import PDHG, History, op_norm

#: PDHG steps: tau = r c / ||K||, sigma = c / (r ||K||)
_STEP_SAFETY = 0.99


@dataclass(frozen=True)
class AnalysisPrior:
    """R(L x) described by what PDHG needs.

    Attributes:
        op: L, image (B, C, N, M) -> coefficients (any shape).
        adjoint: L^T, coefficients -> image.
        norm: an upper estimate of ||L||_2.
        project: ``project(p, radius)``: projection onto {p : R^*(p / radius) <= 0}, i.e. the prox of
            the conjugate of ``radius * R`` (pixel-wise l2 ball for isotropic TV, a box for l1).
        value: ``value(Lx) -> (B,)`` tensor, R per batch element, for the objective history.
    """

    op: Callable[[torch.Tensor], torch.Tensor]
    adjoint: Callable[[torch.Tensor], torch.Tensor]
    norm: float
    project: Callable[[torch.Tensor, float | torch.Tensor], torch.Tensor]
    value: Callable[[torch.Tensor], torch.Tensor]


def check_problem(physics: object, y: object) -> torch.Tensor:
    """Validate ``physics`` (a deepinv ``LinearPhysics``) and the measurements ``y``."""
    if not isinstance(physics, LinearPhysics):
        raise TypeError(f"physics: expected a deepinv LinearPhysics, received {type(physics).__name__}")
    return check_tensor("y", y)


def check_exclusive(alpha: float | None, noise_level: float | None) -> None:
    """Exactly one of a fixed ``alpha`` and a ``noise_level`` (discrepancy principle)."""
    if (alpha is None) == (noise_level is None):
        raise ValueError(
            f"alpha / noise_level: expected exactly one of them (alpha fixed, or noise_level for the "
            f"discrepancy principle), received alpha={alpha!r}, noise_level={noise_level!r}"
        )


def reconstruct(
    physics: LinearPhysics,
    y: torch.Tensor,
    prior: AnalysisPrior,
    alpha: float | None,
    noise_level: float | None,
    tau: float,
    nonneg: bool,
    max_iter: int,
    tol: float,
    x0: torch.Tensor | None,
    step_ratio: float,
    progress: bool | None,
    reference: torch.Tensor | None,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[float], History]:
    """Solve the fixed-alpha or the discrepancy problem of the module docstring by PDHG.

    Args:
        physics: A, images (B, C, N, M).
        y: measurements (validated by the caller).
        prior: the analysis prior R(L x).
        alpha, noise_level: exactly one (see :func:`check_exclusive`).
        tau: discrepancy safety factor.
        nonneg: constrain x >= 0.
        max_iter, tol: PDHG budget and relative-change tolerance (image and dual).
        x0: start (default zeros).
        step_ratio: primal/dual step ratio r.
        progress, reference: see :class:`recon.solvers.PDHG`.
        weights: optional non-negative weights on R's coefficients (shape of the projection's
            radius), giving R_w(Lx) = R(w * Lx) for reweighting schemes.

    Returns:
        ``(x, alphas, history)``, one alpha per batch element.
    """
    check_exclusive(alpha, noise_level)
    b = y.shape[0]
    shape_b = (b,) + (1,) * (y.ndim - 1)
    x_init = torch.zeros_like(physics.A_adjoint(y)) if x0 is None else check_tensor("x0", x0)
    s = op_norm(physics, x0=x_init, max_iter=30, tol=1e-3) / prior.norm
    ys = y / s
    if alpha is not None:
        weight, radius = check_positive("alpha", alpha), None
    else:
        check_positive("noise_level", noise_level)
        weight = 1.0
        radius = (check_positive("tau", tau) * noise_norm_estimate(y, noise_level) / s).reshape(shape_b)
    bound = weight if weights is None else weight * weights

    def prox_f_conj(dual: list[torch.Tensor], sigma: float) -> list[torch.Tensor]:
        q, p = dual
        w = q - sigma * ys
        if radius is None:  # f1 = s^2/2 ||. - y/s||^2  ->  prox of sigma f1*
            q = w / (1.0 + sigma / s**2)
        else:  # f1 = indicator of the ball of radius tau ||e|| / s  ->  vector soft threshold
            nw = w.reshape(b, -1).norm(dim=1).reshape(shape_b)
            q = w * torch.clamp(1.0 - sigma * radius / torch.clamp(nw, min=1e-30), min=0.0)
        return [q, prior.project(p, bound)]

    def K(x: torch.Tensor) -> list[torch.Tensor]:
        return [physics.A(x) / s, prior.op(x)]

    def K_adjoint(dual: list[torch.Tensor]) -> torch.Tensor:
        return physics.A_adjoint(dual[0]) / s + prior.adjoint(dual[1])

    def prox_g(v: torch.Tensor, step: float) -> torch.Tensor:
        return torch.clamp(v, min=0.0) if nonneg else v

    def objective(x: torch.Tensor) -> float:
        lx = prior.op(x)
        reg = float(prior.value(lx if weights is None else weights * lx).sum())
        return reg if radius is not None else 0.5 * float((physics.A(x) - y).pow(2).sum()) + weight * reg

    step = _STEP_SAFETY / (math.sqrt(2.0) * prior.norm)
    ratio = check_positive("step_ratio", step_ratio)
    solver = PDHG(
        K, K_adjoint, prox_g, prox_f_conj, tau=step * ratio, sigma=step / ratio, objective=objective,
        max_iter=max_iter, tol=tol, progress=progress, reference=reference,
    )
    x, hist = solver.run(x_init)
    if radius is None:
        return x, [weight] * b, hist
    q = solver.last_dual[0]
    mis = (physics.A(x) - y).reshape(b, -1).norm(dim=1)
    return x, (s * mis / q.reshape(b, -1).norm(dim=1).clamp(min=1e-30)).tolist(), hist
