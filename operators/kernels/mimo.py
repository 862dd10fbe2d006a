r"""Near-field MIMO radar kernels: matrix-free forward model and its exact adjoint (numba, CPU).

The model (Born approximation, isotropic point scatterers) is

.. math::
    y_b(f, t, r) = \sum_n x_b(n)\, g_t(f, n)\, h_r(f, n), \qquad
    g_t(f, n) = a_t(n)\, e^{-j k_f d_t(n)}, \quad h_r(f, n) = b_r(n)\, e^{-j k_f d_r(n)},

with :math:`d_t(n) = |p_n - t|`, :math:`d_r(n) = |p_n - r|` and the amplitudes :math:`a, b`
given by the caller (:math:`a = 1/(4\pi d_t)`, :math:`b = 1/d_r` for the physical Green's
functions). The kernel separates into a transmitter factor and a receiver factor, so one voxel and
one frequency cost ``T + R`` complex exponentials and ``T * R`` multiply-adds, never ``T * R``
exponentials. For uniformly stepped frequencies (``uniform=True``) the exponentials of frequency
``f + 1`` follow from those of ``f`` by one complex multiplication each:
:math:`e^{-j k_{f+1} d} = e^{-j k_f d}\, e^{-j \Delta k\, d}`.

The adjoint :math:`x_b(n) = \sum_{f,t,r} \overline{g_t(f,n)}\,\overline{h_r(f,n)}\, y_b(f,t,r)`
builds the conjugate factors with the same code (:func:`_factors` with the phase sign flipped),
so the pair is an exact transpose up to rounding. Both kernels split the voxels into ``n_chunks``
chunks run in parallel: the adjoint writes disjoint voxels; the forward accumulates each chunk
into its own measurement buffer (no write races), summed at the end.

Shapes: ``x`` (B, N) complex, ``y`` (B, F, T, R) complex (complex64 or complex128, the same for
both); ``dist_t``, ``amp_t`` (N, T) float64; ``dist_r``, ``amp_r`` (N, R) float64; ``k`` (F,)
float64 in rad/m.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from operators.kernels.threads import parallel_kernel

__all__ = ["forward", "adjoint"]

#: LLVM may reorder sums (so the reductions over receivers vectorize) and fuse multiply-adds;
#: NaN/Inf semantics are kept (no ``nnan``/``ninf``), so the solvers' NaN guard still sees them.
_REASSOC = {"reassoc", "contract"}


@njit(cache=True, inline="always")
def _factors(n, f, k, sign, uniform, dist, amp, out, step):  # pragma: no cover - compiled
    """``out[i] = amp[n, i] exp(sign j k_f dist[n, i])``, by recurrence from ``f - 1`` if uniform.

    ``sign = -1`` gives the model's factors, ``sign = +1`` their complex conjugates (adjoint).
    """
    m = dist.shape[1]
    if uniform and f > 0:
        for i in range(m):
            out[i] *= step[i]
        return
    for i in range(m):
        phase = sign * k[f] * dist[n, i]
        out[i] = amp[n, i] * complex(np.cos(phase), np.sin(phase))
        if uniform:
            dphase = sign * (k[1] - k[0]) * dist[n, i] if k.shape[0] > 1 else 0.0
            step[i] = complex(np.cos(dphase), np.sin(dphase))


@parallel_kernel(fastmath=_REASSOC)
def forward(x, k, uniform, dist_t, amp_t, dist_r, amp_r, n_chunks, y):  # pragma: no cover - compiled
    """``y = A x`` in place (``y`` is overwritten). ``n_chunks`` private buffers, summed at the end."""
    n_batch, n_vox = x.shape
    n_f, n_t, n_r = y.shape[1], y.shape[2], y.shape[3]
    buf = np.zeros((n_chunks, n_batch, n_f, n_t, n_r), dtype=y.dtype)
    per = (n_vox + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        g = np.empty(n_t, dtype=y.dtype)
        h = np.empty(n_r, dtype=y.dtype)
        g_step = np.empty(n_t, dtype=y.dtype)
        h_step = np.empty(n_r, dtype=y.dtype)
        for n in range(c * per, min(n_vox, (c + 1) * per)):
            for f in range(n_f):
                _factors(n, f, k, -1.0, uniform, dist_t, amp_t, g, g_step)
                _factors(n, f, k, -1.0, uniform, dist_r, amp_r, h, h_step)
                for b in range(n_batch):
                    xv = x[b, n]
                    if xv == 0:
                        continue
                    for t in range(n_t):
                        w = g[t] * xv
                        for r in range(n_r):
                            buf[c, b, f, t, r] += w * h[r]
    y[:] = 0
    for c in range(n_chunks):
        y += buf[c]


@parallel_kernel(fastmath=_REASSOC)
def adjoint(y, k, uniform, dist_t, amp_t, dist_r, amp_r, n_chunks, x):  # pragma: no cover - compiled
    """``x = A^H y`` in place (``x`` is overwritten); parallel over chunks of voxels (disjoint writes)."""
    n_batch, n_vox = x.shape
    n_f, n_t, n_r = y.shape[1], y.shape[2], y.shape[3]
    per = (n_vox + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        g = np.empty(n_t, dtype=x.dtype)  # conjugated factors
        h = np.empty(n_r, dtype=x.dtype)
        g_step = np.empty(n_t, dtype=x.dtype)
        h_step = np.empty(n_r, dtype=x.dtype)
        for n in range(c * per, min(n_vox, (c + 1) * per)):
            for b in range(n_batch):
                x[b, n] = 0
            for f in range(n_f):
                _factors(n, f, k, 1.0, uniform, dist_t, amp_t, g, g_step)
                _factors(n, f, k, 1.0, uniform, dist_r, amp_r, h, h_step)
                for b in range(n_batch):
                    acc = x[b, n] * 0
                    for t in range(n_t):
                        s_t = acc * 0
                        for r in range(n_r):
                            s_t += h[r] * y[b, f, t, r]
                        acc += g[t] * s_t
                    x[b, n] += acc
