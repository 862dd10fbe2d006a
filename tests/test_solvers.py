"""Tests of the generic solvers (recon.solvers) against independent references.

References: numpy/scipy (linalg.solve, lsqr, lsq_linear, L-BFGS-B), and FISTA loops written
here (primal for the lasso, on the dual for 1D TV denoising), all in float64.
"""

from __future__ import annotations

import math

import deepinv as dinv
import numpy as np
import pytest
import torch
from scipy.optimize import lsq_linear, minimize
from scipy.sparse.linalg import lsqr

from recon.solvers import (
    ADMM,
    CG,
    CGLS,
    NLCG,
    PDHG,
    IterativeSolver,
    NonFiniteError,
    autograd_f_and_grad,
    op_norm,
    prox_conj_from_prox,
    quadratic_x_step,
    separable_prox,
    solve_spd,
    stack_operators,
)

F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spd(n: int, dtype=F64, seed: int = 0) -> torch.Tensor:
    M = torch.randn(n, n, dtype=dtype, generator=_gen(seed))
    return M @ M.conj().T / n + 0.1 * torch.eye(n, dtype=dtype)


def soft(v: torch.Tensor, th: float) -> torch.Tensor:
    return torch.sign(v) * torch.clamp(v.abs() - th, min=0)


# -- shared small problems ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def lasso():
    """min 1/2||Ax-y||^2 + lam||x||_1 and its solution by 5000 FISTA iterations."""
    g = _gen(1)
    m, n, lam = 40, 20, 0.5
    A = torch.randn(m, n, dtype=F64, generator=g)
    x_true = torch.zeros(n, dtype=F64)
    x_true[:5] = 3 * torch.randn(5, dtype=F64, generator=g)
    y = A @ x_true + 0.1 * torch.randn(m, dtype=F64, generator=g)
    L = float(torch.linalg.matrix_norm(A, 2)) ** 2
    x = z = torch.zeros(n, dtype=F64)
    t = 1.0
    for _ in range(5000):
        x_new = soft(z - A.T @ (A @ z - y) / L, lam / L)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z, x, t = x_new + (t - 1) / t_new * (x_new - x), x_new, t_new
    assert 0 < int((x != 0).sum()) < n  # a genuinely sparse, nontrivial solution
    return {"A": A, "y": y, "lam": lam, "x": x, "n": n}


def _diff(x: torch.Tensor) -> torch.Tensor:
    return x[1:] - x[:-1]


def _diff_adjoint(p: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(p.shape[0] + 1, dtype=p.dtype)
    out[1:] += p
    out[:-1] -= p
    return out


@pytest.fixture(scope="module")
def tv1d():
    """min_x 1/2||x-b||^2 + lam||Dx||_1 solved by 20000 FISTA steps on the dual (box-constrained)."""
    g = _gen(2)
    b = torch.cat([torch.zeros(20), torch.ones(20), 0.3 * torch.ones(20)]).to(F64)
    b = b + 0.1 * torch.randn(60, dtype=F64, generator=g)
    lam = 0.3
    p = q = torch.zeros(59, dtype=F64)
    t = 1.0
    for _ in range(20000):  # dual: min_{|p|<=lam} 1/2||b - D^T p||^2, step 1/||D||^2 >= 1/4
        p_new = torch.clamp(q + 0.25 * _diff(b - _diff_adjoint(q)), -lam, lam)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        q, p, t = p_new + (t - 1) / t_new * (p_new - p), p_new, t_new
    x = b - _diff_adjoint(p)
    assert float((_diff(x).abs() < 1e-8).sum()) > 30  # TV really flattened most of the signal
    return {"b": b, "lam": lam, "x": x}


def rosenbrock(x: torch.Tensor) -> tuple[float, torch.Tensor]:
    """2D Rosenbrock value and hand-written gradient."""
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    g = torch.stack([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])
    return float(f), g


def _quadratic(n: int = 20, seed: int = 3):
    Q = _spd(n, seed=seed)
    c = 3 * torch.randn(n, dtype=F64, generator=_gen(seed + 1))

    def fg(x):
        return float(0.5 * x @ Q @ x - c @ x), Q @ x - c

    return Q, c, fg


# -- CG, CGLS, solve_spd ------------------------------------------------------------------------
@pytest.mark.parametrize("damp", [0.0, 0.7])
def test_cgls_matches_scipy_lsqr(damp):
    g = _gen(4)
    A = torch.randn(30, 12, dtype=F64, generator=g)
    y = torch.randn(30, dtype=F64, generator=g)
    x, hist = CGLS(lambda v: A @ v, y, A_adjoint=lambda w: A.T @ w, damp=damp, tol=1e-12, progress=False).run()
    ref = lsqr(A.numpy(), y.numpy(), damp=damp, atol=1e-15, btol=1e-15, iter_lim=1000)[0]
    np.testing.assert_allclose(x.numpy(), ref, rtol=0, atol=1e-10)
    assert hist.converged and hist.iterations <= 13  # CG finishes in n steps (+ round-off)
    # residual is the relative normal-equation residual; objective the damped least-squares value
    r = A.T @ (y - A @ x) - damp**2 * x
    assert float(r.norm() / (A.T @ y).norm()) == pytest.approx(hist.residual[-1], abs=1e-12)
    obj = 0.5 * float(((A @ x - y) ** 2).sum()) + 0.5 * damp**2 * float((x**2).sum())
    assert hist.objective[-1] == pytest.approx(obj, rel=1e-12)
    assert all(a >= b - 1e-12 for a, b in zip(hist.objective, hist.objective[1:]))  # monotone


def test_cgls_with_deepinv_physics_and_batch():
    """A LinearPhysics on (B, C, H, W) tensors; the batch is one joint problem."""
    g = _gen(5)
    W = torch.randn(24, 16, dtype=F64, generator=g)
    physics = dinv.physics.LinearPhysics(
        A=lambda x: (x.reshape(2, 1, 16) @ W.T).reshape(2, 1, 24),
        A_adjoint=lambda y: (y.reshape(2, 1, 24) @ W).reshape(2, 1, 4, 4),
    )
    x_true = torch.randn(2, 1, 4, 4, dtype=F64, generator=g)
    y = physics.A(x_true)
    x, hist = CGLS(physics, y, tol=1e-12, max_iter=60, progress=False).run()
    assert x.shape == x_true.shape and hist.converged
    torch.testing.assert_close(x, x_true, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="^A_adjoint: expected None"):
        CGLS(physics, y, A_adjoint=physics.A_adjoint)


@pytest.mark.parametrize("dtype", [F64, torch.complex128])
def test_cg_matches_linalg_solve(dtype):
    M = _spd(15, dtype=dtype)
    b = torch.randn(15, dtype=dtype, generator=_gen(6))
    x, hist = CG(lambda v: M @ v, b, tol=1e-12, progress=False).run()
    ref = np.linalg.solve(M.numpy(), b.numpy())
    np.testing.assert_allclose(x.numpy(), ref, rtol=0, atol=1e-10)
    assert x.dtype == dtype and hist.converged
    assert float((b - M @ x).norm() / b.norm()) <= 1e-11
    # objective is the CG energy 1/2 <x, Mx> - Re <b, x>, decreasing along the iterations
    energy = 0.5 * float((x.conj() @ M @ x).real) - float((b.conj() @ x).real)
    assert hist.objective[-1] == pytest.approx(energy, rel=1e-10)
    assert all(a >= b - 1e-10 for a, b in zip(hist.objective, hist.objective[1:]))


def test_cg_warm_start_and_indefinite_operator():
    M = _spd(10)
    b = torch.randn(10, dtype=F64, generator=_gen(7))
    exact = torch.linalg.solve(M, b)
    x, hist = CG(lambda v: M @ v, b, tol=1e-10, progress=False).run(exact.clone())
    assert hist.iterations == 1 and hist.residual[0] < 1e-12
    with pytest.raises(ValueError, match="apply_A"):
        CG(lambda v: -v, b, progress=False).run()


@pytest.mark.parametrize("dtype", [F64, torch.complex128])
def test_solve_spd_matches_linalg_solve(dtype):
    M = _spd(15, dtype=dtype, seed=8)
    b = torch.randn(15, dtype=dtype, generator=_gen(9))
    ref = torch.linalg.solve(M, b)
    torch.testing.assert_close(solve_spd(lambda v: M @ v, b, max_iter=100, tol=1e-12), ref, rtol=0, atol=1e-9)
    # warm start at the solution: stays there; tiny problems are not biased by a stabiliser
    torch.testing.assert_close(solve_spd(lambda v: M @ v, b, x0=ref.clone(), tol=1e-12), ref, rtol=0, atol=1e-12)
    small = solve_spd(lambda v: M @ v, 1e-9 * b, max_iter=100, tol=1e-12)
    torch.testing.assert_close(small, 1e-9 * ref, rtol=1e-8, atol=0)


# -- NLCG -----------------------------------------------------------------------------------------
def test_hand_gradients_match_autograd():
    x = torch.tensor([-0.7, 1.3], dtype=F64)
    f, g = rosenbrock(x)
    f_auto, g_auto = autograd_f_and_grad(
        lambda z: (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2
    )(x)
    assert f == pytest.approx(f_auto, rel=1e-14)
    torch.testing.assert_close(g, g_auto, rtol=1e-13, atol=0)
    Q, c, fg = _quadratic()
    z = torch.randn(20, dtype=F64, generator=_gen(10))
    torch.testing.assert_close(fg(z)[1], autograd_f_and_grad(lambda v: 0.5 * v @ Q @ v - c @ v)(z)[1])


@pytest.mark.parametrize("beta", ["PR+", "FR", "DY"])
@pytest.mark.parametrize("line_search", ["wolfe", "secant", "armijo"])
def test_nlcg_rosenbrock(beta, line_search):
    solver = NLCG(rosenbrock, beta=beta, line_search=line_search, tol=1e-9, max_iter=2000, progress=False)
    x, hist = solver.run(torch.tensor([-1.2, 1.0], dtype=F64))
    assert hist.converged, (hist.iterations, hist.stop_reason)
    assert float((x - 1).abs().max()) < 1e-4
    assert hist.objective[-1] < 1e-10 and all(np.isfinite(hist.objective))
    assert hist.iterations < (150 if line_search == "wolfe" else 500)
    # restarting every few steps still converges (exercises restart_every)
    x, hist = NLCG(rosenbrock, beta=beta, line_search=line_search, restart_every=5, tol=1e-9, max_iter=2000,
                   progress=False).run(torch.tensor([-1.2, 1.0], dtype=F64))  # fmt: skip
    assert hist.converged and float((x - 1).abs().max()) < 1e-4


@pytest.mark.parametrize("beta", ["PR+", "FR", "DY"])
@pytest.mark.parametrize("line_search", ["wolfe", "secant", "armijo"])
def test_nlcg_convex_quadratic(beta, line_search):
    Q, c, fg = _quadratic()
    x, hist = NLCG(fg, beta=beta, line_search=line_search, tol=1e-11, max_iter=1000, progress=False).run(
        torch.zeros(20, dtype=F64)
    )
    assert hist.converged, hist.stop_reason
    torch.testing.assert_close(x, torch.linalg.solve(Q, c), rtol=0, atol=1e-8)


@pytest.mark.parametrize("beta", ["PR+", "FR", "DY"])
@pytest.mark.parametrize("line_search", ["wolfe", "secant", "armijo"])
def test_projected_nlcg_box_matches_lbfgsb(beta, line_search):
    Q, c, fg = _quadratic()
    ref = minimize(
        lambda z: fg(torch.from_numpy(z))[0], np.zeros(20), jac=lambda z: fg(torch.from_numpy(z))[1].numpy(),
        method="L-BFGS-B", bounds=[(-1, 1)] * 20, options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000},
    ).x  # fmt: skip
    n_active = int((np.abs(np.abs(ref) - 1) < 1e-9).sum())
    assert 0 < n_active < 20  # the minimiser lies on the boundary, not at a vertex
    x, hist = NLCG(fg, beta=beta, line_search=line_search, projection=lambda z: z.clamp(-1, 1),
                   tol=1e-10, max_iter=1000, progress=False).run(torch.zeros(20, dtype=F64))  # fmt: skip
    assert hist.converged, hist.stop_reason
    np.testing.assert_allclose(x.numpy(), ref, rtol=0, atol=1e-7)
    assert float(x.abs().max()) <= 1.0  # feasible


def test_nlcg_complex_least_squares_with_autograd():
    g = _gen(11)
    A = torch.randn(12, 6, dtype=torch.complex128, generator=g)
    y = torch.randn(12, dtype=torch.complex128, generator=g)
    fg = autograd_f_and_grad(lambda x: 0.5 * ((A @ x - y).abs() ** 2).sum())
    _, g0 = fg(torch.zeros(6, dtype=torch.complex128))
    torch.testing.assert_close(g0, -(A.conj().T @ y))  # the gradient convention: Re<g, d> = f'
    x, hist = NLCG(fg, tol=1e-11, max_iter=300, progress=False).run(torch.zeros(6, dtype=torch.complex128))
    assert hist.converged and x.dtype == torch.complex128
    torch.testing.assert_close(x, torch.linalg.lstsq(A, y).solution, rtol=0, atol=1e-8)


# -- ADMM -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("adaptive", [False, True])
def test_admm_lasso_matches_fista(lasso, adaptive):
    A, y, lam = lasso["A"], lasso["y"], lasso["lam"]
    x_step = quadratic_x_step(lambda v: A @ v, y, A_adjoint=lambda r: A.T @ r, max_iter=100, tol=1e-12)
    rho0 = 20.0 if adaptive else 1.0  # a poor start for the adaptive run
    solver = ADMM(x_step, lambda v, rho: soft(v, lam / rho), rho=rho0, adaptive=adaptive,
                  objective=lambda x: 0.5 * float(((A @ x - y) ** 2).sum()) + lam * float(x.abs().sum()),
                  tol=1e-9, max_iter=3000, progress=False)  # fmt: skip
    x, hist = solver.run(torch.zeros(lasso["n"], dtype=F64))
    assert hist.converged
    torch.testing.assert_close(x, lasso["x"], rtol=0, atol=1e-7)
    assert hist.residual[-1] <= 1e-9 and not math.isnan(hist.objective[-1])
    if adaptive:
        assert solver.state["rho"] != rho0  # the penalty did adapt
    else:
        assert solver.state["rho"] == rho0


@pytest.mark.parametrize("adaptive", [False, True])
def test_admm_box_constrained_least_squares(adaptive):
    g = _gen(12)
    A = torch.randn(40, 20, dtype=F64, generator=g)
    y = A @ (1.5 * torch.randn(20, dtype=F64, generator=g)) + 0.1 * torch.randn(40, dtype=F64, generator=g)
    ref = lsq_linear(A.numpy(), y.numpy(), bounds=(-1, 1), tol=1e-14, lsmr_tol=1e-14).x
    assert 0 < int((np.abs(np.abs(ref) - 1) < 1e-9).sum()) < 20
    x_step = quadratic_x_step(lambda v: A @ v, y, A_adjoint=lambda r: A.T @ r, max_iter=100, tol=1e-12)
    x, hist = ADMM(x_step, lambda v, rho: v.clamp(-1, 1), rho=1.0, adaptive=adaptive, tol=1e-10,
                   max_iter=3000, progress=False).run(torch.zeros(20, dtype=F64))  # fmt: skip
    assert hist.converged
    np.testing.assert_allclose(x.numpy(), ref, rtol=0, atol=1e-7)


def test_admm_tv1d_with_difference_operator(tv1d):
    """K = D (not the identity): x-step (I + rho D^T D) x = b + rho D^T v by CG."""
    b, lam = tv1d["b"], tv1d["lam"]
    x_step = quadratic_x_step(lambda v: v, b, A_adjoint=lambda v: v, K=_diff, K_adjoint=_diff_adjoint,
                              max_iter=100, tol=1e-12)  # fmt: skip
    x, hist = ADMM(x_step, lambda v, rho: soft(v, lam / rho), rho=1.0, K=_diff, K_adjoint=_diff_adjoint,
                   abs_tol=1e-12, tol=1e-10, max_iter=5000, progress=False).run(b.clone())  # fmt: skip
    assert hist.converged
    torch.testing.assert_close(x, tv1d["x"], rtol=0, atol=1e-6)


# -- PDHG -----------------------------------------------------------------------------------------
def test_op_norm_of_difference_operator():
    n = 30
    exact = 2 * math.cos(math.pi / (2 * n))  # largest singular value of the (n-1) x n difference
    est = op_norm(_diff, _diff_adjoint, torch.zeros(n, dtype=F64), max_iter=2000, tol=1e-12)
    assert est == pytest.approx(exact, rel=1e-6)
    assert op_norm(lambda x: 3 * x, lambda y: 3 * y, torch.zeros(2, 1, 4, 4)) == pytest.approx(3.0, rel=1e-6)


def test_pdhg_tv1d_denoising(tv1d):
    b, lam = tv1d["b"], tv1d["lam"]
    obj = lambda x: 0.5 * float(((x - b) ** 2).sum()) + lam * float(_diff(x).abs().sum())  # noqa: E731
    solver = PDHG(_diff, _diff_adjoint, lambda v, t: (v + t * b) / (1 + t), lambda v, s: v.clamp(-lam, lam),
                  objective=obj, max_iter=20000, tol=1e-12, progress=False)  # fmt: skip
    x, hist = solver.run(b.clone())
    assert hist.converged and hist.iterations > 10  # does not stop at the trivial first step
    torch.testing.assert_close(x, tv1d["x"], rtol=0, atol=1e-8)
    assert hist.objective[-1] == pytest.approx(obj(tv1d["x"]), rel=1e-10)
    tau, sigma = solver.state["tau"], solver.state["sigma"]
    assert tau * sigma * 4.0 < 1.0  # default steps respect tau sigma ||K||^2 < 1


def test_pdhg_lasso_matches_admm_and_fista(lasso):
    A, y, lam = lasso["A"], lasso["y"], lasso["lam"]
    prox_data_conj = prox_conj_from_prox(lambda v, t: (v + t * y) / (1 + t))  # f = 1/2||. - y||^2
    # conjugate prox by Moreau's identity equals the closed form (v - s y) / (1 + s)
    v = torch.randn(40, dtype=F64, generator=_gen(13))
    torch.testing.assert_close(prox_data_conj(v, 0.7), (v - 0.7 * y) / 1.7)
    x, hist = PDHG(lambda z: A @ z, lambda r: A.T @ r, lambda z, t: soft(z, lam * t), prox_data_conj,
                   max_iter=20000, tol=1e-13, progress=False).run(torch.zeros(lasso["n"], dtype=F64))  # fmt: skip
    assert hist.converged
    torch.testing.assert_close(x, lasso["x"], rtol=0, atol=1e-8)
    x_step = quadratic_x_step(lambda z: A @ z, y, A_adjoint=lambda r: A.T @ r, max_iter=100, tol=1e-12)
    x_admm, _ = ADMM(x_step, lambda z, rho: soft(z, lam / rho), tol=1e-10, max_iter=3000, progress=False).run(
        torch.zeros(lasso["n"], dtype=F64)
    )
    torch.testing.assert_close(x, x_admm, rtol=0, atol=1e-7)


def test_pdhg_block_dual_stacked_operator(lasso):
    """K = [A; I] with a block dual and g = 0 solves the same lasso."""
    A, y, lam = lasso["A"], lasso["y"], lasso["lam"]
    K, KT = stack_operators((lambda z: A @ z, lambda r: A.T @ r), (lambda z: z, lambda z: z))
    prox_fc = separable_prox(
        prox_conj_from_prox(lambda v, t: (v + t * y) / (1 + t)), prox_conj_from_prox(lambda v, t: soft(v, lam * t))
    )
    norm_K = op_norm(K, KT, torch.zeros(lasso["n"], dtype=F64), max_iter=500, tol=1e-12)
    assert norm_K == pytest.approx(math.sqrt(float(torch.linalg.matrix_norm(A, 2)) ** 2 + 1), rel=1e-6)
    solver = PDHG(K, KT, lambda v, t: v, prox_fc, norm_K=norm_K, max_iter=30000, tol=1e-13, progress=False)
    x, hist = solver.run(torch.zeros(lasso["n"], dtype=F64))
    assert isinstance(solver.last_dual, list) and len(solver.last_dual) == 2
    torch.testing.assert_close(x, lasso["x"], rtol=0, atol=1e-7)


# -- base behaviour -------------------------------------------------------------------------------
class _Halving(IterativeSolver):
    """x <- x / 2, except that iteration ``bad`` produces a NaN."""

    def __init__(self, bad: int, **kw):
        super().__init__(**kw)
        self.bad = bad

    def init_state(self, x0):
        return {"x": x0.clone(), "k": 0}

    def step(self, state):
        state["x"] = state["x"] / 2
        if state["k"] == self.bad:
            state["x"][0] = float("nan")
        state["k"] += 1
        return float(state["x"].abs().sum()), 0.5


def test_nonfinite_stops_with_last_finite_iterate():
    with pytest.raises(NonFiniteError) as err:
        _Halving(bad=3, max_iter=10, progress=False).run(torch.ones(4, dtype=F64))
    e = err.value
    assert e.iteration == 3 and len(e.history.residual) == 3
    torch.testing.assert_close(e.last_iterate, torch.full((4,), 1 / 8, dtype=F64), rtol=0, atol=0)

    # the same through a real solver: an operator that breaks at its 5th call
    M, b = _spd(8), torch.ones(8, dtype=F64)
    calls, seen = [0], []

    def apply(v):
        calls[0] += 1
        return M @ v * (float("nan") if calls[0] == 5 else 1.0)

    with pytest.raises(NonFiniteError) as err:
        CG(apply, b, max_iter=20, progress=False, callback=lambda k, x: seen.append(x.clone())).run()
    assert bool(torch.isfinite(err.value.last_iterate).all())
    torch.testing.assert_close(err.value.last_iterate, seen[-1], rtol=0, atol=0)


def test_reference_records_psnr_without_changing_iterates():
    M = _spd(16)
    b = torch.randn(16, dtype=F64, generator=_gen(14))
    ref = torch.linalg.solve(M, b)
    x1, h1 = CG(lambda v: M @ v, b, max_iter=10, progress=False).run()
    x2, h2 = CG(lambda v: M @ v, b, max_iter=10, progress=False, reference=ref).run()
    assert torch.equal(x1, x2) and h1.residual == h2.residual and h1.psnr == []
    assert len(h2.psnr) == h2.iterations == 10 and h2.psnr[-1] > h2.psnr[0]
    with pytest.raises(ValueError, match="reference"):
        CG(lambda v: M @ v, b, progress=False, reference=ref[:5]).run()


def test_progress_flag(capsys):
    M, b = _spd(6), torch.ones(6, dtype=F64)
    CG(lambda v: M @ v, b, max_iter=3, progress=False).run()
    assert capsys.readouterr().err == ""
    CG(lambda v: M @ v, b, max_iter=3, progress=True).run()
    assert "CG" in capsys.readouterr().err


def test_tol_stops_early():
    M = _spd(30, seed=15)
    b = torch.randn(30, dtype=F64, generator=_gen(15))
    _, hist = CG(lambda v: M @ v, b, tol=1e-3, max_iter=100, progress=False).run()
    assert hist.converged and hist.stop_reason == "tol" and hist.iterations < 30
    assert hist.residual[-1] <= 1e-3 < hist.residual[-2]
    _, hist = CG(lambda v: M @ v, b, tol=0.0, max_iter=5, progress=False).run()
    assert not hist.converged and hist.iterations == 5 and hist.stop_reason == "max_iter"


def test_stalled_line_search_ends_run_with_reason():
    # a linear function bounded below only by the projection: the minimiser is the corner (0, 0)
    fg = lambda x: (float(x.sum()), torch.ones_like(x))  # noqa: E731
    x, hist = NLCG(fg, projection=lambda z: z.clamp(min=0), line_search="armijo", tol=0.0,
                   max_iter=50, progress=False).run(torch.tensor([3.0, 5.0], dtype=F64))  # fmt: skip
    torch.testing.assert_close(x, torch.zeros(2, dtype=F64))
    assert hist.residual[-1] == 0.0 and hist.iterations < 50 and "line search" in hist.stop_reason


def _bad_calls():
    b, A = torch.ones(3, dtype=F64), lambda v: v
    return [
        (lambda: CG(A, [1.0, 2.0]), TypeError, "b"),
        (lambda: CG(A, b).run(torch.ones(4, dtype=F64)), ValueError, "x0"),
        (lambda: CG(A, b, max_iter=0), ValueError, "max_iter"),
        (lambda: CG(A, b, tol=-1.0), ValueError, "tol"),
        (lambda: CG("A", b), TypeError, "apply_A"),
        (lambda: CGLS(A, b, A, damp=-1.0), ValueError, "damp"),
        (lambda: CGLS(A, b), ValueError, "A_adjoint"),
        (lambda: NLCG(rosenbrock, beta="HS+"), ValueError, "beta"),
        (lambda: NLCG(rosenbrock, line_search="exact"), ValueError, "line_search"),
        (lambda: NLCG(rosenbrock, c1=0.5, c2=0.1), ValueError, "c1, c2"),
        (lambda: NLCG(lambda x: (0.0, x[:1])).run(b), ValueError, "f_and_grad"),
        (lambda: ADMM(A, A, rho=0.0), ValueError, "rho"),
        (lambda: ADMM(A, A, tau=1.0), ValueError, "tau"),
        (lambda: ADMM(A, A, K=A), ValueError, "K_adjoint"),
        (lambda: ADMM(lambda v, r, x: x[:2], lambda v, r: v, progress=False).run(b), ValueError, "x_step"),
        (lambda: PDHG(A, A, A, A, theta=2.0), ValueError, "theta"),
        (lambda: PDHG(A, A, A, A, tau=1.0, sigma=1.0, norm_K=1.0), ValueError, "tau, sigma"),
        (lambda: PDHG(A, A, A, A, y0=torch.ones(2), progress=False).run(b), ValueError, "y0"),
        (lambda: op_norm(A, A, None), TypeError, "x0"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_bad_arguments_name_the_argument(case):
    call, exc, name = _bad_calls()[case]
    with pytest.raises(exc) as err:
        call()
    assert str(err.value).startswith(name + ":"), str(err.value)
    assert "received" in str(err.value) or "expected" in str(err.value)
