"""The image and measurement shapes an operator declares.

Every operator of this package declares ``img_shape`` (one image, ``(C, *spatial)``) and
``meas_shape`` (one measurement, ``(C', *rest)``), both without the batch axis, so that
``A(x)`` of an ``x`` shaped ``(B, *img_shape)`` is shaped ``(B, *meas_shape)`` and ``A_adjoint``
maps back. Methods read them here instead of applying an adjoint to learn a shape.

===================  ==================================  =================================
operator             ``img_shape``                       ``meas_shape``
===================  ==================================  =================================
``ParallelBeamCT``,  ``(1, N, N)`` (any C works)         ``(1, n_angles, n_detectors)``
``FanBeamCT``
``DynamicCT``        ``(P, N, N)``                       ``(P, n_views, n_detectors)``
``NearFieldMIMO``    ``(1, Nx, Ny, Nz)`` complex         ``(1, F, T, R)`` complex
``SenseMRI``         ``(2, E, H, W)`` (deepinv layout)   ``(2, N, E, H, W)``
``QuantitativeMRI``  ``(3, H, W)``                       ``(N, E, H, W)`` complex
``AcousticWave2D``   ``(nz, nx)`` (one unbatched model)  ``(n_sources, n_t, n_receivers)``
===================  ==================================  =================================

deepinv's own operators do not declare these names. Those that record an ``img_size`` with the
meaning ``(C, *spatial)`` (``BlurFFT``, ``Inpainting``, ``MRI``, ``DynamicMRI``, checked against
deepinv 0.5.0) are read through it. deepinv's ``MultiCoilMRI`` keeps whatever ``img_size`` it was
given (its default ``(320, 320)`` even with a mask), so its image shape is read off its mask
instead: ``(2, *spatial)``, the (real, imaginary) channels and the mask's spatial axes. A
measurement shape is only known where ``meas_shape`` is declared.

Example:
    >>> image_shape(ParallelBeamCT(64, angles))
    (1, 64, 64)
"""

from __future__ import annotations

from deepinv.physics import MultiCoilMRI

__all__ = ["image_shape", "measurement_shape"]


def _declared(physics: object, names: tuple[str, ...], what: str) -> tuple[int, ...]:
    for name in names:
        shape = getattr(physics, name, None)
        if shape is not None:
            return tuple(int(s) for s in shape)
    raise TypeError(
        f"physics: expected an operator that declares its {what} shape ({' or '.join(names)}), "
        f"received {type(physics).__name__} without one"
    )


def image_shape(physics: object) -> tuple[int, ...]:
    """``(C, *spatial)`` of one image of ``physics`` (no batch axis); ``TypeError`` if unknown."""
    if getattr(physics, "img_shape", None) is None and isinstance(physics, MultiCoilMRI):
        return (2, *(int(s) for s in physics.mask.shape[2:]))
    return _declared(physics, ("img_shape", "img_size"), "image")


def measurement_shape(physics: object) -> tuple[int, ...]:
    """``(C', *rest)`` of one measurement of ``physics`` (no batch axis); ``TypeError`` if undeclared."""
    return _declared(physics, ("meas_shape",), "measurement")
