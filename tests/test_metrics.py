"""Metrics: explicit data range, one value per batch element, clear errors."""

import math

import pytest
import torch

from recon.metrics import nrmse, psnr, relative_error, ssim
from recon.noise import add_relative_noise, noise_norm_estimate


def test_psnr_formula():
    ref = torch.zeros(2, 1, 8, 8)
    x = ref.clone()
    x[0] += 0.1  # MSE 0.01 -> 20 dB with data range 1
    x[1] += 0.01  # MSE 1e-4 -> 40 dB
    assert torch.allclose(psnr(x, ref, 1.0), torch.tensor([20.0, 40.0], dtype=torch.float64), atol=1e-4)
    assert math.isclose(float(psnr(x, ref, 2.0)[0]), 20.0 + 20 * math.log10(2.0), rel_tol=1e-5)


def test_ssim_identity_and_degradation():
    gen = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 1, 32, 32, generator=gen)
    assert math.isclose(float(ssim(ref, ref, 1.0)[0]), 1.0)
    noisy = ref + 0.3 * torch.randn(ref.shape, generator=gen)
    assert float(ssim(noisy, ref, 1.0)[0]) < 0.8


def test_relative_error_and_nrmse():
    ref = torch.ones(1, 1, 4, 4)
    x = ref * 1.5
    assert math.isclose(float(relative_error(x, ref)[0]), 0.5)
    assert math.isclose(float(nrmse(x, ref, data_range=2.0)[0]), 0.25)
    z = torch.ones(1, 1, 4, 4, dtype=torch.complex64)
    assert math.isclose(float(relative_error(1j * z, z)[0]), math.sqrt(2.0), rel_tol=1e-6)


def test_metric_errors_name_the_argument():
    a = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="x: expected the shape"):
        psnr(torch.zeros(1, 1, 4, 5), a, 1.0)
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, a, 0.0)
    with pytest.raises(ValueError, match="x: expected finite"):
        ssim(torch.full((1, 1, 8, 8), float("nan")), torch.zeros(1, 1, 8, 8), 1.0)


def test_relative_noise_has_exact_norm_per_sample():
    y = torch.randn(3, 1, 10, 7, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1]).reshape(3, 1, 1, 1)
    e = add_relative_noise(y, 0.04, seed=2) - y
    ratio = e.reshape(3, -1).norm(dim=1) / y.reshape(3, -1).norm(dim=1)
    assert torch.allclose(ratio, torch.full((3,), 0.04, dtype=torch.float64))
    assert torch.equal(add_relative_noise(y, 0.04, seed=2), add_relative_noise(y, 0.04, seed=2))


def test_noise_norm_estimate_is_close_for_white_noise():
    gen = torch.Generator().manual_seed(1)
    y_clean = torch.rand(1, 1, 120, 180, generator=gen, dtype=torch.float64)
    y = add_relative_noise(y_clean, 0.02, seed=5)
    true_norm = float((y - y_clean).norm())
    assert math.isclose(float(noise_norm_estimate(y, 0.02)[0]), true_norm, rel_tol=0.01)
