"""Tests of recon.fwi (full-waveform inversion with an H^s trace misfit) and its TraceMisfit.

The inversion test uses the quick setting of demos/fwi_sobolev.py (32 x 64 cells of 20 m, 5 Hz, the
layered model of recon.phantoms.layered_velocity), built here without the demos. Measured values
(1 torch thread) are in the comments beside each tolerance.
"""

import math

import pytest
import torch
from scipy.ndimage import gaussian_filter

import recon
from operators.wave import AcousticWave2D
from recon.methods.fwi import TraceMisfit
from recon.phantoms import WATER_VELOCITY, layered_velocity
from recon.result import ReconInfo
from recon.solvers import NonFiniteError

SHAPE, DX, DT, N_T = (32, 64), 20.0, 3e-3, 400


@pytest.fixture(scope="module")
def problem():
    """The quick FWI setting: true model, start smoothed over 150 m (water reset), survey, clean data, free cells."""
    c_true, water_rows = layered_velocity(SHAPE, seed=7)
    c0 = torch.from_numpy(gaussian_filter(c_true.numpy(), 150.0 / DX, mode="nearest"))
    c0[:water_rows] = WATER_VELOCITY
    sources = [(1, round((k + 0.5) * SHAPE[1] / 8)) for k in range(8)]
    receivers = [(1, j) for j in range(SHAPE[1])]
    wave = AcousticWave2D(SHAPE, DX, DT, N_T, sources, receivers, f_peak=5.0, n_absorb=10, c_max=4000.0)
    with torch.no_grad():
        d_obs = wave.A(c_true.float())
    free = torch.zeros(SHAPE, dtype=torch.bool)
    free[water_rows:] = True
    return wave, d_obs, c_true.float(), c0.float(), free, water_rows


def _error(c: torch.Tensor, c_true: torch.Tensor) -> float:
    return float(torch.linalg.norm(c - c_true) / torch.linalg.norm(c_true))


@pytest.mark.parametrize("s", [0.0, -1.0])
def test_ten_fwi_iterations_lower_the_model_error(problem, s):
    """10 L-BFGS iterations from the smoothed model; the truth only scores the result."""
    wave, d_obs, c_true, c0, free, water_rows = problem
    seen = []
    c, info = recon.fwi(wave, d_obs, x0=c0, s=s, free=free, max_iter=10, progress=False, callback=lambda k, c: seen.append(k))
    assert torch.equal(c[:water_rows], c0[:water_rows])  # the water stays fixed
    assert info.history.objective[-1] < 0.05  # misfit / initial misfit; measured L2 0.0063, H^-1 0.0044
    assert _error(c, c_true) < 0.75 * _error(c0, c_true)  # start 0.0656; measured L2 0.0415 (0.63x), H^-1 0.0421 (0.64x)
    assert isinstance(info, ReconInfo) and info.n_iter == 10 and seen == list(range(10))
    assert info.stop_reason == "max_iter" and not info.converged
    assert len(info.history.objective) == len(info.history.residual) == 10
    assert info.params["s"] == s and info.params["bounds"] == (1400.0, 4000.0)
    assert info.extra["evaluations"] >= 10 and info.extra["initial_misfit"] > 0
    assert bool(((c >= 1400.0) & (c <= 4000.0)).all())


def test_tolerance_on_the_model_update_stops_early(problem):
    wave, d_obs, _, c0, free, _ = problem
    _, info = recon.fwi(wave, d_obs, x0=c0, free=free, max_iter=10, tol=1.0, progress=False)
    assert info.n_iter == 1 and info.converged and info.stop_reason == "tol"  # every update is < 100 % of the model


def test_trace_misfit_with_s_zero_is_the_tapered_l2_misfit():
    misfit = TraceMisfit(0.0, 50, 1e-3)
    r = torch.randn(2, 50, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = 0.5 * ((r * misfit.taper[None, :, None]) ** 2).sum()
    assert float(misfit(r)) == pytest.approx(float(expected), rel=1e-12)
    assert float(misfit.taper[0]) == 1.0 and float(misfit.taper[-1]) == 0.0  # cosine taper on the last 10 %
    assert int((misfit.taper < 1).sum()) == 5


def test_negative_order_misfit_weighs_low_frequencies_more():
    """A 2 Hz and a 40 Hz residual trace of equal L2 norm: H^-1 keeps far more of the low one."""
    t = torch.arange(400, dtype=torch.float64) * 3e-3
    misfit = TraceMisfit(-1.0, 400, 3e-3)
    low, high = (torch.sin(2 * math.pi * f * t).reshape(1, 400, 1) for f in (2.0, 40.0))
    assert float(misfit(low)) > 100.0 * float(misfit(high))  # weights (1 + w^2)^-1: 1 / 158 against 1 / 63166


def small_wave(**kwargs) -> AcousticWave2D:
    return AcousticWave2D((16, 20), 10.0, 1.5e-3, 60, [(2, 4)], [(2, j) for j in range(0, 20, 4)], f_peak=15.0, n_absorb=4, **kwargs)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"physics": "wave"}, TypeError, "physics: expected an operators.wave.AcousticWave2D, received str"),
        ({"y": torch.zeros(1, 60, 4)}, ValueError, r"y: expected shape \(1, 60, 5\), received \(1, 60, 4\)"),
        ({"x0": torch.full((20, 16), 2000.0)}, ValueError, r"x0: expected shape \(16, 20\)"),
        ({"x0": torch.full((16, 20), 2000.0, dtype=torch.float64)}, TypeError, "x0: expected the dtype of y"),
        ({"x0": torch.full((16, 20), 1400.0)}, ValueError, r"x0: expected velocities strictly inside bounds \(1400, 4000\)"),
        ({"free": torch.ones(16, 20)}, ValueError, r"free: expected a boolean tensor of shape \(16, 20\), received torch.float32"),
        ({"bounds": (3000.0, 2000.0)}, ValueError, r"bounds: expected \(c_lo, c_hi\) in m/s with 0 < c_lo < c_hi"),
        ({"bounds": (1400.0, 5000.0)}, ValueError, r"bounds: c_hi = 5000 m/s breaks the CFL limit.*c_hi <= 4082"),
        ({"max_iter": 0}, ValueError, "max_iter: expected an integer >= 1"),
        ({"taper_fraction": 1.0}, ValueError, r"taper_fraction: expected a number in \[0, 1\)"),
        ({"max_line_search": 0}, ValueError, "max_line_search: expected an integer >= 1"),
    ],
)
def test_bad_input(change, error, match):
    wave = small_wave()
    args = {"physics": wave, "y": torch.zeros(1, 60, 5), "x0": torch.full((16, 20), 2000.0), **change}
    physics, y = args.pop("physics"), args.pop("y")
    with pytest.raises(error, match=match):
        recon.fwi(physics, y, **args)


def test_arguments_past_the_data_are_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        recon.fwi(small_wave(), torch.zeros(1, 60, 5), torch.full((16, 20), 2000.0))  # type: ignore[misc]


def test_non_finite_misfit_stops_with_the_last_model(monkeypatch):
    """A NaN misfit inside the line search ends the run with NonFiniteError carrying the last finite model."""
    monkeypatch.setattr(TraceMisfit, "__call__", lambda self, r: (r * math.nan).sum())
    x0 = torch.full((16, 20), 2000.0)
    with pytest.raises(NonFiniteError) as err:
        recon.fwi(small_wave(), torch.zeros(1, 60, 5), x0=x0, max_iter=3, progress=False)
    assert err.value.iteration == 0 and torch.equal(err.value.last_iterate, x0)
