r"""Chambolle-Pock primal-dual hybrid gradient (PDHG) and its small helpers.

Problem, with :math:`g`, :math:`f` convex and :math:`K` linear:

.. math::
    \min_x\ g(x) + f(Kx) \;=\; \min_x \max_y\ g(x) + \mathrm{Re}\langle Kx, y\rangle - f^*(y).

Iteration (Chambolle & Pock 2011, Alg. 1, written x-first so that :math:`\bar x` need not be
stored):

.. math::
    x^{k+1} &= \mathrm{prox}_{\tau g}(x^k - \tau K^H y^k)\\
    \bar x &= x^{k+1} + \theta (x^{k+1} - x^k)\\
    y^{k+1} &= \mathrm{prox}_{\sigma f^*}(y^k + \sigma K \bar x),

convergent for :math:`\theta = 1` and :math:`\tau\sigma\|K\|^2 < 1`. The dual variable may be a
block (list of tensors) so that :math:`K = [A; \nabla]` and a separable :math:`f(Ax, \nabla x) =
f_1(Ax) + f_2(\nabla x)` fit directly: see :func:`stack_operators` and :func:`separable_prox`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from operators._validate import check_positive, check_tensor

from .base import Block, IterativeSolver, as_linear_operator, bmap, check_callable, inner, is_block, norm, solver_keywords

__all__ = ["PDHG", "op_norm", "prox_conj_from_prox", "separable_prox", "stack_operators"]

_STEP_SAFETY = 0.95  # default tau = sigma = 0.95 / ||K|| (the power method under-estimates ||K||)


def _shapes(a: Block) -> object:
    return [tuple(t.shape) for t in a] if is_block(a) else tuple(a.shape)


def op_norm(
    K: object,
    K_adjoint: Callable[[Block], torch.Tensor] | None = None,
    x0: torch.Tensor | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    seed: int = 0,
) -> float:
    r"""Operator norm :math:`\|K\| = \sqrt{\lambda_{\max}(K^H K)}` by the power method.

    Starts from a seeded random tensor of the shape, dtype and device of ``x0`` (the batch
    dimension included: the whole tensor is one vector, so for a batch-wise operator this is
    the largest norm over the batch) and stops when the Rayleigh quotient changes by less than
    ``tol`` relatively. The estimate approaches :math:`\|K\|` from below.

    Args:
        K: a ``LinearPhysics`` or a callable ``x -> Kx`` (tensor or block output).
        K_adjoint: adjoint callable when ``K`` is a plain callable.
        x0: example input (only its shape/dtype/device are used), e.g. shape (B, C, H, W).
        max_iter: maximum number of power iterations.
        tol: relative tolerance on the eigenvalue estimate.
        seed: seed of the random start.

    Returns:
        The estimate of :math:`\|K\|` (a float; 0.0 for the zero operator).

    Example:
        >>> L = op_norm(lambda x: 2 * x, lambda y: 2 * y, torch.zeros(1, 1, 8, 8))  # 2.0
    """
    A, AT = as_linear_operator("K", K, K_adjoint)
    check_tensor("x0", x0, real=False)
    check_positive("tol", tol)
    gen = torch.Generator(device=x0.device).manual_seed(int(seed))
    v = torch.randn(x0.shape, dtype=x0.dtype, device=x0.device, generator=gen)
    v = v / norm(v)
    lam = 0.0
    for _ in range(int(max_iter)):
        w = AT(A(v))
        lam_new = float(inner(v, w))
        w_norm = float(norm(w))
        if w_norm == 0.0:
            return 0.0
        v = w / w_norm
        if abs(lam_new - lam) <= tol * abs(lam_new):
            lam = lam_new
            break
        lam = lam_new
    return math.sqrt(max(lam, 0.0))


def prox_conj_from_prox(prox_f: Callable[[Block, float], Block]) -> Callable[[Block, float], Block]:
    r"""Prox of the convex conjugate by Moreau's identity.

    .. math::
        \mathrm{prox}_{\sigma f^*}(v) = v - \sigma\,\mathrm{prox}_{f/\sigma}(v/\sigma).

    Args:
        prox_f: ``prox_f(v, t) -> prox_{t f}(v)``, on tensors or blocks.

    Returns:
        ``prox_f_conj(v, sigma) -> prox_{sigma f^*}(v)``, same structure as ``v``.

    Example:
        >>> # f = lam ||.||_1: prox_{f*} is the projection onto the l_inf ball of radius lam
        >>> soft = lambda v, t: torch.sign(v) * torch.clamp(v.abs() - lam * t, min=0)
        >>> prox_fc = prox_conj_from_prox(soft)
    """
    check_callable("prox_f", prox_f)

    def prox_f_conj(v: Block, sigma: float) -> Block:
        p = prox_f(bmap(lambda vi: vi / sigma, v), 1.0 / sigma)
        return bmap(lambda vi, pi: vi - sigma * pi, v, p)

    return prox_f_conj


def separable_prox(*proxes: Callable[[torch.Tensor, float], torch.Tensor]) -> Callable[[Block, float], Block]:
    r"""Prox of a separable :math:`f(y_1, \dots, y_n) = \sum_i f_i(y_i)` on a block ``[y_1, ..., y_n]``.

    Args:
        *proxes: ``prox_i(v_i, t)`` for each part (primal proxes or conjugate proxes alike).

    Returns:
        ``prox(v, t) -> [prox_1(v_1, t), ..., prox_n(v_n, t)]``.

    Example:
        Dual prox for :math:`f(y_1, y_2) = \tfrac12\|y_1 - y\|^2 + \lambda\|y_2\|_1`::

            prox_data = lambda v, t: (v + t * y) / (1 + t)
            prox_l1 = lambda v, t: torch.sign(v) * torch.clamp(v.abs() - lam * t, min=0)
            prox_fc = separable_prox(prox_conj_from_prox(prox_data), prox_conj_from_prox(prox_l1))
    """
    for i, p in enumerate(proxes):
        check_callable(f"proxes[{i}]", p)

    def prox(v: Block, t: float) -> list[torch.Tensor]:
        if len(v) != len(proxes):
            raise ValueError(f"v: expected a block of {len(proxes)} tensors, received {len(v)}")
        return [p(vi, t) for p, vi in zip(proxes, v)]

    return prox


def stack_operators(*ops: object) -> tuple[Callable[[torch.Tensor], list], Callable[[Sequence], torch.Tensor]]:
    r"""Stack linear operators vertically: :math:`K = [K_1; \dots; K_n]`.

    :math:`Kx = [K_1x, \dots, K_nx]` (a block) and :math:`K^H[y_1, \dots, y_n] = \sum_i K_i^H y_i`.

    Args:
        *ops: each a ``LinearPhysics`` or a ``(K_i, K_i_adjoint)`` pair of callables.

    Returns:
        ``(K, K_adjoint)`` callables acting on blocks.

    Example:
        With ``physics`` a ``LinearPhysics`` and ``grad``/``grad_adjoint`` a gradient pair::

            K, KT = stack_operators(physics, (grad, grad_adjoint))   # K = [A; grad]
            Kx = K(x)                                                # [A x, grad x]
    """
    pairs = [
        as_linear_operator(f"ops[{i}]", *(op if isinstance(op, tuple) else (op,))) for i, op in enumerate(ops)
    ]

    def K(x: torch.Tensor) -> list[torch.Tensor]:
        return [A(x) for A, _ in pairs]

    def K_adjoint(y: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(y) != len(pairs):
            raise ValueError(f"y: expected a block of {len(pairs)} tensors, received {len(y)}")
        return sum(AT(yi) for (_, AT), yi in zip(pairs, y))

    return K, K_adjoint


class PDHG(IterativeSolver):
    r"""Chambolle-Pock PDHG for :math:`\min_x g(x) + f(Kx)` (see the module docstring).

    Steps: by default :math:`\tau = \sigma = 0.95/\|K\|`; if only one is given, the other is
    :math:`0.95/(\text{given}\cdot\|K\|^2)`. :math:`\|K\|` is ``norm_K`` when given, else
    :func:`op_norm` on the shape of ``x0`` at the start of ``run``. With ``tau``, ``sigma`` and
    ``norm_K`` all given, :math:`\tau\sigma\|K\|^2 < 1` is checked.

    History residual: the larger relative change of the primal and dual iterates,
    :math:`\max(\|x^{k+1} - x^k\| / \|x^{k+1}\|,\ \|y^{k+1} - y^k\| / \|y^{k+1}\|)`. The dual
    part is there because the primal part alone can vanish while the dual still moves (from
    ``y0 = 0`` the first x-step is often ``x0`` itself). It is a heuristic stopping rule, not an
    optimality measure: small steps can also mean slow progress. Objective: ``objective(x)`` when
    given, else ``nan``.

    Vectors: ``x`` is a tensor of any shape (batch included: one joint problem), real or complex;
    the dual ``y`` has the structure of ``K(x)``: a tensor or a list of tensors. Start: ``x0``
    and ``y0`` (zero by default). After ``run``, ``solver.state`` holds ``x``, ``y``, ``tau``,
    ``sigma``; ``solver.last_dual`` is that ``y``.

    Args:
        K: a ``LinearPhysics`` or a callable ``x -> Kx`` (tensor or block output).
        K_adjoint: adjoint of ``K`` (``None`` for a ``LinearPhysics``).
        prox_g: ``prox_g(v, tau) -> prox_{tau g}(v)``.
        prox_f_conj: ``prox_f_conj(v, sigma) -> prox_{sigma f^*}(v)`` on the dual structure; build it
            from a prox of :math:`f` with :func:`prox_conj_from_prox`.
        tau: primal step (> 0) or ``None``.
        sigma: dual step (> 0) or ``None``.
        theta: extrapolation in [0, 1] (1 is the classical, provably convergent choice).
        norm_K: known :math:`\|K\|` to skip the power method.
        y0: initial dual variable (structure of ``K(x0)``).
        objective: optional ``objective(x) -> float`` for the history, e.g. :math:`g(x) + f(Kx)`.
        max_iter, tol, progress, reference, callback: see :class:`~recon.solvers.base.IterativeSolver`.

    Example:
        1D TV denoising :math:`\min_x \frac12\|x - b\|^2 + \lambda\|Dx\|_1`::

            prox_g = lambda v, t: (v + t * b) / (1 + t)
            prox_fc = lambda v, s: torch.clamp(v, -lam, lam)     # conjugate of lam ||.||_1
            x, hist = PDHG(D, DT, prox_g, prox_fc, max_iter=2000).run(b.clone())
    """

    @solver_keywords(max_iter=500, tol=1e-6)
    def __init__(
        self,
        K: object,
        K_adjoint: Callable[[Block], torch.Tensor] | None,
        prox_g: Callable[[torch.Tensor, float], torch.Tensor],
        prox_f_conj: Callable[[Block, float], Block],
        tau: float | None = None,
        sigma: float | None = None,
        theta: float = 1.0,
        *,
        norm_K: float | None = None,
        y0: Block | None = None,
        objective: Callable[[torch.Tensor], float] | None = None,
    ):
        self.K, self.KT = as_linear_operator("K", K, K_adjoint)
        self.prox_g = check_callable("prox_g", prox_g)
        self.prox_f_conj = check_callable("prox_f_conj", prox_f_conj)
        self.tau = None if tau is None else check_positive("tau", tau)
        self.sigma = None if sigma is None else check_positive("sigma", sigma)
        theta = check_positive("theta", theta, allow_zero=True)
        if theta > 1.0:
            raise ValueError(f"theta: expected a number in [0, 1], received {theta!r}")
        self.theta = theta
        self.norm_K = None if norm_K is None else check_positive("norm_K", norm_K)
        if None not in (self.tau, self.sigma, self.norm_K) and self.tau * self.sigma * self.norm_K**2 >= 1.0:
            raise ValueError(
                f"tau, sigma: expected tau * sigma * norm_K**2 < 1, received "
                f"{self.tau} * {self.sigma} * {self.norm_K}**2 = {self.tau * self.sigma * self.norm_K**2:.4g}"
            )
        if y0 is not None and not (
            isinstance(y0, torch.Tensor) or (is_block(y0) and all(isinstance(t, torch.Tensor) for t in y0))
        ):
            raise TypeError(f"y0: expected a tensor or a list of tensors, received {type(y0).__name__}")
        self.y0 = y0
        self.objective = None if objective is None else check_callable("objective", objective)
        self.state: dict = {}

    def _steps(self, x0: torch.Tensor) -> tuple[float, float]:
        tau, sigma = self.tau, self.sigma
        if tau is not None and sigma is not None:
            return tau, sigma
        L = self.norm_K if self.norm_K is not None else op_norm(self.K, self.KT, x0)
        if L == 0.0:
            raise ValueError("K: expected a nonzero operator, received one whose estimated norm is 0")
        if tau is None and sigma is None:
            return _STEP_SAFETY / L, _STEP_SAFETY / L
        if tau is None:
            return _STEP_SAFETY / (sigma * L**2), sigma
        return tau, _STEP_SAFETY / (tau * L**2)

    @property
    def last_dual(self) -> Block | None:
        """The dual iterate ``y`` of the last ``run`` (``None`` before any run)."""
        return self.state.get("y")

    def init_state(self, x0: torch.Tensor) -> dict:
        x = check_tensor("x0", x0, real=False).clone()
        Kx = self.K(x)
        if self.y0 is None:
            y = bmap(torch.zeros_like, Kx)
        else:
            if _shapes(self.y0) != _shapes(Kx):
                raise ValueError(f"y0: expected the shapes of K(x0), {_shapes(Kx)}, received {_shapes(self.y0)}")
            y = bmap(torch.clone, self.y0)
        tau, sigma = self._steps(x)
        tiny = torch.finfo(x.real.dtype).tiny
        self.state = {"x": x, "y": y, "tau": tau, "sigma": sigma, "tiny": tiny}
        return self.state

    def step(self, state: dict) -> tuple[float, float]:
        x, y, tau, sigma, theta = state["x"], state["y"], state["tau"], state["sigma"], self.theta
        x_new = self.prox_g(x - tau * self.KT(y), tau)
        dx = x_new - x
        Kxbar = self.K(x_new + theta * dx)
        y_new = self.prox_f_conj(bmap(lambda yi, ki: yi + sigma * ki, y, Kxbar), sigma)
        tiny = state["tiny"]
        rel_x = float(norm(dx)) / max(float(norm(x_new)), tiny)
        rel_y = float(norm(bmap(torch.sub, y_new, y))) / max(float(norm(y_new)), tiny)
        state["x"], state["y"] = x_new, y_new
        obj = float(self.objective(x_new)) if self.objective is not None else float("nan")
        return obj, max(rel_x, rel_y)
