r"""Scaled-form ADMM with pluggable subproblem solvers (after SCICO's ``optimize/_admm.py``).

Problem:

.. math::
    \min_{x,\,z}\ f(x) + g(z) \quad\text{s.t.}\quad Kx = z,

with :math:`K` linear (identity by default). The iteration (Boyd et al. 2011, §3.1.1), with the
scaled dual :math:`u` and penalty :math:`\rho > 0`:

.. math::
    x^{k+1} &= \arg\min_x f(x) + \tfrac{\rho}{2}\|Kx - (z^k - u^k)\|^2
        &&\text{(``x_step(v, rho, x_prev)``)}\\
    z^{k+1} &= \mathrm{prox}_{g/\rho}(Kx^{k+1} + u^k)
        &&\text{(``z_step(v, rho)``: any prox or denoiser)}\\
    u^{k+1} &= u^k + Kx^{k+1} - z^{k+1}.

The functions :math:`f`, :math:`g` never appear: only the two subproblem solvers do, so the same
loop runs plug-and-play priors (``z_step`` a denoiser), TV (:math:`K` a gradient, ``z_step`` a
shrinkage) or constraints (``z_step`` a projection). :func:`quadratic_x_step` builds the x-step
for :math:`f(x) = \tfrac12\|Ax-y\|^2 (+\tfrac12\langle x, Rx\rangle)` by warm-started CG.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from operators._validate import check_positive, check_tensor

from .base import (
    Block,
    IterativeSolver,
    as_linear_operator,
    bmap,
    check_callable,
    check_count,
    is_block,
    norm,
    numel,
    solver_keywords,
)
from .cg import solve_spd

__all__ = ["ADMM", "quadratic_x_step"]


def _identity(v):
    return v


def _splitting_operator(K: object | None, K_adjoint: Callable | None) -> tuple[Callable, Callable]:
    """``(K, K^H)`` from a physics / callable pair; the identity pair when ``K`` is ``None``."""
    if K is None:
        if K_adjoint is not None:
            raise ValueError("K_adjoint: expected None when K is None (identity), received a callable")
        return _identity, _identity
    return as_linear_operator("K", K, K_adjoint)


class ADMM(IterativeSolver):
    r"""Scaled ADMM for :math:`\min f(x) + g(z)` s.t. :math:`Kx = z`.

    Stopping (Boyd et al. 2011, §3.3.1). With the primal residual :math:`r = \|Kx - z\|`, the dual
    residual :math:`s = \rho\|K^H(z - z_{\mathrm{prev}})\|`, :math:`m` entries in :math:`z` and
    :math:`n` in :math:`x`, the history residual is

    .. math::
        \mathrm{res} = \max\Big(\frac{r}{\max(\|Kx\|,\|z\|) + \sqrt{m}\,\epsilon_{abs}/\mathrm{tol}},\
                               \frac{s}{\rho\|K^H u\| + \sqrt{n}\,\epsilon_{abs}/\mathrm{tol}}\Big),

    so ``res <= tol`` is exactly Boyd's test :math:`r \le \sqrt{m}\epsilon_{abs} +
    \mathrm{tol}\max(\|Kx\|,\|z\|)` and :math:`s \le \sqrt{n}\epsilon_{abs} + \mathrm{tol}\,
    \rho\|K^H u\|` (``tol`` is Boyd's :math:`\epsilon_{rel}`). With ``abs_tol=0`` (default) ``res``
    is simply the larger of the two relative residuals. With a non-identity ``K`` this costs two
    extra ``K_adjoint`` applications per iteration.

    Adaptive penalty (``adaptive=True``, residual balancing, Boyd §3.4.1 on the relative residuals
    as in Wohlberg 2017): if the relative primal residual exceeds ``mu`` times the relative dual one,
    :math:`\rho \leftarrow \tau\rho`, :math:`u \leftarrow u/\tau`; in the opposite case
    :math:`\rho \leftarrow \rho/\tau`, :math:`u \leftarrow \tau u` (the unscaled dual
    :math:`\rho u` is unchanged). ``x_step`` always receives the current :math:`\rho`.

    Vectors: ``x`` is a tensor (any shape, real or complex); ``z`` and ``u`` have the shape of
    ``K(x)``, a tensor or a list of tensors (a block, e.g. ``K = [A; grad]``). Norms run over all
    entries, batch included (a batch is one joint problem). Start: ``z = K x0``, ``u = 0``. After
    ``run``, ``solver.state`` holds the final ``x``, ``z``, ``u`` and ``rho``.

    Args:
        x_step: ``x_step(v, rho, x_prev) -> x`` minimising :math:`f(x) + \frac{\rho}{2}\|Kx-v\|^2`
            (``x_prev`` is a warm start); see :func:`quadratic_x_step`.
        z_step: ``z_step(v, rho) -> z`` :math:`= \mathrm{prox}_{g/\rho}(v)`, e.g. a soft-threshold
            with threshold :math:`\lambda/\rho`, a projection, or ``lambda v, rho: denoiser(v, sigma)``.
        rho: initial penalty :math:`\rho > 0` (units: those of :math:`f` per squared unit of ``Kx``).
        K: a ``LinearPhysics`` or callable ``x -> Kx``; ``None`` means the identity.
        K_adjoint: adjoint of ``K`` when ``K`` is a plain callable.
        objective: optional ``objective(x) -> float`` recorded in the history (e.g.
            :math:`f(x) + g(Kx)`); ``nan`` is recorded without it.
        abs_tol: Boyd's absolute tolerance :math:`\epsilon_{abs} \ge 0` (units of the entries of ``z``).
        adaptive: enable residual balancing.
        mu: imbalance ratio that triggers a penalty change (> 1).
        tau: factor by which :math:`\rho` changes (> 1).
        max_iter, tol, progress, reference, callback: see
            :class:`~recon.solvers.base.IterativeSolver`; ``tol`` is the relative tolerance above.

    Example:
        Lasso :math:`\min \frac12\|Ax-y\|^2 + \lambda\|x\|_1` with :math:`K = I`::

            soft = lambda v, rho: torch.sign(v) * torch.clamp(v.abs() - lam / rho, min=0)
            x_step = quadratic_x_step(lambda x: A @ x, y, A_adjoint=lambda r: A.T @ r)
            x, hist = ADMM(x_step, soft, rho=1.0, tol=1e-6, max_iter=500).run(torch.zeros(n))
    """

    @solver_keywords(tol=1e-4)
    def __init__(
        self,
        x_step: Callable[[Block, float, torch.Tensor], torch.Tensor],
        z_step: Callable[[Block, float], Block],
        rho: float = 1.0,
        *,
        K: object | None = None,
        K_adjoint: Callable[[Block], torch.Tensor] | None = None,
        objective: Callable[[torch.Tensor], float] | None = None,
        abs_tol: float = 0.0,
        adaptive: bool = False,
        mu: float = 10.0,
        tau: float = 2.0,
    ):
        self.x_step = check_callable("x_step", x_step)
        self.z_step = check_callable("z_step", z_step)
        self.rho = check_positive("rho", rho)
        self.K, self.KT = _splitting_operator(K, K_adjoint)
        self.identity_K = K is None
        self.objective = None if objective is None else check_callable("objective", objective)
        self.abs_tol = check_positive("abs_tol", abs_tol, allow_zero=True)
        self.adaptive = bool(adaptive)
        self.mu = check_positive("mu", mu)
        self.tau = check_positive("tau", tau)
        for name, val in (("mu", self.mu), ("tau", self.tau)):
            if val <= 1.0:
                raise ValueError(f"{name}: expected a number > 1, received {val!r}")
        self.state: dict = {}

    def init_state(self, x0: torch.Tensor) -> dict:
        x = check_tensor("x0", x0, real=False).clone()
        z = bmap(torch.clone, self.K(x))
        u = bmap(torch.zeros_like, z)
        tiny = torch.finfo(x.real.dtype).tiny
        self.state = {"x": x, "z": z, "u": u, "rho": self.rho, "m": numel(z), "n": x.numel(), "tiny": tiny}
        return self.state

    def step(self, state: dict) -> tuple[float, float]:
        x, z, u, rho = state["x"], state["z"], state["u"], state["rho"]
        x_new = self.x_step(bmap(torch.sub, z, u), rho, x)
        if not isinstance(x_new, torch.Tensor) or x_new.shape != x.shape:
            got = tuple(x_new.shape) if isinstance(x_new, torch.Tensor) else type(x_new).__name__
            raise ValueError(f"x_step: expected a tensor of shape {tuple(x.shape)}, received {got}")
        Kx = self.K(x_new)
        z_new = self.z_step(bmap(torch.add, Kx, u), rho)
        if is_block(z_new) != is_block(z):
            raise ValueError(
                f"z_step: expected the structure of K(x) ({type(z).__name__}), received {type(z_new).__name__}"
            )
        u = bmap(lambda ui, kxi, zi: ui + kxi - zi, u, Kx, z_new)

        r = float(norm(bmap(torch.sub, Kx, z_new)))
        s = rho * float(norm(self.KT(bmap(torch.sub, z_new, z))))
        scale_p = max(float(norm(Kx)), float(norm(z_new)))
        scale_d = rho * float(norm(self.KT(u)))
        ratio = self.abs_tol / self.tol if self.tol > 0 else 0.0
        rel_p = r / max(scale_p + math.sqrt(state["m"]) * ratio, state["tiny"])
        rel_d = s / max(scale_d + math.sqrt(state["n"]) * ratio, state["tiny"])

        if self.adaptive:
            if rel_p > self.mu * rel_d:
                rho, u = rho * self.tau, bmap(lambda ui: ui / self.tau, u)
            elif rel_d > self.mu * rel_p:
                rho, u = rho / self.tau, bmap(lambda ui: ui * self.tau, u)
        state.update(x=x_new, z=z_new, u=u, rho=rho)
        obj = float(self.objective(x_new)) if self.objective is not None else float("nan")
        return obj, max(rel_p, rel_d)



def quadratic_x_step(
    physics_or_A: object,
    y: torch.Tensor,
    A_adjoint: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    K: object | None = None,
    K_adjoint: Callable[[Block], torch.Tensor] | None = None,
    reg: Callable[[torch.Tensor], torch.Tensor] | None = None,
    max_iter: int = 20,
    tol: float = 1e-6,
) -> Callable[[Block, float, torch.Tensor], torch.Tensor]:
    r"""Build an ADMM x-step for a quadratic data term, solved by warm-started CG.

    The returned ``x_step(v, rho, x_prev)`` solves

    .. math::
        \arg\min_x \tfrac12\|Ax - y\|^2 + \tfrac12\langle x, Rx\rangle + \tfrac{\rho}{2}\|Kx - v\|^2
        \iff (A^H A + R + \rho K^H K)\,x = A^H y + \rho K^H v

    with :func:`~recon.solvers.cg.solve_spd` (deepinv's CG) started from ``x_prev``; :math:`A^H y`
    is computed once here. ``R`` is an optional Hermitian PSD operator (e.g. a graph Laplacian
    scaled by its weight); ``K`` must be the one given to :class:`ADMM` (identity by default).

    Args:
        physics_or_A: a ``LinearPhysics`` or a callable ``x -> A x``.
        y: measurements (tensor of the shape ``A`` returns).
        A_adjoint: adjoint callable when ``physics_or_A`` is a callable.
        K, K_adjoint: the ADMM splitting operator (``None``: identity), as for :class:`ADMM`.
        reg: optional Hermitian PSD ``x -> R x`` added to the normal operator.
        max_iter: CG iterations per x-step (warm starts make a few enough).
        tol: CG relative residual tolerance.

    Returns:
        The callable ``x_step(v, rho, x_prev) -> x``.

    Example:
        With ``physics`` a ``LinearPhysics`` and ``y`` its measurements::

            x_step = quadratic_x_step(physics, y, max_iter=10)
            x = x_step(v, 1.0, x_prev)        # solves (A^H A + I) x = A^H y + v from x_prev
    """
    A, AT = as_linear_operator("physics_or_A", physics_or_A, A_adjoint, "A_adjoint")
    K, KT = _splitting_operator(K, K_adjoint)
    if reg is not None:
        check_callable("reg", reg)
    check_tensor("y", y, real=False)
    check_count("max_iter", max_iter)
    check_positive("tol", tol)
    aty = AT(y)

    def x_step(v: Block, rho: float, x_prev: torch.Tensor) -> torch.Tensor:
        def normal(x: torch.Tensor) -> torch.Tensor:
            out = AT(A(x)) + rho * KT(K(x))
            return out + reg(x) if reg is not None else out

        rhs = aty + rho * KT(v)
        return solve_spd(normal, rhs, x0=x_prev, max_iter=max_iter, tol=tol)

    return x_step
