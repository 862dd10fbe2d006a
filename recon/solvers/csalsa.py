r"""C-SALSA: ADMM for a regularizer under a data-fidelity ball constraint (Afonso et al. 2011).

Problem, with :math:`A` linear and :math:`\epsilon \ge 0`:

.. math::
    \min_x\ \Phi(x) \quad\text{s.t.}\quad \|y - Ax\|_2 \le \epsilon .

Splitting :math:`v_1 = x`, :math:`v_2 = Ax` with penalties :math:`\kappa\mu` and :math:`\mu`
gives, with scaled duals :math:`d_1, d_2` (the form of Oral & Oktem 2024, eq. 14-18):

.. math::
    x &\leftarrow (\kappa I + A^H A)^{-1}\big(\kappa (v_1 + d_1) + A^H (v_2 + d_2)\big)
        &&\text{(a few warm-started CG steps)}\\
    v_1 &\leftarrow \mathrm{prox}(x - d_1) &&\text{(any prox or denoiser of }\Phi\text{)}\\
    v_2 &\leftarrow y + \Pi_{\|\cdot\| \le \epsilon}(Ax - d_2 - y) &&\text{(projection on the ball)}\\
    d_1 &\leftarrow d_1 - (x - v_1), \qquad d_2 \leftarrow d_2 - (Ax - v_2).

The stopping quantity (history ``residual``) is the relative change of the magnitude,
:math:`\||x^{k+1}| - |x^k|\| / \||x^k|\|`, the paper's criterion; it also works for real ``x``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from operators._validate import check_positive, check_tensor

from .base import IterativeSolver, as_linear_operator, check_callable, check_count, solver_keywords
from .cg import solve_spd

__all__ = ["CSALSA", "project_ball"]


def project_ball(v: torch.Tensor, radius: float) -> torch.Tensor:
    r"""Projection of ``v`` (the whole tensor, batch included) on :math:`\{\|v\|_2 \le r\}`."""
    n = float(torch.linalg.vector_norm(v))
    return v if n <= radius else v * (radius / n)


class CSALSA(IterativeSolver):
    r"""Constrained split augmented Lagrangian shrinkage algorithm (see the module docstring).

    Args:
        physics_or_A: a ``LinearPhysics`` or a callable ``x -> A x`` (real or complex).
        y: measurements, the shape ``A`` returns.
        epsilon: radius of the data ball :math:`\|y - Ax\| \le \epsilon` (units of ``y``), >= 0.
        prox: ``prox(v) -> v1``: the prox of :math:`\Phi / (\kappa\mu)` or a denoiser standing in
            for it (the step size is folded into ``prox``: its threshold / noise level).
        A_adjoint: adjoint callable when ``physics_or_A`` is a callable.
        kappa: weight :math:`\kappa > 0` of the :math:`v_1 = x` constraint relative to
            :math:`v_2 = Ax` (units of :math:`\|A\|^2`).
        cg_iter: CG iterations per x-step (warm-started from the previous ``x``).
        max_iter, tol, progress, reference, callback: see
            :class:`~recon.solvers.base.IterativeSolver`; ``tol`` bounds the relative change of
            :math:`|x|`.

    After ``run``, ``solver.state`` holds ``x``, ``v1``, ``v2``, ``d1``, ``d2`` and ``Ax``.

    Example:
        Basis pursuit denoising :math:`\min\|x\|_1` s.t. :math:`\|y - Ax\| \le \epsilon`::

            soft = lambda v: torch.sign(v) * torch.clamp(v.abs() - 0.01, min=0)
            x, hist = CSALSA(physics, y, eps, soft, kappa=1.0, max_iter=300).run(physics.A_adjoint(y))
    """

    @solver_keywords(tol=5e-4)
    def __init__(
        self,
        physics_or_A: object,
        y: torch.Tensor,
        epsilon: float,
        prox: Callable[[torch.Tensor], torch.Tensor],
        *,
        A_adjoint: Callable[[torch.Tensor], torch.Tensor] | None = None,
        kappa: float = 1.0,
        cg_iter: int = 5,
    ):
        self.A, self.AT = as_linear_operator("physics_or_A", physics_or_A, A_adjoint, "A_adjoint")
        self.y = check_tensor("y", y, real=False)
        self.epsilon = check_positive("epsilon", epsilon, allow_zero=True)
        self.prox = check_callable("prox", prox)
        self.kappa = check_positive("kappa", kappa)
        self.cg_iter = check_count("cg_iter", cg_iter)
        self.state: dict = {}

    def init_state(self, x0: torch.Tensor) -> dict:
        """``x = x0``, ``d1 = d2 = 0``, then the v- and d-updates (so the first x-step moves)."""
        x = check_tensor("x0", x0, real=False).clone()
        ax = self.A(x)
        self.state = {"d1": torch.zeros_like(x), "d2": torch.zeros_like(ax)}
        self._split_updates(self.state, x, ax)
        return self.state

    def _split_updates(self, state: dict, x: torch.Tensor, ax: torch.Tensor) -> None:
        """v1, v2 and the dual updates for a new ``x`` (``ax = A x``), in ``state``."""
        d1, d2 = state["d1"], state["d2"]
        v1 = self.prox(x - d1)
        v2 = self.y + project_ball(ax - d2 - self.y, self.epsilon)
        state.update(x=x, Ax=ax, v1=v1, v2=v2, d1=d1 - (x - v1), d2=d2 - (ax - v2))

    def step(self, state: dict) -> tuple[float, float]:
        x_prev = state["x"]
        kappa = self.kappa
        rhs = kappa * (state["v1"] + state["d1"]) + self.AT(state["v2"] + state["d2"])
        x = solve_spd(lambda z: kappa * z + self.AT(self.A(z)), rhs, x0=x_prev, max_iter=self.cg_iter, tol=1e-12)
        self._split_updates(state, x, self.A(x))
        mag_prev = x_prev.abs()
        change = float(torch.linalg.vector_norm(x.abs() - mag_prev)) / max(float(torch.linalg.vector_norm(mag_prev)), 1e-30)
        return float("nan"), change
