"""Ray-driven Joseph projector for 2D CT: numba CPU kernels (pure functions).

Every ray is a straight line given by a point ``p`` on it and a unit direction ``d``; parallel and
fan beam only differ in how those are built (:func:`parallel_rays`, :func:`fan_rays`), so one pair
of kernels serves both.

The kernels work on a stack of ``F`` images, each with its own rays: the ``R`` rays are split
into ``F`` equal, consecutive groups and group ``m`` sees image ``m`` only. A static scan is
``F = 1``; dynamic CT (one set of views per frame) projects all its frames in one call.

Joseph's method: a ray that is mostly horizontal (``|d_x| >= |d_y|``) is sampled once per image
column at the column centre, the image is linearly interpolated between the two rows around the
sample, and each sample is weighted by the path length per column, ``1 / |d_x|``; a mostly
vertical ray is sampled once per row in the same way. Outside the image the value is zero.

Image grid: an ``N x N`` image of unit pixels centred at the origin; pixel ``(i, j)`` (row,
column) has its centre at ``x = j - N/2 + 1/2``, ``y = N/2 - 1/2 - i`` (row 0 at the top, the
astra-toolbox 2D convention).

To keep the inner loops branch-free and contiguous, the kernels read two zero-padded copies of
each image, both of shape ``(N, N + 4)``: ``q[0][s, 2 + t] = img[s, t]`` for rays stepped over
rows and ``q[1][s, 2 + t] = img[t, s]`` (the transpose) for rays stepped over columns. Every ray
is pre-reduced by :func:`ray_parameters` to ``(mode, t0, slope, weight, s_lo, s_hi)``: the sample
in step ``s`` sits at padded interpolation coordinate ``t = t0 + slope * s``, and only steps with
``0.5 < t < N + 2.5`` are visited (all samples that touch a real pixel, plus zero padding).

:func:`joseph_adjoint` applies exactly the transposed weights (same code path for ``t``, ``k``,
``f`` and ``weight``). Both kernels give the same bits at any thread count: the forward computes
each ray's sum in one thread, and the adjoint splits its work by output rows (a band of
padded-buffer rows per unit, its rays added in ray order), so no sum is ever split by thread.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from operators.kernels.threads import parallel_kernel

__all__ = [
    "parallel_rays",
    "fan_rays",
    "ray_parameters",
    "pad_image",
    "joseph_forward",
    "joseph_adjoint",
]

#: Row bands of each padded image copy, the parallel units of :func:`joseph_adjoint` (16 per image;
#: the result does not depend on the count, only the speed: fewer, longer bands cost less per ray)
ADJOINT_BANDS = 8


def _detector_offsets(n_detectors: int, spacing: float) -> np.ndarray:
    """Signed position of each detector-cell centre along the detector, centred on 0."""
    return (np.arange(n_detectors, dtype=np.float64) - n_detectors / 2.0 + 0.5) * spacing


def parallel_rays(angles: np.ndarray, n_detectors: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Rays of a 2D parallel-beam scan, in the astra-toolbox convention.

    For angle ``theta`` the rays travel along ``(sin theta, -cos theta)``; detector cell ``k``
    sits at ``u_k (cos theta, sin theta)`` with ``u_k = (k - n/2 + 1/2) * spacing``.

    Args:
        angles: (A,) float64, radians.
        n_detectors: number of detector cells D.
        spacing: detector cell width (pixels).

    Returns:
        ``points`` and ``directions``, each (A * D, 2) float64, angle-major.
    """
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    u = _detector_offsets(n_detectors, spacing)[None, :]
    points = np.stack([u * c, u * s], axis=-1).reshape(-1, 2)
    directions = np.broadcast_to(np.stack([s, -c], axis=-1), (len(angles), n_detectors, 2)).reshape(-1, 2)
    return points, np.ascontiguousarray(directions)


def fan_rays(
    angles: np.ndarray, n_detectors: int, spacing: float, source_origin: float, origin_detector: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rays of a 2D flat-detector fan-beam scan, in the astra-toolbox ``fanflat`` convention.

    For angle ``theta`` the source is at ``source_origin * (sin theta, -cos theta)``, the detector
    centre at ``origin_detector * (-sin theta, cos theta)`` and cell ``k`` at the detector centre
    plus ``u_k (cos theta, sin theta)``. Each ray runs from the source to a cell centre.

    Returns:
        ``points`` (the source, per ray) and unit ``directions``, each (A * D, 2) float64.
    """
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    u = _detector_offsets(n_detectors, spacing)[None, :]
    src = np.stack([source_origin * s, -source_origin * c], axis=-1)  # (A, 1, 2)
    cell = np.stack([-origin_detector * s + u * c, origin_detector * c + u * s], axis=-1)  # (A, D, 2)
    d = cell - src
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    points = np.broadcast_to(src, d.shape).reshape(-1, 2)
    return np.ascontiguousarray(points), d.reshape(-1, 2)


def ray_parameters(points: np.ndarray, directions: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Reduce rays to the per-ray Joseph sampling parameters for an ``n x n`` image.

    Args:
        points: (R, 2) a point on each ray (x, y), pixels.
        directions: (R, 2) unit direction of each ray.
        n: image side N.

    Returns:
        dict of (R,) arrays: ``mode`` (int64, 0 = stepped over rows, 1 = over columns), ``t0``,
        ``slope``, ``weight`` (float64) and the visited step range ``s_lo``/``s_hi`` (int64,
        ``s_hi`` exclusive).
    """
    px, py = points[:, 0], points[:, 1]
    dx, dy = directions[:, 0], directions[:, 1]
    half = n / 2.0
    by_cols = np.abs(dx) >= np.abs(dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        # stepped over columns j (x_j = j - N/2 + 1/2), interpolated along rows
        slope_c = -dy / dx
        t0_c = half + 1.5 - py + (half - 0.5 + px) * dy / dx
        # stepped over rows i (y_i = N/2 - 1/2 - i), interpolated along columns
        slope_r = -dx / dy
        t0_r = px + half + 1.5 + (half - 0.5 - py) * dx / dy
    slope = np.where(by_cols, slope_c, slope_r)
    t0 = np.where(by_cols, t0_c, t0_r)
    weight = 1.0 / np.where(by_cols, np.abs(dx), np.abs(dy))
    lo_t, hi_t = 0.5, n + 2.5
    flat = np.abs(slope) < 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        s1 = (lo_t - t0) / slope
        s2 = (hi_t - t0) / slope
    s_min = np.minimum(s1, s2)
    s_max = np.maximum(s1, s2)
    inside = (t0 > lo_t) & (t0 < hi_t)
    s_min = np.where(flat, np.where(inside, 0.0, n), s_min)
    s_max = np.where(flat, np.where(inside, n - 1.0, -1.0), s_max)
    s_lo = np.clip(np.ceil(s_min), 0, n).astype(np.int64)
    s_hi = np.clip(np.floor(s_max) + 1, 0, n).astype(np.int64)
    s_hi = np.maximum(s_hi, s_lo)
    return {
        "mode": np.where(by_cols, 1, 0).astype(np.int64),
        "t0": t0,
        "slope": np.where(flat, 0.0, slope),
        "weight": weight,
        "s_lo": s_lo,
        "s_hi": s_hi,
    }


@parallel_kernel()
def pad_image(img, q):
    """Fill ``q`` (F, 2, N, N + 4) with the two zero-padded copies of each image of ``img`` (F, N, N)."""
    n = img.shape[1]
    for row in prange(img.shape[0] * n):
        m = row // n
        i = row - m * n
        qf = q[m]
        qf[0, i, 0] = 0
        qf[0, i, 1] = 0
        qf[0, i, n + 2] = 0
        qf[0, i, n + 3] = 0
        qf[1, i, 0] = 0
        qf[1, i, 1] = 0
        qf[1, i, n + 2] = 0
        qf[1, i, n + 3] = 0
        for j in range(n):
            qf[0, i, j + 2] = img[m, i, j]
            qf[1, i, j + 2] = img[m, j, i]


@parallel_kernel(fastmath=True)
def joseph_forward(q, mode, t0, slope, weight, s_lo, s_hi, out):
    """Forward projection: ``out[r] = weight[r] * sum_s interp(q[m(r), mode[r]][s], t0[r] + slope[r] s)``.

    Ray ``r`` integrates image ``m(r) = r // (R / F)``.

    Args:
        q: (F, 2, N, N + 4) padded image copies from :func:`pad_image` (float32 or float64).
        mode, s_lo, s_hi: (R,) int64 per-ray parameters from :func:`ray_parameters`; R a multiple of F.
        t0, slope, weight: (R,) per-ray parameters, same dtype as ``q``.
        out: (R,) output line integrals, same dtype as ``q`` (overwritten).
    """
    per_image = out.shape[0] // q.shape[0]
    for r in prange(out.shape[0]):
        qm = q[r // per_image, mode[r]]
        a = t0[r]
        b = slope[r]
        acc = qm[0, 0] * 0
        for s in range(s_lo[r], s_hi[r]):
            t = a + b * s
            k = int(t)
            f = t - k
            lo = qm[s, k]
            acc += lo + f * (qm[s, k + 1] - lo)
        out[r] = acc * weight[r]


@parallel_kernel(fastmath=True)
def joseph_adjoint(y, mode, t0, slope, weight, s_lo, s_hi, out):
    """Back-projection, the exact transpose of :func:`joseph_forward`, bitwise the same at any thread count.

    Image ``m`` receives rays ``m R/F .. (m+1) R/F - 1``. The work is split by output rows, not
    by rays: a parallel unit owns one of the :data:`ADJOINT_BANDS` bands of consecutive rows of
    one image's padded copy ``mode`` (image rows for mode 0, columns for mode 1) and adds, ray by
    ray in ray order, the samples of that image's rays of that mode that fall in its band. Every
    buffer entry is thus written by one thread, its terms added in ray order whatever the number
    of threads: the result is the serial one bit for bit, with no per-thread buffers and no
    reduction over them.

    Args:
        y: (R,) sinogram values, float32 or float64; R a multiple of F.
        mode, t0, slope, weight, s_lo, s_hi: per-ray parameters (as for the forward).
        out: (F, N, N) images (overwritten), same dtype as ``y``.
    """
    n_images, n = out.shape[0], out.shape[1]
    n_rays = y.shape[0]
    per_image = n_rays // n_images
    # the rays of each (image, mode) group that touch the image with a non-zero value, in ray order
    start = np.zeros(2 * n_images + 1, dtype=np.int64)
    for r in range(n_rays):
        if s_lo[r] < s_hi[r] and y[r] != 0:
            start[2 * (r // per_image) + mode[r] + 1] += 1
    for g in range(2 * n_images):
        start[g + 1] += start[g]
    fill = start[:-1].copy()
    g_v = np.empty(start[-1], dtype=y.dtype)
    g_t0 = np.empty(start[-1], dtype=y.dtype)
    g_slope = np.empty(start[-1], dtype=y.dtype)
    g_lo = np.empty(start[-1], dtype=np.int64)
    g_hi = np.empty(start[-1], dtype=np.int64)
    for r in range(n_rays):
        if s_lo[r] < s_hi[r] and y[r] != 0:
            g = 2 * (r // per_image) + mode[r]
            i = fill[g]
            fill[g] = i + 1
            g_v[i] = y[r] * weight[r]
            g_t0[i] = t0[r]
            g_slope[i] = slope[r]
            g_lo[i] = s_lo[r]
            g_hi[i] = s_hi[r]
    bands = min(n, ADJOINT_BANDS)
    rows = (n + bands - 1) // bands
    buf = np.empty((n_images, 2, n, n + 4), dtype=y.dtype)
    for unit in prange(2 * n_images * bands):
        g = unit // bands
        band_lo = min((unit - g * bands) * rows, n)
        band_hi = min(band_lo + rows, n)
        qm = buf[g // 2, g - 2 * (g // 2)]
        qm[band_lo:band_hi] = 0
        for i in range(start[g], start[g + 1]):
            v = g_v[i]
            a = g_t0[i]
            b = g_slope[i]
            for s in range(max(g_lo[i], band_lo), min(g_hi[i], band_hi)):
                t = a + b * s
                k = int(t)
                f = t - k
                vf = v * f
                qm[s, k] += v - vf
                qm[s, k + 1] += vf
    for row in prange(n_images * n):
        m = row // n
        i = row - m * n
        for j in range(n):
            out[m, i, j] = buf[m, 0, i, j + 2] + buf[m, 1, j, i + 2]
