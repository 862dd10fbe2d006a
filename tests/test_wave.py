"""Tests of operators/wave.py (2D acoustic wave solver); the inversion is tested in test_fwi.py.

Measured values (1 torch thread, float64 unless stated) are in the comments beside each tolerance.
"""

import math

import pytest
import torch

from operators.wave import CFL_LIMIT, AcousticWave2D, ricker

DX, DT = 10.0, 1.5e-3  # 2000-2500 m/s: CFL number <= 0.375 < sqrt(3/8)


def small_wave(n_t=240, n_absorb=6, sources=((2, 4), (2, 15)), receivers=None, **kwargs) -> AcousticWave2D:
    """16 x 20 cells, 15 Hz (about 5-7 cells per shortest wavelength at 2000-2500 m/s)."""
    receivers = [(2, j) for j in range(0, 20, 3)] if receivers is None else receivers
    return AcousticWave2D((16, 20), DX, DT, n_t, list(sources), receivers, f_peak=15.0, n_absorb=n_absorb, **kwargs)


def random_velocity(seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (2000.0 + 500.0 * torch.rand(16, 20, generator=g, dtype=torch.float64)).to(dtype)


# -- wavelet and shapes ---------------------------------------------------------------------------
def test_ricker_peaks_at_its_delay_and_has_zero_mean():
    w = ricker(1000, 1e-3, 10.0, dtype=torch.float64)
    assert int(w.argmax()) == 150 and float(w.max()) == pytest.approx(1.0)  # default delay 1.5 / f = 0.15 s
    assert abs(float(w.sum())) < 1e-8 * float(w.abs().sum())  # measured 5.4e-10 (the wavelet is 1e-8 at t = 0)
    assert int(ricker(1000, 1e-3, 10.0, delay=0.3).argmax()) == 300


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_traces_shape_dtype_and_causality(dtype):
    wave = small_wave(n_t=120)
    traces = wave.A(random_velocity(0, dtype))
    assert traces.shape == (2, 120, 7) and traces.dtype == dtype
    assert float(traces[:, 0].abs().max()) == 0.0  # u^0 = 0
    assert float(traces.abs().max()) > 0.0


# -- physics of the scheme ------------------------------------------------------------------------
def test_energy_is_conserved_without_absorption():
    """Rigid boundary, no sponge: the leapfrog energy is constant once the wavelet is silent.

    The 15 Hz Ricker (delay 0.1 s) is below 1e-37 of its peak after step 200 (0.3 s).
    """
    wave = small_wave(n_t=1000, n_absorb=0)
    c = random_velocity(1)
    energies = torch.stack([wave.energy(c, *wave.wavefield(c, n)) for n in (200, 500, 999)])
    assert bool((energies > 0).all())
    drift = float(((energies - energies[0]).abs() / energies[0]).max())
    assert drift < 1e-10  # measured 7e-16 (float64 round-off over 800 steps)


def test_sponge_absorbs_energy():
    wave = small_wave(n_t=1000, n_absorb=10)
    c = random_velocity(1)
    e_early, e_late = (float(wave.energy(c, *wave.wavefield(c, n)).sum()) for n in (200, 999))
    assert e_late < 1e-3 * e_early  # measured ratio 6e-8: the waves have left through the sponge


def test_reciprocity_with_sponge():
    """Swapping source and receiver gives the same trace (the scheme is symmetric, sponge included)."""
    a, b = (2, 3), (10, 17)
    c = random_velocity(2)
    forward = small_wave(n_t=300, sources=[a], receivers=[b]).A(c)
    backward = small_wave(n_t=300, sources=[b], receivers=[a]).A(c)
    assert float((forward - backward).abs().max() / forward.abs().max()) < 1e-12  # measured 1.4e-15


def test_autograd_gradient_matches_finite_differences():
    """<grad J, v> by autograd against the central difference (J(c + h v) - J(c - h v)) / 2h."""
    wave = small_wave()
    d_obs = wave.A(torch.full((16, 20), 2100.0, dtype=torch.float64))
    misfit = lambda c: 0.5 * ((wave.A(c) - d_obs) ** 2).sum()  # noqa: E731
    c = random_velocity(3).requires_grad_()
    misfit(c).backward()
    v = torch.randn(16, 20, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    h = 0.1  # m/s per unit of v (v ~ N(0, 1)); relative error 1.4e-5 at h = 1, 1.4e-7 at h = 0.1: O(h^2)
    with torch.no_grad():
        fd = (misfit(c + h * v) - misfit(c - h * v)) / (2 * h)
    ad = (c.grad * v).sum()
    assert float(abs(fd - ad) / abs(ad)) < 1e-5  # measured 1.4e-7


# -- bad input ------------------------------------------------------------------------------------
def test_cfl_violation_is_refused_at_construction_and_in_forward():
    c_limit = CFL_LIMIT * DX / DT  # 4082 m/s
    with pytest.raises(ValueError, match=r"c_max: CFL.*sqrt\(3/8\)"):
        small_wave(c_max=1.01 * c_limit)
    wave = small_wave()
    c = random_velocity(0)
    c[5, 5] = 1.01 * c_limit
    with pytest.raises(ValueError, match=r"velocity: CFL.*received|velocity: CFL.*exceeds"):
        wave.A(c)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (torch.full((16, 20), -1.0, dtype=torch.float64), ValueError, "velocity: expected values > 0"),
        (torch.full((16, 20), math.nan, dtype=torch.float64), ValueError, "velocity: expected finite"),
        (torch.full((20, 16), 2000.0, dtype=torch.float64), ValueError, r"velocity: expected shape \(16, 20\)"),
        (torch.full((16, 20), 2000, dtype=torch.int64), TypeError, "velocity: expected dtype"),
        ([[2000.0] * 20] * 16, TypeError, "velocity: expected a torch.Tensor"),
    ],
)
def test_bad_velocity(value, error, match):
    with pytest.raises(error, match=match):
        small_wave().A(value)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sources": [(16, 3)]}, ValueError, r"sources: expected cells inside the 16 x 20 grid.*\[\[16, 3\]\]"),
        ({"receivers": [(0, -1)]}, ValueError, r"receivers: expected cells inside.*\[\[0, -1\]\]"),
        ({"receivers": [(0.5, 1.0)]}, TypeError, "receivers: expected integer"),
        ({"sources": [1, 2, 3]}, ValueError, r"sources: expected shape \(n >= 1, 2\)"),
        ({"dx": 0.0}, ValueError, "dx: expected a finite number > 0"),
        ({"dt": -1e-3}, ValueError, "dt: expected a finite number > 0"),
        ({"n_t": 0}, ValueError, "n_t: expected an integer >= 1"),
        ({"n_absorb": -1}, ValueError, "n_absorb: expected an integer >= 0"),
        ({"shape": (16,)}, ValueError, r"shape: expected \(nz, nx\)"),
        ({"f_peak": math.inf}, ValueError, "f_peak: expected a finite number > 0"),
    ],
)
def test_bad_construction(kwargs, error, match):
    args = {"shape": (16, 20), "dx": DX, "dt": DT, "n_t": 50, "sources": [(2, 4)], "receivers": [(2, 8)], **kwargs}
    with pytest.raises(error, match=match):
        AcousticWave2D(**args)


def test_wavefield_refuses_steps_beyond_the_record():
    with pytest.raises(ValueError, match="n_steps: expected 1 <= n_steps < n_t = 50"):
        small_wave(n_t=50).wavefield(random_velocity(0), 50)
