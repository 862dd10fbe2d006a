"""Measurement noise, in the package's two words.

Everywhere in regrecon, in every public function: ``noise_level`` is the relative level
``||e|| / ||A x||`` per batch element, and ``noise_std`` the absolute standard deviation per
measurement entry, in the units of ``y`` (complex entries: ``E|e_i|^2 = noise_std^2``). A method
that takes one takes the other, and :func:`resolve_noise` turns either into both. ``sigma`` never
means measurement noise: it keeps its papers' meanings (a graph weight scale, a denoiser's strength).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from operators._validate import check_positive, check_tensor


def add_relative_noise(y_clean: torch.Tensor, noise_level: float, seed: int = 0) -> torch.Tensor:
    """Add white Gaussian noise e with ||e|| = noise_level * ||y_clean|| exactly, per batch element.

    Args:
        y_clean: noiseless measurements A x, shape (B, ...), real or complex.
        noise_level: relative noise level (0.02 means 2 %), >= 0.
        seed: seed of the torch generator used for the noise draw.

    Returns:
        y = y_clean + e, same shape and dtype.

    Example:
        >>> y = add_relative_noise(physics.A(x), 0.02, seed=1)
    """
    check_tensor("y_clean", y_clean, real=False)
    noise_level = check_positive("noise_level", noise_level, allow_zero=True)
    gen = torch.Generator().manual_seed(int(seed))
    w = torch.randn(y_clean.shape, generator=gen, dtype=y_clean.dtype).to(y_clean.device)
    b = y_clean.shape[0]
    scale = noise_level * y_clean.reshape(b, -1).norm(dim=1) / w.reshape(b, -1).norm(dim=1)
    return y_clean + scale.reshape((b,) + (1,) * (y_clean.ndim - 1)) * w


def noise_norm_estimate(y: torch.Tensor, noise_level: float) -> torch.Tensor:
    """Estimate ||e|| per batch element from noisy data: ||e|| ~ nl ||y|| / sqrt(1 + nl^2).

    Uses ||y||^2 ~ ||A x||^2 + ||e||^2 (noise uncorrelated with the signal).

    Returns:
        (B,) tensor of estimated noise norms, on y's device.
    """
    noise_level = check_positive("noise_level", noise_level, allow_zero=True)
    b = y.shape[0]
    return noise_level * y.reshape(b, -1).norm(dim=1) / (1.0 + noise_level**2) ** 0.5


def measured_entries(physics: object, y: torch.Tensor) -> torch.Tensor:
    """Entries of ``y`` that carry a measurement, per batch element, shape (B,).

    All entries of ``y``, except for an operator with a sampling ``mask`` of ``y``'s shape
    (deepinv's ``Inpainting``), whose unobserved entries are noise-free zeros: then the count of
    non-zero mask entries.
    """
    mask = getattr(physics, "mask", None)
    if type(physics).__name__ == "Inpainting" and isinstance(mask, torch.Tensor):
        observed = (mask != 0).expand(y.shape)
        return observed.reshape(y.shape[0], -1).sum(dim=1).to(y.real.dtype)
    return torch.full((y.shape[0],), float(y[0].numel()), dtype=y.real.dtype, device=y.device)


@dataclass(frozen=True)
class Noise:
    r"""The noise of measurements ``y`` in the package's two words, per batch element.

    * ``level``: the relative level :math:`\|e\| / \|Ax\|` (dimensionless);
    * ``std``: the absolute standard deviation per measured entry, units of ``y`` (complex
      entries: :math:`E|e_i|^2 = \mathrm{std}^2`);
    * ``norm``: :math:`\|e\| = \mathrm{std}\sqrt m` with m = :func:`measured_entries`.

    From a relative level r the norm is estimated from the noisy data as
    :math:`\|e\| \approx r\|y\|/\sqrt{1 + r^2}` (:func:`noise_norm_estimate`); from a std the level is
    :math:`\|e\| / \sqrt{\max(\|y\|^2 - \|e\|^2, 0)}`. Each attribute is a (B,) tensor on ``y``'s device.
    """

    level: torch.Tensor
    std: torch.Tensor
    norm: torch.Tensor

    def std_like(self, y: torch.Tensor) -> torch.Tensor:
        """``std`` reshaped to (B, 1, ..., 1) so that it broadcasts over ``y``."""
        return self.std.reshape((-1,) + (1,) * (y.ndim - 1))


def resolve_noise(
    physics: object, y: torch.Tensor, *, noise_level: float | None, noise_std: float | None
) -> Noise | None:
    """The :class:`Noise` of ``y`` from whichever of ``noise_level`` / ``noise_std`` was given.

    Every method that takes a noise estimate takes both keywords and calls this once; at most one
    may be given.

    Args:
        physics: the forward operator (only its sampling mask is read, see :func:`measured_entries`).
        y: measurements (B, ...), real or complex.
        noise_level: relative level :math:`\\|e\\| / \\|Ax\\|` (>= 0), or ``None``.
        noise_std: absolute standard deviation per entry (>= 0, units of ``y``), or ``None``.

    Returns:
        The :class:`Noise`, or ``None`` when neither was given.

    Raises:
        ValueError: both given, or a value that is not a finite number >= 0.

    Example:
        >>> noise = resolve_noise(physics, y, noise_level=0.02, noise_std=None)
        >>> noise.std      # (B,) the matching absolute std per entry
    """
    if noise_level is not None and noise_std is not None:
        raise ValueError(
            "noise_level / noise_std: expected at most one of them (the relative level ||e|| / ||Ax||, or the "
            f"absolute std per entry), received noise_level={noise_level!r}, noise_std={noise_std!r}"
        )
    if noise_level is None and noise_std is None:
        return None
    m = measured_entries(physics, y)
    y_norm = y.reshape(y.shape[0], -1).norm(dim=1)
    if noise_level is not None:
        level = check_positive("noise_level", noise_level, allow_zero=True)
        norm = noise_norm_estimate(y, level)
        return Noise(level=torch.full_like(norm, level), std=norm / m.sqrt(), norm=norm)
    std = check_positive("noise_std", noise_std, allow_zero=True)
    norm = std * m.sqrt()
    signal = torch.clamp(y_norm**2 - norm**2, min=0.0).sqrt()
    level = torch.where(signal > 0, norm / torch.clamp(signal, min=torch.finfo(signal.dtype).tiny), torch.inf)
    return Noise(level=level, std=torch.full_like(norm, std), norm=norm)


def require_noise(
    physics: object, y: torch.Tensor, *, noise_level: float | None, noise_std: float | None
) -> Noise:
    """:func:`resolve_noise` for methods that need a noise estimate: exactly one of the two must be given."""
    noise = resolve_noise(physics, y, noise_level=noise_level, noise_std=noise_std)
    if noise is None:
        raise ValueError(
            "noise_level / noise_std: expected exactly one of them (the relative level ||e|| / ||Ax||, or the "
            "absolute std per entry), received neither"
        )
    return noise
