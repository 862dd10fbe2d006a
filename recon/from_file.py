"""From a scanner file to a reconstruction in one call: :func:`ct_from_file` and :func:`mri_from_file`.

Each is a thin composition of a reader of :mod:`recon.readers` (which builds the operator from the
file) and a one-call method of :mod:`recon.methods`; what the reader found (rotation centre,
clipped entries, slice, estimated maps...) is added to ``info.extra["reader"]``. Write the result
with :func:`recon.writers.write`.

Example:
    >>> x, info = recon.ct_from_file("proj.tiff", flat="flat.tiff", angle_range=(0, 180), center="estimate")  # doctest: +SKIP
    >>> x, info = recon.mri_from_file("file1000000.h5", method="tikhonov", alpha=1e-3)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import torch

from recon.methods import get_method
from recon.readers import detect_format, read, read_projections
from recon.result import ReconInfo

__all__ = ["READ_OPTIONS", "ct_from_file", "mri_from_file"]


#: keyword arguments of :func:`ct_from_file` that go to the reader; the others go to the method
READ_OPTIONS = tuple(inspect.signature(read_projections).parameters)[1:]


def ct_from_file(
    path: str | os.PathLike, *, method: str = "fbp", img_size: int | None = None, backend: str = "numba", **options
) -> tuple[torch.Tensor, ReconInfo]:
    """Reconstruct every detector row of a parallel-beam TIFF projection stack.

    :func:`recon.readers.read_projections` (line integrals, angles, rotation centre), then
    ``recon.<method>(physics, y, **params)`` on the sinograms of all rows at once (a batch).

    Args:
        path: the projections (TIFF file or folder).
        method: a name of :data:`recon.methods.METHOD_NAMES` that takes a CT operator.
        img_size: reconstruction grid side N (detector pixels); default the detector width.
        backend: CT projector, ``"numba"`` or ``"astra"``.
        **options: the reader's keyword arguments (:data:`READ_OPTIONS`: ``flat``, ``dark``,
            ``angles``, ``angle_range``, ``angle_unit``, ``center``, ``min_transmission``,
            ``pixel_size``; see :func:`~recon.readers.read_projections`), and the method's (e.g.
            ``noise_level=0.02``).

    Returns:
        ``(x, info)``: x ``(rows, 1, N, N)`` in attenuation per detector pixel; ``info`` the method's,
        with ``info.extra["reader"]`` = ``{"center", "shift", "n_clipped", "n_angles"}``.

    Example:
        >>> x, info = ct_from_file("proj.tiff", flat="flat.tiff", angles="angles.txt", method="tv", noise_level=0.02)  # doctest: +SKIP
    """
    fn = get_method(method)
    read_options = {k: options.pop(k) for k in READ_OPTIONS if k in options}
    proj = read_projections(path, **read_options)
    x, info = fn(proj.physics(img_size=img_size, backend=backend), proj.sinograms(), **options)
    info.extra["reader"] = {"center": proj.center, "shift": proj.shift, "n_clipped": proj.n_clipped, "n_angles": proj.n_angles}
    return x, info


def mri_from_file(
    path: str | os.PathLike,
    *,
    method: str,
    format: str | None = None,  # noqa: A002
    slice_index: int | None = None,
    coil_maps: np.ndarray | torch.Tensor | None = None,
    **params,
) -> tuple[torch.Tensor, ReconInfo]:
    """Reconstruct one slice of raw multi-coil k-space (fastMRI or ISMRMRD) with a SENSE operator.

    :func:`recon.readers.read` (``format`` ``"fastmri"`` or ``"ismrmrd"``, inferred from the
    file by default) gives the :class:`operators.SenseMRI` with the file's mask and the given or
    estimated coil maps; then ``recon.<method>(ks.physics, ks.y, **params)``.

    Args:
        path: the ``.h5`` file.
        method: a name of :data:`recon.methods.METHOD_NAMES` that takes a linear operator on
            deepinv's complex layout, e.g. ``"tikhonov"`` or ``"tv"`` (with ``nonneg=False``).
        format: ``"fastmri"``, ``"ismrmrd"`` or None (inferred).
        slice_index: the slice to read (default the middle one).
        coil_maps: ``(coils, H, W)`` complex maps instead of the ESPIRiT estimate.
        **params: keyword arguments of the method.

    Returns:
        ``(x, info)``: x real ``(1, 2, 1, H, W)`` (real and imaginary parts, deepinv's layout;
        :func:`operators.mri.to_complex` gives the complex image); ``info.extra["reader"]`` =
        ``{"format", "slice_index", "n_slices", "maps_estimated", "acceleration"}``.

    Raises:
        ValueError: a file that is not raw k-space (or the readers' errors).

    Example:
        >>> x, info = mri_from_file("file1000000.h5", method="tikhonov", alpha=1e-3)  # doctest: +SKIP
    """
    fn = get_method(method)
    if format not in (None, "fastmri", "ismrmrd"):
        raise ValueError(f"format: expected 'fastmri', 'ismrmrd' or None, received {format!r}")
    found = format or detect_format(path)
    if found not in ("fastmri", "ismrmrd"):
        raise ValueError(f"path: {str(path)!r} is {found}; expected raw k-space (an .h5 file in the fastMRI or ISMRMRD layout)")
    ks = read(path, format=found, slice_index=slice_index, coil_maps=coil_maps)
    x, info = fn(ks.physics, ks.y, **params)
    info.extra["reader"] = {"format": ks.format, "slice_index": ks.slice_index, "n_slices": ks.n_slices,
                            "maps_estimated": ks.maps_estimated, "acceleration": float(ks.mask.numel() / ks.mask.sum())}  # fmt: skip
    return x, info
