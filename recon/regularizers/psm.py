r"""Partially separable models (PSM) of dynamic objects with a spline-smooth temporal basis.

A dynamic object of P frames of N x N pixels is written as a rank-r product

.. math::  F = \Lambda \Psi^T, \qquad \Psi = U Z,

with the spatial basis :math:`\Lambda` (r images, here a tensor (r, N, N)), the temporal basis
:math:`\Psi` (P, r), and :math:`\Psi` itself spanned by :math:`d` latent samples :math:`Z`
(d, r) that a cubic Hermite spline :math:`U` (P, d) interpolates to all P frames; frame ``t`` is
:math:`f_t = \sum_k \Psi_{t,k} \Lambda_k`. The spline builds temporal smoothness into the model:
:math:`\Psi` is C1 in time whatever :math:`Z` is. RED-PSM's "K + 1 basis functions" is ``rank``
here (the paper's K = 6 at P = 128 is ``rank=7``).

The spline (:func:`hermite_spline_matrix`): the latent samples sit at the ``d`` knots
:math:`u_j = j (P - 1)/(d - 1)` (frame units, :math:`h = (P-1)/(d-1)` apart); the tangent at a
knot is the central difference :math:`m_j = (z_{j+1} - z_{j-1}) / (2h)` (Catmull-Rom; one-sided
at the two ends), and on :math:`[u_j, u_{j+1}]`, with :math:`s = (t - u_j)/h`,

.. math::  p(t) = h_{00}(s) z_j + h h_{10}(s) m_j + h_{01}(s) z_{j+1} + h h_{11}(s) m_{j+1},

:math:`h_{00} = 2s^3 - 3s^2 + 1`, :math:`h_{10} = s^3 - 2s^2 + s`, :math:`h_{01} = -2s^3 + 3s^2`,
:math:`h_{11} = s^3 - s^2`. Both the values and the tangents are linear in :math:`z`, so the spline
is the fixed matrix :math:`U`; it passes through the samples (:math:`p(u_j) = z_j`) and its
derivative is continuous at the knots.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from operators._validate import check_int

__all__ = ["hermite_spline_matrix", "psm_frames", "truncated_svd_factors"]


def hermite_spline_matrix(
    n_frames: int, latent_size: int, times: torch.Tensor | np.ndarray | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    r"""The cubic Hermite (Catmull-Rom) spline :math:`U` from ``latent_size`` samples to frame times.

    Args:
        n_frames: number of frames P (>= 2); the knots span frame times [0, P - 1].
        latent_size: number of latent samples d, 2 <= d <= P.
        times: frame times (T,) at which to evaluate, in frame units within [0, P - 1]; default
            the P frames 0, 1, ..., P - 1.
        dtype: torch float dtype of the result.

    Returns:
        U, (T, d) (T = P by default): row ``t`` holds the weights of the d samples at time ``t``;
        every row sums to one (the spline reproduces constants).

    Example:
        >>> U = hermite_spline_matrix(128, 9)   # (128, 9)
        >>> psi = U @ torch.randn(9, 7)          # a C1 temporal basis of 7 functions
    """
    n_frames = check_int("n_frames", n_frames, minimum=2)
    d = check_int("latent_size", latent_size, minimum=2)
    if d > n_frames:
        raise ValueError(f"latent_size: expected at most n_frames = {n_frames} latent samples, received {d}")
    h = (n_frames - 1) / (d - 1)
    t = np.arange(n_frames, dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(t)) or t.min(initial=0.0) < 0 or t.max(initial=0.0) > n_frames - 1:
        raise ValueError(f"times: expected finite frame times within [0, {n_frames - 1}]")
    # tangent m_j = sum_i tangent[j, i] z_i (per unit time)
    tangent = np.zeros((d, d))
    tangent[0, :2] = (-1.0 / h, 1.0 / h)
    tangent[-1, -2:] = (-1.0 / h, 1.0 / h)
    for j in range(1, d - 1):
        tangent[j, j - 1], tangent[j, j + 1] = -0.5 / h, 0.5 / h
    cell = np.minimum((t / h).astype(np.int64), d - 2)
    s = t / h - cell
    h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
    rows = np.arange(len(t))
    weights = h * (h10[:, None] * tangent[cell] + h11[:, None] * tangent[cell + 1])
    weights[rows, cell] += h00
    weights[rows, cell + 1] += h01
    return torch.from_numpy(weights).to(dtype)


def psm_frames(spatial: torch.Tensor, latent: torch.Tensor, spline: torch.Tensor) -> torch.Tensor:
    r"""The frames :math:`f_t = \sum_k (U Z)_{t,k} \Lambda_k` of a PSM.

    Args:
        spatial: :math:`\Lambda`, (r, N, N), in image units.
        latent: :math:`Z`, (d, r), dimensionless.
        spline: :math:`U`, (P, d) (:func:`hermite_spline_matrix`).

    Returns:
        Frames (P, N, N) in the units of ``spatial``, differentiable in ``spatial`` and ``latent``.

    Example:
        >>> u = hermite_spline_matrix(32, 9)
        >>> frames = psm_frames(torch.randn(7, 64, 64), torch.randn(9, 7), u)   # (32, 64, 64)
    """
    psi = spline @ latent  # (P, r)
    return torch.einsum("pr,rij->pij", psi, spatial)


def _smooth_completion(basis: torch.Tensor, count: int) -> torch.Tensor:
    r"""``count`` orthonormal temporal functions orthogonal to the orthonormal columns of ``basis``, smoothest first.

    The cosines :math:`\cos(\pi (t + 1/2) j / P)`, :math:`j = 0, 1, \dots` (the orthonormal DCT-II
    basis), each orthogonalised (Gram-Schmidt, twice) against ``basis`` and the functions already
    taken, kept when a norm of at least :math:`1/\sqrt{r + 1}` is left (r = ``basis`` columns +
    ``count`` <= P). The bound guarantees ``count`` of them: a rejected cosine has more than
    :math:`r/(r+1)` of its squared norm in the final span, and the squared norms of all P cosines
    in a span of dimension D sum to D. float64, (P, count); no LAPACK call, so the same bits at any
    thread count.
    """
    p = basis.shape[0]
    keep = 1.0 / math.sqrt(basis.shape[1] + count + 1)
    t = torch.arange(p, dtype=torch.float64)
    taken = list(basis.unbind(dim=1))
    for j in range(p):
        if len(taken) == basis.shape[1] + count:
            break
        v = torch.cos(math.pi * (t + 0.5) * j / p)
        v = v / torch.linalg.vector_norm(v)
        for _ in range(2):
            for b in taken:
                v = v - torch.dot(b, v) * b
        norm = float(torch.linalg.vector_norm(v))
        if norm >= keep:
            taken.append(v / norm)
    return torch.stack(taken[basis.shape[1]:], dim=1)


def truncated_svd_factors(
    frames: torch.Tensor, rank: int, spline: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""PSM factors of the best rank-``rank`` approximation of ``frames`` with a spline temporal basis.

    With the truncated SVD :math:`F \approx W S V^T` of the (P, N^2) matrix of frames, the latent
    samples are the least-squares fit :math:`Z = \arg\min \|U Z - W\|_F` of the temporal
    singular vectors, and :math:`\Lambda` the least-squares spatial basis for :math:`\Psi = U Z`,
    :math:`\Lambda = (\Psi^T \Psi)^{-1} \Psi^T F`.

    The choice is made unique, so that it does not depend on the LAPACK build or the thread count:

    * each singular vector :math:`w_k` is signed so that its entry of largest magnitude is positive;
    * singular vectors that the frames do not determine, those of singular values
      :math:`s_k \le \tau`, :math:`\tau = \max(\epsilon \|F\|_F,\ \max(P, N^2)\, \epsilon_{64}\, s_0)`
      (:math:`\epsilon` the machine epsilon of ``frames``' dtype: below it the spectrum is rounding
      of the frames, or of the float64 SVD), are replaced by the smoothest temporal functions
      orthogonal to the determined ones (cosines :math:`\cos(\pi (t + 1/2) j / P)`, orthogonalised
      in order of frequency). Frames with no temporal change, e.g. sliding-window estimates whose window
      spans all P frames, have a single determined vector: LAPACK returns an arbitrary basis of the
      rest, which differed completely between 1 and 2 threads and moved PSM solves by 0.6 dB.

    Args:
        frames: (P, N, N) estimate of the object (e.g. sliding-window FBP frames), image units.
        rank: number of basis functions r (<= P).
        spline: U, (P, d).

    Returns:
        ``(spatial (r, N, N), latent (d, r))`` in the dtype of ``frames`` (spatial in image units).

    Example:
        >>> u = hermite_spline_matrix(32, 9)
        >>> spatial, latent = truncated_svd_factors(frames, 7, u)
        >>> approx = psm_frames(spatial, latent, u)     # the rank-7 spline PSM closest to frames
    """
    p, n = frames.shape[0], frames.shape[-1]
    mat = frames.reshape(p, -1).double()
    left, sv, _ = torch.linalg.svd(mat, full_matrices=False)
    left = left[:, :rank]
    left = left * torch.where(left.gather(0, left.abs().argmax(dim=0, keepdim=True)) < 0, -1.0, 1.0)
    eps = torch.finfo(frames.dtype).eps
    tau = max(eps * float(torch.linalg.vector_norm(mat)), max(p, n * n) * torch.finfo(torch.float64).eps * float(sv[0]))
    determined = int((sv[:rank] > tau).sum())
    if determined < rank:
        left = torch.cat([left[:, :determined], _smooth_completion(left[:, :determined], rank - determined)], dim=1)
    u = spline.double()
    latent = torch.linalg.lstsq(u, left).solution  # (d, r)
    psi = u @ latent
    spatial = torch.linalg.lstsq(psi, mat).solution  # (r, N^2)
    return spatial.reshape(rank, n, n).to(frames.dtype), latent.to(frames.dtype)
