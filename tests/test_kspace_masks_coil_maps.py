"""k-space sampling masks (operators.kspace_masks) and coil sensitivity maps (operators.coil_maps)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from deepinv.utils import MRIMixin
from scipy.spatial import cKDTree

from operators.coil_maps import MIN_CALIBRATION, estimate_coil_maps, simulated_coil_maps
from operators.kspace_masks import (
    PATTERNS,
    POISSON_TOL,
    acceleration_of,
    cartesian_mask,
    poisson_disc_mask,
    variable_density_mask_2d,
)


def _centre_columns(W: int, n: int) -> slice:
    return slice(W // 2 - n // 2, W // 2 - n // 2 + n)


def _columns(mask: torch.Tensor) -> torch.Tensor:
    """Sampled columns of a 1D Cartesian mask, after checking that each column is all ones or all zeros."""
    assert torch.equal(mask, mask[..., :1, :].expand_as(mask))
    return mask[..., 0, :]


# ----------------------------------------------------------------------------- 1D Cartesian masks


@pytest.mark.parametrize("pattern", ["variable_density", "uniform"])
@pytest.mark.parametrize(
    ("shape", "acceleration", "n_center"), [((96, 96), 4, 8), ((40, 100), 3.3, 10), ((64, 64), 8, 0)]
)
def test_random_cartesian_masks_have_the_exact_budget(pattern, shape, acceleration, n_center):
    mask = cartesian_mask(shape, acceleration, n_center=n_center, pattern=pattern, seed=5)
    W = shape[1]
    assert mask.shape == shape and mask.dtype == torch.float32
    lines = _columns(mask)
    assert int(lines.sum()) == round(W / acceleration)
    assert bool((lines[_centre_columns(W, n_center)] == 1).all())
    assert float(acceleration_of(mask)) == pytest.approx(W / round(W / acceleration))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_pattern_samples_whole_columns_and_the_centre(pattern):
    masks = cartesian_mask((48, 96), 4, pattern=pattern, n_masks=4, seed=2, dtype=torch.float64)
    assert masks.shape == (4, 48, 96) and masks.dtype == torch.float64
    lines = _columns(masks)
    n_default = round(0.08 * 96)
    assert bool((lines[:, _centre_columns(96, n_default)] == 1).all()) and bool((lines[:, 96 // 2] == 1).all())


def test_equispaced_is_a_sheared_lattice_plus_the_centre_close_to_the_budget():
    W, n_c = 96, 8
    lines = _columns(cartesian_mask((32, W), 4, n_center=n_c, pattern="equispaced", n_masks=3, seed=1)).bool()
    outside = torch.ones(W, dtype=torch.bool)
    outside[_centre_columns(W, n_c)] = False
    j = torch.arange(W)
    step = math.gcd(*torch.diff(torch.nonzero(lines[0] & outside).flatten()).tolist())
    assert step == 6  # the integer spacing closest to (96 - 8) / (24 - 8) = 5.5 lines in count
    offset = int(torch.nonzero(lines[0] & outside)[0]) % step
    for e in range(3):
        # frame e is the lattice shifted by e lines (sheared k-t sampling), plus the centre
        assert torch.equal(lines[e], ~outside | (j % step == (offset + e) % step))
        assert abs(int(lines[e].sum()) - round(W / 4)) <= 2


def test_masks_are_deterministic_per_seed_and_differ_across_n_masks():
    a = cartesian_mask((16, 128), 4, n_center=10, n_masks=3, seed=7)
    b = cartesian_mask((16, 128), 4, n_center=10, n_masks=3, seed=7)
    c = cartesian_mask((16, 128), 4, n_center=10, n_masks=3, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[:, :, _centre_columns(128, 10)], torch.ones(3, 16, 10))
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[1], a[2]) and not torch.equal(a[0], a[2])
    assert torch.equal(variable_density_mask_2d((32, 32), 4, seed=3), variable_density_mask_2d((32, 32), 4, seed=3))
    assert torch.equal(poisson_disc_mask((48, 48), 4, seed=3), poisson_disc_mask((48, 48), 4, seed=3))


def test_variable_density_lines_are_denser_near_the_centre():
    W, n_c = 256, 8
    lines = _columns(cartesian_mask((8, W), 4, n_center=n_c, n_masks=20, seed=0))
    k = (torch.arange(W) - W // 2).abs()
    inner, outer = (k >= n_c) & (k < W // 4), k >= W // 4
    assert float(lines[:, inner].mean()) > 2 * float(lines[:, outer].mean())
    uniform = _columns(cartesian_mask((8, W), 4, n_center=n_c, pattern="uniform", n_masks=20, seed=0))
    assert float(uniform[:, inner].mean()) == pytest.approx(float(uniform[:, outer].mean()), rel=0.25)


def test_center_fraction_sets_the_centre():
    lines = _columns(cartesian_mask((16, 96), 2, center_fraction=0.25, pattern="uniform"))
    assert bool((lines[_centre_columns(96, 24)] == 1).all()) and int(lines.sum()) == 48


# ----------------------------------------------------------------------------- 2D masks


def _radius(H: int, W: int) -> torch.Tensor:
    ky = (torch.arange(H) - H // 2) / (H / 2)
    kx = (torch.arange(W) - W // 2) / (W / 2)
    return torch.hypot(ky[:, None], kx[None, :]) / math.sqrt(2)


def test_variable_density_2d_budget_centre_and_density():
    mask = variable_density_mask_2d((96, 80), 5, n_center=12, power=3, seed=4)
    assert int(mask.sum()) == round(96 * 80 / 5)
    assert bool((mask[_centre_columns(96, 12), _centre_columns(80, 12)] == 1).all())
    r = _radius(96, 80)
    assert float(mask[(r > 0.15) & (r < 0.3)].mean()) > 3 * float(mask[r > 0.5].mean())


@pytest.mark.parametrize(("shape", "acceleration"), [((128, 128), 3), ((96, 120), 6), ((64, 64), 10)])
def test_poisson_disc_acceleration_within_tolerance(shape, acceleration):
    mask = poisson_disc_mask(shape, acceleration, n_center=12, seed=1)
    assert abs(float(acceleration_of(mask)) / acceleration - 1) <= POISSON_TOL
    H, W = shape
    assert bool((mask[_centre_columns(H, 12), _centre_columns(W, 12)] == 1).all())


def test_poisson_disc_spacing_grows_away_from_the_centre_and_is_fast():
    start = time.perf_counter()
    mask = poisson_disc_mask((256, 256), 8, n_center=16, seed=0)
    elapsed = time.perf_counter() - start  # measured 0.04-0.05 s (one dart-throwing pass of ~0.04 s)
    assert elapsed < 1.0
    points = torch.nonzero(mask).numpy()
    r = _radius(256, 256)[mask.bool()].numpy()
    centre = (np.abs(points - 128) < 9).all(1)
    distance = cKDTree(points).query(points, k=2)[0][:, 1]  # to the nearest other sample
    near, far = ~centre & (r > 0.15) & (r < 0.3), r > 0.6
    # measured: near min 2.0, median 2.0; far min 2.83, median 3.0 (integer-grid distances)
    assert distance[far].min() > distance[near].min() + 0.5
    assert np.median(distance[far]) >= 1.4 * np.median(distance[near])


def test_acceleration_of_checks_its_input():
    assert acceleration_of(torch.ones(4, 4)).item() == 1.0
    with pytest.raises(ValueError, match="mask"):
        acceleration_of(torch.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="empty"):
        acceleration_of(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="mask"):
        acceleration_of(torch.ones(4))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"acceleration": 1}, ValueError, "acceleration"),
        ({"acceleration": 0.5}, ValueError, "acceleration"),
        ({"acceleration": "4"}, TypeError, "acceleration"),
        ({"acceleration": 20, "n_center": 8}, ValueError, "acceleration"),
        ({"n_center": 97}, ValueError, "n_center"),
        ({"n_center": 4.0}, TypeError, "n_center"),
        ({"n_center": 8, "center_fraction": 0.1}, ValueError, "center_fraction"),
        ({"center_fraction": 1.5}, ValueError, "center_fraction"),
        ({"pattern": "radial"}, ValueError, "pattern"),
        ({"n_masks": 0}, ValueError, "n_masks"),
        ({"shape": (96,)}, ValueError, "shape"),
        ({"dtype": torch.complex64}, TypeError, "dtype"),
    ],
)
def test_cartesian_mask_rejects_bad_input(kwargs, error, match):
    args = {"shape": (96, 96), "acceleration": 4} | kwargs
    with pytest.raises(error, match=match):
        cartesian_mask(args.pop("shape"), args.pop("acceleration"), **args)


def test_2d_masks_reject_bad_input():
    with pytest.raises(ValueError, match="acceleration"):
        variable_density_mask_2d((32, 32), 1)
    with pytest.raises(ValueError, match="n_center"):
        poisson_disc_mask((32, 32), 4, n_center=40)
    with pytest.raises(ValueError, match="radius_ratio"):
        poisson_disc_mask((32, 32), 4, radius_ratio=0.5)
    with pytest.raises(ValueError, match="acceleration"):
        poisson_disc_mask((64, 64), 1.2)  # out of reach on the pixel grid


# ----------------------------------------------------------------------------- coil maps


def _tv(maps: torch.Tensor) -> float:
    return float((maps.diff(dim=-1).abs().mean() + maps.diff(dim=-2).abs().mean()) / maps.abs().mean())


@pytest.mark.parametrize(("n_coils", "dtype"), [(1, torch.complex64), (12, torch.complex64), (5, torch.complex128)])
def test_simulated_maps_have_unit_rss_and_are_smooth(n_coils, dtype):
    maps = simulated_coil_maps(n_coils, (64, 72), seed=2, dtype=dtype)
    assert maps.shape == (n_coils, 64, 72) and maps.dtype == dtype
    assert float(((maps.abs() ** 2).sum(0) - 1).abs().max()) < 1e-5
    noise = torch.randn(n_coils, 64, 72, dtype=dtype, generator=torch.Generator().manual_seed(0))
    noise = noise / (noise.abs() ** 2).sum(0).sqrt()
    assert _tv(maps) < 0.05 * _tv(noise)  # measured ratio 0.02-0.03


def test_simulated_maps_seed_rotates_the_coils():
    assert torch.equal(simulated_coil_maps(8, (32, 32)), simulated_coil_maps(8, (32, 32)))
    assert not torch.allclose(simulated_coil_maps(8, (32, 32), seed=1), simulated_coil_maps(8, (32, 32)))
    maps = simulated_coil_maps(8, (32, 32))
    assert len({int(m.abs().argmax()) for m in maps}) == 8  # each coil peaks in a different place


@pytest.mark.parametrize(
    ("n_coils", "kwargs", "error", "match"),
    [
        (2.0, {}, TypeError, "n_coils"),
        (0, {}, ValueError, "n_coils"),
        (4, {"dtype": torch.float32}, TypeError, "dtype"),
        (4, {"shape": (32, 0)}, ValueError, "shape"),
    ],
)
def test_simulated_maps_reject_bad_input(n_coils, kwargs, error, match):
    with pytest.raises(error, match=match):
        simulated_coil_maps(n_coils, kwargs.pop("shape", (32, 32)), **kwargs)


# ----------------------------------------------------------------------------- coil map estimation

N = 96


@pytest.fixture(scope="module")
def scan():
    """8 coils at 96 x 96: a smooth-phase ellipse, noise of std 0.02 (object modulus 1), 24 ACS lines."""
    maps = simulated_coil_maps(8, (N, N))
    y, x = torch.meshgrid(torch.arange(N) - N // 2, torch.arange(N) - N // 2, indexing="ij")
    support = (y / 38.0) ** 2 + (x / 30.0) ** 2 <= 1
    phase = 0.8 * torch.sin(math.pi * x / N) + 0.5 * y / N
    image = support * torch.exp(1j * phase)
    noise = 0.02 * torch.randn(8, N, N, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    mask = cartesian_mask((N, N), 3, n_center=24, seed=0)  # 32 lines: the ACS and 8 lines outside it
    kspace = (MRIMixin.fft(maps * image) + noise) * mask
    return maps, support, phase, mask, kspace, estimate_coil_maps(kspace)


def test_estimated_maps_match_the_true_maps_inside_the_object(scan):
    maps, support, phase, _, kspace, estimate = scan
    assert estimate.shape == kspace.shape and estimate.dtype == torch.complex64
    assert float(((estimate.abs() ** 2).sum(0) - 1).abs().max()) < 1e-5
    inner = (estimate.conj() * maps).sum(0)
    assert float(inner.abs()[support].min()) >= 0.999  # measured 0.99979 (mean 0.99998)
    # the common per-pixel factor is the object's smooth phase
    common_phase_error = torch.angle(inner * torch.exp(1j * phase))[support].abs()
    assert float(common_phase_error.max()) < 0.15  # measured 0.075 rad (mean 0.015)


def test_acs_at_acceleration_4_only(scan):
    maps, support, phase, _, kspace, _ = scan
    acs_only = kspace * cartesian_mask((N, N), 4, n_center=24)  # the budget is the ACS alone
    estimate = estimate_coil_maps(acs_only.to(torch.complex128))
    assert estimate.dtype == torch.complex128
    assert float((estimate.conj() * maps).sum(0).abs()[support].min()) >= 0.999  # measured 0.99979


def test_explicit_calibration_region_and_crop(scan):
    maps, support, _, mask, kspace, estimate = scan
    torch.testing.assert_close(estimate_coil_maps(kspace, calib_mask=mask), estimate)
    cropped = estimate_coil_maps(kspace, n_center=24, crop=0.9)
    kept = cropped.abs().sum(0) > 0
    assert bool(kept[support].all()) and not bool(kept.all())
    assert float((cropped.conj() * maps).sum(0).abs()[support].min()) >= 0.999  # measured 0.99979


def test_estimation_rejects_bad_input(scan):
    kspace = scan[4]
    with pytest.raises(TypeError, match="kspace"):
        estimate_coil_maps(kspace.real)
    with pytest.raises(ValueError, match="kspace"):
        estimate_coil_maps(kspace[0])
    narrow = kspace * cartesian_mask((N, N), 12, n_center=MIN_CALIBRATION - 2, pattern="equispaced")
    with pytest.raises(ValueError, match="fully sampled centre"):
        estimate_coil_maps(narrow)
    with pytest.raises(ValueError, match="n_center, calib_mask"):
        estimate_coil_maps(kspace, n_center=24, calib_mask=scan[3])
    with pytest.raises(ValueError, match="n_center"):
        estimate_coil_maps(kspace, n_center=N + 1)
    with pytest.raises(ValueError, match="kernel_size"):
        estimate_coil_maps(kspace, kernel_size=30)
    with pytest.raises(ValueError, match="calib_mask"):
        estimate_coil_maps(kspace, calib_mask=torch.ones(N, N + 1))
