r"""Near-field MIMO radar forward model on complex 3D reflectivities.

.. math::
    y(f, t, r) = \sum_p x(p)\, \frac{e^{-j k_f (|p - t| + |p - r|)}}{4\pi\, |p - t|\, |p - r|},
    \qquad k_f = 2\pi f / c,

for every frequency ``f``, transmitter ``t`` and receiver ``r`` (Born approximation, isotropic
point scatterers; positions in metres, frequencies in hertz). Geometry helpers live in
:mod:`operators.mimo_geometry`.

Three interchangeable implementations behind one dispatcher (:meth:`NearFieldMIMO._run`):

* a dense matrix, built once and kept when ``M * N * 16`` bytes (complex128) fit
  ``dense_budget_bytes`` (default 64 MiB, about 4 M entries: small problems, where one matrix
  product beats a kernel launch; the paper's default geometry needs 1.5 GB and stays matrix-free);
* otherwise, CPU tensors go through the numba kernels of :mod:`operators.kernels.mimo`
  (separable transmitter/receiver factors, frequency recurrence, parallel over voxels);
* CUDA tensors go through the torch twin of the same factorisation (batched ``einsum`` per
  chunk of frequencies), so nothing leaves the GPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from deepinv.physics import LinearPhysics

from operators._autograd import ApplyLinear
from operators._validate import COMPLEX_DTYPES, check_shape, check_tensor
from operators.kernels import mimo as kernels
from operators.kernels import threads
from operators.mimo_geometry import SPEED_OF_LIGHT, VoxelGrid

__all__ = ["NearFieldMIMO"]

#: Relative tolerance under which a frequency list counts as uniformly stepped.
_UNIFORM_RTOL = 1e-9


def _n_chunks() -> int:
    """Voxel chunks per kernel call: four per numba thread of the caller, for load balance.

    The adjoint computes each voxel in one chunk, so its result does not depend on the count; the
    forward sums the chunks' buffers, so its rounding does: by float noise (measured between 1 and 2
    threads: 2e-7 relative in complex64, 4e-16 in complex128)."""
    return 4 * threads.num_threads()


def _positions(name: str, value: object) -> np.ndarray:
    arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if arr.dtype.kind not in "fiu" or arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
        raise ValueError(f"{name}: expected real positions of shape (K, 3) in metres, received {arr.dtype} {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite positions, received NaN/Inf")
    return arr


def _frequencies(value: object) -> np.ndarray:
    arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if arr.dtype.kind not in "fiu" or arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"frequencies: expected a non-empty real 1-D array in Hz, received {arr.dtype} {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"frequencies: expected finite values > 0 Hz, received min {arr.min()!r}")
    return arr


def _check_outside(name: str, antennas: np.ndarray, grid: VoxelGrid) -> None:
    box = grid.bounds()
    inside = np.all((antennas >= box[:, 0]) & (antennas <= box[:, 1]), axis=1)
    if inside.any():
        i = int(np.argmax(inside))
        raise ValueError(
            f"{name}: expected every antenna outside the scene box {box.tolist()} m, "
            f"received antenna {i} at {antennas[i].tolist()}"
        )


class NearFieldMIMO(LinearPhysics):
    r"""Near-field MIMO radar: complex reflectivity on a voxel grid -> multi-frequency echoes.

    Args:
        tx: transmitter positions (T, 3), metres.
        rx: receiver positions (R, 3), metres.
        frequencies: (F,) frequencies in Hz, > 0 (uniform steps use a faster recurrence).
        grid: the :class:`~operators.mimo_geometry.VoxelGrid` of the scene; no antenna may lie
            inside its box.
        dense_budget_bytes: keep the dense (M, N) complex128 matrix when it fits in this many
            bytes (0 disables it).
        **kwargs: passed to ``deepinv.physics.LinearPhysics`` (e.g. ``noise_model``).

    Shapes: ``x`` (B, 1, Nx, Ny, Nz) complex64/complex128 -> ``y`` (B, 1, F, T, R) of the same
    dtype (:attr:`img_shape`, :attr:`meas_shape` without B). Real tensors are refused
    (``TypeError``): the reflectivity is complex.

    Example:
        >>> from operators import mimo_geometry as mg
        >>> op = NearFieldMIMO(*mg.x_array(), mg.default_frequencies(), mg.default_grid())
        >>> y = op.A(torch.zeros(1, 1, 25, 25, 49, dtype=torch.complex64))
        >>> tuple(y.shape)
        (1, 1, 20, 12, 13)
    """

    def __init__(
        self,
        tx: object,
        rx: object,
        frequencies: object,
        grid: VoxelGrid,
        *,
        dense_budget_bytes: int = 64 * 2**20,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(grid, VoxelGrid):
            raise TypeError(f"grid: expected an operators.mimo_geometry.VoxelGrid, received {type(grid).__name__}")
        self.tx, self.rx = _positions("tx", tx), _positions("rx", rx)
        _check_outside("tx", self.tx, grid)
        _check_outside("rx", self.rx, grid)
        self.frequencies = _frequencies(frequencies)
        self.grid = grid
        if isinstance(dense_budget_bytes, bool) or not isinstance(dense_budget_bytes, int) or dense_budget_bytes < 0:
            raise ValueError(f"dense_budget_bytes: expected an int >= 0, received {dense_budget_bytes!r}")
        self.k = 2.0 * math.pi * self.frequencies / SPEED_OF_LIGHT
        steps = np.diff(self.k)
        self.uniform = bool(steps.size == 0 or np.allclose(steps, steps[0], rtol=_UNIFORM_RTOL, atol=0.0))
        pts = grid.points()
        self.dist_t = np.linalg.norm(pts[:, None, :] - self.tx[None], axis=2)
        self.dist_r = np.linalg.norm(pts[:, None, :] - self.rx[None], axis=2)
        self.amp_t = 1.0 / (4.0 * math.pi * self.dist_t)
        self.amp_r = 1.0 / self.dist_r
        self._torch_factors: dict = {}
        dense_bytes = self.n_measurements * self.n_voxels * 16
        self._dense = self._dense_matrix() if dense_bytes <= dense_budget_bytes else None

    # -- shapes ------------------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(Nx, Ny, Nz)``."""
        return self.grid.shape

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """``(F, T, R)``."""
        return (self.frequencies.size, self.tx.shape[0], self.rx.shape[0])

    @property
    def img_shape(self) -> tuple[int, int, int, int]:
        """One reflectivity without the batch axis, ``(1, Nx, Ny, Nz)`` (complex)."""
        return (1, *self.image_shape)

    @property
    def meas_shape(self) -> tuple[int, int, int, int]:
        """One set of echoes without the batch axis, ``(1, F, T, R)`` (complex)."""
        return (1, *self.data_shape)

    @property
    def n_voxels(self) -> int:
        """N = Nx Ny Nz."""
        return self.dist_t.shape[0]

    @property
    def n_measurements(self) -> int:
        """M = F T R."""
        return int(np.prod(self.data_shape))

    # -- public maps -------------------------------------------------------------------------
    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Echoes ``y = A x``: reflectivity ``x`` (B, *img_shape) -> (B, *meas_shape), complex, dtype and device kept."""
        self._check("x", x, self.image_shape)
        return ApplyLinear.apply(x, self, False)

    def A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        """Matched filter ``x = A^H y`` (exact adjoint): echoes (B, *meas_shape) -> (B, *img_shape), dtype kept."""
        self._check("y", y, self.data_shape)
        return ApplyLinear.apply(y, self, True)

    def kirchhoff(self, y: torch.Tensor) -> torch.Tensor:
        r"""Kirchhoff migration: the matched filter with spreading loss and obliquity compensated.

        .. math::
            x_{KM}(p) = \sum_{f,t,r} k_f^2\, (4\pi)\, d_t \cos\theta_t\; d_r \cos\theta_r\;
                e^{+j k_f (d_t + d_r)}\, y(f, t, r),

        with :math:`d = |p - a|` and :math:`\cos\theta = (p_z - a_z) / d` for antenna ``a`` (the
        array looks along +z): the amplitude :math:`1/(4\pi d_t d_r)` of the model is inverted
        instead of repeated, each leg is weighted by its obliquity, and :math:`k^2` comes from the
        normal derivatives of the two Green's functions in the Kirchhoff integral. CPU only
        (numba kernel); the result is on ``y``'s device.

        Args:
            y: echoes (B, 1, F, T, R), complex.

        Returns:
            (B, 1, Nx, Ny, Nz), same dtype and device.
        """
        self._check("y", y, self.data_shape)
        pts = self.grid.points()
        cos_t = (pts[:, None, 2] - self.tx[None, :, 2]) / self.dist_t
        cos_r = (pts[:, None, 2] - self.rx[None, :, 2]) / self.dist_r
        weighted = y * torch.as_tensor(self.k**2, dtype=y.real.dtype, device=y.device).reshape(1, 1, -1, 1, 1)
        flat = weighted.detach().reshape(y.shape[0], *self.data_shape).cpu().contiguous().numpy()
        out = np.empty((y.shape[0], self.n_voxels), dtype=flat.dtype)
        kernels.adjoint(
            flat, self.k, self.uniform, self.dist_t, 4.0 * math.pi * self.dist_t * cos_t, self.dist_r,
            self.dist_r * cos_r, _n_chunks(), out,
        )
        return torch.from_numpy(out).to(y.device).reshape(y.shape[0], 1, *self.image_shape)

    # -- dispatch ------------------------------------------------------------------------------
    def _run(self, data: torch.Tensor, adjoint: bool) -> torch.Tensor:
        """Apply A or A^H to a validated tensor, without autograd (the one device dispatcher)."""
        batch = data.shape[0]
        flat = data.detach().reshape(batch, -1)
        if self._dense is not None:  # products in complex128 (batch-independent rounding), then cast
            mat = self._dense.to(device=data.device)
            wide = flat.to(torch.complex128)
            out = ((wide.conj() @ mat).conj() if adjoint else wide @ mat.T).to(data.dtype)  # no copy of A
        elif data.is_cuda:
            out = self._torch_apply(flat, adjoint)
        else:
            out = self._numba_apply(flat.cpu().contiguous().numpy(), adjoint)
            out = torch.from_numpy(out)
        tail = self.image_shape if adjoint else self.data_shape
        return out.reshape(batch, 1, *tail)

    def _numba_apply(self, src: np.ndarray, adjoint: bool) -> np.ndarray:
        args = (self.k, self.uniform, self.dist_t, self.amp_t, self.dist_r, self.amp_r)
        if adjoint:
            out = np.empty((src.shape[0], self.n_voxels), dtype=src.dtype)
            kernels.adjoint(src.reshape(src.shape[0], *self.data_shape), *args, _n_chunks(), out)
            return out
        out = np.empty((src.shape[0], *self.data_shape), dtype=src.dtype)
        kernels.forward(src, *args, _n_chunks(), out)
        return out.reshape(src.shape[0], -1)

    def _factors_torch(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Transmitter and receiver factors (F, N, T) and (F, N, R) on ``device`` (cached)."""
        key = (str(device), dtype)
        if key not in self._torch_factors:
            k = torch.as_tensor(self.k, device=device).reshape(-1, 1, 1)

            def factor(dist: np.ndarray, amp: np.ndarray) -> torch.Tensor:  # phases in float64, then cast
                d, a = torch.as_tensor(dist, device=device), torch.as_tensor(amp, device=device)
                return torch.polar(a.expand(k.shape[0], -1, -1), -k * d).to(dtype)

            self._torch_factors[key] = (factor(self.dist_t, self.amp_t), factor(self.dist_r, self.amp_r))
        return self._torch_factors[key]

    def _torch_apply(self, flat: torch.Tensor, adjoint: bool) -> torch.Tensor:
        """The torch twin of the numba kernels (used for CUDA tensors)."""
        g, h = self._factors_torch(flat.device, flat.dtype)
        if adjoint:
            y = flat.reshape(flat.shape[0], *self.data_shape)
            return torch.einsum("fnt,bftr,fnr->bn", g.conj(), y, h.conj())
        return torch.einsum("fnt,bn,fnr->bftr", g, flat, h).reshape(flat.shape[0], -1)

    def _dense_matrix(self) -> torch.Tensor:
        """The (M, N) complex128 system matrix, rows in (f, t, r) order."""
        g, h = self._factors_torch(torch.device("cpu"), torch.complex128)
        self._torch_factors.clear()
        return torch.einsum("fnt,fnr->ftrn", g, h).reshape(self.n_measurements, self.n_voxels)

    def _check(self, name: str, value: object, tail: tuple[int, ...]) -> None:
        check_tensor(name, value, ndim=5, real=False)
        if value.dtype not in COMPLEX_DTYPES:
            raise TypeError(
                f"{name}: expected a complex tensor (complex64 or complex128), received {value.dtype}; "
                "use x.to(torch.complex64) for a real reflectivity"
            )
        check_shape(name, value, (None, 1, *tail))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_torch_factors"] = {}
        return state

    def extra_repr(self) -> str:
        f = self.frequencies
        return (
            f"tx={self.tx.shape[0]}, rx={self.rx.shape[0]}, frequencies={f.size} ({f[0] / 1e9:.3g}-{f[-1] / 1e9:.3g} GHz), "
            f"grid={self.image_shape}, dense={self._dense is not None}"
        )
