"""graphLa+Psi on a small CT problem (64^2, 30 views, 2 % noise): gains, discrepancy, bad input.

Thresholds come from a run on 2026-11-27 (numba backend) minus 0.5 dB, the ``sigma="auto"`` one
from a run on 2026-12-03; measured values are in the comments.
"""

import math

import pytest
import torch

import recon
from operators import ParallelBeamCT
from recon.metrics import psnr
from recon.noise import add_relative_noise, noise_norm_estimate, resolve_noise
from recon.phantoms import TEST_SEEDS, coule_like


@pytest.fixture(scope="module")
def problem():
    physics = ParallelBeamCT(64, torch.linspace(0, math.radians(179), 30, dtype=torch.float64), n_detectors=91, backend="numba")
    x = coule_like(64, seed=TEST_SEEDS[50])
    y = add_relative_noise(physics.A(x), 0.02, seed=1)
    return physics, x, y


@pytest.fixture(scope="module")
def la_fbp(problem):
    """The paper's graph: the fixed weight scale 1e-3 on the unsmoothed FBP image."""
    physics, x, y = problem
    return recon.graphla(physics, y, psi="fbp", noise_level=0.02, sigma=1e-3, max_iter=1500, progress=False)


def test_la_fbp_beats_fbp_and_meets_the_discrepancy(problem, la_fbp):
    physics, x, y = problem
    x_la, info = la_fbp
    p_fbp = float(psnr(info.extra["psi_image"], x, 1.0)[0])  # measured 22.09
    p_la = float(psnr(x_la, x, 1.0)[0])  # measured 29.99
    assert p_la >= 29.49
    assert p_la >= p_fbp + 5.0
    target = 1.01 * float(noise_norm_estimate(y, 0.02)[0])
    assert float((physics.A(x_la) - y).norm()) <= 1.001 * target
    assert info.params["alpha"][0] > 0 and info.n_iter == 1500 and info.extra["n_iter_per_element"] == [1500]
    assert info.extra["nnz"][0] > 0 and len(info.history.objective) == 1500
    assert info.params["psi"] == "fbp" and info.params["R"] == 5 and info.params["noise_level"] == pytest.approx([0.02])
    assert info.params["sigma"] == [1e-3] and info.params["smooth"] == [0.0]


def test_auto_scale_smooths_the_noisy_fbp_graph_and_gains(problem, la_fbp):
    """The default sigma="auto": FBP's noise is seen (Haar estimate), its graph image smoothed, La+FBP gains."""
    physics, x, y = problem
    x_auto, info = recon.graphla(physics, y, psi="fbp", noise_level=0.02, max_iter=1500, progress=False)
    p_auto = float(psnr(x_auto, x, 1.0)[0])  # measured 30.93 (fixed sigma 1e-3: 29.99)
    assert p_auto >= 30.43
    assert p_auto >= float(psnr(la_fbp[0], x, 1.0)[0]) + 0.5
    (delta,) = info.extra["psi_noise"]  # measured 0.0566
    assert delta == pytest.approx(la_fbp[1].extra["psi_noise"][0]) and 0.03 < delta < 0.1
    assert info.params["smooth"] == [1.0] and info.params["sigma"][0] >= 1e-3
    torch.testing.assert_close(info.extra["psi_image"], la_fbp[1].extra["psi_image"])  # unsmoothed Psi reported


def test_oracle_graph_is_the_upper_bound(problem, la_fbp):
    physics, x, y = problem
    x_true_graph, info = recon.graphla(physics, y, psi="true", x_true=x, noise_level=0.02, max_iter=1500, progress=False)
    assert info.params["sigma"] == [1e-3] and info.params["smooth"] == [0.0]  # a clean Psi: "auto" is the paper's graph
    assert float(psnr(x_true_graph, x, 1.0)[0]) >= 48.48  # measured 48.98
    assert float(psnr(x_true_graph, x, 1.0)[0]) > float(psnr(la_fbp[0], x, 1.0)[0]) + 10.0


def test_precomputed_and_callable_psi_agree(problem):
    physics, _, y = problem
    x_fbp, _ = recon.fbp(physics, y)
    a, _ = recon.graphla(physics, y, psi=x_fbp, alpha=1e3, max_iter=50, progress=False)
    b, info = recon.graphla(physics, y, psi=lambda p, m: recon.fbp(p, m)[0], alpha=1e3, max_iter=50, progress=False)
    assert torch.equal(a, b)
    assert info.params["alpha"] == [1e3] and "noise_std" not in info.params


def test_noise_level_and_the_matching_noise_std_agree(problem):
    physics, _, y = problem
    noise = resolve_noise(physics, y, noise_level=0.02, noise_std=None)
    a, info_a = recon.graphla(physics, y, psi="fbp", noise_level=0.02, max_iter=100, progress=False)
    b, info_b = recon.graphla(physics, y, psi="fbp", noise_std=float(noise.std[0]), max_iter=100, progress=False)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert info_b.params["alpha"] == pytest.approx(info_a.params["alpha"], rel=1e-5)


def test_reweighted_q_concatenates_the_histories(problem):
    physics, _, y = problem
    x, info = recon.graphla(physics, y, psi="fbp", alpha=1e3, q=0.5, n_reweight=3, max_iter=10, tol=0.0, progress=False)
    assert info.n_iter == 30 and len(info.history.residual) == 30 and info.extra["n_iter_per_element"] == [30]
    assert info.params["q"] == 0.5 and info.params["n_reweight"] == 3 and x.shape == (1, 1, 64, 64)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"sigma": 0.0}, ValueError, "sigma"),
        ({"sigma": "fixed"}, ValueError, "sigma"),
        ({"R": 1}, ValueError, "R"),
        ({"psi": "wavelet"}, ValueError, "psi"),
        ({"psi": torch.zeros(1, 1, 32, 32)}, ValueError, "psi"),
        ({"psi": "true"}, ValueError, "x_true"),
        ({"q": 1.5}, ValueError, "q"),
        ({"noise_level": None}, ValueError, "alpha / noise_level"),
        ({"noise_std": 0.1}, ValueError, "noise_level / noise_std"),
        ({"psi": "tv", "noise_level": None, "alpha": 1.0}, ValueError, "noise_level / noise_std"),
    ],
)
def test_bad_input(problem, kwargs, exc, match):
    physics, _, y = problem
    args = {"psi": "fbp", "noise_level": 0.02, "max_iter": 5, "progress": False} | kwargs
    with pytest.raises(exc, match=match):
        recon.graphla(physics, y, **args)
