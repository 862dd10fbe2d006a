r"""Coil sensitivity maps for multi-coil (SENSE) MRI: simulation and ESPIRiT estimation.

Convention: the maps are a complex tensor ``S`` of shape ``(n_coils, H, W)`` (complex64 by default,
complex128 on request), normalised so that the root-sum-of-squares over coils is one at every pixel,

.. math:: \sum_c |S_c(x)|^2 = 1,

so that a fully sampled SENSE operator :math:`x \mapsto (F(S_c x))_c` is an isometry:
:math:`\sum_c \|F(S_c x)\|^2 = \sum_x |x|^2 \sum_c |S_c|^2 = \|x\|^2`. k-space is centred as in
:mod:`operators.kspace_masks` (deepinv's :meth:`~deepinv.utils.MRIMixin.fft`, DC at ``(H//2, W//2)``).

Example:
    >>> maps = simulated_coil_maps(8, (96, 96))
    >>> bool(torch.allclose((maps.abs() ** 2).sum(0), torch.ones(96, 96)))
    True
"""

from __future__ import annotations

import math

import numpy as np
import torch
from deepinv.utils import MRIMixin

from operators._validate import COMPLEX_DTYPES, check_int, check_positive, check_tensor
from operators.kspace_masks import _centre, _image_shape

__all__ = [
    "COIL_CIRCLE",
    "COIL_LOOP",
    "MIN_CALIBRATION",
    "PHASE_SLOPE",
    "estimate_coil_maps",
    "simulated_coil_maps",
]

#: Smallest calibration (fully sampled) region accepted by :func:`estimate_coil_maps`, in lines per axis.
MIN_CALIBRATION = 8
#: Simulated coils: radius of the circle carrying the coils and radius of each loop, in units of half
#: the longer side of the field of view; phase slope of each map in radians per unit of distance.
COIL_CIRCLE, COIL_LOOP, PHASE_SLOPE = 1.5, 1.0, math.pi / 2


def simulated_coil_maps(
    n_coils: int, shape: tuple[int, int], *, seed: int | None = None, dtype: torch.dtype = torch.complex64
) -> torch.Tensor:
    r"""Smooth maps of ``n_coils`` loop coils evenly spaced on a circle around the field of view.

    With positions in units of half the longer image side (the FOV spans ``[-1, 1]`` along it), coil
    ``c`` sits at angle :math:`\theta_c = \theta_0 + 2\pi c / C` on the circle of radius
    :data:`COIL_CIRCLE` (1.5). At distance :math:`d_c(x)` from it, the on-axis field of a loop of radius
    :math:`a` = :data:`COIL_LOOP` and a phase growing with distance give

    .. math:: \tilde S_c(x) = \left(\frac{a^2}{d_c^2 + a^2}\right)^{3/2} e^{i(\theta_c + \kappa d_c)},
        \qquad S_c = \tilde S_c \Big/ \sqrt{\textstyle\sum_{c'} |\tilde S_{c'}|^2},

    :math:`\kappa` = :data:`PHASE_SLOPE` (pi/2 per unit). One coil gives a pure phase map of modulus one.

    Args:
        n_coils: number of coils ``C >= 1``.
        shape: ``(H, W)`` image grid.
        seed: None for :math:`\theta_0 = 0`, else a random rotation :math:`\theta_0 \in [0, 2\pi / C)`
            drawn by ``numpy.random.default_rng(seed)``.
        dtype: torch.complex64 or torch.complex128 (computed in float64, then cast).

    Returns:
        ``(C, H, W)`` maps with :math:`\sum_c |S_c|^2 = 1` at every pixel.

    Example:
        >>> simulated_coil_maps(12, (64, 80), seed=3, dtype=torch.complex128).shape
        torch.Size([12, 64, 80])
    """
    n_coils = check_int("n_coils", n_coils, 1)
    H, W = _image_shape(shape)
    if dtype not in COMPLEX_DTYPES:
        raise TypeError(f"dtype: expected torch.complex64 or torch.complex128, received {dtype}")
    theta0 = 0.0 if seed is None else np.random.default_rng(seed).uniform(0, 2 * np.pi / n_coils)
    theta = theta0 + 2 * np.pi * np.arange(n_coils)[:, None, None] / n_coils
    half = max(H, W) / 2
    y = (np.arange(H)[:, None] - H // 2) / half
    x = (np.arange(W)[None, :] - W // 2) / half
    d = np.hypot(y - COIL_CIRCLE * np.sin(theta), x - COIL_CIRCLE * np.cos(theta))
    maps = (COIL_LOOP**2 / (d**2 + COIL_LOOP**2)) ** 1.5 * np.exp(1j * (theta + PHASE_SLOPE * d))
    maps /= np.sqrt((np.abs(maps) ** 2).sum(0))
    return torch.from_numpy(maps).to(dtype)


def _calibration_box(sampled: torch.Tensor) -> tuple[slice, slice]:
    """Largest box grown around DC, one line per side in turn, while every sample in it is taken."""
    H, W = sampled.shape
    grown = bool(sampled[H // 2, W // 2])  # an empty box when DC is missing
    box = [H // 2, H // 2 + grown, W // 2, W // 2 + grown]
    while grown:
        grown = False
        for side, step in ((0, -1), (1, 1), (2, -1), (3, 1)):
            trial = list(box)
            trial[side] += step
            r0, r1, c0, c1 = trial
            if r0 >= 0 and c0 >= 0 and r1 <= H and c1 <= W and bool(sampled[r0:r1, c0:c1].all()):
                box, grown = trial, True
    if min(box[1] - box[0], box[3] - box[2]) < MIN_CALIBRATION:
        raise ValueError(
            f"kspace: expected a fully sampled centre of at least {MIN_CALIBRATION} x {MIN_CALIBRATION} lines"
            f" around DC, found {box[1] - box[0]} x {box[3] - box[2]} (pass n_center or calib_mask if the zero pattern of kspace is misleading)"
        )
    return slice(box[0], box[1]), slice(box[2], box[3])


def _diagonal_sums(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum ``t`` over index pairs ``(i, j)`` of dims ``(dim, dim + 1)`` grouped by ``j - i`` in ``1 - k .. k - 1``."""
    k = t.shape[dim]
    return torch.stack([torch.diagonal(t, d, dim, dim + 1).sum(-1) for d in range(1 - k, k)], dim)


def estimate_coil_maps(
    kspace: torch.Tensor,
    *,
    n_center: int | None = None,
    calib_mask: torch.Tensor | None = None,
    kernel_size: int = 6,
    threshold: float = 0.02,
    crop: float = 0.0,
) -> torch.Tensor:
    r"""ESPIRiT estimate of coil maps from the fully sampled centre (ACS) of multi-coil k-space.

    1. Calibration region: the box of ``n_center`` central columns by all rows, or else the largest
       fully sampled box around DC in ``calib_mask`` (default: ``kspace != 0`` in any coil); at least
       :data:`MIN_CALIBRATION` lines each way.
    2. Calibration matrix :math:`A`: one row per ``k x k`` window position (``k`` = ``kernel_size``),
       holding that window of every coil. With :math:`v_j` its right singular vectors (eigenvectors
       of :math:`A^H A`) whose :math:`\sigma_j \ge` ``threshold`` :math:`\sigma_1`, the
       :math:`w_j = \bar v_j` span the patches of smooth-map data; the projection
       :math:`P = \sum_j w_j w_j^H`, averaged over the window positions, is a k-space convolution
       whose image-domain form is, at each pixel :math:`x` (row :math:`y`), the ``C x C`` matrix
       :math:`G(x) = k^{-2} \sum_\delta g(\delta)\, e^{-2\pi i (\delta_y y / H + \delta_x x / W)}`,
       :math:`g_{cc'}(\delta) = \sum_{q' - q = \delta} P_{(c,q),(c',q')}` (offsets ``q`` in the window).
    3. The data satisfy :math:`G(x) S(x) = S(x)`: the maps are the unit eigenvector of the largest
       eigenvalue :math:`\lambda(x) \approx 1` of :math:`G(x)`, hence :math:`\sum_c |S_c|^2 = 1`.
       Pixels with :math:`\lambda(x) <` ``crop`` (where the model fails: mostly outside the object)
       are set to zero.

    Assumptions: smooth maps (k-space extent below ``k``), a calibration region larger than ``k``
    each way. The per-pixel phase of an eigenvector is arbitrary; it is fixed by aligning
    :math:`S(x)` with the low-resolution coil images (inverse FFT of the calibration region), so the
    estimate carries the object's smooth low-resolution phase :math:`\phi(x)`: it equals the true
    maps times a common per-pixel factor :math:`e^{i\phi(x)}`, which SENSE moves into the image
    (maps are zero where that low-resolution image vanishes in every coil).

    Args:
        kspace: complex ``(C, H, W)`` centred multi-coil k-space, zero where not sampled.
        n_center: number of fully sampled central columns (all rows sampled), instead of detection.
        calib_mask: 0/1 float ``(H, W)`` sampling mask to detect the fully sampled box from.
        kernel_size: ESPIRiT kernel width ``k``, ``2 <= k`` < calibration size and ``2k - 1 <= min(H, W)``.
        threshold: relative singular-value cutoff in (0, 1).
        crop: eigenvalue cutoff in [0, 1); 0 keeps every pixel.

    Returns:
        ``(C, H, W)`` maps of ``kspace``'s dtype.

    Example:
        >>> from operators.kspace_masks import cartesian_mask
        >>> maps = simulated_coil_maps(8, (64, 64))
        >>> image = torch.ones(64, 64, dtype=torch.complex64)
        >>> kspace = MRIMixin.fft(maps * image) * cartesian_mask((64, 64), 3, n_center=16)
        >>> estimate_coil_maps(kspace).shape
        torch.Size([8, 64, 64])
    """
    check_tensor("kspace", kspace, ndim=3, real=False)
    if not kspace.is_complex():
        raise TypeError(f"kspace: expected a complex dtype (complex64 or complex128), received {kspace.dtype}")
    C, H, W = kspace.shape
    k = check_int("kernel_size", kernel_size, 2)
    threshold = check_positive("threshold", threshold)
    crop = check_positive("crop", crop, allow_zero=True)
    if threshold >= 1 or crop >= 1:
        raise ValueError(f"threshold, crop: expected values below 1, received {threshold} and {crop}")
    if n_center is not None and calib_mask is not None:
        raise ValueError("n_center, calib_mask: expected at most one, received both")
    if n_center is not None:
        n = check_int("n_center", n_center, MIN_CALIBRATION)
        if n > W:
            raise ValueError(f"n_center: expected at most W = {W}, received {n}")
        rows, cols = slice(0, H), _centre(n, W)
    elif calib_mask is not None:
        check_tensor("calib_mask", calib_mask, ndim=2)
        if calib_mask.shape != (H, W):
            raise ValueError(f"calib_mask: expected shape {(H, W)}, received {tuple(calib_mask.shape)}")
        rows, cols = _calibration_box(calib_mask != 0)
    else:
        rows, cols = _calibration_box((kspace != 0).any(0))
    calib = kspace[:, rows, cols]
    if k >= min(calib.shape[1:]) or 2 * k - 1 > min(H, W):
        raise ValueError(
            f"kernel_size: expected below the calibration size {tuple(calib.shape[1:])} and 2k - 1 <= {min(H, W)},"
            f" received {k}"
        )
    patches = calib.unfold(1, k, 1).unfold(2, k, 1)  # (C, rows, cols, k, k)
    a = patches.permute(1, 2, 0, 3, 4).reshape(-1, C * k * k)
    sigma2, vecs = torch.linalg.eigh(a.mH @ a)  # right singular vectors of A, sigma^2 ascending
    v = vecs[:, sigma2 >= threshold**2 * sigma2[-1]]  # columns v_j; the patches lie in span(conj(v_j))
    projection = (v.conj() @ v.mT).reshape(C, k, k, C, k, k).permute(0, 3, 1, 4, 2, 5)  # (c, c', a, a', b, b')
    g = _diagonal_sums(_diagonal_sums(projection, 2), 3)  # (C, C, 2k - 1, 2k - 1) over delta = q' - q
    padded = kspace.new_zeros(C, C, H, W)
    padded[:, :, H // 2 - k + 1 : H // 2 + k, W // 2 - k + 1 : W // 2 + k] = g
    operator = MRIMixin.fft(padded) * (math.sqrt(H * W) / k**2)  # G(x) as (C, C, H, W)
    eigvals, eigvecs = torch.linalg.eigh(operator.permute(2, 3, 0, 1))
    maps = eigvecs[..., -1].permute(2, 0, 1)  # (C, H, W), unit norm per pixel
    box_only = torch.zeros_like(kspace)
    box_only[:, rows, cols] = calib
    low_res = MRIMixin.ifft(box_only)
    maps = maps * torch.sgn((maps.conj() * low_res).sum(0))
    return torch.where(eigvals[..., -1] >= crop, maps, 0)
