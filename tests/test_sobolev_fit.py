"""recon.sobolev_fit: implicit regularization by the H^s misfit (GD / CG) and H^s + TV by ADMM."""

import math

import pytest
import torch
from deepinv.physics import BlurFFT, LinearPhysics
from deepinv.physics.functional.blur import gaussian_blur

import recon
from recon.methods.sobolev_fit import periodic_gradient, periodic_gradient_adjoint
from recon.metrics import psnr
from recon.noise import add_relative_noise
from recon.phantoms import TEST_SEEDS, coule_like_batch
from recon.regularizers.sobolev import SobolevNorm
from recon.solvers import CGLS, NonFiniteError

SCALE = 2.0 * math.pi * 10.0  # the deblurring demo's convention: |xi| = 1 at 10 cycles per image


@pytest.fixture(scope="module")
def problem():
    """64^2 Gaussian deblurring (std 1 pixel), 5 % white noise, two COULE-like test images, float64."""
    x = coule_like_batch(2, 64, first_seed=TEST_SEEDS[0], dtype=torch.float64)
    physics = BlurFFT((1, 64, 64), filter=gaussian_blur(sigma=(1.0, 1.0), dtype=torch.float64))
    y = add_relative_noise(physics.A(x), 0.05, seed=3)
    return physics, x, y


def best_iteration(physics, y, x, s: float, n_iter: int) -> int:
    """Iterate (1-based) of the best PSNR of GD on image 0 (the truth only for this report)."""
    _, info = recon.sobolev_fit(physics, y[:1], s=s, method="gd", scale=SCALE, max_iter=n_iter, reference=x[:1])
    psnrs = info.history.psnr
    return 1 + psnrs.index(max(psnrs))


def test_negative_s_reaches_its_best_psnr_later(problem):
    physics, x, y = problem
    # measured 2026-11-28: best PSNR at iteration 14 for s = 0 and 65 for s = -1
    late, early = best_iteration(physics, y, x, -1.0, 400), best_iteration(physics, y, x, 0.0, 400)
    assert late > 2 * early


def test_discrepancy_principle_stops_each_element_at_its_first_hit(problem):
    physics, x, y = problem
    _, full = recon.sobolev_fit(physics, y, s=-1.0, scale=SCALE, noise_level=0.05, early_stop=False, max_iter=200)
    u, info = recon.sobolev_fit(physics, y, s=-1.0, scale=SCALE, noise_level=0.05, max_iter=200)
    stops = info.extra["discrepancy_iteration"]
    assert torch.equal(stops, full.extra["discrepancy_iteration"])
    assert (stops > 0).all() and info.n_iter == int(stops.max())
    assert info.stop_reason == "discrepancy principle" and full.n_iter == 200
    assert info.params["noise_level"] == pytest.approx([0.05, 0.05]) and info.params["tau"] == 1.01
    target = 1.01 * recon.noise.noise_norm_estimate(y, 0.05)
    residual = (physics.A(u) - y).reshape(2, -1).norm(dim=1)
    assert (residual <= target).all()
    for b in range(2):  # one iteration earlier the principle was not met
        before, _ = recon.sobolev_fit(physics, y[b : b + 1], s=-1.0, scale=SCALE, max_iter=int(stops[b]) - 1)
        assert float((physics.A(before) - y[b : b + 1]).norm()) > float(target[b])


def test_gd_decreases_the_hs_misfit_monotonically(problem):
    physics, _, y = problem
    _, info = recon.sobolev_fit(physics, y, s=-0.5, scale=SCALE, max_iter=50)
    obj = torch.tensor(info.history.objective)
    assert (obj[1:] <= obj[:-1] * (1 + 1e-12)).all()
    assert 0 < info.params["step"] and info.params["method"] == "gd" and info.params["s"] == -0.5
    assert "noise_std" not in info.params and (info.extra["discrepancy_iteration"] == -1).all()


def test_cg_with_s_zero_matches_cgls(problem):
    physics, _, y = problem
    u, _ = recon.sobolev_fit(physics, y[:1], s=0.0, method="cg", max_iter=15)
    ref, _ = CGLS(physics, y[:1], max_iter=15).run()
    assert torch.allclose(u, ref, rtol=0, atol=1e-8 * float(ref.abs().max()))


def test_cg_in_the_hs_metric_solves_the_weighted_normal_equations():
    torch.manual_seed(0)
    physics = BlurFFT((1, 16, 16), filter=gaussian_blur(sigma=(0.7, 0.7), dtype=torch.float64))
    y = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    hs = SobolevNorm(-1.0, 2, SCALE)
    u, _ = recon.sobolev_fit(physics, y, s=-1.0, method="cg", scale=SCALE, max_iter=300)
    _, grad = hs.misfit(physics.A, physics.A_adjoint, u, y)
    rhs = physics.A_adjoint(hs.apply(y))
    assert float(grad.norm()) < 1e-6 * float(rhs.norm())


def test_periodic_gradient_adjoint():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(2, 1, 9, 11, generator=g, dtype=torch.float64)
    v = torch.randn(2, 1, 9, 11, 2, generator=g, dtype=torch.float64)
    lhs, rhs = torch.sum(periodic_gradient(u) * v), torch.sum(u * periodic_gradient_adjoint(v))
    assert abs(float(lhs - rhs)) < 1e-12 * float(lhs.abs())


def test_tv_admm_fourier_u_step_equals_the_cg_u_step(problem):
    physics, _, y = problem
    generic = LinearPhysics(A=physics.A, A_adjoint=physics.A_adjoint, img_size=(1, 64, 64))  # not a BlurFFT: CG u-steps
    kw = {"s": -1.0, "method": "tv_admm", "scale": SCALE, "lam": 1e-3, "max_iter": 40, "tol": 0.0}
    u_fourier, info = recon.sobolev_fit(physics, y, **kw)
    u_cg, _ = recon.sobolev_fit(generic, y, cg_iter=100, **kw)
    assert info.params["rho"] == pytest.approx(1e-2) and info.params["lam"] == 1e-3
    # measured 2026-11-28: relative difference 2.1e-5 (the CG u-steps stop at relative residual 1e-6)
    assert float((u_fourier - u_cg).norm() / u_fourier.norm()) < 1e-4


def test_tv_admm_beats_the_unregularized_fit(problem):
    physics, x, y = problem
    u_tv, info = recon.sobolev_fit(physics, y, s=-1.0, method="tv_admm", scale=SCALE, lam=3e-4, max_iter=300)
    u_ls, _ = recon.sobolev_fit(physics, y, s=-1.0, method="cg", scale=SCALE, max_iter=100)
    # measured 2026-11-28: 27.16 dB against 10.44 dB for 100 unregularized CG iterations (mean of 2 images)
    assert float(psnr(u_tv, x, 1.0).mean()) > float(psnr(u_ls, x, 1.0).mean()) + 3.0
    assert info.n_iter <= 300 and len(info.history.objective) == info.n_iter


@pytest.mark.parametrize("method", ["gd", "cg"])
def test_noise_level_and_the_matching_noise_std_stop_at_the_same_iterate(problem, method):
    physics, _, y = problem
    y = y[:1]
    std = float(recon.noise.noise_norm_estimate(y, 0.05)[0]) / math.sqrt(y.numel())
    kw = {"s": -1.0, "method": method, "scale": SCALE, "max_iter": 200}
    u_level, info_level = recon.sobolev_fit(physics, y, noise_level=0.05, **kw)
    u_std, info_std = recon.sobolev_fit(physics, y, noise_std=std, **kw)
    assert info_level.n_iter == info_std.n_iter < 200
    assert info_level.converged and info_level.stop_reason == "discrepancy principle"  # a met goal counts as converged
    torch.testing.assert_close(u_level, u_std, rtol=0, atol=0)
    assert info_std.params["noise_level"] == pytest.approx([0.05], rel=1e-9)


def test_divergence_raises_with_the_last_finite_iterate(problem):
    physics, _, y = problem
    with pytest.raises(NonFiniteError) as err:
        recon.sobolev_fit(physics, y, s=0.0, step=1e155, max_iter=50)
    assert torch.isfinite(err.value.last_iterate).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "landweber"}, "method"),
        ({"method": "tv_admm"}, "lam"),
        ({"s": float("nan")}, "s:"),
        ({"s": float("inf")}, "s:"),
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"tau": 0.9}, "tau"),
        ({"noise_level": -0.1}, "noise_level"),
        ({"noise_std": float("nan")}, "noise_std"),
        ({"noise_level": 0.05, "noise_std": 0.01}, "noise_level / noise_std: expected at most one"),
        ({"max_iter": 0}, "max_iter"),
        ({"method": "tv_admm", "lam": -1.0}, "lam"),
        ({"x0": torch.zeros(1, 1, 8, 8)}, "x0"),
    ],
)
def test_bad_arguments(problem, kwargs, match):
    physics, _, y = problem
    with pytest.raises(ValueError, match=match):
        recon.sobolev_fit(physics, y, **kwargs)


def test_data_not_on_a_grid_or_not_finite(problem):
    physics, _, y = problem
    with pytest.raises(ValueError, match="y: expected a batch of data grids"):
        recon.sobolev_fit(physics, y.reshape(2, -1))
    with pytest.raises(ValueError, match="y"):
        recon.sobolev_fit(physics, torch.full_like(y, float("nan")))
    with pytest.raises(TypeError, match="physics"):
        recon.sobolev_fit(lambda u: u, y)
    with pytest.raises(TypeError, match="physics: expected an operator that declares its image shape"):
        recon.sobolev_fit(LinearPhysics(A=physics.A, A_adjoint=physics.A_adjoint), y)
    with pytest.raises(TypeError):
        recon.sobolev_fit(physics, y, -1.0)  # keyword-only past (physics, y)
