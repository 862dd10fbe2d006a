r"""Regularization-parameter rules shared by the methods.

The discrepancy principle (Morozov) picks :math:`\alpha` so that the data misfit of the
regularized solution equals the noise norm times a safety factor:

.. math::
    \|A x_\alpha - y\|_2 = \tau\,\|e\|_2, \qquad \tau \text{ slightly above 1 (default 1.01)},

with :math:`\|e\|` from ``noise_level`` or ``noise_std`` (:attr:`recon.noise.Noise.norm`). The
misfit grows monotonically with :math:`\alpha` for Tikhonov-type problems, so the rule is a
scalar root search in :math:`\log\alpha` (:func:`discrepancy_alpha`). Rules without a noise
estimate (generalized cross-validation) minimise a criterion in :math:`\log\alpha`
(:func:`minimize_log_alpha`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class DiscrepancyResult:
    """Outcome of :func:`discrepancy_alpha`.

    Attributes:
        alpha: the chosen parameter.
        x: the solution at ``alpha``.
        misfit: ||A x - y|| at ``alpha``.
        target: tau * ||e||.
        trials: list of (alpha, misfit) pairs in the order they were evaluated.
    """

    alpha: float
    x: torch.Tensor
    misfit: float
    target: float
    trials: list[tuple[float, float]] = field(default_factory=list)


def discrepancy_alpha(
    solve: Callable[[float, torch.Tensor | None], torch.Tensor],
    misfit: Callable[[torch.Tensor], float],
    target: float,
    alpha0: float,
    *,
    rtol: float = 0.01,
    max_evals: int = 15,
) -> DiscrepancyResult:
    """Find alpha with misfit(solve(alpha)) = target by bracketing then secant steps in log-log.

    Args:
        solve: ``solve(alpha, x_warm) -> x`` returns the regularized solution; ``x_warm`` is the
            previous solution (or None) for warm starts.
        misfit: ``misfit(x) -> ||A x - y||``.
        target: the wanted misfit tau * ||e|| (> 0, units of y).
        alpha0: first guess (> 0, the units of the method's alpha).
        rtol: stop when |misfit / target - 1| <= rtol.
        max_evals: budget of ``solve`` calls; the best bracketed value is returned when spent.

    Returns:
        :class:`DiscrepancyResult`.

    Example:
        >>> res = discrepancy_alpha(lambda a, x0: tik(a, x0), lambda x: (A(x) - y).norm().item(), 1.01 * delta, 1.0)
    """
    if not target > 0:
        raise ValueError(f"target: expected a misfit > 0, received {target!r}")
    if not alpha0 > 0:
        raise ValueError(f"alpha0: expected a value > 0, received {alpha0!r}")
    trials: list[tuple[float, float]] = []
    sols: dict[float, torch.Tensor] = {}
    x_prev: torch.Tensor | None = None

    def evaluate(alpha: float) -> float:
        nonlocal x_prev
        x_prev = solve(alpha, x_prev)
        m = float(misfit(x_prev))
        trials.append((alpha, m))
        sols[alpha] = x_prev
        return m

    def result(alpha: float) -> DiscrepancyResult:
        return DiscrepancyResult(alpha, sols[alpha], dict(trials)[alpha], target, trials)

    lo = hi = None  # (log alpha, log misfit - log target) with negative / positive sign
    la = math.log(alpha0)
    for _ in range(max_evals):
        f = math.log(evaluate(math.exp(la))) - math.log(target)
        if abs(math.expm1(f)) <= rtol:
            return result(math.exp(la))
        if f < 0:
            lo = (la, f)
        else:
            hi = (la, f)
        if lo is None:
            la -= math.log(10.0)
        elif hi is None:
            la += math.log(10.0)
        else:  # secant on the bracket, kept strictly inside it (falls back to bisection)
            t = lo[1] / (lo[1] - hi[1])
            t = min(max(t, 0.1), 0.9)
            la = lo[0] + t * (hi[0] - lo[0])
    best = min(trials, key=lambda am: abs(math.log(am[1] / target)))
    return result(best[0])


def minimize_log_alpha(
    fn: Callable[[float], float], alpha_lo: float, alpha_hi: float, *, n_grid: int = 7, n_refine: int = 8
) -> tuple[float, list[tuple[float, float]]]:
    """Minimise a scalar criterion of alpha over [alpha_lo, alpha_hi], searching in log(alpha).

    A coarse log-spaced grid of ``n_grid`` points locates the best bracket (robust to the flat
    or multi-modal stretches GCV curves have), then ``n_refine`` golden-section steps refine it.

    Args:
        fn: the criterion, e.g. the GCV function.
        alpha_lo: smallest alpha searched (> 0).
        alpha_hi: largest alpha searched (> alpha_lo).
        n_grid: points of the coarse grid (>= 3).
        n_refine: golden-section evaluations after the grid.

    Returns:
        ``(alpha, trials)``: the best alpha evaluated and every (alpha, fn(alpha)) pair.

    Example:
        >>> best, trials = minimize_log_alpha(lambda a: (math.log(a) - 1.0) ** 2, 1e-3, 1e3)   # best ~ e
    """
    if not 0 < alpha_lo < alpha_hi:
        raise ValueError(f"alpha_lo, alpha_hi: expected 0 < alpha_lo < alpha_hi, received {alpha_lo!r}, {alpha_hi!r}")
    if n_grid < 3:
        raise ValueError(f"n_grid: expected an integer >= 3, received {n_grid!r}")
    trials: list[tuple[float, float]] = []

    def f(la: float) -> float:
        v = float(fn(math.exp(la)))
        trials.append((math.exp(la), v))
        return v

    grid = [math.log(alpha_lo) + k * (math.log(alpha_hi) - math.log(alpha_lo)) / (n_grid - 1) for k in range(n_grid)]
    values = [f(la) for la in grid]
    k = min(range(n_grid), key=values.__getitem__)
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, n_grid - 1)]
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(max(n_refine - 2, 0)):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    best = min(trials, key=lambda t: t[1])
    return best[0], trials
