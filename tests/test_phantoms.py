"""Phantoms: seeded, deterministic, piecewise constant in [0, 1]."""

import pytest
import torch

from recon.phantoms import TEST_SEEDS, coule_like, coule_like_batch, shepp_logan


def test_coule_like_deterministic_and_seeded():
    a = coule_like(64, seed=3)
    assert torch.equal(a, coule_like(64, seed=3))
    assert not torch.equal(a, coule_like(64, seed=4))


def test_coule_like_range_and_piecewise_constant():
    x = coule_like(128, seed=TEST_SEEDS[0])
    assert x.shape == (1, 1, 128, 128) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # at most one value per painted shape (<= 12 ellipses + 3 segments) plus the background
    assert 2 <= torch.unique(x).numel() <= 16


def test_coule_like_batch_matches_single_images():
    b = coule_like_batch(3, 32, first_seed=10, dtype=torch.float64)
    assert b.shape == (3, 1, 32, 32) and b.dtype == torch.float64
    assert torch.equal(b[2:3], coule_like(32, seed=12, dtype=torch.float64))


def test_shepp_logan_shape_and_range():
    x = shepp_logan(100)
    assert x.shape == (1, 1, 100, 100)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.max()) > 0.9


@pytest.mark.parametrize("kwargs,match", [({"size": 4}, "size"), ({"size": 32.0}, "size"), ({"seed": -1}, "seed")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        coule_like(**{"size": 32, **kwargs})
