"""Near-field MIMO: operator specifics, the magnitude prox, C-SALSA and magnitude PnP.

(The generic operator properties, adjoint and linearity included, run over the registry in
test_operators.py.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

import recon
from operators import NearFieldMIMO
from operators import mimo_geometry as mg
from recon.metrics import magnitude_psnr
from recon.regularizers.magnitude import magnitude_prox
from recon.regularizers.prior import L1Prior, TVPrior, as_denoiser
from recon.solvers import CSALSA

SMALL = (5, 6, 7)


def soft_threshold(m: torch.Tensor, t: float) -> torch.Tensor:
    """The soft threshold max(m - t, 0) on magnitudes: L1Prior's prox at the weight t."""
    return L1Prior().prox(m, gamma=t)



def _small(budget: int = 0, **kw) -> NearFieldMIMO:
    return NearFieldMIMO(*mg.x_array(n_tx=4, n_rx=5), mg.default_frequencies(n=5), mg.default_grid(SMALL), dense_budget_bytes=budget, **kw)


def _randc(shape, seed, dtype=torch.complex128) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ----------------------------------------------------------------------------- operator


def test_default_geometry_matches_the_paper():
    tx, rx = mg.x_array()
    f = mg.default_frequencies()
    grid = mg.default_grid()
    assert tx.shape == (12, 3) and rx.shape == (13, 3) and np.all(tx[:, 2] == 0) and np.all(rx[:, 2] == 0)
    np.testing.assert_allclose(rx[[0, -1], :2], [[-0.15, -0.15], [0.15, 0.15]])
    np.testing.assert_allclose(tx[[0, -1], :2], [[-0.15, 0.15], [0.15, -0.15]])
    assert f.size == 20 and f[0] == 4e9 and f[-1] == 16e9
    assert grid.shape == (25, 25, 49) and grid.z[0] == 0.35 and grid.z[-1] == 0.65 and grid.x[-1] == 0.15


def test_dot_test_default_geometry_complex128():
    op = NearFieldMIMO(*mg.x_array(), mg.default_frequencies(), mg.default_grid())
    assert op._dense is None  # 1.5 GB in complex128: matrix-free
    x, y = _randc((1, 1, 25, 25, 49), 0), _randc((1, 1, 20, 12, 13), 1)
    lhs, rhs = torch.vdot(op.A(x).flatten(), y.flatten()), torch.vdot(x.flatten(), op.A_adjoint(y).flatten())
    assert float(abs(lhs - rhs) / abs(lhs)) < 1e-10  # measured 4e-16; the issue asks < 1e-5


def test_matches_the_model_formula_for_one_scatterer():
    op = _small()
    x = torch.zeros(1, 1, *SMALL, dtype=torch.complex128)
    x[0, 0, 2, 3, 4] = 0.7 - 0.2j
    p = op.grid.points()[np.ravel_multi_index((2, 3, 4), SMALL)]
    dt, dr = np.linalg.norm(p - op.tx, axis=1), np.linalg.norm(p - op.rx, axis=1)
    k = 2 * math.pi * op.frequencies / mg.SPEED_OF_LIGHT
    expected = (0.7 - 0.2j) * np.exp(-1j * k[:, None, None] * (dt[None, :, None] + dr[None, None, :])) / (
        4 * math.pi * dt[None, :, None] * dr[None, None, :]
    )
    np.testing.assert_allclose(op.A(x)[0, 0].numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_numba_dense_and_torch_twin_agree(dtype):
    free, dense = _small(0), _small(2**28)
    x, y = _randc((2, 1, *SMALL), 2, dtype), _randc((2, 1, 5, 4, 5), 3, dtype)
    tol = 1e-5 if dtype == torch.complex64 else 1e-12
    for adjoint, v in ((False, x), (True, y)):
        ref = dense._run(v, adjoint)
        for out in (free._run(v, adjoint), free._torch_apply(v.reshape(2, -1), adjoint).reshape(ref.shape)):
            assert out.dtype == dtype
            assert float((out - ref).norm() / ref.norm()) < tol


def test_kirchhoff_focuses_a_point_scatterer():
    op = NearFieldMIMO(*mg.x_array(), mg.default_frequencies(), mg.default_grid((9, 9, 11)))
    x = torch.zeros(1, 1, 9, 9, 11, dtype=torch.complex64)
    x[0, 0, 4, 5, 6] = 1.0
    for img in (op.kirchhoff(op.A(x)), op.A_adjoint(op.A(x))):
        assert np.unravel_index(int(img.abs().argmax()), (9, 9, 11)) == (4, 5, 6)


@pytest.mark.parametrize(
    "build, exc, word",
    [
        (lambda: NearFieldMIMO(*mg.x_array(), [4e9, 0.0], mg.default_grid((3, 3, 3))), ValueError, "frequencies"),
        (lambda: NearFieldMIMO(*mg.x_array(), [-1e9], mg.default_grid((3, 3, 3))), ValueError, "frequencies"),
        (lambda: NearFieldMIMO(np.array([[0.0, 0.0, 0.5]]), mg.x_array()[1], [4e9], mg.default_grid((3, 3, 3))), ValueError, "tx"),
        (lambda: NearFieldMIMO(mg.x_array()[0], np.zeros((2, 2)), [4e9], mg.default_grid((3, 3, 3))), ValueError, "rx"),
        (lambda: NearFieldMIMO(*mg.x_array(), [4e9], (3, 3, 3)), TypeError, "grid"),
        (lambda: NearFieldMIMO(*mg.x_array(), [4e9], mg.default_grid((3, 3, 3)), dense_budget_bytes=-1), ValueError, "dense_budget_bytes"),
        (lambda: _small().A(torch.zeros(1, 1, *SMALL)), TypeError, "x"),
        (lambda: _small().A(torch.zeros(1, 1, 5, 6, 8, dtype=torch.complex64)), ValueError, "x"),
        (lambda: _small().A(torch.zeros(1, 2, *SMALL, dtype=torch.complex64)), ValueError, "x"),
        (lambda: _small().A_adjoint(torch.zeros(1, 1, 5, 4, 4, dtype=torch.complex64)), ValueError, "y"),
        (lambda: _small().A(torch.full((1, 1, *SMALL), float("nan"), dtype=torch.complex64)), ValueError, "x"),
    ],
)
def test_bad_input(build, exc, word):
    with pytest.raises(exc, match=word):
        build()


# ----------------------------------------------------------------------------- magnitude prox


def _numerical_prox(u: np.ndarray, penalty) -> np.ndarray:
    """argmin_x 1/2 |x - u|^2 + penalty(|x|) entry by entry (both penalties below are separable),
    by Nelder-Mead on (Re x, Im x) from two starts (u and 0), keeping the better."""
    out = np.empty_like(u)
    for i, ui in enumerate(u):
        def objective(v, ui=ui, i=i):
            xi = v[0] + 1j * v[1]
            return 0.5 * abs(xi - ui) ** 2 + penalty(abs(xi), i)

        best = min(
            (minimize(objective, v0, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 5000})
             for v0 in ([ui.real, ui.imag], [0.0, 0.0])),
            key=lambda r: r.fun,
        )
        out[i] = best.x[0] + 1j * best.x[1]
    return out


def test_magnitude_prox_l1_matches_numerical_minimiser():
    u = np.array([1.2 - 0.5j, -0.3 + 0.1j, 0.05j, -2.0 + 1.0j])
    lam = 0.4
    ours = magnitude_prox(soft_threshold)(torch.as_tensor(u), lam).numpy()
    np.testing.assert_allclose(ours, _numerical_prox(u, lambda m, i: lam * m), atol=1e-6)


def test_magnitude_prox_quadratic_matches_numerical_minimiser():
    # R(m) = mu/2 ||m - c||^2 on m >= 0: prox_R(|u|) = max((|u| + mu c) / (1 + mu), 0)
    u = np.array([1.0 + 1.0j, -0.5 + 0.2j, 0.3 - 0.9j])
    c, mu = np.array([0.2, 1.5, 0.4]), 0.7
    quad = lambda m: torch.clamp((m + mu * torch.as_tensor(c)) / (1 + mu), min=0.0)  # noqa: E731
    ours = magnitude_prox(quad)(torch.as_tensor(u)).numpy()
    np.testing.assert_allclose(ours, _numerical_prox(u, lambda m, i: 0.5 * mu * (m - c[i]) ** 2), atol=1e-6)


def test_magnitude_prox_keeps_the_phase_and_refuses_real_input():
    u = _randc((1, 1, 4, 4, 4), 7)
    out = magnitude_prox(as_denoiser(TVPrior(n_iter=5)))(u, 0.1)
    nz = out.abs() > 1e-9
    torch.testing.assert_close(torch.angle(out[nz]), torch.angle(u[nz]))
    with pytest.raises(TypeError, match="u"):
        magnitude_prox(soft_threshold)(torch.ones(3), 0.1)
    with pytest.raises(TypeError, match="real_prox"):
        magnitude_prox(3.0)


# ----------------------------------------------------------------------------- C-SALSA


def test_csalsa_denoising_matches_the_constrained_l1_solution():
    # A = I: min ||x||_1 s.t. ||y - x|| <= eps is the soft threshold of y at the lambda where
    # ||y - soft(y)|| = eps (bisection); C-SALSA with the magnitude l1 prox must find it.
    y = _randc((1, 1, 40), 11)
    eps = 0.6 * float(y.norm())
    lo, hi = 0.0, float(y.abs().max())
    for _ in range(200):
        lam = 0.5 * (lo + hi)
        gap = float((y - magnitude_prox(soft_threshold)(y, lam)).norm())
        lo, hi = (lam, hi) if gap < eps else (lo, lam)
    expected = magnitude_prox(soft_threshold)(y, lam)
    prox = lambda v: magnitude_prox(soft_threshold)(v, 0.05)  # noqa: E731
    ident = lambda v: v  # noqa: E731
    x, hist = CSALSA(ident, y, eps, prox, A_adjoint=ident, kappa=1.0, max_iter=3000, tol=1e-10).run(y.clone())
    assert float((x - expected).norm() / expected.norm()) < 1e-4
    assert float((y - x).norm()) <= eps * (1 + 1e-4)


def test_csalsa_bad_arguments():
    ident = lambda v: v  # noqa: E731
    y = torch.ones(3)
    with pytest.raises(ValueError, match="epsilon"):
        CSALSA(ident, y, -1.0, ident, A_adjoint=ident)
    with pytest.raises(ValueError, match="cg_iter"):
        CSALSA(ident, y, 1.0, ident, A_adjoint=ident, cg_iter=0)
    with pytest.raises(TypeError, match="prox"):
        CSALSA(ident, y, 1.0, None, A_adjoint=ident)


# ----------------------------------------------------------------------------- methods


def test_magnitude_psnr_ignores_scale_and_phase():
    x = _randc((2, 1, 3, 4, 5), 3)
    same = 3.0 * x * torch.polar(torch.ones(()), torch.tensor(1.0)).to(x.dtype)
    assert torch.all(magnitude_psnr(same, x) > 250)
    assert torch.all(magnitude_psnr(x + 0.3 * _randc(x.shape, 4), x) < 40)


@pytest.mark.parametrize(
    "call, exc, word",
    [
        (lambda op, y: recon.magnitude_pnp(op, y, prior="l2", noise_level=0.1), ValueError, "prior"),
        (lambda op, y: recon.magnitude_pnp(op, y, prior="unet3d", noise_level=0.1), ValueError, "prior"),
        (lambda op, y: recon.magnitude_pnp(op, y, prior="ct_dncnn", noise_level=0.1), ValueError, "prior"),
        (lambda op, y: recon.magnitude_pnp(op, y, prior=3.0, noise_level=0.1), TypeError, "prior"),
        (lambda op, y: recon.magnitude_pnp(op, y, prior="l1"), ValueError, "noise_level / noise_std / epsilon"),
        (lambda op, y: recon.magnitude_pnp(op, y, prior="l1", noise_level=0.1, epsilon=1.0), ValueError, "noise_level"),
        (lambda op, y: recon.magnitude_pnp(op, y, prior="l1", noise_level=0.1, noise_std=1.0), ValueError, "noise_std"),
        (lambda op, y: recon.magnitude_pnp(op, y, prior="l1", noise_level=-0.1), ValueError, "noise_level"),
        (lambda op, y: recon.magnitude_pnp(op, y, prior="l1", noise_std=-0.1), ValueError, "noise_std"),
        (lambda op, y: recon.magnitude_pnp(op, y, prior=L1Prior(), noise_level=0.1), ValueError, "denoiser_sigma"),
        (lambda op, y: recon.magnitude_pnp(op, y, "l1", noise_level=0.1), TypeError, "positional"),
        (lambda op, y: recon.magnitude_pnp(op, y.real, prior="l1", noise_level=0.1), TypeError, "y"),
        (lambda op, y: recon.backprojection(op, y.abs()), TypeError, "y"),
        (lambda op, y: recon.magnitude_pnp(None, y, prior="l1", noise_level=0.1), TypeError, "physics"),
    ],
)
def test_magnitude_pnp_bad_input(call, exc, word):
    op = _small()
    y = op.A(_randc((1, 1, *SMALL), 5, torch.complex64))
    with pytest.raises(exc, match=word):
        call(op, y)


def _pnp_problem():
    op = _small()
    x = _randc((1, 1, *SMALL), 5, torch.complex64)
    y0 = op.A(x)
    std = 0.05 * float(y0.abs().pow(2).mean().sqrt())
    return op, x, y0 + std * _randc(y0.shape, 6, torch.complex64) / math.sqrt(2), std


def test_magnitude_pnp_noise_words():
    # noise_std is the std per complex entry (E|e_i|^2 = std^2): epsilon = std sqrt(M), as the epsilon= keyword;
    # noise_level is relative, and the noise_std that matches it gives the same reconstruction
    op, _, y, std = _pnp_problem()
    run = dict(prior="l1", max_iter=10, tol=0.0, progress=False)
    x_std, info = recon.magnitude_pnp(op, y, noise_std=std, **run)
    assert info.params["epsilon"] == pytest.approx(std * math.sqrt(y.numel()), rel=1e-6)
    x_eps, _ = recon.magnitude_pnp(op, y, epsilon=std * math.sqrt(y.numel()), **run)
    torch.testing.assert_close(x_eps, x_std, rtol=1e-5, atol=1e-6 * float(x_std.abs().max()))
    level = float(info.params["noise_level"][0])
    assert 0.01 < level < 0.2  # the relative level of this noise, not its std
    x_level, info_level = recon.magnitude_pnp(op, y, noise_level=level, **run)
    assert info_level.params["epsilon"] == pytest.approx(info.params["epsilon"], rel=1e-5)
    torch.testing.assert_close(x_level, x_std, rtol=1e-4, atol=1e-5 * float(x_std.abs().max()))


def test_magnitude_pnp_accepts_the_three_kinds_of_prior():
    op, x, y, std = _pnp_problem()
    run = dict(noise_std=std, denoiser_sigma=0.5, max_iter=10, tol=0.0, progress=False)
    x_name, info = recon.magnitude_pnp(op, y, prior="l1", x_true=x, **run)
    assert info.params["prior"] == "l1" and info.params["denoiser_sigma"] == 0.5 and info.n_iter == 10
    assert len(info.history.psnr) == 10 and info.extra["scale"] > 0 and x_name.shape == x.shape
    x_object, info_object = recon.magnitude_pnp(op, y, prior=L1Prior(), **run)
    assert info_object.params["prior"] == "L1Prior"

    def shrink(m, sigma):  # the l1 prox at the weight sigma**2, as the strength rule gives it
        return torch.clamp(m - sigma**2, min=0.0)

    x_callable, info_callable = recon.magnitude_pnp(op, y, prior=shrink, **run)
    assert info_callable.params["prior"] == "shrink"
    torch.testing.assert_close(x_object, x_name)
    torch.testing.assert_close(x_callable, x_name)


def test_magnitude_pnp_defaults_per_registered_prior():
    op, _, y, std = _pnp_problem()
    _, info = recon.magnitude_pnp(op, y, prior="tv", noise_std=std, max_iter=2, progress=False)
    assert info.params["denoiser_sigma"] == 0.1 and info.params["kappa"] == 500.0  # TV weight 0.01
    _, info = recon.magnitude_pnp(op, y, prior="l1", noise_std=std, tol=1.0, progress=False)
    assert info.params["max_iter"] == 150 and info.converged and info.n_iter == 1
