"""Discrepancy principle: the root search finds the alpha a scalar root finder finds."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from recon.parameter_choice import discrepancy_alpha, minimize_log_alpha


def _diagonal_problem():
    gen = torch.Generator().manual_seed(0)
    s = torch.logspace(0, -3, 50, dtype=torch.float64)  # singular values of a diagonal A
    y = s * torch.rand(50, generator=gen, dtype=torch.float64) + 1e-2 * torch.randn(50, generator=gen, dtype=torch.float64)

    def solve(alpha, x_warm):  # argmin ||s x - y||^2 + alpha ||x||^2, closed form
        return s * y / (s**2 + alpha)

    def misfit(x):
        return float((s * x - y).norm())

    return s, y, solve, misfit


def test_discrepancy_matches_brentq():
    s, y, solve, misfit = _diagonal_problem()
    target = 1.01 * 1e-2 * math.sqrt(50)
    res = discrepancy_alpha(solve, misfit, target, alpha0=1.0, rtol=1e-4, max_evals=40)
    ref = math.exp(brentq(lambda la: misfit(solve(math.exp(la), None)) - target, -30, 10, xtol=1e-12))
    assert abs(res.misfit / target - 1) <= 1e-4
    assert math.isclose(res.alpha, ref, rel_tol=1e-2)
    assert res.trials[0][0] == 1.0 and np.all(np.isfinite(np.array(res.trials)))


def test_budget_returns_the_closest_trial():
    s, y, solve, misfit = _diagonal_problem()
    target = 1.01 * 1e-2 * math.sqrt(50)
    res = discrepancy_alpha(solve, misfit, target, alpha0=1e6, rtol=1e-9, max_evals=3)
    assert len(res.trials) == 3
    assert res.alpha == min(res.trials, key=lambda t: abs(math.log(t[1] / target)))[0]


@pytest.mark.parametrize("kwargs,match", [({"target": 0.0}, "target"), ({"alpha0": -1.0}, "alpha0")])
def test_bad_arguments(kwargs, match):
    s, y, solve, misfit = _diagonal_problem()
    with pytest.raises(ValueError, match=match):
        discrepancy_alpha(solve, misfit, **{"target": 1.0, "alpha0": 1.0, **kwargs})


def test_minimize_log_alpha_finds_the_minimum_of_a_log_parabola():
    best, trials = minimize_log_alpha(lambda a: (math.log(a) - math.log(3.7)) ** 2, 1e-3, 1e3, n_refine=20)
    assert math.isclose(best, 3.7, rel_tol=1e-3)
    assert len(trials) == 7 + 20
    with pytest.raises(ValueError, match="alpha_lo"):
        minimize_log_alpha(lambda a: a, 1.0, 0.5)
    with pytest.raises(TypeError):
        minimize_log_alpha(lambda a: a, 1.0, 2.0, 7)  # keyword-only past the data
