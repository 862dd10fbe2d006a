"""Antenna arrays, frequency sweeps and voxel grids for near-field MIMO radar (units: metres, hertz).

The array lies in the plane ``z = 0`` and looks along ``+z``; the scene is a box of voxels in
front of it. :func:`x_array`, :func:`default_frequencies` and :func:`default_grid` give the setting
of Oral & Oktem (IEEE TCI 2024): an X-shaped array 0.3 m wide (13 receivers on the diagonal,
12 transmitters on the anti-diagonal), 4-16 GHz in 20 uniform steps, and 25 x 25 x 49 voxels over
``x, y`` in [-0.15, 0.15] m and ``z`` in [0.35, 0.65] m. :func:`planar_array` and
:func:`random_array` build other layouts; any ``(T, 3)`` / ``(R, 3)`` positions work.

Example:
    >>> from operators import NearFieldMIMO, mimo_geometry as mg
    >>> tx, rx = mg.x_array()
    >>> physics = NearFieldMIMO(tx, rx, mg.default_frequencies(), mg.default_grid())
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SPEED_OF_LIGHT",
    "VoxelGrid",
    "default_frequencies",
    "default_grid",
    "planar_array",
    "random_array",
    "x_array",
]

#: Speed of light in vacuum (m/s).
SPEED_OF_LIGHT = 299_792_458.0


@dataclass(frozen=True)
class VoxelGrid:
    """A regular voxel grid given by its voxel-centre coordinates along each axis (metres).

    Attributes:
        x: (Nx,) increasing voxel-centre x coordinates.
        y: (Ny,) increasing voxel-centre y coordinates.
        z: (Nz,) increasing voxel-centre z coordinates (range from the array plane).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    def __post_init__(self) -> None:
        for name in ("x", "y", "z"):
            v = np.asarray(getattr(self, name), dtype=np.float64)
            if v.ndim != 1 or v.size < 1 or not np.all(np.isfinite(v)):
                raise ValueError(f"grid.{name}: expected a non-empty finite 1-D array, received shape {v.shape}")
            if v.size > 1 and not np.all(np.diff(v) > 0):
                raise ValueError(f"grid.{name}: expected strictly increasing coordinates")
            object.__setattr__(self, name, v)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(Nx, Ny, Nz)``."""
        return (self.x.size, self.y.size, self.z.size)

    def points(self) -> np.ndarray:
        """Voxel centres (N, 3), N = Nx Ny Nz, in C order of ``(ix, iy, iz)`` (z fastest)."""
        gx, gy, gz = np.meshgrid(self.x, self.y, self.z, indexing="ij")
        return np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)

    def bounds(self) -> np.ndarray:
        """(3, 2) ``[min, max]`` per axis of the box covered by the voxels (centres +- half a step)."""
        out = np.empty((3, 2))
        for i, v in enumerate((self.x, self.y, self.z)):
            half = 0.5 * (v[1] - v[0]) if v.size > 1 else 0.0
            out[i] = (v[0] - half, v[-1] + half)
        return out


def default_grid(shape: tuple[int, int, int] = (25, 25, 49)) -> VoxelGrid:
    """The paper's scene: ``x, y`` in [-0.15, 0.15] m, ``z`` in [0.35, 0.65] m (voxel centres)."""
    if len(shape) != 3 or any(not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"shape: expected three positive ints (Nx, Ny, Nz), received {shape!r}")
    return VoxelGrid(
        np.linspace(-0.15, 0.15, shape[0]), np.linspace(-0.15, 0.15, shape[1]), np.linspace(0.35, 0.65, shape[2])
    )


def default_frequencies(f_min: float = 4e9, f_max: float = 16e9, n: int = 20) -> np.ndarray:
    """``n`` uniformly stepped frequencies from ``f_min`` to ``f_max`` inclusive (Hz)."""
    if not 0 < f_min <= f_max or not isinstance(n, int) or n < 1:
        raise ValueError(f"f_min, f_max, n: expected 0 < f_min <= f_max and n >= 1, received {f_min}, {f_max}, {n}")
    return np.linspace(f_min, f_max, n)


def _in_plane(xy: np.ndarray) -> np.ndarray:
    return np.concatenate([xy, np.zeros((xy.shape[0], 1))], axis=1)


def x_array(width: float = 0.3, n_tx: int = 12, n_rx: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """The X-shaped array: receivers on the diagonal, transmitters on the anti-diagonal.

    Receivers run from ``(-w/2, -w/2)`` to ``(w/2, w/2)``, transmitters from ``(-w/2, w/2)`` to
    ``(w/2, -w/2)``, each uniformly spaced with both ends included, all at ``z = 0``.

    Returns:
        ``(tx, rx)``: (n_tx, 3) and (n_rx, 3) positions in metres.
    """
    s_tx = np.linspace(-width / 2, width / 2, n_tx)
    s_rx = np.linspace(-width / 2, width / 2, n_rx)
    return _in_plane(np.stack([s_tx, -s_tx], 1)), _in_plane(np.stack([s_rx, s_rx], 1))


def planar_array(width: float = 0.3, n_per_side: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """A boundary array whose virtual aperture fills the square: transmitters along the top and
    bottom edges (``y = +-w/2``), receivers along the left and right edges (``x = +-w/2``).

    Returns:
        ``(tx, rx)``: (2 n_per_side, 3) each, metres.
    """
    s = np.linspace(-width / 2, width / 2, n_per_side)
    edge = np.full_like(s, width / 2)
    tx = np.concatenate([np.stack([s, edge], 1), np.stack([s, -edge], 1)])
    rx = np.concatenate([np.stack([edge, s], 1), np.stack([-edge, s], 1)])
    return _in_plane(tx), _in_plane(rx)


def random_array(n_tx: int, n_rx: int, width: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random sparse array: positions uniform in the ``width x width`` square at ``z = 0``.

    Returns:
        ``(tx, rx)``: (n_tx, 3) and (n_rx, 3) positions in metres.
    """
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-width / 2, width / 2, size=(n_tx + n_rx, 2))
    return _in_plane(pts[:n_tx]), _in_plane(pts[n_tx:])
