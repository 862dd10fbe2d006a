r"""Conjugate gradients for Hermitian positive (semi)definite systems and linear least squares.

Three entry points:

* :class:`CG` solves :math:`\mathcal{A} x = b` for a Hermitian positive (semi)definite
  :math:`\mathcal{A}`, one recorded iteration at a time (objective, residual, time, PSNR).
* :class:`CGLS` solves :math:`\min_x \|Ax-y\|_2^2 + \lambda^2\|x\|_2^2` (CG on the normal
  equations without forming :math:`A^H A`), with the same per-iteration history.
* :func:`solve_spd` is the silent inner solver (ADMM x-steps, Tikhonov); it wraps
  ``deepinv.optim.linear.conjugate_gradient``, since an inner solve needs no history.

The two classes implement the CG recursion themselves because the shared
:class:`~recon.solvers.base.IterativeSolver` loop needs one iteration per ``step``; deepinv's
function runs the whole loop in one call.

All three treat the whole tensor, batch dimension included, as ONE vector: inner products
:math:`\mathrm{Re}\,\langle a, b\rangle = \mathrm{Re}\sum \bar a_i b_i` run over every entry, so a
batch of B problems is solved as one block-diagonal problem (exact for CG in exact arithmetic,
with a stopping test on the joint residual). Real and complex dtypes are both supported.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from deepinv.optim.linear import conjugate_gradient

from operators._validate import check_positive, check_tensor

from .base import History, IterativeSolver, as_linear_operator, check_callable, inner, norm, solver_keywords

__all__ = ["CG", "CGLS", "solve_spd"]

_RECOMPUTE_EVERY = 50  # recompute the true residual b - A x this often to stop drift


def _tiny(x: torch.Tensor) -> float:
    return torch.finfo(x.real.dtype).tiny


def _check_x0(x0: torch.Tensor | None, like: torch.Tensor, what: str) -> torch.Tensor:
    """Zero start or a validated copy of ``x0`` with the shape and dtype of ``like``."""
    if x0 is None:
        return torch.zeros_like(like)
    check_tensor("x0", x0, real=False)
    if x0.shape != like.shape or x0.dtype != like.dtype:
        raise ValueError(
            f"x0: expected shape {tuple(like.shape)} and dtype {like.dtype} (those of {what}), "
            f"received shape {tuple(x0.shape)} and dtype {x0.dtype}"
        )
    return x0.clone()


class CG(IterativeSolver):
    r"""Conjugate gradients for :math:`\mathcal{A} x = b`, :math:`\mathcal{A}` Hermitian PSD.

    Minimises the energy :math:`E(x) = \tfrac12 \mathrm{Re}\langle x, \mathcal{A}x\rangle -
    \mathrm{Re}\langle b, x\rangle` (recorded as the objective, computed from the residual at no
    extra cost as :math:`-\tfrac12\mathrm{Re}(\langle x, b\rangle + \langle x, r\rangle)`).

    History residual: :math:`\|r_k\|/\|b\|` with :math:`r_k = b - \mathcal{A}x_k` (``||b|| = 0``
    is replaced by 1). The recursive residual is replaced by the true one every 50 iterations.
    For a semidefinite :math:`\mathcal{A}` the system must be consistent (``b`` in its range);
    a direction with :math:`\langle p, \mathcal{A}p\rangle \le 0` while ``r != 0`` raises
    ``ValueError`` (the operator is not PSD, or the system is inconsistent).

    Args:
        apply_A: the operator ``x -> A x``; same shape and dtype in and out.
        b: right-hand side, any shape (B, C, ...), real or complex; its shape and dtype are the
            solution's.
        max_iter: maximum number of iterations.
        tol: stop when ``||r|| / ||b|| <= tol``.
        progress, reference, callback: see :class:`~recon.solvers.base.IterativeSolver`.

    Example:
        >>> M = torch.randn(5, 5, dtype=torch.float64); M = M @ M.T + torch.eye(5, dtype=torch.float64)
        >>> b = torch.randn(5, dtype=torch.float64)
        >>> x, hist = CG(lambda v: M @ v, b, tol=1e-10).run()
        >>> torch.allclose(M @ x, b)
        True
    """

    @solver_keywords(tol=1e-6)
    def __init__(self, apply_A: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor):
        self.apply_A = check_callable("apply_A", apply_A)
        self.b = check_tensor("b", b, real=False)
        self.b_norm = float(norm(b)) or 1.0

    def run(self, x0: torch.Tensor | None = None) -> tuple[torch.Tensor, History]:
        """Iterate from ``x0`` (default zero); see :meth:`IterativeSolver.run`."""
        return super().run(x0)

    def init_state(self, x0: torch.Tensor | None) -> dict:
        x = _check_x0(x0, self.b, "b")
        r = self.b - self.apply_A(x) if x0 is not None else self.b.clone()
        return {"x": x, "r": r, "p": r.clone(), "rs": inner(r, r), "k": 0}

    def step(self, state: dict) -> tuple[float, float]:
        x, r, p, rs = state["x"], state["r"], state["p"], state["rs"]
        if float(rs) == 0.0:  # exact solution already: nothing left to do
            state["stop"] = "exact solution (zero residual)"
            state["converged"] = True
            return self._energy(x, r), 0.0
        Ap = self.apply_A(p)
        pAp = inner(p, Ap)
        if float(pAp) <= 0.0:  # (NaN passes on, and the base loop reports it)
            raise ValueError(
                "apply_A: expected a Hermitian positive (semi)definite operator and a consistent system, "
                f"received a search direction with <p, A p> = {float(pAp):.3e} while ||r|| = {float(rs) ** 0.5:.3e}"
            )
        alpha = rs / pAp
        x.add_(alpha * p)
        state["k"] += 1
        if state["k"] % _RECOMPUTE_EVERY == 0:
            r = self.b - self.apply_A(x)
        else:
            r = r - alpha * Ap
        rs_new = inner(r, r)
        state["p"] = r + (rs_new / rs) * p
        state["r"], state["rs"] = r, rs_new
        return self._energy(x, r), float(rs_new) ** 0.5 / self.b_norm

    def _energy(self, x: torch.Tensor, r: torch.Tensor) -> float:
        return float(-0.5 * (inner(x, self.b) + inner(x, r)))


class CGLS(IterativeSolver):
    r"""CGLS for damped linear least squares.

    Solves

    .. math::
        \min_x\ \tfrac12\|A x - y\|_2^2 + \tfrac12\lambda^2 \|x\|_2^2,
        \qquad\text{i.e.}\qquad (A^H A + \lambda^2 I)\,x = A^H y,

    with ``damp`` :math:`=\lambda` (the problem ``scipy.sparse.linalg.lsqr(A, y, damp=λ)`` solves),
    by conjugate gradients on the normal equations without forming :math:`A^H A`: one
    :math:`A` and one :math:`A^H` per iteration.

    History objective: :math:`\tfrac12\|Ax-y\|^2 + \tfrac12\lambda^2\|x\|^2`.
    History residual: the relative normal-equation residual
    :math:`\|A^H(y - Ax) - \lambda^2 x\| / \|A^H y\|` (``||A^H y|| = 0`` is replaced by 1).

    Args:
        physics_or_A: a ``deepinv.physics.LinearPhysics`` (its ``A``/``A_adjoint`` are used) or a
            callable ``x -> A x``.
        y: measurements, the shape and dtype ``A`` returns.
        A_adjoint: the adjoint callable ``y -> A^H y``; required when ``physics_or_A`` is a callable.
        damp: :math:`\lambda \ge 0`, in units of ``y`` per unit of ``x``.
        max_iter: maximum number of iterations.
        tol: stop when the relative normal-equation residual is ``<= tol``.
        progress, reference, callback: see :class:`~recon.solvers.base.IterativeSolver`.

    Example:
        >>> A = torch.randn(20, 8, dtype=torch.float64); y = torch.randn(20, dtype=torch.float64)
        >>> x, hist = CGLS(lambda v: A @ v, y, A_adjoint=lambda w: A.T @ w, damp=0.1, tol=1e-10).run()
        >>> hist.residual[-1] < 1e-10
        True
    """

    @solver_keywords(tol=1e-6)
    def __init__(
        self,
        physics_or_A: object,
        y: torch.Tensor,
        A_adjoint: Callable[[torch.Tensor], torch.Tensor] | None = None,
        damp: float = 0.0,
    ):
        self.A, self.AT = as_linear_operator("physics_or_A", physics_or_A, A_adjoint, "A_adjoint")
        self.y = check_tensor("y", y, real=False)
        self.damp2 = check_positive("damp", damp, allow_zero=True) ** 2

    def run(self, x0: torch.Tensor | None = None) -> tuple[torch.Tensor, History]:
        """Iterate from ``x0`` (default zero); see :meth:`IterativeSolver.run`."""
        return super().run(x0)

    def init_state(self, x0: torch.Tensor | None) -> dict:
        aty = self.AT(self.y)
        self.aty_norm = float(norm(aty)) or 1.0
        x = _check_x0(x0, aty, "A_adjoint(y)")
        if x0 is None:
            r, s = self.y.clone(), aty
        else:
            r = self.y - self.A(x)
            s = self.AT(r) - self.damp2 * x
        return {"x": x, "r": r, "s": s, "p": s.clone(), "gamma": inner(s, s)}

    def step(self, state: dict) -> tuple[float, float]:
        x, r, p, gamma = state["x"], state["r"], state["p"], state["gamma"]
        if float(gamma) == 0.0:
            state["stop"] = "exact solution (zero normal-equation residual)"
            state["converged"] = True
            return self._objective(x, r), 0.0
        q = self.A(p)
        delta = inner(q, q) + self.damp2 * inner(p, p)
        alpha = gamma / delta
        x.add_(alpha * p)
        r = r - alpha * q
        s = self.AT(r) - self.damp2 * x
        gamma_new = inner(s, s)
        state["p"] = s + (gamma_new / gamma) * p
        state["r"], state["s"], state["gamma"] = r, s, gamma_new
        return self._objective(x, r), float(gamma_new) ** 0.5 / self.aty_norm

    def _objective(self, x: torch.Tensor, r: torch.Tensor) -> float:
        return float(0.5 * inner(r, r) + 0.5 * self.damp2 * inner(x, x))


def solve_spd(
    apply_A: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    max_iter: int = 50,
    tol: float = 1e-6,
) -> torch.Tensor:
    r"""Solve :math:`\mathcal{A}x = b` (Hermitian positive definite) silently, for inner loops.

    A thin wrapper of ``deepinv.optim.linear.conjugate_gradient`` with the whole tensor as one
    vector (``parallel_dim=None``), a warm start ``x0`` and a negligible stabiliser ``eps`` (the
    smallest normal number of the dtype, instead of deepinv's 1e-8, which biases small-scale
    problems). It stops when :math:`\|b - \mathcal{A}x\| < \mathrm{tol}\,\|b\|` or after
    ``max_iter`` iterations, without error if not converged (inner solves are inexact by design;
    use :class:`CG` to see the history). Inputs are not validated here: this runs inside loops.

    Args:
        apply_A: Hermitian positive definite operator ``x -> A x`` (same shape/dtype in and out).
        b: right-hand side, any shape, real or complex.
        x0: warm start (shape and dtype of ``b``), or ``None`` for zero.
        max_iter: maximum number of CG iterations.
        tol: relative residual tolerance.

    Returns:
        The approximate solution, shape and dtype of ``b``.

    Example:
        >>> x = solve_spd(lambda v: 2.0 * v, torch.ones(3))  # tensor([0.5, 0.5, 0.5])
    """
    return conjugate_gradient(
        apply_A, b, max_iter=int(max_iter), tol=float(tol), eps=_tiny(b), parallel_dim=None, init=x0
    )
