"""Image-quality metrics with an explicit data range.

All functions take ``x`` (estimate) and ``ref`` (reference) tensors of the same shape
(B, C, *spatial) and return a float64 tensor of shape (B,): one value per batch element,
computed over all channels and pixels of that element. Complex inputs are compared by modulus
only where a function says so.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from operators._validate import check_positive, check_tensor


def _checked_diff(x: torch.Tensor, ref: torch.Tensor, real: bool) -> torch.Tensor:
    """Validate the pair and return ``x - ref`` flattened per batch element, (B, n), float64 modulus."""
    check_tensor("x", x, real=real)
    check_tensor("ref", ref, real=real)
    if x.shape != ref.shape:
        raise ValueError(f"x: expected the shape of ref {tuple(ref.shape)}, received {tuple(x.shape)}")
    if x.ndim < 3:
        raise ValueError(f"x: expected shape (B, C, *spatial), received {tuple(x.shape)}")
    return (x - ref).detach().reshape(x.shape[0], -1).abs().double().cpu()


def _pair(x: torch.Tensor, ref: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    _checked_diff(x, ref, real=True)
    return x.detach().cpu().double().numpy(), ref.detach().cpu().double().numpy()


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range^2 / MSE(x, ref)).

    Args:
        x: estimate, (B, C, *spatial), real.
        ref: reference of the same shape.
        data_range: peak-to-peak range of the reference (e.g. 1.0 for images in [0, 1]).

    Returns:
        (B,) float64 tensor of PSNR values in dB.

    Example:
        >>> psnr(x_hat, x_true, data_range=1.0)
    """
    data_range = check_positive("data_range", data_range)
    a, b = _pair(x, ref)
    return torch.tensor([peak_signal_noise_ratio(r, e, data_range=data_range) for e, r in zip(a, b)])


def ssim(x: torch.Tensor, ref: torch.Tensor, data_range: float) -> torch.Tensor:
    """Structural similarity (scikit-image, 7x7 uniform window), averaged over channels.

    Args:
        x: estimate, (B, C, H, W) or (B, C, D, H, W), real.
        ref: reference of the same shape.
        data_range: peak-to-peak range of the reference.

    Returns:
        (B,) float64 tensor of SSIM values in [-1, 1].
    """
    data_range = check_positive("data_range", data_range)
    a, b = _pair(x, ref)
    vals = [
        np.mean([structural_similarity(rc, ec, data_range=data_range) for ec, rc in zip(e, r)])
        for e, r in zip(a, b)
    ]
    return torch.tensor(vals)


def relative_error(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Relative l2 error ||x - ref|| / ||ref|| per batch element (complex accepted).

    Returns:
        (B,) float64 tensor.
    """
    d = _checked_diff(x, ref, real=False).norm(dim=1)
    return d / ref.detach().reshape(ref.shape[0], -1).abs().double().norm(dim=1).cpu()


def nrmse(x: torch.Tensor, ref: torch.Tensor, data_range: float) -> torch.Tensor:
    """Root-mean-square error divided by ``data_range``: sqrt(mean|x - ref|^2) / data_range.

    This is the range-normalised RMSE; the l2-normalised variant is :func:`relative_error`.

    Returns:
        (B,) float64 tensor.
    """
    data_range = check_positive("data_range", data_range)
    return _checked_diff(x, ref, real=False).pow(2).mean(dim=1).sqrt() / data_range


def mae(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean absolute error mean|x - ref| per batch element (complex accepted: modulus of the difference).

    Returns:
        (B,) float64 tensor, in the units of ``ref``.
    """
    return _checked_diff(x, ref, real=False).mean(dim=1)


#: width of the Laplacian-of-Gaussian of :func:`hfen`, pixels (Ravishankar & Bresler 2011: 15 x 15 kernel, sigma 1.5)
HFEN_SIGMA = 1.5


def hfen(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    r"""High-frequency error norm :math:`\|\mathrm{LoG}(x - ref)\|_2 / \|\mathrm{LoG}(ref)\|_2`.

    The Laplacian of Gaussian (:math:`\sigma` = 1.5 pixels, truncated to 15 x 15, as in
    Ravishankar & Bresler, IEEE TMI 2011) filters each 2D image ``[b, c]`` (zero padding
    outside); the norms run over all channels and pixels of a batch element. Lower is better.

    Args:
        x: estimate, (B, C, H, W), real.
        ref: reference of the same shape.

    Returns:
        (B,) float64 tensor.
    """
    from scipy.ndimage import gaussian_laplace  # noqa: PLC0415

    a, b = _pair(x, ref)
    if a.ndim != 4:
        raise ValueError(f"x: expected 2D images (B, C, H, W), received shape {tuple(x.shape)}")

    def log(img: np.ndarray) -> np.ndarray:
        return gaussian_laplace(img, HFEN_SIGMA, mode="constant", truncate=7 / HFEN_SIGMA)

    vals = [
        np.linalg.norm([log(ec - rc) for ec, rc in zip(e, r)]) / np.linalg.norm([log(rc) for rc in r])
        for e, r in zip(a, b)
    ]
    return torch.tensor(vals)


def magnitude_psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    r"""PSNR of peak-normalised magnitudes (Oral & Oktem 2024), in dB.

    .. math::
        10 \log_{10} \frac{1}{\mathrm{MSE}\big(|r| / \max|r|,\ |x| / \max|x|\big)},

    the paper's :math:`10\log_{10}(\max|x_{gt}|^2 / \mathrm{MSE}(|x_{gt}|, |\hat x| / \max|\hat x|))`
    with the reference normalised to peak 1 as well, so the value does not depend on the units
    of either image (radar reconstructions have arbitrary overall scale and phase).

    Args:
        x: estimate, (B, C, *spatial), real or complex.
        ref: reference of the same shape, real or complex, not all zero.

    Returns:
        (B,) float64 tensor in dB.
    """
    _checked_diff(x, ref, real=False)

    def unit(v: torch.Tensor) -> torch.Tensor:
        m = v.detach().abs().double().cpu().reshape(v.shape[0], -1)
        return m / m.amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)

    mse = (unit(x) - unit(ref)).square().mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)
