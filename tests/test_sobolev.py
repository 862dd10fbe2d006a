"""Tests of recon.regularizers.sobolev.SobolevNorm (issue 7, item 1)."""

from __future__ import annotations

import math

import pytest
import torch
from deepinv.physics import BlurFFT
from deepinv.physics.functional.blur import gaussian_blur

from recon.regularizers.sobolev import SobolevNorm


def _rand(*shape: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_s_zero_is_the_l2_norm(ndim):
    u = _rand(3, 2, *([6] * ndim))
    torch.testing.assert_close(SobolevNorm(0.0, ndim).norm(u), u.reshape(3, -1).norm(dim=1))
    torch.testing.assert_close(SobolevNorm(0.0, ndim).apply(u), u)


@pytest.mark.parametrize("s", [-2.0, -0.5, 1.0])
def test_parseval_the_fourier_norm_equals_the_spatial_quadratic_form(s):
    hs = SobolevNorm(s, 2, scale=(3.0, 5.0))
    u = _rand(2, 1, 8, 10, seed=1)
    torch.testing.assert_close(hs.norm(u) ** 2, (u * hs.apply(u)).reshape(2, -1).sum(dim=1))
    torch.testing.assert_close(hs.apply(hs.apply(u), power=-1.0), u)  # W_{-s} inverts W_s
    assert not hs.apply(u).is_complex()


@pytest.mark.parametrize(("ndim", "scale"), [(1, 2 * math.pi), (2, 2 * math.pi), (2, 4.0), (3, (1.0, 2.0, 3.0))])
def test_a_single_fourier_mode_has_its_weight(ndim, scale):
    s, grid, k = -1.5, (8, 6, 4)[:ndim], (3, -2, 1)[:ndim]
    hs = SobolevNorm(s, ndim, scale=scale)
    lengths = scale if isinstance(scale, tuple) else (scale,) * ndim
    coords = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in grid], indexing="ij")
    phase = sum(2 * math.pi * kj * c / n for kj, c, n in zip(k, coords, grid))
    mode = torch.exp(1j * phase)[None]
    xi2 = sum((2 * math.pi * kj / length) ** 2 for kj, length in zip(k, lengths))
    expected = math.sqrt((1 + xi2) ** s * math.prod(grid))
    torch.testing.assert_close(hs.norm(mode), torch.tensor([expected], dtype=torch.float64))
    if scale == 2 * math.pi:  # the default convention: integer wavenumbers
        assert (1 + xi2) == pytest.approx(1 + sum(kj**2 for kj in k))


def test_misfit_gradient_matches_autograd():
    x = _rand(1, 1, 16, 16, seed=2)
    physics = BlurFFT(img_size=(1, 16, 16), filter=gaussian_blur(sigma=1.5).double())
    f = physics.A(_rand(1, 1, 16, 16, seed=3))
    hs = SobolevNorm(-1.0, 2)
    value, grad = hs.misfit(physics.A, physics.A_adjoint, x, f)
    xg = x.clone().requires_grad_(True)
    residual = physics.A(xg) - f
    (auto,) = torch.autograd.grad(0.5 * torch.sum(residual * hs.apply(residual)), xg)
    torch.testing.assert_close(grad, auto)
    torch.testing.assert_close(value, 0.5 * hs.norm(physics.A(x) - f)[0] ** 2)


def test_bad_input_is_named():
    for s in (float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="s: expected a finite real number"):
            SobolevNorm(s)
    with pytest.raises(ValueError, match="scale"):
        SobolevNorm(1.0, 2, scale=0.0)
    with pytest.raises(ValueError, match="scale"):
        SobolevNorm(1.0, 2, scale=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="ndim"):
        SobolevNorm(1.0, 4)
    with pytest.raises(ValueError, match="u: expected a batch of 2-D grids"):
        SobolevNorm(1.0, 2).norm(torch.zeros(5, 5))
    with pytest.raises(ValueError, match="u"):
        SobolevNorm(1.0, 2).norm(torch.full((1, 4, 4), float("nan")))
