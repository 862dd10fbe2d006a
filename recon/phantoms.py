"""Procedural, seeded phantoms (no data set is ever downloaded).

Seed convention: demo / test images draw their seeds from :data:`TEST_SEEDS`; every training
script must use seeds below ``TEST_SEEDS.start`` so that training and test images never overlap.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

#: Seeds reserved for demo and regression-test images. Training data use seeds below 900_000.
TEST_SEEDS = range(900_000, 1_000_000)


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size: expected an integer >= 8, received {size!r}")
    return size


def _as_tensor(img: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).to(dtype)[None, None]


def shepp_logan(size: int = 256, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The modified Shepp-Logan phantom shipped by scikit-image, resampled to ``size``.

    Args:
        size: image side N in pixels.
        dtype: torch float dtype of the result.

    Returns:
        Tensor of shape (1, 1, N, N) with values in [0, 1].

    Example:
        >>> x = shepp_logan(128)
    """
    size = _check_size(size)
    img = resize(shepp_logan_phantom(), (size, size), order=1, anti_aliasing=True)
    return _as_tensor(np.clip(img, 0.0, 1.0), dtype)


def coule_like(size: int = 256, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A COULE-like image: random overlapping ellipses and thick line segments.

    The image is piecewise constant in [0, 1]: shapes are painted one after another on a zero
    background, each new shape overwriting what lies under it, so overlaps create new constant
    regions. 5-12 ellipses (semi-axes 5-35 % of the width, intensity 0.1-1) are followed by 1-3
    thick segments (width 1-3 % of the side, intensity 0.1-1). Deterministic given ``seed``.

    Args:
        size: image side N in pixels.
        seed: seed of the numpy generator; see :data:`TEST_SEEDS` for the reserved range.
        dtype: torch float dtype of the result.

    Returns:
        Tensor of shape (1, 1, N, N).

    Example:
        >>> x = coule_like(256, seed=TEST_SEEDS[0])
    """
    size = _check_size(size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, received {seed!r}")
    rng = np.random.default_rng(int(seed))
    t = (np.arange(size) + 0.5) / size * 2.0 - 1.0  # pixel centres in (-1, 1)
    yy, xx = np.meshgrid(t, t, indexing="ij")
    img = np.zeros((size, size))
    for _ in range(rng.integers(5, 13)):
        cx, cy = rng.uniform(-0.6, 0.6, 2)
        a, b = rng.uniform(0.1, 0.7, 2)
        phi = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(phi) + (yy - cy) * np.sin(phi)
        v = -(xx - cx) * np.sin(phi) + (yy - cy) * np.cos(phi)
        img[(u / a) ** 2 + (v / b) ** 2 <= 1.0] = rng.uniform(0.1, 1.0)
    for _ in range(rng.integers(1, 4)):
        p0, p1 = rng.uniform(-0.8, 0.8, (2, 2))
        half_width = rng.uniform(0.01, 0.03) * 2.0
        d = p1 - p0
        s = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / (d @ d), 0.0, 1.0)
        dist = np.hypot(xx - p0[0] - s * d[0], yy - p0[1] - s * d[1])
        img[dist <= half_width] = rng.uniform(0.1, 1.0)
    return _as_tensor(img, dtype)


def coule_like_batch(n: int, size: int = 256, first_seed: int = TEST_SEEDS[0], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` COULE-like images with seeds ``first_seed, first_seed + 1, ...``; shape (n, 1, N, N)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, received {n!r}")
    return torch.cat([coule_like(size, first_seed + i, dtype) for i in range(n)])
