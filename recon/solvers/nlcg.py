r"""Nonlinear conjugate gradients for smooth objectives, optionally projected onto a convex set.

Iteration, with :math:`g_k = \nabla f(x_k)` (for complex :math:`x`, the gradient that makes
:math:`\frac{d}{d\alpha}f(x+\alpha d) = \mathrm{Re}\langle g, d\rangle`, i.e. what torch autograd
returns for a real loss):

.. math::
    x_{k+1} = x_k + \alpha_k d_k,\qquad d_{k+1} = -g_{k+1} + \beta_k d_k,\qquad d_0 = -g_0,

with :math:`\alpha_k` from a line search and :math:`\beta_k` one of (:math:`y_k = g_{k+1} - g_k`):

* ``"FR"`` Fletcher-Reeves :math:`\beta = \|g_{k+1}\|^2 / \|g_k\|^2`,
* ``"PR+"`` Polak-Ribière+ :math:`\beta = \max(0, \mathrm{Re}\langle g_{k+1}, y_k\rangle/\|g_k\|^2)`,
* ``"DY"`` Dai-Yuan :math:`\beta = \|g_{k+1}\|^2 / \mathrm{Re}\langle d_k, y_k\rangle`.

Line searches on :math:`\phi(\alpha) = f(x + \alpha d)`:

* ``"armijo"``: backtracking (safeguarded quadratic interpolation) until
  :math:`\phi(\alpha) \le \phi(0) + c_1\alpha\phi'(0)`; when the first trial is accepted but
  the quadratic model through :math:`\phi(0), \phi'(0), \phi(\alpha)` puts the minimum beyond
  :math:`1.5\alpha`, that point is tried once too and kept if lower (without it, PR+ with Armijo
  steps loses conjugacy and needs thousands of iterations on Rosenbrock's function);
* ``"wolfe"``: strong Wolfe conditions, bracketing then zoom with cubic interpolation
  (Nocedal & Wright, Alg. 3.5/3.6): Armijo and :math:`|\phi'(\alpha)| \le c_2|\phi'(0)|`;
* ``"secant"``: a few secant steps on :math:`\phi'(\alpha) = 0` (as in Dai-Yuan-type NLCG for
  MRI and Shewchuk's "CG without the agonizing pain"), stopping at :math:`|\phi'| \le c_2|\phi'(0)|`;
  the best point meeting the Armijo condition is kept, else Armijo backtracking takes over.

The trial step of every line search after the first iteration is the minimiser of a quadratic
model with the Barzilai-Borwein curvature :math:`\mathrm{Re}\langle s, y\rangle / \|s\|^2` of the
previous step, so backtracking starts at a sensible scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from operators._validate import check_option, check_positive, check_tensor

from .base import IterativeSolver, check_callable, check_count, inner, norm, solver_keywords

__all__ = ["NLCG", "autograd_f_and_grad"]

BETA_RULES = ("PR+", "FR", "DY")
LINE_SEARCHES = ("wolfe", "armijo", "secant")
_APPROX_EPS = 1e-6  # Hager-Zhang: relative f-slack under which the approximate Armijo test applies


def autograd_f_and_grad(f: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], tuple]:
    """Wrap a scalar torch function ``f(x)`` into ``f_and_grad(x) -> (float, gradient)`` by autograd.

    Example:
        >>> fg = autograd_f_and_grad(lambda x: (x**2).sum())
        >>> fg(torch.ones(3))
        (3.0, tensor([2., 2., 2.]))
    """
    check_callable("f", f)

    def f_and_grad(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            val = f(xr)
            (g,) = torch.autograd.grad(val, xr)
        return float(val.detach()), g

    return f_and_grad


class _Point:
    """A line-search point: step ``a``, iterate ``x``, value ``f``, gradient ``g``, slope ``dphi``."""

    __slots__ = ("a", "x", "f", "g", "dphi")

    def __init__(self, a: float, x: torch.Tensor, f: float, g: torch.Tensor, dphi: float):
        self.a, self.x, self.f, self.g, self.dphi = a, x, f, g, dphi


def _quadratic_min(a: float, f_a: float, f0: float, dphi0: float) -> float:
    """Minimiser of the quadratic through phi(0) = f0, phi'(0) = dphi0, phi(a) = f_a (nan if none)."""
    curv = 2.0 * (f_a - f0 - dphi0 * a)
    return -dphi0 * a * a / curv if math.isfinite(curv) and curv > 0 else float("nan")


def _cubic_min(lo: _Point, hi: _Point) -> float:
    """Minimiser of the cubic interpolating (a, f, dphi) at lo and hi, safeguarded to the inner 80%."""
    a_min, a_max = min(lo.a, hi.a), max(lo.a, hi.a)
    width = a_max - a_min
    try:
        d1 = lo.dphi + hi.dphi - 3.0 * (lo.f - hi.f) / (lo.a - hi.a)
        d2 = math.copysign(math.sqrt(d1 * d1 - lo.dphi * hi.dphi), hi.a - lo.a)
        a = hi.a - (hi.a - lo.a) * (hi.dphi + d2 - d1) / (hi.dphi - lo.dphi + 2.0 * d2)
    except (ValueError, ZeroDivisionError, OverflowError):
        a = float("nan")
    if not math.isfinite(a) or a < a_min + 0.1 * width or a > a_max - 0.1 * width:
        a = 0.5 * (a_min + a_max)
    return a


class NLCG(IterativeSolver):
    r"""Nonlinear conjugate gradients (see the module docstring for the formulas).

    Restarts: the direction is reset to steepest descent when it is not a descent direction
    (:math:`\mathrm{Re}\langle g, d\rangle \ge 0`), every ``restart_every`` iterations if set,
    and after any step the projection changed. If the line search fails along a conjugate
    direction it is retried along steepest descent; if that fails too (machine precision reached),
    the run ends with ``history.stop_reason`` saying so.

    Projection (projected NLCG): with ``projection=P`` (Euclidean projection onto a closed convex
    set, e.g. ``lambda x: x.clamp(0, 1)``), the start is projected, and every step ends with
    :math:`x_{k+1} = P(x_k + \alpha_k d_k)`. For ``"armijo"`` the backtracking runs on this
    projected arc with the condition :math:`f(x_{k+1}) \le f(x_k) + c_1\mathrm{Re}\langle g_k,
    x_{k+1}-x_k\rangle`; ``"wolfe"``/``"secant"`` search along the unprojected ray (``f`` must be
    defined there), and if projecting their point breaks that condition, projected Armijo
    backtracking takes over. The conjugacy uses the projected gradient :math:`\tilde g =
    (x - P(x - t g))/t` (:math:`t` the last step; equal to :math:`g` where the projection is
    inactive), which drops the components that push out of the set, so CG runs on the free
    variables once the active set settles.

    History objective: :math:`f(x_k)`. History residual: :math:`\|G(x_k)\| / \max(1, \|G(x_0)\|)`
    with :math:`G(x) = g` without projection and the projected-gradient map
    :math:`G(x) = x - P(x - g)` with it (zero exactly at constrained stationary points). It is
    relative for large initial gradients and absolute for small ones.

    Vectors: ``x`` is a tensor of any shape and real or complex dtype; inner products run over
    all entries (a batch is one joint problem).

    Args:
        f_and_grad: ``f_and_grad(x) -> (f, g)``: the value (float or 0-d tensor) and the gradient
            (tensor shaped like ``x``). Hand-written or from :func:`autograd_f_and_grad`.
        beta: ``"PR+"``, ``"FR"`` or ``"DY"``.
        line_search: ``"wolfe"``, ``"armijo"`` or ``"secant"``.
        projection: optional ``P(x) -> x`` onto a closed convex set.
        step0: first trial step :math:`\alpha_0` (> 0); default ``1/||g_0||`` (a unit-length move).
        c1: sufficient-decrease constant in (0, 1).
        c2: curvature constant in (c1, 1); 0.1 suits CG (FR needs < 1/2 for guaranteed descent).
        max_ls: maximum function evaluations per line search (>= 1).
        restart_every: restart to steepest descent every this many iterations (``None``: never).
        max_iter, tol, progress, reference, callback: see :class:`~recon.solvers.base.IterativeSolver`.

    Example:
        >>> def rosen(x):  # value and hand-written gradient
        ...     f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        ...     g = torch.stack([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])
        ...     return float(f), g
        >>> x, hist = NLCG(rosen, beta="PR+", line_search="wolfe", tol=1e-10, max_iter=500).run(
        ...     torch.tensor([-1.2, 1.0], dtype=torch.float64))
    """

    @solver_keywords(tol=1e-6)
    def __init__(
        self,
        f_and_grad: Callable[[torch.Tensor], tuple[float, torch.Tensor]],
        *,
        beta: str = "PR+",
        line_search: str = "wolfe",
        projection: Callable[[torch.Tensor], torch.Tensor] | None = None,
        step0: float | None = None,
        c1: float = 1e-4,
        c2: float = 0.1,
        max_ls: int = 30,
        restart_every: int | None = None,
    ):
        self.f_and_grad = check_callable("f_and_grad", f_and_grad)
        self.beta = check_option("beta", beta, BETA_RULES)
        self.line_search = check_option("line_search", line_search, LINE_SEARCHES)
        self.projection = None if projection is None else check_callable("projection", projection)
        self.step0 = None if step0 is None else check_positive("step0", step0)
        self.c1, self.c2 = check_positive("c1", c1), check_positive("c2", c2)
        if not 0.0 < self.c1 < self.c2 < 1.0:
            raise ValueError(f"c1, c2: expected 0 < c1 < c2 < 1, received c1={c1!r}, c2={c2!r}")
        self.max_ls = check_count("max_ls", max_ls)
        self.restart_every = None if restart_every is None else check_count("restart_every", restart_every)

    # -- evaluation helpers ---------------------------------------------------------------------
    def _evaluate(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        f, g = self.f_and_grad(x)
        return float(f), g

    def _point(self, a: float, x: torch.Tensor, d: torch.Tensor) -> _Point:
        f, g = self._evaluate(x)
        dphi = float(inner(g, d)) if math.isfinite(f) else float("nan")
        return _Point(a, x, f, g, dphi)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x) if self.projection is not None else x

    def _direction_gradient(self, x: torch.Tensor, g: torch.Tensor, t: float) -> torch.Tensor:
        """``g`` where ``P(x - t g)`` is unclipped, ``(x - P(x - t g))/t`` where it is clipped."""
        if self.projection is None:
            return g
        trial = x - t * g
        proj = self.projection(trial)
        return torch.where(proj == trial, g, (x - proj) / t)

    def _stationarity(self, x: torch.Tensor, g: torch.Tensor) -> float:
        return float(norm(g if self.projection is None else x - self.projection(x - g)))

    def _sufficient(self, pt: _Point, f0: float, slope0: float, slope1: float) -> bool:
        r"""Sufficient decrease for the step ``s = pt.x - x``, with ``slope0 = <g0, s>``, ``slope1 = <g1, s>``.

        Armijo :math:`f_1 \le f_0 + c_1 \mathrm{slope}_0`, or, where function differences drown
        in round-off (:math:`f_1 \le f_0 + \epsilon|f_0|`, :math:`\epsilon = 10^{-6}`), Hager &
        Zhang's approximate form :math:`\mathrm{slope}_1 \le (2c_1 - 1)\,\mathrm{slope}_0`
        (the same test on the quadratic model); ``s`` must be a descent step (``slope0 < 0``).
        """
        if not (math.isfinite(pt.f) and math.isfinite(slope1)) or not slope0 < 0:
            return False
        if pt.f <= f0 + self.c1 * slope0:
            return True
        return pt.f <= f0 + self._eps_f and slope1 <= (2.0 * self.c1 - 1.0) * slope0

    # -- line searches (each returns an accepted _Point or None) ----------------------------------
    def _armijo(self, x: torch.Tensor, f0: float, g0: torch.Tensor, d: torch.Tensor, a: float) -> _Point | None:
        """Backtracking; without projection, one extrapolation to the quadratic model's minimiser."""
        dphi0 = float(inner(g0, d))
        for _ in range(self.max_ls):
            xt = self._project(x + a * d)
            pt = self._point(a, xt, d)
            if self.projection is not None:
                if self._sufficient(pt, f0, float(inner(g0, xt - x)), float(inner(pt.g, xt - x))):
                    return pt
                a *= 0.5
                continue
            a_q = _quadratic_min(a, pt.f, f0, dphi0)  # nan when the model has no minimiser
            if self._sufficient(pt, f0, a * dphi0, a * pt.dphi):
                if a_q > 1.5 * a:  # the accepted step is much shorter than the model suggests
                    pq = self._point(a_q, x + a_q * d, d)
                    if pq.f < pt.f and self._sufficient(pq, f0, a_q * dphi0, a_q * pq.dphi):
                        return pq
                return pt
            a = min(max(a_q, 0.1 * a), 0.5 * a) if math.isfinite(a_q) else 0.5 * a
        return None

    def _wolfe(self, x: torch.Tensor, f0: float, g0: torch.Tensor, d: torch.Tensor, a: float) -> _Point | None:
        dphi0 = float(inner(g0, d))
        prev = _Point(0.0, x, f0, g0, dphi0)
        for i in range(self.max_ls):
            pt = self._point(a, x + a * d, d)
            if not self._sufficient(pt, f0, a * dphi0, a * pt.dphi) or (i > 0 and pt.f > prev.f + self._eps_f):
                return self._zoom(x, f0, dphi0, d, prev, pt, self.max_ls - i - 1)
            if abs(pt.dphi) <= -self.c2 * dphi0:
                return pt
            if pt.dphi >= 0:
                return self._zoom(x, f0, dphi0, d, pt, prev, self.max_ls - i - 1)
            prev, a = pt, 2.0 * a
        return prev if prev.a > 0 else None

    def _zoom(self, x, f0: float, dphi0: float, d, lo: _Point, hi: _Point, budget: int) -> _Point | None:
        for _ in range(budget):
            a = _cubic_min(lo, hi) if math.isfinite(hi.f) and math.isfinite(hi.dphi) else 0.5 * (lo.a + hi.a)
            pt = self._point(a, x + a * d, d)
            if not self._sufficient(pt, f0, a * dphi0, a * pt.dphi) or pt.f > lo.f + self._eps_f:
                hi = pt
            else:
                if abs(pt.dphi) <= -self.c2 * dphi0:
                    return pt
                if pt.dphi * (hi.a - lo.a) >= 0:
                    hi = lo
                lo = pt
            if abs(hi.a - lo.a) <= 1e-12 * max(lo.a, hi.a):
                break
        return lo if lo.a > 0 else None

    def _secant(self, x: torch.Tensor, f0: float, g0: torch.Tensor, d: torch.Tensor, a: float) -> _Point | None:
        dphi0 = float(inner(g0, d))
        a_prev, dphi_prev, best = 0.0, dphi0, None
        for _ in range(self.max_ls):
            pt = self._point(a, x + a * d, d)
            if not math.isfinite(pt.f):
                break
            if self._sufficient(pt, f0, a * dphi0, a * pt.dphi):
                if abs(pt.dphi) <= self.c2 * abs(dphi0):
                    return pt
                if best is None or pt.f < best.f:
                    best = pt
            denom = pt.dphi - dphi_prev
            if denom > 0:
                a_new = a - pt.dphi * (a - a_prev) / denom
            elif pt.dphi < 0:
                a_new = 2.0 * a  # phi' not increasing: no curvature information, extrapolate
            else:
                break
            if not (math.isfinite(a_new) and a_new > 0):
                break
            a_prev, dphi_prev, a = a, pt.dphi, a_new
        return best

    def _search(self, x: torch.Tensor, f0: float, g0: torch.Tensor, d: torch.Tensor, a: float) -> _Point | None:
        """Run the chosen line search; with a projection, project and enforce projected Armijo."""
        if self.line_search == "armijo":
            return self._armijo(x, f0, g0, d, a)
        pt = (self._wolfe if self.line_search == "wolfe" else self._secant)(x, f0, g0, d, a)
        if pt is None:
            return self._armijo(x, f0, g0, d, a)
        if self.projection is None:
            return pt
        xp = self.projection(pt.x)
        if torch.equal(xp, pt.x):
            return pt
        ptp = self._point(pt.a, xp, d)
        if self._sufficient(ptp, f0, float(inner(g0, xp - x)), float(inner(ptp.g, xp - x))):
            return ptp
        return self._armijo(x, f0, g0, d, 0.5 * pt.a)

    # -- solver interface -----------------------------------------------------------------------
    def init_state(self, x0: torch.Tensor) -> dict:
        x = self._project(check_tensor("x0", x0, real=False).clone())
        f, g = self._evaluate(x)
        if not isinstance(g, torch.Tensor) or g.shape != x.shape or g.dtype != x.dtype:
            got = f"shape {tuple(g.shape)}, dtype {g.dtype}" if isinstance(g, torch.Tensor) else type(g).__name__
            raise ValueError(
                f"f_and_grad: expected a gradient of shape {tuple(x.shape)} and dtype {x.dtype}, received {got}"
            )
        if not math.isfinite(f):
            raise ValueError(f"f_and_grad: expected a finite value at x0, received {f}")
        g_norm = float(norm(g))
        self._eps_f = _APPROX_EPS * abs(f)
        a0 = self.step0 if self.step0 is not None else 1.0 / max(g_norm, torch.finfo(x.real.dtype).tiny)
        gt = self._direction_gradient(x, g, a0)
        return {
            "x": x, "f": f, "g": g, "gt": gt, "d": -gt, "a_init": a0, "a_last": a0, "k": 0,
            "res_scale": max(1.0, self._stationarity(x, g)),
        }  # fmt: skip

    def step(self, state: dict) -> tuple[float, float]:
        x, f, g, gt, d = state["x"], state["f"], state["g"], state["gt"], state["d"]
        if float(inner(g, d)) >= 0:  # not a descent direction: restart
            d = -gt
        pt = self._search(x, f, g, d, state["a_init"])
        if pt is None and not torch.equal(d, -gt):
            d = -gt
            pt = self._search(x, f, g, d, state["a_last"])
        if pt is None:
            state["stop"] = "line search failed along steepest descent (no further decrease possible)"
            return f, self._stationarity(x, g) / state["res_scale"]

        s, y = pt.x - x, pt.g - g
        gt_new = self._direction_gradient(pt.x, pt.g, pt.a)
        state["k"] += 1
        restart = self.restart_every is not None and state["k"] % self.restart_every == 0
        if self.projection is not None and not torch.equal(pt.x, x + pt.a * d):
            restart = True  # the projection bent the step: conjugacy is lost
        beta = 0.0 if restart else self._beta(gt, gt_new, d)
        d_new = -gt_new + beta * d if beta != 0.0 else -gt_new

        ss, sy = float(inner(s, s)), float(inner(s, y))
        dd, gd = float(inner(d_new, d_new)), float(inner(pt.g, d_new))
        a_init = -gd / (sy / ss * dd) if ss > 0 and sy > 0 and dd > 0 and gd < 0 else pt.a
        self._eps_f = _APPROX_EPS * abs(pt.f)
        state.update(x=pt.x, f=pt.f, g=pt.g, gt=gt_new, d=d_new, a_init=a_init, a_last=pt.a)
        return pt.f, self._stationarity(pt.x, pt.g) / state["res_scale"]

    def _beta(self, g_old: torch.Tensor, g_new: torch.Tensor, d: torch.Tensor) -> float:
        gg_old, gg_new = float(inner(g_old, g_old)), float(inner(g_new, g_new))
        if self.beta == "FR":
            return gg_new / gg_old if gg_old > 0 else 0.0
        if self.beta == "PR+":
            return max(0.0, float(inner(g_new, g_new - g_old)) / gg_old) if gg_old > 0 else 0.0
        dy = float(inner(d, g_new - g_old))  # Dai-Yuan
        return gg_new / dy if dy > 0 else 0.0
