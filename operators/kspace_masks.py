"""k-space sampling masks for MRI: 1D Cartesian line masks and 2D variable-density / Poisson-disc masks.

Convention (shared with :mod:`operators.coil_maps`):

* A mask is a float tensor of 0/1 (float32 by default, float64 on request) of shape ``(H, W)``, or
  ``(n_masks, H, W)`` for one mask per echo/frame, laid out in **centred** k-space: the DC sample sits
  at index ``(H // 2, W // 2)``, matching deepinv's centred orthonormal FFT
  (:meth:`deepinv.utils.MRIMixin.fft`: ``fftshift(fft2(ifftshift(x), norm="ortho"))``).
* 1D Cartesian masks: the readout runs along ``H`` (fully sampled) and the phase-encode lines are the
  columns (last axis ``W``); a column is either all ones or all zeros.
* A fully sampled centre (the ACS / calibration region) of ``n_center`` lines (1D) or an
  ``n_center x n_center`` square (2D) occupies the indices ``size // 2 - n // 2 ... + n - 1`` of each
  axis, so it always contains DC. It counts toward the sample budget.
* The acceleration is ``R = numel / number of ones`` (:func:`acceleration_of`); a mask for ``R`` keeps
  ``round(numel / R)`` samples (exactly for the random patterns; see each function).
* Randomness comes from ``numpy.random.default_rng(seed)``: a seed gives the same mask on every call.

Example:
    >>> from operators.kspace_masks import acceleration_of, cartesian_mask
    >>> mask = cartesian_mask((96, 96), 4, n_center=16)
    >>> float(acceleration_of(mask))
    4.0
"""

from __future__ import annotations

import math

import numpy as np
import torch

from operators._validate import REAL_DTYPES, check_int, check_option, check_positive, check_tensor

__all__ = [
    "DEFAULT_CENTER_FRACTION",
    "PATTERNS",
    "POISSON_TOL",
    "acceleration_of", "cartesian_mask",
    "poisson_disc_mask",
    "variable_density_mask_2d",
]

#: Patterns of :func:`cartesian_mask`.
PATTERNS = ("variable_density", "equispaced", "uniform")
#: Fraction of the lines in the fully sampled centre when neither ``n_center`` nor ``center_fraction`` is given.
DEFAULT_CENTER_FRACTION = 0.08
#: Relative tolerance on the acceleration achieved by :func:`poisson_disc_mask`.
POISSON_TOL = 0.05


def _image_shape(shape: object) -> tuple[int, int]:
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) != 2:
        raise ValueError(f"shape: expected (H, W), received {shape!r}")
    return check_int("shape[0]", shape[0], 1), check_int("shape[1]", shape[1], 1)


def _centre(n: int, size: int) -> slice:
    """The ``n`` central indices of an axis of length ``size`` (they contain ``size // 2`` when ``n >= 1``)."""
    return slice(size // 2 - n // 2, size // 2 - n // 2 + n)


def _n_center(size: int, n_center: int | None, center_fraction: float | None) -> int:
    if n_center is not None and center_fraction is not None:
        raise ValueError(f"n_center, center_fraction: expected at most one, received {n_center!r}, {center_fraction!r}")
    if n_center is None:
        frac = DEFAULT_CENTER_FRACTION
        if center_fraction is not None:
            frac = check_positive("center_fraction", center_fraction, allow_zero=True)
        if frac > 1:
            raise ValueError(f"center_fraction: expected a fraction in [0, 1], received {center_fraction!r}")
        return round(frac * size)
    n = check_int("n_center", n_center, 0)
    if n > size:
        raise ValueError(f"n_center: expected at most {size} (the size of the sampled axis), received {n}")
    return n


def _budget(numel: int, acceleration: object, n_fixed: int) -> int:
    """``round(numel / acceleration)``, checked against the fully sampled centre of ``n_fixed`` samples."""
    r = check_positive("acceleration", acceleration)
    if r <= 1:
        raise ValueError(f"acceleration: expected a number > 1, received {acceleration!r}")
    budget = round(numel / r)
    if budget < max(n_fixed, 1):
        raise ValueError(
            f"acceleration: the budget round({numel} / {acceleration}) = {budget} samples is smaller than the fully"
            f" sampled centre ({n_fixed} samples); expected acceleration <= {numel / max(n_fixed, 1):.4g}"
            " or a smaller n_center"
        )
    return budget


def _axis_radius(n: int) -> np.ndarray:
    """Normalised centred frequency ``(i - n // 2) / (n / 2)`` in [-1, 1) for ``i = 0 .. n - 1``."""
    return (np.arange(n) - n // 2) / (n / 2)


def _radius_2d(H: int, W: int) -> np.ndarray:
    """(H, W) normalised radius in [0, 1]: 1 at the corner ``(0, 0)``, ``1 / sqrt(2)`` at the edge centres."""
    return np.hypot(_axis_radius(H)[:, None], _axis_radius(W)[None, :]) / math.sqrt(2)


def _weighted_draw(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct indices drawn one after the other, each with probability proportional to ``weights``
    among those left (Efraimidis-Spirakis keys ``E / w``, ``E ~ Exp(1)``; zero weights come last)."""
    keys = np.full(weights.size, np.inf)
    np.divide(rng.standard_exponential(weights.size), weights, out=keys, where=weights > 0)
    return np.argsort(keys, kind="stable")[:k]


def _as_mask(sampled: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    if dtype not in REAL_DTYPES:
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, received {dtype}")
    return torch.from_numpy(sampled).to(dtype)


def _centre_square(shape: object, acceleration: object, n_center: int | None) -> tuple[np.ndarray, int]:
    """A 2D mask's start: the (H, W) bool array holding its fully sampled ``n_c x n_c`` centre, and its
    sample budget ``round(HW / R)`` (checked to leave room for the centre)."""
    H, W = _image_shape(shape)
    n_c = _n_center(min(H, W), n_center, None)
    budget = _budget(H * W, acceleration, n_c * n_c)
    sampled = np.zeros((H, W), dtype=bool)
    sampled[_centre(n_c, H), _centre(n_c, W)] = True
    return sampled, budget


def cartesian_mask(
    shape: tuple[int, int],
    acceleration: float,
    *,
    n_center: int | None = None,
    center_fraction: float | None = None,
    pattern: str = "variable_density",
    power: float = 2.0,
    n_masks: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""1D Cartesian mask: whole columns (phase-encode lines) of a centred ``(H, W)`` k-space.

    The ``n_c`` central columns are always sampled. With ``B = round(W / R)`` the line budget:

    * ``"variable_density"``: ``B - n_c`` further lines drawn without replacement with probability
      proportional to :math:`(1 - |k_x| / (W/2))^{p}` (``p = power``), so exactly ``B`` lines.
    * ``"uniform"``: the same with ``p = 0`` (a flat density); exactly ``B`` lines.
    * ``"equispaced"``: every ``s``-th column from a random offset ``o`` in ``[0, s)`` plus the centre
      ("equispaced + ACS"), with the integer spacing ``s`` closest to ``(W - n_c) / (B - n_c)`` (``s = R``
      without a centre). The total is ``B`` only as nearly as an integer lattice allows: it can miss
      by a few lines (``acceleration_of`` gives the achieved value). Mask ``e`` of ``n_masks`` uses
      offset ``(o + e) mod s`` (a sheared k-t lattice).

    Args:
        shape: ``(H, W)`` of the k-space grid.
        acceleration: ``R > 1`` and at most ``W / n_c`` (the centre must fit in the budget).
        n_center: number of fully sampled central columns ``n_c``, ``0 <= n_c <= W``.
        center_fraction: alternatively ``n_c = round(center_fraction * W)``; both None: 0.08.
        pattern: one of :data:`PATTERNS`.
        power: exponent ``p >= 0`` of the variable density (ignored by the other patterns).
        n_masks: None for one ``(H, W)`` mask, else ``E`` masks ``(E, H, W)``, one random draw each
            (same centre), e.g. one per echo or frame.
        seed: seed of ``numpy.random.default_rng``.
        dtype: torch.float32 or torch.float64.

    Returns:
        0/1 mask ``(H, W)`` or ``(n_masks, H, W)``.

    Example:
        >>> mask = cartesian_mask((64, 64), 4, n_center=8, pattern="uniform", n_masks=3, seed=1)
        >>> mask.shape, int(mask[0, 0].sum())
        (torch.Size([3, 64, 64]), 16)
    """
    H, W = _image_shape(shape)
    check_option("pattern", pattern, PATTERNS)
    power = check_positive("power", power, allow_zero=True)
    n_c = _n_center(W, n_center, center_fraction)
    budget = _budget(W, acceleration, n_c)
    n_draws = 1 if n_masks is None else check_int("n_masks", n_masks, 1)
    rng = np.random.default_rng(seed)
    lines = np.zeros((n_draws, W), dtype=bool)
    lines[:, _centre(n_c, W)] = True
    if pattern == "equispaced":
        if budget > n_c:
            ideal = (W - n_c) / (budget - n_c)
            candidates = (max(1, math.floor(ideal)), math.ceil(ideal))
            step = min(candidates, key=lambda s: abs((W - n_c) / s - (budget - n_c)))
            offset = int(rng.integers(step))
            for e in range(n_draws):
                lines[e, (offset + e) % step :: step] = True
    else:
        outside = np.flatnonzero(~lines[0])
        weights = (1 - np.abs(_axis_radius(W)[outside])) ** (power if pattern == "variable_density" else 0)
        for e in range(n_draws):
            lines[e, outside[_weighted_draw(rng, weights, budget - n_c)]] = True
    mask = _as_mask(np.broadcast_to(lines[:, None, :], (n_draws, H, W)).copy(), dtype)
    return mask[0] if n_masks is None else mask


def variable_density_mask_2d(
    shape: tuple[int, int],
    acceleration: float,
    *,
    n_center: int | None = None,
    power: float = 2.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""2D random variable-density mask with a fully sampled central square.

    Besides the ``n_c x n_c`` centre, ``round(HW / R) - n_c^2`` points are drawn without replacement with
    probability proportional to :math:`(1 - r)^{p}`, where
    :math:`r = \sqrt{(k_y / (H/2))^2 + (k_x / (W/2))^2} / \sqrt{2} \in [0, 1]` is the normalised radius;
    the mask has exactly ``round(HW / R)`` ones.

    Args:
        shape: ``(H, W)``.
        acceleration: ``R > 1``, at most ``HW / n_c^2``.
        n_center: side ``n_c`` of the fully sampled central square; None: ``round(0.08 min(H, W))``.
        power: density exponent ``p >= 0`` (0: uniform).
        seed: seed of ``numpy.random.default_rng``.
        dtype: torch.float32 or torch.float64.

    Returns:
        0/1 mask ``(H, W)``.

    Example:
        >>> mask = variable_density_mask_2d((64, 64), 5, n_center=8, power=3)
        >>> int(mask.sum())
        819
    """
    sampled, budget = _centre_square(shape, acceleration, n_center)
    power = check_positive("power", power, allow_zero=True)
    outside = np.flatnonzero(~sampled)
    weights = (1 - _radius_2d(*sampled.shape).ravel()[outside]) ** power
    draw = _weighted_draw(np.random.default_rng(seed), weights, budget - int(sampled.sum()))
    sampled.ravel()[outside[draw]] = True
    return _as_mask(sampled, dtype)


def _dart_throw(order: list[int], fixed: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Visit the pixels in ``order``; keep one unless it lies closer than ``radius[p]`` to a kept pixel ``p``
    (pixels in ``fixed`` are kept regardless). Occupancy grid padded by the largest radius."""
    H, W = radius.shape
    pad = math.ceil(float(radius.max()))
    Wp = W + 2 * pad
    # d^2 < r^2 for an integer d^2 <=> d^2 <= ceil(r^2) - 1: one stencil per value of ceil(r^2)
    key = (np.ceil(radius**2) - 1).astype(int).ravel()
    dy, dx = np.mgrid[-pad : pad + 1, -pad : pad + 1]
    d2, flat = (dy**2 + dx**2).ravel(), (dy * Wp + dx).ravel()
    stencils = {m: flat[d2 <= m] for m in np.unique(key).tolist()}
    padded_index = ((np.arange(H)[:, None] + pad) * Wp + np.arange(W)[None, :] + pad).ravel().tolist()
    blocked = np.zeros((H + 2 * pad) * Wp, dtype=bool)
    kept = fixed.ravel().copy()
    for i in order:
        p = padded_index[i]
        if kept[i] or not blocked[p]:
            kept[i] = True
            blocked[p + stencils[key[i]]] = True
    return kept.reshape(H, W)


def poisson_disc_mask(
    shape: tuple[int, int],
    acceleration: float,
    *,
    n_center: int | None = None,
    radius_ratio: float = 3.0,
    seed: int = 0,
    max_iter: int = 30,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""2D variable-density Poisson-disc mask with a fully sampled central square.

    Dart throwing on the pixel grid: after the ``n_c x n_c`` centre, the other pixels are visited in a
    random order and one is kept unless it lies closer than :math:`\rho(k)` to an already kept pixel
    :math:`k`, with the exclusion radius (pixels) growing linearly with the normalised radius
    :math:`r \in [0, 1]` of :func:`variable_density_mask_2d`:
    :math:`\rho = s\,(1 + (\gamma - 1)\, r)`, :math:`\gamma` = ``radius_ratio``. Any two kept pixels
    ``p, q`` thus satisfy :math:`|p - q| \ge \min(\rho(p), \rho(q))` (the centre excepted). The scale
    ``s`` is tuned by a bracketed search in ``log s`` (bisection, with steps from the packing law
    :math:`n \propto s^{-2}` when they stay in the bracket) until the achieved acceleration is within
    :data:`POISSON_TOL` (5 %) of ``R``; the same visiting order is used for every ``s``.

    Args:
        shape: ``(H, W)``.
        acceleration: ``R > 1``, at most ``HW / n_c^2``.
        n_center: side ``n_c`` of the fully sampled central square; None: ``round(0.08 min(H, W))``.
        radius_ratio: ``gamma >= 1``, exclusion radius at the corners over that at DC.
        seed: seed of ``numpy.random.default_rng``.
        max_iter: most dart-throwing passes of the search.
        dtype: torch.float32 or torch.float64.

    Returns:
        0/1 mask ``(H, W)`` whose acceleration is ``R (1 +- 0.05)``.

    Raises:
        ValueError: if no scale reaches the tolerance within ``max_iter`` passes (e.g. ``R`` too close to 1).

    Example:
        >>> mask = poisson_disc_mask((128, 128), 6, n_center=12)
        >>> abs(float(acceleration_of(mask)) / 6 - 1) <= POISSON_TOL
        True
    """
    fixed, target = _centre_square(shape, acceleration, n_center)
    (H, W), n_fixed = fixed.shape, int(fixed.sum())
    ratio = check_positive("radius_ratio", radius_ratio)
    if ratio < 1:
        raise ValueError(f"radius_ratio: expected a number >= 1, received {radius_ratio!r}")
    max_iter = check_int("max_iter", max_iter, 1)
    order = np.flatnonzero(fixed).tolist() + np.random.default_rng(seed).permutation(np.flatnonzero(~fixed)).tolist()
    growth = 1 + (ratio - 1) * _radius_2d(H, W)
    # random sequential packing keeps about 0.7 / rho^2 points per pixel: the first guess of s
    lo, hi, s = 0.5, float(max(H, W)), math.sqrt(0.7 * float((growth**-2).sum()) / max(target - n_fixed, 1))
    for _ in range(max_iter):
        kept = _dart_throw(order, fixed, s * growth)
        n = int(kept.sum())
        if abs(H * W / n / acceleration - 1) <= POISSON_TOL:
            return _as_mask(kept, dtype)
        lo, hi = (s, hi) if n > target else (lo, s)
        guess = s * math.sqrt(max(n - n_fixed, 1) / max(target - n_fixed, 1))
        s = guess if lo < guess < hi else math.sqrt(lo * hi)
    raise ValueError(
        f"acceleration: no exclusion radius reached R = {acceleration} within {POISSON_TOL:.0%} in {max_iter} passes "
        f"(last: {H * W / n:.3g}); expected a larger acceleration (exclusion radii under ~1.5 pixels leave all or half "
        f"of the grid, so R below ~2 is out of reach) or a larger max_iter"
    )


def acceleration_of(mask: torch.Tensor) -> torch.Tensor:
    """Achieved acceleration ``R = H W / (number of ones)`` of each mask.

    Args:
        mask: 0/1 float tensor ``(H, W)`` or ``(n_masks, H, W)``, each mask with at least one sample.

    Returns:
        float64 tensor: ``()`` for one mask, ``(n_masks,)`` otherwise.

    Example:
        >>> acceleration_of(cartesian_mask((32, 32), 2, n_center=4, n_masks=2))
        tensor([2., 2.], dtype=torch.float64)
    """
    check_tensor("mask", mask)
    if mask.ndim not in (2, 3):
        raise ValueError(f"mask: expected shape (H, W) or (n_masks, H, W), received {tuple(mask.shape)}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask: expected values in {0, 1}, received other values")
    n = mask.sum(dim=(-2, -1), dtype=torch.float64)
    if bool((n == 0).any()):
        raise ValueError("mask: expected at least one sample per mask, received an empty mask")
    return mask.shape[-2] * mask.shape[-1] / n
