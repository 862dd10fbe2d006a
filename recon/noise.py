"""Measurement noise with the package's relative convention.

Everywhere in regrecon, ``noise_level = ||e|| / ||A x||`` per batch element.
"""

from __future__ import annotations

import torch

from operators._validate import check_positive, check_tensor


def add_relative_noise(y_clean: torch.Tensor, noise_level: float, seed: int = 0) -> torch.Tensor:
    """Add white Gaussian noise e with ||e|| = noise_level * ||y_clean|| exactly, per batch element.

    Args:
        y_clean: noiseless measurements A x, shape (B, ...), real or complex.
        noise_level: relative noise level (0.02 means 2 %), >= 0.
        seed: seed of the torch generator used for the noise draw.

    Returns:
        y = y_clean + e, same shape and dtype.

    Example:
        >>> y = add_relative_noise(physics.A(x), 0.02, seed=1)
    """
    check_tensor("y_clean", y_clean, real=False)
    noise_level = check_positive("noise_level", noise_level, allow_zero=True)
    gen = torch.Generator().manual_seed(int(seed))
    w = torch.randn(y_clean.shape, generator=gen, dtype=y_clean.dtype).to(y_clean.device)
    b = y_clean.shape[0]
    scale = noise_level * y_clean.reshape(b, -1).norm(dim=1) / w.reshape(b, -1).norm(dim=1)
    return y_clean + scale.reshape((b,) + (1,) * (y_clean.ndim - 1)) * w


def noise_norm_estimate(y: torch.Tensor, noise_level: float) -> torch.Tensor:
    """Estimate ||e|| per batch element from noisy data: ||e|| ~ nl ||y|| / sqrt(1 + nl^2).

    Uses ||y||^2 ~ ||A x||^2 + ||e||^2 (noise uncorrelated with the signal).

    Returns:
        (B,) tensor of estimated noise norms, on y's device.
    """
    noise_level = check_positive("noise_level", noise_level, allow_zero=True)
    b = y.shape[0]
    return noise_level * y.reshape(b, -1).norm(dim=1) / (1.0 + noise_level**2) ** 0.5
