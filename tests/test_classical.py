"""Classical reconstructions: exactness on small problems, the discrepancy principle, bad input."""

import math

import pytest
import torch

import recon
from operators import ParallelBeamCT
from recon.noise import add_relative_noise, noise_norm_estimate, resolve_noise
from recon.phantoms import coule_like
from recon.regularizers.tv import gradient, gradient_adjoint


@pytest.fixture(scope="module")
def small():
    physics = ParallelBeamCT(16, torch.linspace(0, math.pi, 21, dtype=torch.float64)[:-1], backend="numba")
    x = coule_like(16, seed=5, dtype=torch.float64)
    y = add_relative_noise(physics.A(x), 0.03, seed=0)
    return physics, x, y


def _dense(fn, n):
    cols = [fn(e.reshape(1, 1, 16, 16)).reshape(-1) for e in torch.eye(n, dtype=torch.float64)]
    return torch.stack(cols, dim=1)


def test_tikhonov_fixed_alpha_matches_dense_solve(small):
    physics, _, y = small
    A = _dense(physics.A, 256)
    DtD = _dense(lambda v: gradient_adjoint(gradient(v)), 256)
    x_ref = torch.linalg.solve(A.T @ A + 0.5 * DtD, A.T @ y.reshape(-1))
    x, info = recon.tikhonov(physics, y, alpha=0.5, cg_iter=500, cg_tol=1e-12)
    assert info.params == {"alpha": [0.5], "rule": "fixed"} and info.n_iter == 0 and info.stop_reason == "closed form"
    assert torch.allclose(x.reshape(-1), x_ref, rtol=1e-6, atol=1e-8)


def test_tikhonov_discrepancy_hits_the_target(small):
    physics, _, y = small
    x, info = recon.tikhonov(physics, y, noise_level=0.03, tau=1.01)
    target = 1.01 * float(noise_norm_estimate(y, 0.03)[0])
    assert abs(float((physics.A(x) - y).norm()) / target - 1) <= 0.011
    assert info.params["rule"] == "discrepancy" and info.params["tau"] == 1.01
    assert info.params["noise_level"] == [0.03] and info.params["alpha"][0] in dict(info.extra["trials"][0])


def test_tikhonov_gcv_matches_the_exact_gcv_minimum(small):
    physics, _, y = small
    A = _dense(physics.A, 256)
    DtD = _dense(lambda v: gradient_adjoint(gradient(v)), 256)
    yv, m = y.reshape(-1), y.numel()

    def exact_gcv(a):
        H = A @ torch.linalg.solve(A.T @ A + a * DtD, A.T)  # influence matrix
        r = H @ yv - yv
        return float(m * r @ r / (m - torch.trace(H)) ** 2)

    x, info = recon.tikhonov(physics, y, rule="gcv", n_probes=8, cg_iter=500, cg_tol=1e-10)
    alpha = info.params["alpha"][0]
    fine = torch.logspace(math.log10(alpha) - 2, math.log10(alpha) + 2, 81, dtype=torch.float64)
    best = min(exact_gcv(float(a)) for a in fine)
    # the Hutchinson trace makes the curve approximate: its minimiser must be near-optimal
    assert exact_gcv(alpha) <= 1.01 * best  # measured 1.0003
    x_ref = torch.linalg.solve(A.T @ A + alpha * DtD, A.T @ yv)
    assert torch.allclose(x.reshape(-1), x_ref, rtol=1e-5, atol=1e-7)
    assert info.params["rule"] == "gcv" and "noise_std" not in info.params


def test_tikhonov_gcv_rejects_a_noise_level(small):
    physics, _, y = small
    with pytest.raises(ValueError, match="noise_level"):
        recon.tikhonov(physics, y, rule="gcv", noise_level=0.02)
    with pytest.raises(ValueError, match="noise_std"):
        recon.tikhonov(physics, y, rule="gcv", noise_std=0.02)
    with pytest.raises(ValueError, match="rule"):
        recon.tikhonov(physics, y, rule="lcurve")


def test_tv_discrepancy_alpha_is_consistent_with_the_penalised_problem(small):
    physics, _, y = small
    x_c, info_c = recon.tv(physics, y, noise_level=0.03, max_iter=3000, tol=1e-7, progress=False)
    target = 1.01 * float(noise_norm_estimate(y, 0.03)[0])
    assert float((physics.A(x_c) - y).norm()) <= target * 1.001
    x_p, _ = recon.tv(physics, y, alpha=info_c.params["alpha"][0], max_iter=3000, tol=1e-7, progress=False)
    # the constrained solution equals the penalised one at the recovered alpha
    assert float((x_p - x_c).norm() / x_c.norm()) < 1e-2


def test_tv_history_reports_psnr_only_with_reference(small):
    physics, x, y = small
    _, info = recon.tv(physics, y, alpha=0.1, max_iter=20, tol=0.0, reference=x, progress=False)
    assert len(info.history.psnr) == 20 and info.n_iter == 20 and not info.converged and info.stop_reason == "max_iter"
    assert info.params == {"alpha": [0.1], "nonneg": True} and info.seconds > 0
    _, info = recon.tv(physics, y, alpha=0.1, max_iter=20, tol=0.0, progress=False)
    assert info.history.psnr == []


@pytest.mark.parametrize("method", [recon.tikhonov, recon.tv])
def test_alpha_and_noise_level_are_exclusive(small, method):
    physics, _, y = small
    with pytest.raises(ValueError, match="alpha / noise_level"):
        method(physics, y)
    with pytest.raises(ValueError, match="alpha / noise_level"):
        method(physics, y, alpha=1.0, noise_level=0.02)
    with pytest.raises(ValueError, match="alpha / noise_level / noise_std"):
        method(physics, y, alpha=1.0, noise_std=0.02)
    with pytest.raises(ValueError, match="noise_level / noise_std"):
        method(physics, y, noise_level=0.02, noise_std=0.02)
    with pytest.raises(ValueError, match="noise_level"):
        method(physics, y, noise_level=-0.1)
    with pytest.raises(ValueError, match="noise_std: expected a value > 0"):
        method(physics, y, noise_std=0.0)
    with pytest.raises(TypeError):
        method(physics, y, 1.0)  # keyword-only past (physics, y)


@pytest.mark.parametrize("method", [recon.fbp, recon.tikhonov, recon.tv])
def test_bad_measurements(small, method):
    physics, _, y = small
    kwargs = {} if method is recon.fbp else {"alpha": 1.0}
    bad = y.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="y: expected finite"):
        method(physics, bad, **kwargs)
    with pytest.raises(ValueError, match="y"):
        method(physics, y[..., :-1], **kwargs)
    with pytest.raises(TypeError, match="physics"):
        method("not an operator", y, **kwargs)
    with pytest.raises(TypeError, match="y"):
        method(physics, y.numpy(), **kwargs)


def test_fbp_unknown_filter(small):
    physics, _, y = small
    with pytest.raises(ValueError, match="filter"):
        recon.fbp(physics, y, filter="butterworth")


@pytest.mark.parametrize("method", [recon.tikhonov, recon.tv])
def test_noise_level_and_the_matching_noise_std_agree(small, method):
    physics, _, y = small
    noise = resolve_noise(physics, y, noise_level=0.03, noise_std=None)
    kwargs = {"max_iter": 300, "progress": False} if method is recon.tv else {}
    x_level, info_level = method(physics, y, noise_level=0.03, **kwargs)
    x_std, info_std = method(physics, y, noise_std=float(noise.std[0]), **kwargs)
    torch.testing.assert_close(x_std, x_level, rtol=1e-6, atol=1e-9)
    assert info_std.params["noise_level"] == pytest.approx([0.03], rel=1e-9)
    assert info_std.params["alpha"] == pytest.approx(info_level.params["alpha"], rel=1e-6)


def test_fbp_info(small):
    physics, _, y = small
    x, info = recon.fbp(physics, y, filter="hann")
    assert x.shape == (1, 1, 16, 16) and info.params == {"filter": "hann"} and info.n_iter == 0
    with pytest.raises(TypeError):
        recon.fbp(physics, y, "hann")  # keyword-only past (physics, y)
