"""PnP-HVAE (recon.methods.pnp_hvae), its exact data step (recon.methods._data_term) and its baselines
(recon.methods.pnp_baselines), without shipped weights: a small untrained HVAE with perturbed heads."""

from __future__ import annotations

import math

import deepinv
import pytest
import torch
from deepinv.physics import BlurFFT, Inpainting, LinearPhysics
from deepinv.physics.functional.blur import gaussian_blur
from torch.nn import functional as F

import recon
from recon.methods._data_term import data_x_step, start_image
from recon.methods.pnp_baselines import pnp_admm, red, wiener
from recon.methods.pnp_hvae import latent_update, pnp_hvae, temperature_schedule
from recon.metrics import psnr
from recon.noise import measured_entries, noise_norm_estimate
from recon.regularizers.prior import DenoiserPrior
from recon.result import ReconInfo
from recon.solvers import NonFiniteError, solve_spd

N = 32
NOISE_STD = 0.05



def _smooth_images(b: int = 2, n: int = N, dtype=torch.float64) -> torch.Tensor:
    """Smooth test images in [0, 1]: sums of a few seeded Gaussian bumps."""
    gen = torch.Generator().manual_seed(3)
    c = torch.arange(n, dtype=dtype)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    out = torch.zeros(b, 1, n, n, dtype=dtype)
    for i in range(b):
        for _ in range(4):
            cy, cx, w = (torch.rand(3, generator=gen, dtype=dtype) * torch.tensor([n, n, n / 4], dtype=dtype)).tolist()
            out[i, 0] += torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (w + 2) ** 2))
    return 0.1 + 0.8 * out / out.amax(dim=(2, 3), keepdim=True)


def _blur(n: int = N) -> BlurFFT:
    return BlurFFT((1, n, n), filter=gaussian_blur(sigma=(1.5, 1.5)))


def _inpainting(n: int = N) -> Inpainting:
    return Inpainting(img_size=(1, n, n), mask=0.5, rng=torch.Generator().manual_seed(1))


def _generic(physics: LinearPhysics) -> LinearPhysics:
    """The same operator seen as a plain LinearPhysics (forces the CG x-step), declaring its image size."""
    return LinearPhysics(A=physics.A, A_adjoint=physics.A_adjoint, img_size=physics.img_size)


def _noisy(physics: LinearPhysics, x: torch.Tensor, noise_std: float = NOISE_STD) -> torch.Tensor:
    return physics.A(x) + noise_std * physics.A(torch.ones_like(x)).ne(0) * torch.randn(
        x.shape, generator=torch.Generator().manual_seed(5), dtype=x.dtype
    )


# ----------------------------------------------------------------------------- the z-step


@pytest.mark.parametrize("temperature, beta", [(0.8, 1.0), (0.3, 1.0), (0.6, 2.0), (1.2, 0.5), (1.0, 1.0)])
def test_latent_update_is_the_minimiser_of_its_level_objective(temperature, beta):
    gen = torch.Generator().manual_seed(0)
    shape = (2, 3, 4, 4)
    nu, mu = (torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(2))
    tau, sigma = (0.2 + torch.rand(shape, generator=gen, dtype=torch.float64) for _ in range(2))
    b = 1.0 - beta * temperature**2

    def level_objective(z):
        return (beta / (2 * tau**2) * (z - nu) ** 2 + b / (2 * (temperature * sigma) ** 2) * (z - mu) ** 2).sum()

    z = latent_update(nu, tau, mu, sigma, temperature, beta)
    # the gradient of the level objective vanishes there ...
    zz = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(level_objective(zz), zz)
    assert float(grad.abs().max()) < 1e-10
    # ... and a numerical minimiser (L-BFGS from the prior mean) finds the same point
    w = mu.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w], max_iter=200, tolerance_grad=1e-14, tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = level_objective(w)
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(z, w.detach(), rtol=0, atol=1e-6)


def test_level_objective_is_the_papers_z_objective_up_to_a_constant():
    """-beta log q(z|x) + beta log p(z) - log p_T(z) = the objective latent_update minimises + const."""
    gen = torch.Generator().manual_seed(1)
    nu, mu = (torch.randn(50, generator=gen, dtype=torch.float64) for _ in range(2))
    tau, sigma = (0.2 + torch.rand(50, generator=gen, dtype=torch.float64) for _ in range(2))
    t, beta = 0.7, 1.3
    b = 1.0 - beta * t**2

    def log_normal(z, m, s):
        return -0.5 * ((z - m) / s) ** 2 - torch.log(s) - 0.5 * math.log(2 * math.pi)

    def paper(z):
        return -beta * log_normal(z, nu, tau) + beta * log_normal(z, mu, sigma) - log_normal(z, mu, t * sigma)

    def ours(z):
        return beta / (2 * tau**2) * (z - nu) ** 2 + b / (2 * (t * sigma) ** 2) * (z - mu) ** 2

    z1, z2 = (torch.randn(50, generator=gen, dtype=torch.float64) for _ in range(2))
    torch.testing.assert_close(paper(z1) - ours(z1), paper(z2) - ours(z2), rtol=0, atol=1e-10)


def test_latent_update_limits():
    gen = torch.Generator().manual_seed(2)
    nu, mu = (torch.randn(10, generator=gen) for _ in range(2))
    tau, sigma = (0.5 + torch.rand(10, generator=gen) for _ in range(2))
    torch.testing.assert_close(latent_update(nu, tau, mu, sigma, 0.0, 1.0), mu)  # T = 0: the prior mean
    torch.testing.assert_close(latent_update(nu, tau, mu, sigma, 1.0, 1.0), nu)  # b = 0: the posterior mean
    torch.testing.assert_close(latent_update(nu, tau, mu, sigma, 0.5, 4.0), nu)  # b = 0 at beta = 4, T = 1/2


def test_temperature_schedule():
    assert temperature_schedule((0.8, 0.6), 3) == pytest.approx([0.8, 0.7, 0.6])
    assert temperature_schedule((0.8, 0.6), 5) == pytest.approx([0.8, 0.75, 0.7, 0.65, 0.6])
    assert temperature_schedule(0.5, 3) == [0.5, 0.5, 0.5]
    assert temperature_schedule([0.9, 0.1, 0.4], 3) == [0.9, 0.1, 0.4]
    assert temperature_schedule(torch.tensor([0.9, 0.1, 0.4], dtype=torch.float64), 3) == pytest.approx([0.9, 0.1, 0.4])
    assert temperature_schedule((0.0, 1.0), 2) == [0.0, 1.0]


@pytest.mark.parametrize(
    "bad, match",
    [
        ((0.8, 0.7, 0.6, 0.5), "received 4 values"),
        ((), "received 0 values"),
        ((0.8, -0.1), "finite numbers >= 0"),
        ((0.8, float("nan")), "finite numbers >= 0"),
        ((float("inf"), 0.5, 0.5), "finite numbers >= 0"),
        ((0.8, "a"), "finite numbers >= 0"),
        ((1.1, 0.6), r"T <= 1 / sqrt\(beta\)"),
    ],
)
def test_temperature_schedule_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match="temperatures: .*" + match):
        temperature_schedule(bad, 3)


def test_temperature_schedule_rejects_non_sequences():
    with pytest.raises(TypeError, match="temperatures: expected a number"):
        temperature_schedule("0.8", 3)
    with pytest.raises(ValueError, match=r"temperatures: expected T <= 1 / sqrt\(beta\) = 0.7071"):
        temperature_schedule(0.8, 3, beta=2.0)


# ----------------------------------------------------------------------------- the x-step


def _normal_residual(physics, y, x, v, w) -> float:
    lhs = physics.A_adjoint(physics.A(x)) + w * x
    rhs = physics.A_adjoint(y) + w * v
    return float((lhs - rhs).norm() / rhs.norm())


@pytest.mark.parametrize("make", [_blur, _inpainting], ids=["fft", "mask"])
def test_exact_x_steps_solve_the_normal_equations_and_agree_with_cg(make):
    physics = make()
    x = _smooth_images()
    y = _noisy(physics, x)
    v = torch.rand(x.shape, generator=torch.Generator().manual_seed(7), dtype=x.dtype)
    noise_var = torch.tensor([0.01, 0.04], dtype=x.dtype).reshape(2, 1, 1, 1)  # one sigma^2 per batch element
    rho = 3.0
    exact = data_x_step(physics, y, noise_var)(v, rho, x)
    assert _normal_residual(physics, y, exact, v, noise_var * rho) < 1e-12
    by_cg = data_x_step(_generic(physics), y, noise_var, cg_iter=500, cg_tol=1e-12)(v, rho, torch.zeros_like(x))
    assert _normal_residual(physics, y, by_cg, v, noise_var * rho) < 1e-9
    torch.testing.assert_close(exact, by_cg, rtol=0, atol=1e-8)


def test_cg_x_step_on_a_generic_operator():
    gen = torch.Generator().manual_seed(4)
    matrix = torch.randn(40, N * N, generator=gen, dtype=torch.float64) / N
    physics = LinearPhysics(
        A=lambda u: (u.reshape(u.shape[0], -1) @ matrix.T).reshape(u.shape[0], 1, 40),
        A_adjoint=lambda r: (r.reshape(r.shape[0], -1) @ matrix).reshape(r.shape[0], 1, N, N),
    )
    x = _smooth_images()
    y = physics.A(x)
    v = torch.rand(x.shape, generator=gen, dtype=x.dtype)
    out = data_x_step(physics, y, 0.5, cg_iter=300, cg_tol=1e-12)(v, 0.2, torch.zeros_like(x))
    assert _normal_residual(physics, y, out, v, 0.1) < 1e-9


def test_start_image_is_the_data_or_the_adjoint_and_checks_x0():
    x = _smooth_images()
    blur, mask = _blur(), _inpainting()
    y = blur.A(x)
    assert torch.equal(start_image(blur, y), y)
    assert torch.equal(start_image(mask, mask.A(x)), mask.A_adjoint(mask.A(x)))
    x0 = torch.rand(2, 1, N, N)
    out = start_image(blur, y, x0)
    assert out.dtype == y.dtype and torch.equal(out, x0.double()) and out is not x0
    with pytest.raises(ValueError, match=r"x0: expected a tensor of shape \(2, 1, 32, 32\)"):
        start_image(blur, y, torch.zeros(2, 1, N, N + 1))
    with pytest.raises(TypeError, match="physics: expected an operator that declares its image shape"):
        start_image(LinearPhysics(A=blur.A, A_adjoint=blur.A_adjoint), y, x0)


def _level_and_std(physics, y, r: float) -> tuple[dict, dict]:
    """``noise_level=r`` and the matching ``noise_std`` (one image: r ||y|| / sqrt(1 + r^2) / sqrt(m))."""
    m = float(measured_entries(physics, y)[0])
    return {"noise_level": r}, {"noise_std": float(noise_norm_estimate(y, r)[0]) / math.sqrt(m)}


@pytest.mark.parametrize(
    "method, make",
    [(m, k) for m in ("pnp_hvae", "pnp_admm", "red") for k in (_blur, _inpainting)] + [("wiener", _blur)],
    ids=lambda v: v if isinstance(v, str) else v.__name__.strip("_"),
)
def test_noise_level_and_the_matching_noise_std_give_the_same_result(vae, method, make):
    """Inpainting counts only the observed pixels as measurements (its missing pixels are noise-free zeros)."""
    physics = make()
    y = _noisy(physics, _smooth_images(1))
    level, std = _level_and_std(physics, y, 0.05)
    run = {
        "pnp_hvae": lambda **k: pnp_hvae(physics, y, model=vae, max_iter=3, progress=False, **k),
        "pnp_admm": lambda **k: pnp_admm(physics, y, prior=_blind, denoiser_sigma=0.05, max_iter=5, progress=False, **k),
        "red": lambda **k: red(physics, y, prior=_blind, lam=300.0, denoiser_sigma=0.05, max_iter=5, progress=False, **k),
        "wiener": lambda **k: wiener(physics, y, signal_power=0.01, **k),
    }[method]
    (a, info_a), (b, info_b) = run(**level), run(**std)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert info_a.params["noise_std"] == pytest.approx([std["noise_std"]], rel=1e-12)
    assert info_b.params["noise_level"] == pytest.approx([0.05], rel=1e-9)


# ----------------------------------------------------------------------------- pnp_hvae


def test_pnp_hvae_defaults(vae):
    """Defaults chosen by the demo's sweep (recon.methods.pnp_hvae docstring): beta 0.5, output the x step."""
    physics = _blur()
    y = _noisy(physics, _smooth_images())
    out, info = pnp_hvae(physics, y, noise_std=NOISE_STD, model=vae, max_iter=2, progress=False)
    assert info.params["beta"] == 0.5 and info.params["temperatures"] == pytest.approx([0.8, 0.7, 0.6])
    assert torch.equal(out, info.extra["x_step"])


@pytest.mark.parametrize("make", [_blur, _inpainting, lambda: _generic(_blur())], ids=["fft", "mask", "cg"])
def test_pnp_hvae_alternates_the_documented_steps(vae, make):
    physics = make()
    x = _smooth_images()
    y = _noisy(physics, x)
    means = []
    record = lambda it, m: means.append(m.clone())  # noqa: E731
    # the paper's beta and output (the defaults are beta 0.5 and the x step: test_pnp_hvae_defaults)
    out, info = pnp_hvae(physics, y, noise_std=NOISE_STD, model=vae, max_iter=4, reference=x, progress=False, callback=record,
                         beta=1.0, output="decoder_mean")  # fmt: skip
    assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
    assert isinstance(info, ReconInfo) and info.seconds > 0 and not info.converged and info.stop_reason
    hist = info.history
    assert info.n_iter == 4 and len(hist.objective) == len(hist.residual) == len(hist.psnr) == 4
    assert all(math.isfinite(v) for v in hist.objective + hist.residual)
    params = info.params
    assert params["temperatures"] == pytest.approx([0.8, 0.7, 0.6]) and params["beta"] == 1.0
    assert params["noise_std"] == [NOISE_STD, NOISE_STD] and params["gamma"] == vae.gamma and params["model"] == "HVAE"
    assert info.extra["x_solver"] == {"BlurFFT": "fft", "Inpainting": "mask"}.get(type(physics).__name__, "cg")
    assert torch.equal(out, means[-1])
    # the last x-step solves (A^T A + beta s^2 / gamma^2 I) x = A^T y + beta s^2 / gamma^2 mu(z_prev), s = noise_std
    w = NOISE_STD**2 / vae.gamma**2
    tol = 1e-10 if info.extra["x_solver"] != "cg" else 1e-5
    assert _normal_residual(physics, y, info.extra["x_step"], means[-2], w) < tol
    # the output is the decoder mean of the z-step at the last x-step image
    temps = params["temperatures"]
    with torch.no_grad():
        z, mean = vae.top_down(
            info.extra["x_step"].clamp(0, 1), lambda l, nu, tau, mu, s: latent_update(nu, tau, mu, s, temps[l], 1.0)
        )
    torch.testing.assert_close(mean, out)
    for a, b in zip(z, info.extra["z"], strict=True):
        torch.testing.assert_close(a, b)


def test_pnp_hvae_objective_and_relative_level(vae):
    physics = _blur()
    x = _smooth_images(dtype=torch.float32)
    y = _noisy(physics, x)
    temps = [0.3, 0.5, 1.0]
    _, info = pnp_hvae(physics, y, noise_level=0.05, temperatures=temps, beta=1.0, model=vae, max_iter=2, progress=False)
    assert len(info.params["noise_std"]) == 2 and info.params["temperatures"] == temps
    assert info.params["noise_level"] == pytest.approx([0.05, 0.05])
    std = torch.tensor(info.params["noise_std"], dtype=torch.float64)
    # the recorded objective is J(x, z) at the last x-step image and latents, summed over the batch
    z, x_step = info.extra["z"], info.extra["x_step"]
    with torch.no_grad():
        mean = vae.decode(z)
        data = (physics.A(x_step) - y).double().flatten(1).square().sum(1) / (2 * std**2)
        coupling = (x_step - mean).double().flatten(1).square().sum(1) / (2 * vae.gamma**2)
        prior = -vae.log_prior(z, temps).double()
    assert info.history.objective[-1] == pytest.approx(float((data + coupling + prior).sum()), rel=1e-5)


def test_pnp_hvae_temperature_zero_pins_the_level_to_the_prior_mean(vae):
    physics = _blur()
    y = _noisy(physics, _smooth_images())
    _, info = pnp_hvae(physics, y, noise_std=NOISE_STD, temperatures=[0.0, 0.5, 0.5], model=vae, max_iter=2, progress=False)
    top = {}

    def record(l, nu, tau, mu, s):
        top.setdefault(l, mu)
        return mu

    with torch.no_grad():
        vae.top_down(y, record)  # the top level's prior has no parent: the same mean for any input
    torch.testing.assert_close(info.extra["z"][0], top[0])
    assert math.isfinite(info.history.objective[-1])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"temperatures": (0.8, 0.7, 0.6, 0.5)}, ValueError, "temperatures: expected a number, .*received 4 values"),
        ({"temperatures": (0.8, -0.6)}, ValueError, "temperatures: expected finite numbers >= 0"),
        ({"temperatures": (0.8, float("inf"))}, ValueError, "temperatures: expected finite numbers >= 0"),
        ({"noise_std": None}, ValueError, "noise_level / noise_std: expected exactly one of them"),
        ({"noise_level": 0.05}, ValueError, "noise_level / noise_std: expected at most one of them"),
        ({"noise_std": -0.1}, ValueError, "noise_std: expected a finite number"),
        ({"noise_std": 0.0}, ValueError, r"noise_level / noise_std: expected a noise > 0 \(the data weight"),
        ({"model": "nope"}, ValueError, r"model: expected an HVAE or the name of one in denoisers.zoo .*received 'nope'"),
        ({"model": 3}, TypeError, "model: expected an HVAE or the name of one in denoisers.zoo"),
        ({"beta": 0.0}, ValueError, "beta: expected a finite number > 0"),
        ({"max_iter": 0}, ValueError, "max_iter: expected an integer >= 1"),
        ({"x0": torch.zeros(1, 1, N, N)}, ValueError, r"x0: expected a tensor of shape \(2, 1, 32, 32\)"),
    ],
)
def test_pnp_hvae_rejects_bad_arguments(vae, kwargs, error, match):
    physics = _blur()
    y = _noisy(physics, _smooth_images())
    args = {"noise_std": NOISE_STD, "model": vae, "progress": False} | kwargs
    with pytest.raises(error, match=match):
        pnp_hvae(physics, y, **args)


def test_pnp_hvae_rejects_images_not_divisible_by_the_stride_and_bad_problems(vae):
    physics = _blur(36)
    expected = r"divisible by the model's stride 8, received images of shape \(1, 1, 36, 36\)"
    with pytest.raises(ValueError, match=r"y: expected images A\^T y of shape \(B, 1, H, W\) with H and W " + expected):
        pnp_hvae(physics, torch.rand(1, 1, 36, 36), noise_std=NOISE_STD, model=vae)
    three = BlurFFT((3, N, N), filter=gaussian_blur(sigma=(1.0, 1.0)))
    with pytest.raises(ValueError, match="y: expected images A\\^T y of shape \\(B, 1, H, W\\)"):
        pnp_hvae(three, torch.rand(1, 3, N, N), noise_std=NOISE_STD, model=vae)
    with pytest.raises(TypeError, match="physics: expected a deepinv LinearPhysics"):
        pnp_hvae(lambda v: v, torch.rand(1, 1, N, N), noise_std=NOISE_STD, model=vae)
    with pytest.raises(TypeError, match="y: expected a torch.Tensor"):
        pnp_hvae(_blur(), [[0.0]], noise_std=NOISE_STD, model=vae)


def test_pnp_hvae_stops_on_nan_with_the_last_finite_decoder_mean(vae, monkeypatch):
    physics = _blur()
    y = _noisy(physics, _smooth_images())
    calls = {"n": 0}
    original = vae.top_down

    def failing(x, choose):
        calls["n"] += 1
        z, mean = original(x, choose)
        return z, mean * float("nan") if calls["n"] == 4 else mean  # init + 2 good iterations, then NaN

    monkeypatch.setattr(vae, "top_down", failing)
    with pytest.raises(NonFiniteError) as err:
        pnp_hvae(physics, y, noise_std=NOISE_STD, model=vae, max_iter=10, progress=False)
    assert err.value.iteration == 2 and err.value.history.iterations == 2
    assert err.value.last_iterate.shape == y.shape and torch.isfinite(err.value.last_iterate).all()


# ----------------------------------------------------------------------------- baselines


def test_wiener_is_the_exact_minimiser():
    n = 8
    physics = BlurFFT((1, n, n), filter=gaussian_blur(sigma=(1.0, 1.0)))
    x = _smooth_images(1, n)
    y = _noisy(physics, x, 0.02)
    out, info = wiener(physics, y, noise_std=0.02, signal_power=0.01)
    lam = 0.02**2 / 0.01
    assert info.extra["weight"] == pytest.approx([lam]) and info.params["signal_power"] == 0.01
    assert info.n_iter == 0 and info.stop_reason == "closed form" and len(info.history.objective) == 0
    basis = torch.eye(n * n, dtype=torch.float64).reshape(n * n, 1, n, n)
    a = physics.A(basis).reshape(n * n, n * n).T  # column j = A e_j
    centre = torch.eye(n * n, dtype=torch.float64) - 1.0 / (n * n)  # x - mean(x)
    expected = torch.linalg.solve(a.T @ a + lam * centre.T @ centre, a.T @ y.reshape(-1))
    torch.testing.assert_close(out.reshape(-1), expected, rtol=0, atol=1e-10)


def test_wiener_rejects_other_operators():
    with pytest.raises(TypeError, match="physics: expected a deepinv BlurFFT"):
        wiener(_inpainting(), torch.rand(1, 1, N, N), noise_std=0.01, signal_power=0.01)
    with pytest.raises(ValueError, match="signal_power: expected a finite number > 0"):
        wiener(_blur(), torch.rand(1, 1, N, N), noise_std=0.01, signal_power=-1.0)


def _smoothing(v: torch.Tensor) -> torch.Tensor:
    """A simple symmetric linear denoiser: periodic 3x3 binomial smoothing."""
    k = torch.tensor([1.0, 2.0, 1.0], dtype=v.dtype)
    k = (k[:, None] * k[None, :] / 16).reshape(1, 1, 3, 3)
    return F.conv2d(F.pad(v, (1, 1, 1, 1), mode="circular"), k)


def _blind(v: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """:func:`_smoothing` as a denoiser of the prior protocol ``D(x, sigma)`` (blind: ``sigma`` ignored)."""
    return _smoothing(v)


@pytest.mark.parametrize("make", [_blur, _inpainting], ids=["blur", "inpainting"])
@pytest.mark.parametrize("method", ["pnp_admm", "red"])
def test_pnp_baselines_improve_over_the_data(make, method):
    physics = make()
    x = _smooth_images()
    y = _noisy(physics, x, 0.08)
    common = {"progress": False, "reference": x}
    if method == "pnp_admm":
        out, info = pnp_admm(physics, y, prior=_blind, noise_std=0.08, denoiser_sigma=0.05, max_iter=30, **common)
        assert info.params["rho"] == pytest.approx(1 / 0.05**2)
    else:
        out, info = red(physics, y, prior=_blind, noise_std=0.08, lam=300.0, denoiser_sigma=0.05, max_iter=30, **common)
        assert info.params["lam"] == info.params["beta"] == 300.0
    assert info.n_iter >= 1 and len(info.history.psnr) == info.n_iter
    assert info.params["prior"] == "_blind" and info.params["denoiser_sigma"] == 0.05
    assert info.params["noise_std"] == [0.08, 0.08]
    assert info.extra["z"].shape == x.shape
    baseline = psnr(physics.A_adjoint(y), x, 1.0)
    assert (psnr(out, x, 1.0) > baseline + 1.0).all()


def test_red_reaches_its_fixed_point_equation():
    """With a linear symmetric denoiser G, RED's fixed point solves (A^T A / s^2 + lam (I - G)) x = A^T y / s^2."""
    physics = _blur()
    x = _smooth_images()
    y = _noisy(physics, x, 0.05)
    lam, s2 = 200.0, 0.05**2
    out, _ = red(physics, y, prior=_blind, noise_std=0.05, lam=lam, denoiser_sigma=0.05, max_iter=400, tol=1e-9, progress=False)
    def normal(u):
        return physics.A_adjoint(physics.A(u)) / s2 + lam * (u - _smoothing(u))

    direct = solve_spd(normal, physics.A_adjoint(y) / s2, max_iter=500, tol=1e-12)
    assert float((out - direct).norm() / direct.norm()) < 1e-4


def test_pnp_admm_with_an_explicit_prior_is_exact_admm():
    """An explicit prior R gets the prox weight denoiser_sigma^2 = 1 / rho: PnP-ADMM is then exact ADMM for
    min 1/(2 s^2) ||Mx - y||^2 + ||x||_1, whose minimiser for inpainting is the soft threshold of y at s^2 where
    observed and 0 where missing."""
    physics = _inpainting()
    y = _noisy(physics, _smooth_images() - 0.5, 0.1)
    s2 = 0.1**2
    out, info = pnp_admm(physics, y, prior="l1", noise_std=0.1, denoiser_sigma=0.3, max_iter=500, tol=1e-10, progress=False)
    expected = physics.mask * torch.sign(y) * torch.clamp(y.abs() - s2, min=0.0)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)
    assert info.params["prior"] == "L1Prior" and info.converged


def test_prior_kinds_give_the_same_pnp_admm_and_red():
    """A callable D(x, sigma), our DenoiserPrior and deepinv's PnP / RED around it: one result; the
    denoiser receives denoiser_sigma as its strength."""
    physics = _blur()
    y = _noisy(physics, _smooth_images(), 0.05)
    seen = []

    def denoiser(v, sigma):
        seen.append(sigma)
        return _smoothing(v)

    kinds = [denoiser, DenoiserPrior(denoiser), deepinv.optim.PnP(denoiser), deepinv.optim.RED(denoiser)]
    common = {"noise_std": 0.05, "denoiser_sigma": 0.07, "max_iter": 5, "progress": False}
    outs = [pnp_admm(physics, y, prior=p, **common)[0] for p in kinds]
    outs += [red(physics, y, prior=p, lam=200.0, **common)[0] for p in kinds]
    for out in outs[1:4]:
        torch.testing.assert_close(out, outs[0], rtol=0, atol=0)
    for out in outs[5:]:
        torch.testing.assert_close(out, outs[4], rtol=0, atol=0)
    assert set(seen) == {0.07}


def test_pnp_baselines_reject_bad_arguments():
    physics = _blur()
    y = torch.rand(1, 1, N, N)
    with pytest.raises(ValueError, match="prior: unknown prior 'dncnn'"):
        pnp_admm(physics, y, prior="dncnn", noise_std=0.01, denoiser_sigma=0.05)
    with pytest.raises(TypeError, match="prior: expected a prior name"):
        red(physics, y, prior=3, noise_std=0.01, lam=1.0, denoiser_sigma=0.05)
    with pytest.raises(ValueError, match="denoiser_sigma: expected a finite number > 0"):
        pnp_admm(physics, y, prior=_blind, noise_std=0.01, denoiser_sigma=0.0)
    with pytest.raises(ValueError, match="lam: expected a finite number > 0"):
        red(physics, y, prior=_blind, noise_std=0.01, lam=-1.0, denoiser_sigma=0.05)
    with pytest.raises(ValueError, match="noise_level / noise_std: expected exactly one"):
        red(physics, y, prior=_blind, lam=1.0, denoiser_sigma=0.05)
    with pytest.raises(ValueError, match="noise_level / noise_std: expected a noise > 0"):
        pnp_admm(physics, y, prior=_blind, noise_level=0.0, denoiser_sigma=0.05)
    with pytest.raises(ValueError, match="noise_level / noise_std: expected a noise > 0"):
        wiener(physics, y, noise_std=0.0, signal_power=0.01)
    with pytest.raises(ValueError, match=r"x0: expected a tensor of shape \(1, 1, 32, 32\)"):
        pnp_admm(physics, y, prior=_blind, noise_std=0.01, denoiser_sigma=0.05, x0=torch.zeros(1, 1, 8, 8))
    with pytest.raises(TypeError):
        pnp_admm(physics, y, _blind, noise_std=0.01, denoiser_sigma=0.05)  # keyword-only past (physics, y)


# ----------------------------------------------------------------------------- registry / export


def test_pnp_hvae_is_exported():
    assert recon.pnp_hvae is pnp_hvae and "pnp_hvae" in recon.__all__


def test_pnp_hvae_returns_the_decoder_mean_or_the_x_step(vae):
    physics = _blur()
    y = _noisy(physics, _smooth_images(1))
    run = dict(noise_std=NOISE_STD, model=vae, max_iter=3, progress=False)
    mean, info = pnp_hvae(physics, y, output="decoder_mean", **run)
    step, info_step = pnp_hvae(physics, y, output="x_step", **run)
    assert torch.equal(mean, info.extra["decoder_mean"]) and torch.equal(step, info.extra["x_step"])
    assert torch.equal(step, info_step.extra["x_step"]) and info_step.params["output"] == "x_step"
    assert not torch.equal(mean, step) and info.params["output"] == "decoder_mean"
    with pytest.raises(ValueError, match=r"output: expected one of \('decoder_mean', 'x_step'\), received 'mean'"):
        pnp_hvae(physics, y, output="mean", **run)
