"""Tests of the PSM model (spline, factors), the RED penalty and the RED-PSM / PSM / sliding-window methods
(their results, their prior argument over the three kinds of the prior protocol, their input checks)."""

from __future__ import annotations

import deepinv
import pytest
import torch
from deepinv.physics import DynamicMRI

import recon
from operators import DynamicCT
from recon.methods.red_psm import DENOISER_SIGMA, RED_WEIGHT_BUDGET, TV_STEPS, TV_WEIGHT_BUDGET, auto_weight
from recon.phantoms import dynamic_object
from recon.regularizers.prior import DenoiserPrior, L1Prior, TVPrior
from recon.regularizers.psm import hermite_spline_matrix, psm_frames, truncated_svd_factors
from recon.regularizers.red import framewise, red_fixed_point_step, red_gradient, red_penalty
from recon.result import ReconInfo
from recon.solvers import History, NonFiniteError

# ----------------------------------------------------------------------------- the spline


@pytest.mark.parametrize(("p", "d"), [(32, 9), (128, 9), (20, 7), (5, 5), (9, 2)])
def test_spline_reproduces_its_latent_samples(p, d):
    knots = torch.linspace(0, p - 1, d, dtype=torch.float64)
    u = hermite_spline_matrix(p, d, times=knots, dtype=torch.float64)
    torch.testing.assert_close(u, torch.eye(d, dtype=torch.float64), rtol=0, atol=1e-12)
    full = hermite_spline_matrix(p, d, dtype=torch.float64)
    assert full.shape == (p, d)
    torch.testing.assert_close(full.sum(dim=1), torch.ones(p, dtype=torch.float64))  # constants reproduced


def test_spline_is_c1_at_the_knots_and_reproduces_lines():
    p, d, eps = 64, 8, 1e-6
    z = torch.randn(d, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    knots = torch.linspace(0, p - 1, d, dtype=torch.float64)[1:-1]

    def curve(t: torch.Tensor) -> torch.Tensor:
        return hermite_spline_matrix(p, d, times=t, dtype=torch.float64) @ z

    # value and one-sided derivatives match at every interior knot
    left = (curve(knots) - curve(knots - eps)) / eps
    right = (curve(knots + eps) - curve(knots)) / eps
    torch.testing.assert_close(left, right, rtol=0, atol=1e-4)
    torch.testing.assert_close(curve(knots - 1e-9), curve(knots + 1e-9), rtol=0, atol=1e-7)
    # the second derivative jumps in general (a cubic spline interpolant, not a single polynomial)
    second = lambda t: (curve(t + eps) - 2 * curve(t) + curve(t - eps)) / eps**2  # noqa: E731
    assert (second(knots[:1] - 1e-3) - second(knots[:1] + 1e-3)).abs().max() > 1e-3
    # samples on a line give that line (Catmull-Rom tangents are exact for linear data)
    line = 0.5 + 0.25 * torch.linspace(0, p - 1, d, dtype=torch.float64)
    t = torch.linspace(0, p - 1, 301, dtype=torch.float64)
    torch.testing.assert_close(hermite_spline_matrix(p, d, times=t, dtype=torch.float64) @ line, 0.5 + 0.25 * t)


def test_spline_rejects_bad_sizes():
    with pytest.raises(ValueError, match="latent_size.*at most n_frames = 8"):
        hermite_spline_matrix(8, 9)
    with pytest.raises(ValueError, match="latent_size"):
        hermite_spline_matrix(8, 1)
    with pytest.raises(TypeError, match="n_frames"):
        hermite_spline_matrix(8.0, 4)
    with pytest.raises(ValueError, match="times"):
        hermite_spline_matrix(8, 4, times=[0.0, 7.5])


def test_truncated_svd_factors_recover_an_exact_spline_psm():
    gen = torch.Generator().manual_seed(1)
    p, d, r, n = 24, 6, 3, 10
    u = hermite_spline_matrix(p, d, dtype=torch.float64)
    frames = psm_frames(torch.randn(r, n, n, generator=gen, dtype=torch.float64), torch.randn(d, r, generator=gen, dtype=torch.float64), u)
    spatial, latent = truncated_svd_factors(frames, r, u)
    assert spatial.shape == (r, n, n) and latent.shape == (d, r)
    torch.testing.assert_close(psm_frames(spatial, latent, u), frames, rtol=1e-9, atol=1e-9)
    # the sign convention: the largest entry of each temporal singular vector is positive, so -frames
    # gives the same temporal basis and the negated spatial one
    spatial_neg, latent_neg = truncated_svd_factors(-frames, r, u)
    torch.testing.assert_close(latent_neg, latent, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(spatial_neg, -spatial, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_truncated_svd_factors_complete_undetermined_vectors_with_cosines(dtype):
    # frames without temporal change (a sliding window spanning all frames gives them) determine one
    # temporal vector, the constant; LAPACK's basis of the rest is arbitrary (it changed with the
    # thread count), so the factors take the smoothest cosines orthogonal to it instead
    p, d, r, n = 16, 6, 4, 8
    u = hermite_spline_matrix(p, d, dtype=torch.float64)
    frames = torch.rand(n, n, generator=torch.Generator().manual_seed(4), dtype=dtype).expand(p, n, n).contiguous()
    spatial, latent = truncated_svd_factors(frames, r, u)
    t = torch.arange(p, dtype=torch.float64)
    cosines = torch.stack([torch.cos(torch.pi * (t + 0.5) * j / p) for j in range(r)], dim=1)
    expected = torch.linalg.lstsq(u, cosines / cosines.norm(dim=0)).solution
    tol = 10 * torch.finfo(dtype).eps
    torch.testing.assert_close(latent.double(), expected, rtol=tol, atol=tol)
    torch.testing.assert_close(psm_frames(spatial, latent, u.to(dtype)), frames, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- RED


def _symmetric_blur(x: torch.Tensor) -> torch.Tensor:
    """A linear denoiser with a symmetric matrix: a symmetric 3x3 kernel, zero padding."""
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=x.dtype) / 16
    return torch.nn.functional.conv2d(x, k[None, None], padding=1)


def test_red_gradient_is_the_residual_for_a_symmetric_jacobian():
    x = torch.rand(2, 1, 9, 11, generator=torch.Generator().manual_seed(2), dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(red_penalty(x, _symmetric_blur), x)
    torch.testing.assert_close(red_gradient(x.detach(), _symmetric_blur), auto, rtol=1e-12, atol=1e-12)

    # a non-symmetric Jacobian breaks the identity: the test above has teeth
    def shift(v: torch.Tensor) -> torch.Tensor:
        return torch.roll(v, 1, dims=-1)

    (auto_shift,) = torch.autograd.grad(red_penalty(x, shift), x)
    assert (red_gradient(x.detach(), shift) - auto_shift).abs().max() > 1e-2


def test_red_fixed_point_step_and_framewise():
    gen = torch.Generator().manual_seed(3)
    f, v = torch.rand(5, 8, 8, generator=gen, dtype=torch.float64), torch.rand(5, 8, 8, generator=gen, dtype=torch.float64)
    denoise = framewise(_symmetric_blur, chunk=2)
    torch.testing.assert_close(denoise(f), _symmetric_blur(f[:, None])[:, 0])
    step = red_fixed_point_step(f, v, denoise, lam=0.3, beta=0.1)
    torch.testing.assert_close(step, (0.3 * denoise(f) + 0.1 * v) / 0.4)
    # its fixed point zeroes the gradient of lam * rho(f) + beta/2 ||f - v||^2 (with RED's gradient)
    for _ in range(400):
        f = red_fixed_point_step(f, v, denoise, lam=0.3, beta=0.1)
    torch.testing.assert_close(0.3 * red_gradient(f, denoise) + 0.1 * (f - v), torch.zeros_like(f), rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------- the methods


def _ct_problem(n: int = 24, p: int = 8, seed: int = 5000):
    x = dynamic_object(n, p, seed=seed, dtype=torch.float64)
    physics = DynamicCT(n, n_frames=p)
    y = physics.A(x)
    return physics, y + 5e-3 * y.max() * torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=y.dtype), x


def _blur_prior(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """:func:`_symmetric_blur` as a (blind) denoiser callable ``D(x, sigma)`` of the prior protocol."""
    return _symmetric_blur(x)


def test_red_psm_runs_and_reports():
    physics, y, x = _ct_problem()
    frames, info = recon.red_psm(physics, y, prior=_blur_prior, rank=3, latent_size=4, lam=1.0, beta=3.0, n_iter=3, reference=x)
    assert frames.shape == x.shape and frames.dtype == x.dtype and bool(torch.isfinite(frames).all())
    assert float(frames.min()) >= 0.0  # nonneg projection
    assert isinstance(info, ReconInfo) and isinstance(info.history, History)
    assert info.n_iter == 3 and len(info.history.psnr) == 3 and not info.converged and info.stop_reason == "max_iter"
    assert info.seconds > 0
    assert info.params == {
        "prior": "_blur_prior", "denoiser_sigma": DENOISER_SIGMA, "lam": 1.0, "beta": 3.0, "rank": 3, "latent_size": 4,
        "n_iter": 3, "init": "svd",
    }  # fmt: skip
    assert info.extra["data_scale"] > 0
    assert info.extra["spatial"].shape == (3, 24, 24) and info.extra["temporal"].shape == (8, 3)
    torch.testing.assert_close(torch.einsum("pr,rij->pij", info.extra["temporal"], info.extra["spatial"]).clamp(min=0), frames[0])


@pytest.mark.parametrize(("p", "rank"), [(12, 5), (40, 7)])
def test_red_psm_defaults_come_from_the_table(p, rank):
    physics, y, _ = _ct_problem(n=16, p=p)
    _, info = recon.red_psm(physics, y, prior=_blur_prior, n_iter=2)
    assert (info.params["rank"], info.params["latent_size"]) == (rank, 9)  # DEFAULTS: P <= 32, P <= 128
    assert (info.params["lam"], info.params["beta"]) == (RED_WEIGHT_BUDGET / 2, recon.methods.red_psm.BETA)  # lam "auto"


def test_auto_weight_is_the_budget_over_the_iterations():
    """lam="auto": weight x outer iterations = RED_WEIGHT_BUDGET (red_psm) or TV_WEIGHT_BUDGET (psm with TV),
    the same run as the explicit weight."""
    assert auto_weight(30.0, 201) == 30.0 / 201 and (RED_WEIGHT_BUDGET, TV_WEIGHT_BUDGET) == (30.0, 2.0)
    physics, y, _ = _ct_problem()
    kw = {"rank": 3, "latent_size": 4, "n_iter": 4}
    a, info = recon.red_psm(physics, y, prior=_blur_prior, **kw)
    b, _ = recon.red_psm(physics, y, prior=_blur_prior, lam=RED_WEIGHT_BUDGET / 4, **kw)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert info.params["lam"] == 7.5
    c, info_c = recon.psm(physics, y, prior="tv", lam="auto", **kw)
    d, _ = recon.psm(physics, y, prior="tv", lam=TV_WEIGHT_BUDGET / 4, **kw)
    torch.testing.assert_close(c, d, rtol=0, atol=0)
    assert info_c.params["lam"] == 0.5
    with pytest.raises(ValueError, match="n_iter"):
        auto_weight(30.0, 0)


def test_red_psm_prior_kinds_agree_and_pass_the_strength():
    """A callable D(x, sigma), the same callable as a deepinv Prior, and the strengths they receive."""
    physics, y, _ = _ct_problem()
    seen = []

    def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
        seen.append(sigma)
        return _symmetric_blur(x)

    kw = {"rank": 3, "latent_size": 4, "lam": 1.0, "beta": 3.0, "n_iter": 2}
    a, info = recon.red_psm(physics, y, prior=blur, denoiser_sigma=0.02, **kw)
    assert seen and set(seen) == {0.02} and info.params["denoiser_sigma"] == 0.02
    b, info_b = recon.red_psm(physics, y, prior=DenoiserPrior(blur, name="blur"), denoiser_sigma=0.02, **kw)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert info_b.params["prior"] == "blur"
    # an explicit prior through its prox at sigma_d^2: prox_{sigma_d^2 R}, the MAP denoiser of noise std sigma_d
    c, info_c = recon.red_psm(physics, y, prior="l1", denoiser_sigma=0.02, **kw)
    d, _ = recon.red_psm(physics, y, prior=L1Prior(), denoiser_sigma=0.02, **kw)
    e, _ = recon.red_psm(physics, y, prior=lambda x, sigma: L1Prior().prox(x, gamma=0.02**2), **kw)
    torch.testing.assert_close(c, d, rtol=0, atol=0)
    torch.testing.assert_close(c, e, rtol=0, atol=0)
    assert info_c.params["prior"] == "l1" and not torch.allclose(a, c)


@pytest.mark.parametrize("name", ["tv", "l1", "ct_dncnn"])
def test_red_psm_takes_the_registered_priors(name):
    physics, y, x = _ct_problem(n=16, p=4)
    frames, info = recon.red_psm(physics, y, prior=name, rank=2, latent_size=3, n_iter=1)
    assert frames.shape == x.shape and bool(torch.isfinite(frames).all()) and info.params["prior"] == name


def test_psm_baselines_and_tolerance_stop():
    physics, y, x = _ct_problem()
    plain, info = recon.psm(physics, y, rank=3, latent_size=4, n_iter=4)
    assert plain.shape == x.shape and info.params["lam"] == 0.0 and info.params["prior"] is None
    tv, info_tv = recon.psm(physics, y, rank=3, latent_size=4, prior="tv", lam=0.03, beta=3.0, n_iter=60, tol=3e-3)
    assert info_tv.converged and info_tv.stop_reason == "tol" and info_tv.n_iter < 60  # stopped by the change of the frames
    assert info_tv.params["prior"] == "tv"


def test_psm_prior_kinds():
    """prior="tv" is TVPrior(n_iter=TV_STEPS); an explicit prior gets the prox weight lam / beta, a denoiser
    callable D(x, sigma) the noise std sqrt(lam / beta)."""
    physics, y, _ = _ct_problem()
    kw = {"rank": 3, "latent_size": 4, "lam": 0.03, "beta": 3.0, "n_iter": 3}
    by_name, _ = recon.psm(physics, y, prior="tv", **kw)
    by_object, info = recon.psm(physics, y, prior=TVPrior(n_iter=TV_STEPS), **kw)
    torch.testing.assert_close(by_name, by_object, rtol=0, atol=0)
    assert info.params["prior"] == "TVPrior"
    assert not torch.allclose(by_name, recon.psm(physics, y, prior=TVPrior(n_iter=1), **kw)[0])
    seen = []

    def soft(x: torch.Tensor, sigma: float) -> torch.Tensor:  # the MAP denoiser of noise std sigma under e^{-l1}
        seen.append(sigma)
        return L1Prior().prox(x, gamma=sigma**2)

    by_callable, _ = recon.psm(physics, y, prior=soft, **kw)
    torch.testing.assert_close(by_callable, recon.psm(physics, y, prior="l1", **kw)[0])
    assert set(seen) == {(0.03 / 3.0) ** 0.5}
    assert isinstance(recon.psm(physics, y, prior=deepinv.optim.prior.L1Prior(), **kw)[1], ReconInfo)


def test_random_initialisation_is_seeded():
    physics, y, _ = _ct_problem()
    a, _ = recon.psm(physics, y, rank=2, latent_size=3, n_iter=2, init="random", seed=4)
    b, _ = recon.psm(physics, y, rank=2, latent_size=3, n_iter=2, init="random", seed=4)
    c, _ = recon.psm(physics, y, rank=2, latent_size=3, n_iter=2, init="random", seed=5)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_sliding_window_fbp_of_a_static_object_is_the_fbp_of_all_views():
    n, p = 32, 16
    x = dynamic_object(n, p, seed=5001, max_shift=0.0, dtype=torch.float64)  # no motion
    physics = DynamicCT(n, n_frames=p)
    frames, info = recon.sliding_window_fbp(physics, physics.A(x), window=p)
    assert info.params == {"window": p, "filter": "hann"} and info.n_iter == 0 and info.stop_reason == "closed form"
    torch.testing.assert_close(frames, frames[:, :1].expand_as(frames))  # every window holds all views
    assert float((frames - x).abs().mean()) < float((recon.sliding_window_fbp(physics, physics.A(x), window=2)[0] - x).abs().mean())


def test_red_psm_on_dynamic_mri():
    n, p = 16, 6
    x = dynamic_object(n, p, seed=5002, kind="cardiac", dtype=torch.float64)
    mask = torch.zeros(p, n, n, dtype=torch.float64)
    for t in range(p):
        mask[t, :, [n // 2, (3 * t) % n, (3 * t + 7) % n]] = 1.0  # the centre line and two moving lines
    physics = DynamicMRI(mask=mask, img_size=(1, 2, p, n, n))
    obj = torch.stack([x[0], torch.zeros_like(x[0])])[None]
    frames, info = recon.red_psm(physics, physics.A(obj), prior=_blur_prior, rank=2, latent_size=3, lam=1.0, beta=3.0, n_iter=2)
    assert frames.shape == obj.shape and float(frames[:, 1].abs().max()) == 0.0 and info.n_iter == 2
    shared, info_vs = recon.view_sharing(physics, physics.A(obj))
    assert shared.shape == obj.shape and info_vs.params["window"] == 6  # 3 of 16 lines per frame: ceil(16 / 3), capped at P = 6


def test_bad_input_is_named():
    physics, y, _ = _ct_problem()
    with pytest.raises(ValueError, match="rank: expected at most n_frames = 8"):
        recon.psm(physics, y, rank=9)
    with pytest.raises(ValueError, match="latent_size"):
        recon.psm(physics, y, latent_size=9)
    with pytest.raises(ValueError, match="y"):  # P of the data does not match the physics
        recon.psm(physics, y[:, :6])
    with pytest.raises(ValueError, match="init"):
        recon.psm(physics, y, init="zeros")
    with pytest.raises(ValueError, match="prior: unknown prior 'wavelet'"):
        recon.psm(physics, y, prior="wavelet", lam=1.0)
    with pytest.raises(TypeError, match="prior: expected a prior name"):
        recon.red_psm(physics, y, prior=3.0)
    with pytest.raises(ValueError, match="lam: expected 0 for prior=None"):
        recon.psm(physics, y, lam=1.0)
    with pytest.raises(ValueError, match="lam: expected 0 for prior=None and > 0 with a prior"):
        recon.psm(physics, y, prior="tv")
    with pytest.raises(ValueError, match='lam: expected a number >= 0 or "auto", received \'fast\''):
        recon.red_psm(physics, y, prior=_blur_prior, lam="fast")
    with pytest.raises(ValueError, match='lam: expected a number \\(0 without a prior; "auto" only with prior="tv"\\)'):
        recon.psm(physics, y, prior="l1", lam="auto")
    with pytest.raises(ValueError, match="lam: expected"):
        recon.psm(physics, y, lam="auto")  # no prior: no weight
    with pytest.raises(ValueError, match="denoiser_sigma"):
        recon.red_psm(physics, y, prior=_blur_prior, denoiser_sigma=0.0)
    with pytest.raises(TypeError, match="positional"):
        recon.red_psm(physics, y, 3, 4)  # keyword-only past (physics, y)
    with pytest.raises(ValueError, match="y: expected one sequence"):
        recon.red_psm(physics, torch.cat([y, y]), prior=_blur_prior)
    with pytest.raises(TypeError, match="physics"):
        recon.sliding_window_fbp(object(), y)
    with pytest.raises(ValueError, match="window"):
        recon.sliding_window_fbp(physics, y, window=9)
    with pytest.raises(ValueError, match="angles"):  # angles of the wrong length
        DynamicCT(24, n_frames=8, angles=torch.zeros(7))


def test_a_nan_stops_the_run_and_keeps_the_last_finite_frames():
    physics, y, _ = _ct_problem()

    def broken(v: torch.Tensor, sigma: float) -> torch.Tensor:
        return v * float("nan")

    with pytest.raises(NonFiniteError) as err:
        recon.red_psm(physics, y, prior=broken, rank=2, latent_size=3, lam=1.0, beta=3.0, n_iter=3)
    assert err.value.iteration == 0 and bool(torch.isfinite(err.value.last_iterate).all())
