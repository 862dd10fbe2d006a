"""Window graph of an image: the CSR arrays of its combinatorial Laplacian (numba CPU kernels).

Pixel ``p = (a, b)`` of an ``N x M`` image (row-major index ``p = a * M + b``) is joined to every
other pixel ``q = (c, d)`` of its ``(2r + 1) x (2r + 1)`` window, ``|a - c| <= r`` and
``|b - d| <= r``, clipped at the image border (no padding, no wrap), with weight

    w_pq = exp(-(x_p - x_q)^2 / sigma).

The Laplacian ``L = (D - W) / ||W||_F`` (``D`` the diagonal of the row sums of ``W``) has the
window's sparsity pattern, the diagonal included, so every row's length is known in closed form
(:func:`window_row_counts`). :func:`laplacian_csr_fill` fills ``indices``/``data`` of all rows in
parallel (one row per pixel, column indices ascending because the window is walked row-major),
evaluating each weight once (upper triangle) and mirroring it, then normalises by ``||W||_F``. Weights that underflow to
0.0 are kept as explicit entries, so the pattern (and ``nnz``) depends on the shape only.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from operators.kernels.threads import parallel_kernel

__all__ = ["window_row_counts", "window_nnz", "laplacian_csr_fill"]


def window_row_counts(n: int, m: int, r: int) -> np.ndarray:
    """Number of stored entries (window neighbours + the diagonal) of each row.

    Args:
        n, m: image shape N x M.
        r: window half-width (``R - 1``).

    Returns:
        (N * M,) int64: ``rows(a) * cols(b)`` for pixel ``(a, b)``, with
        ``rows(a) = min(a + r, N - 1) - max(a - r, 0) + 1`` and likewise for columns.
    """
    a = np.arange(n)
    b = np.arange(m)
    rows = np.minimum(a + r, n - 1) - np.maximum(a - r, 0) + 1
    cols = np.minimum(b + r, m - 1) - np.maximum(b - r, 0) + 1
    return np.multiply.outer(rows, cols).astype(np.int64).ravel()


def window_nnz(n: int, m: int, r: int) -> int:
    """Stored entries of the Laplacian, diagonal included: ``S(N) * S(M)`` with
    ``S(K) = sum_{|d| <= min(r, K-1)} (K - |d|) = K (2 k + 1) - k (k + 1)``, ``k = min(r, K - 1)``.

    For 256 x 256 and ``r = 4``: ``S = 2284``, ``nnz = 5,216,656`` (of which 65,536 diagonal).
    """
    def s(k_len: int) -> int:
        k = min(r, k_len - 1)
        return k_len * (2 * k + 1) - k * (k + 1)

    return s(n) * s(m)


@njit(inline="always", cache=True)
def _row_window(p, n, m, r):
    """Pixel ``(a, b)`` of row ``p`` and its clipped window: first row ``c0``, columns ``d0..d1``."""
    a = p // m
    b = p - a * m
    d0 = max(b - r, 0)
    d1 = min(b + r, m - 1)
    return a, b, max(a - r, 0), d0, d1, d1 - d0 + 1


@parallel_kernel()
def laplacian_csr_fill(img, r, sigma, indptr, indices, data):
    """Fill the CSR arrays of ``L = (D - W) / ||W||_F`` for the window graph of ``img``.

    Three parallel passes over the rows (pixels), no write races: (1) column indices of the
    whole row and ``-w_pq`` for the upper entries ``q > p`` only (each ``exp`` evaluated once);
    (2) each lower entry ``q < p`` copied (times ``1 / ||W||_F``) from its mirror, entry ``p`` of
    row ``q``, at the closed-form position ``indptr[q] + (a - c0(q)) * width(q) + (b - d0(q))``,
    and the scaled row sum written to the diagonal (pass 2 writes only lower entries and
    diagonals, and reads only upper entries); (3) the upper entries scaled by ``1 / ||W||_F``. The copy makes ``L`` exactly symmetric.

    Args:
        img: (N, M) float64, C-contiguous.
        r: window half-width (``R - 1``), >= 1.
        sigma: weight scale, > 0.
        indptr: (N * M + 1,) row pointers from :func:`window_row_counts` (prefix sum).
        indices: (nnz,) int32 or int64, output column indices (ascending within each row).
        data: (nnz,) float64, output values.

    Returns:
        ``||W||_F`` (float) before normalisation; when it is 0 (no edges, or every weight
        underflowed) ``data`` holds zeros and is left unscaled (the caller reports the error).
    """
    n, m = img.shape
    npix = n * m
    sq = np.zeros(npix)
    for p in prange(npix):  # pass 1: pattern + upper weights
        a, b, c0, d0, d1, width = _row_window(p, n, m, r)
        v = img[a, b]
        k = indptr[p]
        for c in range(c0, min(a + r, n - 1) + 1):
            for d in range(d0, d1 + 1):
                indices[k] = c * m + d
                k += 1
        rowsq = 0.0
        for c in range(a, min(a + r, n - 1) + 1):
            k = indptr[p] + (c - c0) * width
            for d in range(b + 1 if c == a else d0, d1 + 1):
                diff = v - img[c, d]
                w = np.exp(-(diff * diff) / sigma)
                data[k + d - d0] = -w
                rowsq += w * w
        sq[p] = rowsq
    fro = np.sqrt(2.0 * np.sum(sq))
    scale = 1.0 / fro if fro > 0.0 else 1.0
    for p in prange(npix):  # pass 2: scaled lower entries from their (unscaled) mirrors, diagonal
        a, b, c0, d0, d1, width = _row_window(p, n, m, r)
        rowsum = 0.0
        for c in range(c0, a + 1):
            k = indptr[p] + (c - c0) * width
            qc0 = max(c - r, 0)
            for d in range(d0, b if c == a else d1 + 1):
                qd0 = max(d - r, 0)
                qwidth = min(d + r, m - 1) - qd0 + 1
                w = data[indptr[c * m + d] + (a - qc0) * qwidth + (b - qd0)]
                data[k + d - d0] = w * scale
                rowsum -= w
        for c in range(a, min(a + r, n - 1) + 1):
            k = indptr[p] + (c - c0) * width
            for d in range(b + 1 if c == a else d0, d1 + 1):
                rowsum -= data[k + d - d0]
        data[indptr[p] + (a - c0) * width + (b - d0)] = rowsum * scale
    for p in prange(npix):  # pass 3: upper entries / ||W||_F (read by pass 2, so scaled last)
        a, b, c0, d0, d1, width = _row_window(p, n, m, r)
        for c in range(a, min(a + r, n - 1) + 1):
            k = indptr[p] + (c - c0) * width
            for d in range(b + 1 if c == a else d0, d1 + 1):
                data[k + d - d0] *= scale
    return fro
