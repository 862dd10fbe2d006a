"""Procedural, seeded phantoms (no data set is ever downloaded): 2D CT images and 3D MIMO scenes.

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


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, received {seed!r}")
    return int(seed)


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, received {n!r}")
    return n


def _segment_distance(xx: np.ndarray, yy: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Distance from the points (xx, yy) to the segment p0 -> p1 (same shape as ``xx``)."""
    d = p1 - p0
    s = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / (d @ d), 0.0, 1.0)
    return np.hypot(xx - p0[0] - s * d[0], yy - p0[1] - s * d[1])


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
    rng = np.random.default_rng(_check_seed(seed))
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
        img[_segment_distance(xx, yy, p0, p1) <= half_width] = rng.uniform(0.1, 1.0)
    return _as_tensor(img, dtype)


def coule_like_batch(n: int, size: int = 256, first_seed: int = TEST_SEEDS[0], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` COULE-like images with seeds ``first_seed, first_seed + 1, ...``; shape (n, 1, N, N)."""
    n = _check_n(n)
    return torch.cat([coule_like(size, first_seed + i, dtype) for i in range(n)])


#: Default MIMO scene grid (Nx, Ny, Nz): x, y in [-0.15, 0.15] m, z in [0.35, 0.65] m (Oral & Oktem).
MIMO_SCENE_SHAPE = (25, 25, 49)

#: Letter outlines of the plates in :func:`mimo_scene`: strokes ((u0, v0), (u1, v1)) in the box [-1, 1]^2.
MIMO_LETTERS: dict[str, tuple[tuple[tuple[float, float], tuple[float, float]], ...]] = {
    "T": (((-1, 1), (1, 1)), ((0, 1), (0, -1))),
    "L": (((-1, 1), (-1, -1)), ((-1, -1), (1, -1))),
    "E": (((-1, 1), (-1, -1)), ((-1, 1), (1, 1)), ((-1, 0), (0.6, 0)), ((-1, -1), (1, -1))),
    "F": (((-1, 1), (-1, -1)), ((-1, 1), (1, 1)), ((-1, 0), (0.6, 0))),
    "H": (((-1, 1), (-1, -1)), ((1, 1), (1, -1)), ((-1, 0), (1, 0))),
    "X": (((-1, 1), (1, -1)), ((-1, -1), (1, 1))),
    "U": (((-1, 1), (-1, -1)), ((1, 1), (1, -1)), ((-1, -1), (1, -1))),
}
_LETTER_ASPECT = 0.8  # letter width / height


def _check_shape3(shape: object) -> tuple[int, int, int]:
    ok = isinstance(shape, (tuple, list)) and len(shape) == 3
    ok = ok and all(not isinstance(n, bool) and isinstance(n, int) and n >= 8 for n in shape)
    if not ok:
        raise ValueError(f"shape: expected 3 integers >= 8 (Nx, Ny, Nz), received {shape!r}")
    return tuple(shape)


def mimo_scene(
    shape: tuple[int, int, int] = MIMO_SCENE_SHAPE, seed: int = 0, dtype: torch.dtype = torch.complex64
) -> torch.Tensor:
    r"""A random extended 3D target with random phase, for near-field MIMO imaging.

    The scene is :math:`x(p) = m(p) e^{j\theta(p)}` with i.i.d. phases
    :math:`\theta(p) \sim U[0, 2\pi)` and a piecewise-constant magnitude :math:`m` made of 1-4
    objects on an exactly zero background. Each object has a constant magnitude in (0.2, 1];
    where objects overlap the larger magnitude wins, so max |x| lies in (0.2, 1]. Coordinates are
    normalised to (-1, 1) along each axis (the default grid spans 0.3 m along each axis), rotations
    are about z, and each object is one of (equally likely):

    * an ellipsoid: centre in [-0.5, 0.5]^3, semi-axes 0.15-0.45, rotated about z;
    * a box: centre in [-0.5, 0.5]^3, half-sides 0.1-0.4, rotated about z;
    * a letter plate: one of :data:`MIMO_LETTERS` drawn with strokes of half-width 15 % of the
      letter's half-height (0.3-0.6), width/height 0.8, rotated in the x-y plane, lying entirely
      inside the x-y field of view, one or two voxels thick in z, in the middle half of the z range.

    Sizes are floored at one voxel spacing, so every object covers at least one voxel on any grid.
    Deterministic given ``seed``.

    Args:
        shape: grid (Nx, Ny, Nz), each >= 8.
        seed: seed of the numpy generator; demos use :data:`TEST_SEEDS`, training seeds below it.
        dtype: torch.complex64 or torch.complex128.

    Returns:
        Tensor of shape (1, 1, Nx, Ny, Nz) of ``dtype``.

    Example:
        >>> x = mimo_scene(seed=TEST_SEEDS[0])  # (1, 1, 25, 25, 49) complex64
        >>> m = x.abs()
    """
    nx, ny, nz = _check_shape3(shape)
    seed = _check_seed(seed)
    if dtype not in (torch.complex64, torch.complex128):
        raise TypeError(f"dtype: expected torch.complex64 or torch.complex128, received {dtype!r}")
    rng = np.random.default_rng(seed)
    h_xy, h_z = 2.0 / min(nx, ny), 2.0 / nz  # largest voxel spacings in normalised units
    xx, yy, zz = np.meshgrid(*[(np.arange(n) + 0.5) / n * 2.0 - 1.0 for n in (nx, ny, nz)], indexing="ij")
    mag = np.zeros((nx, ny, nz))
    for _ in range(rng.integers(1, 5)):
        value = 1.0 - rng.uniform(0.0, 0.8)  # in (0.2, 1]
        kind = rng.integers(3)
        phi = rng.uniform(0.0, np.pi if kind < 2 else 2.0 * np.pi)
        if kind < 2:
            c = rng.uniform(-0.5, 0.5, 3)
            low, high = (0.15, 0.45) if kind == 0 else (0.1, 0.4)
            a = np.maximum(rng.uniform(low, high, 3), [h_xy, h_xy, h_z])
            u = (xx - c[0]) * np.cos(phi) + (yy - c[1]) * np.sin(phi)
            v = -(xx - c[0]) * np.sin(phi) + (yy - c[1]) * np.cos(phi)
            w = zz - c[2]
            if kind == 0:
                mask = (u / a[0]) ** 2 + (v / a[1]) ** 2 + (w / a[2]) ** 2 <= 1.0
            else:
                mask = (np.abs(u) <= a[0]) & (np.abs(v) <= a[1]) & (np.abs(w) <= a[2])
        else:
            strokes = MIMO_LETTERS[rng.choice(sorted(MIMO_LETTERS))]
            half = rng.uniform(0.3, 0.6)
            radius = half * np.hypot(_LETTER_ASPECT, 1.0)  # the letter lies in this disc around its centre
            c = rng.uniform(-(1.0 - radius), 1.0 - radius, 2)
            thick = int(rng.integers(1, 3))
            k0 = int(rng.integers(nz // 4, nz - nz // 4 - thick + 1))
            rot = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
            scale = np.array([_LETTER_ASPECT * half, half])
            plane_x, plane_y = xx[:, :, 0], yy[:, :, 0]
            dist = np.min(
                [_segment_distance(plane_x, plane_y, c + rot @ (scale * p0), c + rot @ (scale * p1)) for p0, p1 in strokes],
                axis=0,
            )
            mask = np.zeros((nx, ny, nz), dtype=bool)
            mask[:, :, k0 : k0 + thick] = (dist <= max(0.15 * half, h_xy))[:, :, None]
        mag[mask] = np.maximum(mag[mask], value)
    phase = rng.uniform(0.0, 2.0 * np.pi, (nx, ny, nz))
    return _as_tensor(mag * np.exp(1j * phase), dtype)


def mimo_scene_batch(
    n: int,
    shape: tuple[int, int, int] = MIMO_SCENE_SHAPE,
    first_seed: int = TEST_SEEDS[0],
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """``n`` MIMO scenes with seeds ``first_seed, first_seed + 1, ...``; shape (n, 1, Nx, Ny, Nz).

    Example:
        >>> x = mimo_scene_batch(4, first_seed=0)  # training scenes: seeds below TEST_SEEDS.start
    """
    n = _check_n(n)
    return torch.cat([mimo_scene(shape, first_seed + i, dtype) for i in range(n)])
