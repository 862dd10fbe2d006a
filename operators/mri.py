r"""Cartesian multi-coil MRI (SENSE) on deepinv's ``MultiCoilMRI``, and the complex-data boundary.

**The complex-data rule** (one pair of converters, used everywhere the two worlds meet): inside
regrecon, MRI images and k-space are torch *complex* tensors; deepinv's MRI classes hold the same
numbers as *real* tensors with an axis of size 2 at dim 1 holding (real, imaginary).
:func:`to_channels` maps complex ``(B, *rest)`` to real ``(B, 2, *rest)``; :func:`to_complex` maps
back. Neither copies more than deepinv itself would, neither accepts the other's layout, and
nothing ever drops an imaginary part silently.

Forward model of :class:`SenseMRI`, for echoes (or frames) :math:`e = 1..E` and coils
:math:`c = 1..N`:

.. math::
    y_{c,e} = P_e\, F\, (S_c \odot x_e),

with :math:`F` deepinv's centred orthonormal 2D FFT, :math:`S_c` the coil maps and :math:`P_e`
the 0/1 sampling mask of echo ``e`` (one mask shared by all echoes, or one per echo). The
operator IS deepinv's :class:`~deepinv.physics.MultiCoilMRI` (echoes ride on its extra "..." axis),
so deepinv's solvers, noise models and networks apply unchanged; this class adds validation
at the edge and the complex-layout entry points :meth:`SenseMRI.A_complex` /
:meth:`SenseMRI.A_adjoint_complex` that the quantitative-MRI model (:mod:`operators.qmri`) uses.

Masks and coil maps: :mod:`operators.kspace_masks`, :mod:`operators.coil_maps`. deepinv's
single-coil ``MRI`` and ``DynamicMRI`` are re-exported here unchanged.
"""

from __future__ import annotations

import torch
from deepinv.physics import MRI, DynamicMRI, MultiCoilMRI

from operators._validate import check_shape, check_tensor

__all__ = ["MRI", "DynamicMRI", "SenseMRI", "to_channels", "to_complex"]


def _check_complex(name: str, value: object) -> torch.Tensor:
    if isinstance(value, torch.Tensor) and not value.is_complex():
        raise TypeError(
            f"{name}: expected a complex tensor (complex64/complex128), received real dtype "
            f"{str(value.dtype).replace('torch.', '')}; use operators.mri.to_complex for deepinv's 2-channel layout"
        )
    return check_tensor(name, value, real=False)


def to_channels(z: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, *rest)`` -> real ``(B, 2, *rest)`` (real, imaginary on dim 1), deepinv's layout.

    Example:
        >>> to_channels(torch.tensor([[1 + 2j]])).shape
        torch.Size([1, 2, 1])
    """
    return _channels(_check_complex("z", z))


def to_complex(x: torch.Tensor) -> torch.Tensor:
    """Real ``(B, 2, *rest)`` (deepinv's layout) -> complex ``(B, *rest)``; inverse of :func:`to_channels`.

    Example:
        >>> to_complex(torch.tensor([[1.0, 2.0]]))
        tensor([1.+2.j])
    """
    check_tensor("x", x)
    if x.ndim < 2 or x.shape[1] != 2:
        raise ValueError(f"x: expected a real tensor (B, 2, ...) with (real, imaginary) on dim 1, received {tuple(x.shape)}")
    return _complex(x)


def _channels(z: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(z).movedim(-1, 1)


def _complex(x: torch.Tensor) -> torch.Tensor:
    return torch.view_as_complex(x.movedim(1, -1).contiguous())


class SenseMRI(MultiCoilMRI):
    r"""Multi-coil, multi-echo Cartesian MRI :math:`y_{c,e} = P_e F (S_c x_e)` (module docstring).

    Shapes (``E`` echoes or frames, ``N`` coils, image ``H x W`` pixels):

    * deepinv layout (``A``, ``A_adjoint``, inherited): ``x`` real ``(B, 2, E, H, W)``,
      ``y`` real ``(B, 2, N, E, H, W)``;
    * complex layout (:meth:`A_complex`, :meth:`A_adjoint_complex`): ``x`` complex
      ``(B, E, H, W)``, ``y`` complex ``(B, N, E, H, W)``.

    :attr:`img_shape` and :attr:`meas_shape` give the deepinv layout without ``B`` (the one
    ``A`` and ``A_adjoint`` use); :attr:`x_shape` is ``(E, H, W)``.

    Results come back in the dtype of the input (float32 data with complex128 maps are computed
    in double precision and rounded once). The adjoint is exact (:math:`F` is unitary); with
    rss-normalised maps
    (:math:`\sum_c |S_c|^2 = 1`) and a full mask, :math:`A^H A = I`.

    Args:
        mask: 0/1 sampling mask in centred k-space, real ``(H, W)`` (shared by every echo) or
            ``(E, H, W)`` (one per echo); see :mod:`operators.kspace_masks`.
        coil_maps: complex ``(N, H, W)`` coil sensitivities; see :mod:`operators.coil_maps`.
        n_echoes: ``E`` when ``mask`` is shared (default 1); must equal ``mask.shape[0]`` or be
            ``None`` for a per-echo mask.

    Example:
        >>> from operators.coil_maps import simulated_coil_maps
        >>> from operators.kspace_masks import cartesian_mask
        >>> op = SenseMRI(cartesian_mask((64, 64), 4, n_masks=8), simulated_coil_maps(8, (64, 64)))
        >>> y = op.A_complex(torch.randn(1, 8, 64, 64, dtype=torch.complex64))  # (1, 8, 8, 64, 64)
    """

    def __init__(self, mask: torch.Tensor, coil_maps: torch.Tensor, n_echoes: int | None = None):
        check_tensor("mask", mask)
        if mask.ndim not in (2, 3):
            raise ValueError(f"mask: expected shape (H, W) or (E, H, W), received {tuple(mask.shape)}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask: expected a 0/1 sampling mask, received other values")
        _check_complex("coil_maps", coil_maps)
        if coil_maps.ndim != 3:
            raise ValueError(f"coil_maps: expected a complex tensor (N, H, W), received shape {tuple(coil_maps.shape)}")
        if coil_maps.shape[-2:] != mask.shape[-2:]:
            raise ValueError(
                f"coil_maps: expected the image size {tuple(mask.shape[-2:])} of mask, received {tuple(coil_maps.shape[-2:])}"
            )
        if mask.ndim == 3:
            if n_echoes is not None and n_echoes != mask.shape[0]:
                raise ValueError(f"n_echoes: expected None or {mask.shape[0]} (mask has one per echo), received {n_echoes!r}")
            n_echoes = mask.shape[0]
        elif n_echoes is None:
            n_echoes = 1
        if isinstance(n_echoes, bool) or not isinstance(n_echoes, int) or n_echoes < 1:
            raise ValueError(f"n_echoes: expected an integer >= 1, received {n_echoes!r}")
        masks = mask.expand(n_echoes, *mask.shape[-2:]).to(coil_maps.real.dtype)
        maps = coil_maps[None, :, None].expand(1, coil_maps.shape[0], n_echoes, *coil_maps.shape[-2:])
        super().__init__(mask=masks[None, None], coil_maps=maps, img_size=(2, *masks.shape), device=coil_maps.device)
        self.n_echoes, self.n_coils = n_echoes, coil_maps.shape[0]
        self.x_shape = (n_echoes, *mask.shape[-2:])  # one complex sample, (E, H, W)

    @property
    def img_shape(self) -> tuple[int, ...]:
        """One image without the batch axis, deepinv layout: ``(2, E, H, W)``."""
        return (2, *self.x_shape)

    @property
    def meas_shape(self) -> tuple[int, ...]:
        """One measurement without the batch axis, deepinv layout: ``(2, N, E, H, W)``."""
        return (2, self.n_coils, *self.x_shape)

    def _check_x(self, x: torch.Tensor, complex_layout: bool) -> None:
        lead = () if complex_layout else (2,)
        check_shape("x", x, (None, *lead, *self.x_shape))

    def _check_y(self, y: torch.Tensor, complex_layout: bool) -> None:
        lead = () if complex_layout else (2,)
        check_shape("y", y, (None, *lead, self.n_coils, *self.x_shape))

    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Forward model, deepinv layout: real ``(B, 2, E, H, W)`` -> real ``(B, 2, N, E, H, W)``."""
        self._check_x(check_tensor("x", x), complex_layout=False)
        return super().A(x, **kwargs).to(x.dtype)

    def A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        """Adjoint, deepinv layout: real ``(B, 2, N, E, H, W)`` -> real ``(B, 2, E, H, W)``."""
        self._check_y(check_tensor("y", y), complex_layout=False)
        return super().A_adjoint(y, **kwargs).to(y.dtype)

    def A_complex(self, x: torch.Tensor) -> torch.Tensor:
        """Forward model on complex data: ``(B, E, H, W)`` -> ``(B, N, E, H, W)`` (validated)."""
        self._check_x(_check_complex("x", x), complex_layout=True)
        return self.apply(x)

    def A_adjoint_complex(self, y: torch.Tensor) -> torch.Tensor:
        """Adjoint on complex data: ``(B, N, E, H, W)`` -> ``(B, E, H, W)`` (validated)."""
        self._check_y(_check_complex("y", y), complex_layout=True)
        return self.apply_adjoint(y)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`A_complex` without validation, for inner loops whose inputs were checked once.

        The same product as deepinv's ``A`` with its own buffers and centred FFT, computed in the
        complex layout (no conversion to and from the 2-channel one).
        """
        return (self.fft(self.coil_maps * x[:, None]) * self.mask[:, :1]).to(x.dtype)

    def apply_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """:meth:`A_adjoint_complex` without validation (see :meth:`apply`)."""
        return (self.coil_maps.conj() * self.ifft(y * self.mask[:, :1])).sum(1).to(y.dtype)

    def with_mask(self, mask: torch.Tensor) -> SenseMRI:
        """The same coils with another mask (e.g. a subset of the acquired samples), shape of ``mask``.

        Example:
            >>> half = op.with_mask(op.sampling_mask() * keep)  # doctest: +SKIP
        """
        return SenseMRI(mask, self.coil_maps[0, :, 0], n_echoes=None if mask.ndim == 3 else self.n_echoes)

    def sampling_mask(self) -> torch.Tensor:
        """The 0/1 mask per echo, real ``(E, H, W)``."""
        return self.mask[0, 0]
