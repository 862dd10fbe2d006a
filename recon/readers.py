r"""Scanner files in: DICOM series, NIfTI volumes, TIFF projection stacks, ISMRMRD and fastMRI k-space.

One entry point, :func:`read`, picks the reader from ``format=`` or from the path
(:func:`detect_format`) and returns one typed result with the data and its geometry in our units:

=========  ================================================  =====================================
format     path                                              result
=========  ================================================  =====================================
dicom      a folder of DICOM files, one file, or a list      :class:`Volume` (pydicom)
nifti      ``.nii`` / ``.nii.gz``                            :class:`Volume` (nibabel)
tiff       a multi-page ``.tif`` / ``.tiff``, or a folder    :class:`Projections` (tifffile)
           of single-page ones (sorted by name)
fastmri    ``.h5`` holding a dataset ``kspace``              :class:`KSpace` (h5py)
ismrmrd    ``.h5`` / ``.mrd`` holding ``dataset/xml``        :class:`KSpace` (the ``ismrmrd``
                                                             package, extra ``regrecon[mri-raw]``)
=========  ================================================  =====================================

**Volumes.** ``data`` is ``(D, H, W)``: slice ``k``, row ``r``, column ``c``, so ``data[k]`` is one
image in our ``(H, W)`` layout. ``affine`` (4 x 4) maps the voxel index ``(k, r, c, 1)`` to scanner
coordinates in millimetres, RAS+ (x grows toward the patient's right, y anterior, z superior:
NIfTI's world). DICOM positions are LPS+, so with the image position
:math:`p_k` of slice ``k``, the row and column direction cosines :math:`u, v` (``ImageOrientationPatient``)
and the pixel spacing :math:`(\Delta_r, \Delta_c)` (``PixelSpacing``),

.. math:: x_{LPS}(k, r, c) = p_0 + k\,(p_{D-1} - p_0)/(D - 1) + r\,\Delta_r v + c\,\Delta_c u,
    \qquad x_{RAS} = \mathrm{diag}(-1, -1, 1)\, x_{LPS}.

A NIfTI array indexed ``(i, j, k)`` is read as ``data[k, j, i]`` with the affine's columns permuted
to match. DICOM values have the modality LUT (``RescaleSlope`` / ``RescaleIntercept``) applied:
Hounsfield units for CT.

**Projections.** A stack of ``n_angles`` transmission images ``P`` (``rows x columns``) with optional
flat ``F`` and dark ``D`` fields becomes line integrals :math:`-\log T`,
:math:`T = (P - D)/(F - D)` (:func:`line_integrals`); entries with :math:`T` below
``min_transmission`` (non-positive, or non-finite where :math:`F = D`) are set to
``min_transmission`` and COUNTED in :attr:`Projections.n_clipped` (and a ``RuntimeWarning``).
The rotation axis (detector column) is assumed at the middle, given, or estimated
(:func:`estimate_rotation_center`); the line integrals are then shifted so that it sits at the
middle, ``(columns - 1) / 2``, where :class:`operators.ParallelBeamCT` has it.

**k-space.** One slice of centred Cartesian multi-coil k-space (DC at ``(H // 2, W // 2)``,
deepinv's orthonormal centred FFT, readout along ``H``, phase encoding along ``W``) with its 0/1
mask and coil maps (given, or estimated by ESPIRiT from the fully sampled centre,
:func:`operators.coil_maps.estimate_coil_maps`), and the :class:`operators.SenseMRI` operator.

Every bad input (wrong type, unknown format, missing file, truncated or unreadable file, missing
key or tag, inconsistent shapes) raises ``TypeError`` / ``ValueError`` naming the file or argument,
what was received and what was expected.

Example:
    >>> vol = read("series/")                     # doctest: +SKIP
    >>> vol.data.shape, vol.spacing, vol.axis_codes
"""

from __future__ import annotations

import json
import math
import os
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from operators import ParallelBeamCT, SenseMRI
from operators._validate import check_int, check_option, check_positive
from operators.coil_maps import estimate_coil_maps
from operators.mri import to_channels

__all__ = [
    "FORMATS",
    "KSpace",
    "MU_WATER",
    "PRIVATE_CREATOR",
    "PRIVATE_GROUP",
    "Projections",
    "Volume",
    "attenuation_to_hu",
    "axial_affine",
    "detect_format",
    "estimate_rotation_center",
    "hu_to_attenuation",
    "line_integrals",
    "read",
    "read_dicom",
    "read_fastmri",
    "read_ismrmrd",
    "read_nifti",
    "read_projections",
]

#: formats :func:`read` knows
FORMATS = ("dicom", "nifti", "tiff", "fastmri", "ismrmrd")
TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5", ".mrd")
#: LPS (DICOM) <-> RAS (NIfTI, ours): flip x and y
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: relative tolerance on the slice spacing and the shared geometry (orientation, pixel spacing) of a DICOM series
GEOMETRY_RTOL = 1e-3
#: the private DICOM block where :mod:`recon.writers` records the provenance (JSON, element 0x01)
PRIVATE_GROUP, PRIVATE_CREATOR = 0x0099, "regrecon"
#: linear attenuation of water at 70 keV, 1/mm (NIST XCOM: 0.193 cm^2/g), the scale of :func:`hu_to_attenuation`
MU_WATER = 0.0193


def _path(name: str, value: object) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name}: expected a path (str or os.PathLike), received {type(value).__name__}")
    return Path(value)


def _existing(name: str, value: object) -> Path:
    path = _path(name, value)
    if not path.exists():
        raise ValueError(f"{name}: no such file or folder {str(path)!r}")
    return path


def axial_affine(spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """The affine of an axial volume with voxel size ``spacing`` (mm along k, r, c), origin 0, for data without geometry.

    Slices go inferior to superior, rows anterior to posterior and columns right to left: an axial
    image as a radiologist sees it, and the orientation :func:`read_dicom` gives an axial series
    (its slice axis along :math:`u \times v`), so such a volume written as DICOM reads back in order.

    Example:
        >>> axial_affine((2.0, 0.5, 0.5))[:3, :3]
        array([[ 0. ,  0. , -0.5],
               [ 0. , -0.5,  0. ],
               [ 2. ,  0. ,  0. ]])
    """
    if len(spacing) != 3 or not all(check_positive("spacing", float(v)) for v in spacing):
        raise ValueError(f"spacing: expected three positive voxel sizes (mm), received {spacing!r}")
    affine = np.zeros((4, 4))
    affine[2, 0], affine[1, 1], affine[0, 2], affine[3, 3] = spacing[0], -spacing[1], -spacing[2], 1.0
    return affine


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class Volume:
    """An image volume and its geometry (see the module docstring for the conventions).

    Attributes:
        data: ``(D, H, W)`` float32 (complex64 for a complex NIfTI), in the file's units after its
            rescale (``units``).
        affine: ``(4, 4)`` float64, voxel index ``(k, r, c, 1)`` -> RAS+ millimetres.
        format: ``"dicom"`` or ``"nifti"``.
        path: the folder, file or (for a file list) first file read.
        modality: DICOM ``Modality`` (``"CT"``, ``"MR"``, ...); ``""`` for NIfTI.
        units: ``"HU"`` for CT, else ``""`` (unknown or arbitrary).
        source: the first slice's ``pydicom.Dataset`` (without pixel data), for a derived DICOM
            series (:func:`recon.writers.write_dicom`); None for NIfTI.
        header: a few identifiers (DICOM: series UID and description, files read and skipped, and
            ``provenance`` for a series written by :func:`recon.writers.write_dicom`).
    """

    data: np.ndarray
    affine: np.ndarray
    format: str
    path: Path
    modality: str = ""
    units: str = ""
    source: object | None = None
    header: dict = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along ``(k, r, c)``: slice spacing, row spacing, column spacing."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def direction(self) -> np.ndarray:
        """``(3, 3)`` unit vectors (columns) of the ``k``, ``r`` and ``c`` axes in RAS+."""
        return self.affine[:3, :3] / np.asarray(self.spacing)

    @property
    def axis_codes(self) -> tuple[str, str, str]:
        """For ``k``, ``r``, ``c``: the RAS+ direction each index grows toward (``"R"``/``"L"``, ``"A"``/``"P"``, ``"S"``/``"I"``)."""
        codes = []
        for column in self.direction.T:
            axis = int(np.argmax(np.abs(column)))
            codes.append(("RL", "AP", "SI")[axis][0 if column[axis] > 0 else 1])
        return tuple(codes)

    def images(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The slices as a batch of images ``(D, 1, H, W)``."""
        return torch.from_numpy(np.ascontiguousarray(self.data)).to(dtype)[:, None]


@dataclass(frozen=True, eq=False)
class Projections:
    """Parallel-beam projections as line integrals, with their angles and rotation centre.

    Attributes:
        line_integrals: ``(n_angles, rows, columns)`` float32, :math:`-\\log T`, shifted so that
            the rotation axis sits at column ``(columns - 1) / 2``.
        angles: ``(n_angles,)`` float64, radians.
        n_clipped: entries whose transmission was below ``min_transmission`` (or not finite) and
            was set to it. Zero for clean data; look at it before trusting the result.
        min_transmission: the floor used.
        center: the rotation axis in the file's detector columns (0-based; fractional allowed).
        shift: columns the line integrals were moved by, ``(columns - 1) / 2 - center``.
        pixel_size: detector pixel size at the rotation axis, mm (the reconstruction's pixel size).
        path: the projection file or folder.
    """

    line_integrals: np.ndarray
    angles: np.ndarray
    n_clipped: int
    min_transmission: float
    center: float
    shift: float
    pixel_size: float
    path: Path

    @property
    def n_angles(self) -> int:
        return self.line_integrals.shape[0]

    @property
    def n_detectors(self) -> int:
        return self.line_integrals.shape[2]

    def sinograms(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """One sinogram per detector row, ``(rows, 1, n_angles, columns)``: the measurements of :meth:`physics`."""
        return torch.from_numpy(np.ascontiguousarray(self.line_integrals.transpose(1, 0, 2))).to(dtype)[:, None]

    def physics(self, *, img_size: int | None = None, backend: str = "numba") -> ParallelBeamCT:
        """The parallel-beam operator of these projections: ``n_detectors = columns``, unit spacing.

        Args:
            img_size: reconstruction grid side N (pixels of the detector's size); default ``columns``.
            backend: ``"numba"`` or ``"astra"`` (:class:`operators.ParallelBeamCT`).
        """
        n = self.n_detectors if img_size is None else img_size
        return ParallelBeamCT(n, torch.from_numpy(self.angles), n_detectors=self.n_detectors, backend=backend)


@dataclass(frozen=True, eq=False)
class KSpace:
    """One slice of Cartesian multi-coil k-space with its mask, coil maps and SENSE operator.

    Attributes:
        kspace: ``(C, H, W)`` complex64, centred, zero where not sampled.
        mask: ``(H, W)`` float32 0/1 sampling mask.
        coil_maps: ``(C, H, W)`` complex64, :math:`\\sum_c |S_c|^2 = 1` where estimated.
        maps_estimated: True when the maps were estimated from the calibration region.
        physics: :class:`operators.SenseMRI` ``(mask, coil_maps)``, one echo.
        format: ``"fastmri"`` or ``"ismrmrd"``.
        path: the file read.
        slice_index: the slice read, of ``n_slices``.
        n_slices: slices in the file.
        affine: ``(4, 4)`` voxel index ``(k, r, c, 1)`` -> mm for the ``(H, W)`` grid,
            :func:`axial_affine` with pixel sizes from the header's encoded field of view (1 mm
            when absent).
        header: the file's attributes (fastMRI) or encoding summary (ISMRMRD), JSON-able values.
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    coil_maps: torch.Tensor
    maps_estimated: bool
    physics: SenseMRI
    format: str
    path: Path
    slice_index: int
    n_slices: int
    affine: np.ndarray
    header: dict = field(default_factory=dict)

    @property
    def y(self) -> torch.Tensor:
        """The measurements of :attr:`physics`, deepinv layout: real ``(1, 2, C, 1, H, W)``."""
        return to_channels(self.kspace[None, :, None])


# ----------------------------------------------------------------------------- dispatch


def detect_format(path: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    """The format :func:`read` infers from a path (see the module table).

    A list or tuple of files is a DICOM series; a folder holding ``.tif`` / ``.tiff`` files is a
    projection stack, any other folder a DICOM series; ``.h5`` / ``.hdf5`` / ``.mrd`` files are told
    apart by their content (``kspace`` dataset: fastMRI; ``dataset/xml``: ISMRMRD); a file with
    another suffix is DICOM when it carries the DICOM preamble (``DICM`` at byte 128).

    Raises:
        TypeError: not a path or a sequence of paths.
        ValueError: missing path, or no format recognised (the message lists :data:`FORMATS`).
    """
    if isinstance(path, list | tuple):
        return "dicom"
    path = _existing("path", path)
    name = path.name.lower()
    if path.is_dir():
        return "tiff" if any(p.suffix.lower() in TIFF_SUFFIXES for p in path.iterdir()) else "dicom"
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if path.suffix.lower() in TIFF_SUFFIXES:
        return "tiff"
    if path.suffix.lower() in HDF5_SUFFIXES:
        return _hdf5_layout(path)
    if path.suffix.lower() == ".dcm" or _has_dicom_preamble(path):
        return "dicom"
    raise ValueError(
        f"path: cannot tell the format of {str(path)!r}; expected a DICOM folder/file, .nii/.nii.gz, .tif/.tiff, "
        f"or an HDF5 file in the fastMRI or ISMRMRD layout (or pass format= one of {', '.join(FORMATS)})"
    )


def _has_dicom_preamble(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def _hdf5_layout(path: Path) -> str:
    import h5py  # noqa: PLC0415

    try:
        with h5py.File(path, "r") as fh:
            if isinstance(fh.get("kspace"), h5py.Dataset):
                return "fastmri"
            if isinstance(fh.get("dataset"), h5py.Group) and "xml" in fh["dataset"]:
                return "ismrmrd"
            found = ", ".join(fh) or "nothing"
    except OSError as err:
        raise ValueError(f"path: {str(path)!r} is not a readable HDF5 file ({err})") from err
    raise ValueError(
        f"path: {str(path)!r} holds {found} at its root; expected a dataset 'kspace' (fastMRI) or a group "
        "'dataset' with 'xml' (ISMRMRD)"
    )


def read(
    path: str | os.PathLike | Sequence[str | os.PathLike], *, format: str | None = None, **options  # noqa: A002
) -> Volume | Projections | KSpace:
    """Read a scanner file: the reader of ``format`` (default: :func:`detect_format`).

    Args:
        path: file, folder, or (DICOM) a list of files.
        format: one of :data:`FORMATS`, or None to infer it.
        **options: keyword arguments of the reader (:func:`read_dicom`, :func:`read_nifti`,
            :func:`read_projections`, :func:`read_fastmri`, :func:`read_ismrmrd`).

    Returns:
        :class:`Volume`, :class:`Projections` or :class:`KSpace`.

    Example:
        >>> proj = read("scan.tiff", flat="flat.tiff", dark="dark.tiff", angle_range=(0, 180), center="estimate")  # doctest: +SKIP
        >>> x, info = recon.fbp(proj.physics(), proj.sinograms())  # doctest: +SKIP
    """
    if format is None:
        format = detect_format(path)  # noqa: A001
    check_option("format", format, FORMATS)
    readers = {"dicom": read_dicom, "nifti": read_nifti, "tiff": read_projections, "fastmri": read_fastmri, "ismrmrd": read_ismrmrd}
    return readers[format](path, **options)


# ----------------------------------------------------------------------------- DICOM


def _dicom_files(path: object) -> tuple[list[Path], bool]:
    """The files of a series argument, and whether they were listed from a folder (non-DICOM files skipped)."""
    if isinstance(path, list | tuple):
        if not path:
            raise ValueError("path: expected at least one DICOM file, received an empty list")
        return [_existing(f"path[{i}]", p) for i, p in enumerate(path)], False
    path = _existing("path", path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise ValueError(f"path: the folder {str(path)!r} holds no files; expected a DICOM series")
        return files, True
    return [path], False


def read_dicom(path: str | os.PathLike | Sequence[str | os.PathLike], *, series_uid: str | None = None) -> Volume:
    """A DICOM series (single-frame CT, MR, ... images) as a :class:`Volume`.

    The slices are sorted by their position along the normal :math:`u \\times v` of the image plane
    (then by ``InstanceNumber``), so the slice axis of the affine always points along that normal.
    They must share ``Rows``, ``Columns``, ``PixelSpacing`` and ``ImageOrientationPatient``, lie at
    distinct positions and be evenly spaced (relative tolerance :data:`GEOMETRY_RTOL`). One slice
    takes ``SpacingBetweenSlices`` or ``SliceThickness`` (else 1 mm) as its thickness. Values have the
    modality LUT applied (``RescaleSlope``, ``RescaleIntercept``).

    Args:
        path: a folder (every file in it; files that are not DICOM and a ``DICOMDIR`` are skipped),
            one file, or a list of files (each must be DICOM).
        series_uid: the ``SeriesInstanceUID`` to read when the files hold several series.

    Returns:
        :class:`Volume` ``(D, H, W)``; ``source`` is the first slice's dataset.

    Raises:
        ValueError: no DICOM image, a file that cannot be read (truncated, corrupt), a missing tag,
            several series without ``series_uid``, multi-frame or colour images, inconsistent
            slices (each message names the file).

    Example:
        >>> vol = read_dicom(pydicom.data.get_testdata_file("CT_small.dcm", download=False))  # doctest: +SKIP
        >>> vol.data.shape, vol.units, vol.spacing   # (1, 128, 128), 'HU', (5.0, 0.66, 0.66)
    """
    import pydicom  # noqa: PLC0415
    from pydicom.errors import InvalidDicomError  # noqa: PLC0415
    from pydicom.uid import MediaStorageDirectoryStorage  # noqa: PLC0415

    files, from_folder = _dicom_files(path)
    if series_uid is not None and not isinstance(series_uid, str):
        raise TypeError(f"series_uid: expected a str, received {type(series_uid).__name__}")
    datasets, skipped = [], []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
        except InvalidDicomError as err:
            if from_folder:
                skipped.append(f.name)
                continue
            raise ValueError(f"path: {str(f)!r} is not a DICOM file ({err})") from err
        except Exception as err:  # noqa: BLE001  (pydicom raises many kinds on a damaged file)
            raise ValueError(f"path: cannot read {str(f)!r} as DICOM ({type(err).__name__}: {err}); expected a complete DICOM file") from err
        if getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None) == MediaStorageDirectoryStorage:
            skipped.append(f.name)
            continue
        datasets.append((f, ds))
    if not datasets:
        raise ValueError(f"path: no DICOM image among {len(files)} file(s) of {str(path)!r}")
    series = sorted({str(ds.get("SeriesInstanceUID", "")) for _, ds in datasets})
    if series_uid is not None:
        datasets = [(f, ds) for f, ds in datasets if str(ds.get("SeriesInstanceUID", "")) == series_uid]
        if not datasets:
            raise ValueError(f"series_uid: {series_uid!r} is not among the series of {str(path)!r}: {', '.join(series)}")
    elif len(series) > 1:
        raise ValueError(f"path: {str(path)!r} holds {len(series)} series ({', '.join(series)}); expected one, or pass series_uid")
    slices = [_dicom_slice(f, ds) for f, ds in datasets]
    first = slices[0]
    for s in slices[1:]:
        for key in ("shape", "orientation", "pixel_spacing"):
            if not np.allclose(s[key], first[key], rtol=GEOMETRY_RTOL, atol=1e-6):
                raise ValueError(
                    f"path: {str(s['file'])!r} has {key} {np.round(s[key], 6).tolist()}, {str(first['file'])!r} has "
                    f"{np.round(first[key], 6).tolist()}; expected one {key} for the whole series"
                )
    u, v = first["orientation"][:3], first["orientation"][3:]
    normal = np.cross(u, v)
    slices.sort(key=lambda s: (float(s["position"] @ normal), s["instance"]))
    positions = np.array([s["position"] for s in slices])
    if len(slices) > 1:
        steps = np.diff(positions @ normal)
        if np.min(steps) <= GEOMETRY_RTOL * np.max(steps):
            k = int(np.argmin(steps))
            raise ValueError(
                f"path: {str(slices[k]['file'])!r} and {str(slices[k + 1]['file'])!r} lie at the same position; "
                "expected one slice per position (a time series or repeated acquisition? pass the files of one)"
            )
        if np.ptp(steps) > GEOMETRY_RTOL * np.mean(steps) + 1e-4:
            raise ValueError(f"path: slice spacing varies from {steps.min():.4g} to {steps.max():.4g} mm; expected evenly spaced slices")
        slice_vec = (positions[-1] - positions[0]) / (len(slices) - 1)
    else:
        ds = datasets[0][1]
        thickness = ds.get("SpacingBetweenSlices", ds.get("SliceThickness", 1.0)) or 1.0
        slice_vec = normal * float(thickness)
    row_spacing, col_spacing = first["pixel_spacing"]
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = slice_vec, v * row_spacing, u * col_spacing, positions[0]
    modality = str(datasets[0][1].get("Modality", ""))
    rescale_type = str(datasets[0][1].get("RescaleType", ""))  # "US": unspecified
    source = datasets[0][1].copy()
    if "PixelData" in source:
        del source.PixelData
    header = {"series_uid": series[0] if series_uid is None else series_uid,
              "series_description": str(source.get("SeriesDescription", "")),
              "files": [str(s["file"]) for s in slices], "skipped": skipped}  # fmt: skip
    try:
        header["provenance"] = json.loads(source.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)[0x01].value)
    except (KeyError, ValueError):  # not written by regrecon
        pass
    return Volume(
        data=np.stack([s["pixels"] for s in slices]).astype(np.float32),
        affine=LPS_TO_RAS @ lps,
        format="dicom",
        path=Path(path) if not isinstance(path, list | tuple) else Path(path[0]),
        modality=modality,
        units="HU" if modality == "CT" else ("" if rescale_type in ("", "US") else rescale_type),
        source=source,
        header=header,
    )


def _dicom_slice(f: Path, ds) -> dict:
    """The geometry and rescaled pixels of one single-frame DICOM image; ValueError naming the file otherwise."""
    from pydicom.pixels import apply_modality_lut  # noqa: PLC0415

    if int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise ValueError(f"path: {str(f)!r} is a multi-frame image ({ds.NumberOfFrames} frames); expected single-frame slices")
    for tag in ("PixelData", "Rows", "Columns", "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient"):
        if tag not in ds:
            raise ValueError(f"path: {str(f)!r} has no {tag} tag; expected a DICOM image with {tag}")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise ValueError(f"path: {str(f)!r} has {ds.SamplesPerPixel} samples per pixel; expected a grey-level image (1)")
    try:
        pixels = apply_modality_lut(ds.pixel_array, ds)
        orientation = np.array([float(t) for t in ds.ImageOrientationPatient])
        position = np.array([float(t) for t in ds.ImagePositionPatient])
        spacing = np.array([float(t) for t in ds.PixelSpacing])
    except Exception as err:  # noqa: BLE001  (truncated pixel data, malformed values)
        raise ValueError(f"path: cannot decode {str(f)!r} ({type(err).__name__}: {err}); expected a complete DICOM image") from err
    if orientation.shape != (6,) or position.shape != (3,) or spacing.shape != (2,) or not np.all(spacing > 0):
        raise ValueError(
            f"path: {str(f)!r} has ImageOrientationPatient {orientation.tolist()}, ImagePositionPatient {position.tolist()}, "
            f"PixelSpacing {spacing.tolist()}; expected 6, 3 and 2 (positive) numbers"
        )
    u, v = orientation[:3], orientation[3:]
    if abs(np.linalg.norm(u) - 1) > 1e-2 or abs(np.linalg.norm(v) - 1) > 1e-2 or abs(u @ v) > 1e-2:
        raise ValueError(f"path: {str(f)!r} has ImageOrientationPatient {orientation.tolist()}; expected two orthonormal direction cosines")
    orientation = np.concatenate([u / np.linalg.norm(u), v / np.linalg.norm(v)])
    return {"file": f, "pixels": np.asarray(pixels, dtype=np.float64), "shape": np.array(pixels.shape), "orientation": orientation,
            "position": position, "pixel_spacing": spacing, "instance": int(ds.get("InstanceNumber", 0) or 0)}  # fmt: skip


def hu_to_attenuation(hu: np.ndarray | torch.Tensor, pixel_size: float, mu_water: float = MU_WATER) -> np.ndarray | torch.Tensor:
    r"""Hounsfield units to attenuation per pixel, the unit of :class:`operators.ParallelBeamCT` images.

    .. math:: \mu = \mu_w\, (1 + \mathrm{HU} / 1000)\, \delta, \quad\text{clipped at } 0,

    with :math:`\mu_w` = ``mu_water`` (1/mm) and :math:`\delta` = ``pixel_size`` (mm), so that the
    operator's line integrals are dimensionless (air, -1000 HU, is 0).

    Example:
        >>> hu_to_attenuation(np.array([-1000.0, 0.0]), pixel_size=0.5)
        array([0.     , 0.00965])
    """
    scale = check_positive("mu_water", mu_water) * check_positive("pixel_size", pixel_size)
    mu = (1 + hu / 1000) * scale
    return mu.clamp(min=0) if isinstance(mu, torch.Tensor) else np.clip(mu, 0, None)


def attenuation_to_hu(mu: np.ndarray | torch.Tensor, pixel_size: float, mu_water: float = MU_WATER) -> np.ndarray | torch.Tensor:
    r"""Attenuation per pixel to Hounsfield units, :math:`1000 (\mu / (\mu_w \delta) - 1)`.

    The inverse of :func:`hu_to_attenuation` above -1000 HU.
    """
    return 1000 * (mu / (check_positive("mu_water", mu_water) * check_positive("pixel_size", pixel_size)) - 1)


# ----------------------------------------------------------------------------- NIfTI


def read_nifti(path: str | os.PathLike) -> Volume:
    """A NIfTI-1/2 volume (``.nii`` or ``.nii.gz``) as a :class:`Volume`.

    The array ``(I, J, K)`` (a 2D image has ``K = 1``; a 4D one with one volume is squeezed) is read
    as ``data[k, j, i]`` with the scaling of the header applied (``scl_slope``, ``scl_inter``), and
    the affine (``sform``, else ``qform``) has its columns permuted to match.

    Raises:
        ValueError: missing, truncated or unreadable file; more than one volume (4D).
    """
    import nibabel as nib  # noqa: PLC0415

    path = _existing("path", path)
    try:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as err:  # noqa: BLE001  (nibabel raises ImageFileError, EOFError, zlib errors, ...)
        raise ValueError(
            f"path: cannot read {str(path)!r} as NIfTI ({type(err).__name__}: {err}); expected a complete .nii/.nii.gz file"
        ) from err
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise ValueError(f"path: {str(path)!r} holds an array of shape {data.shape}; expected a 2D or 3D volume")
    dtype = np.complex64 if np.iscomplexobj(data) else np.float32
    return Volume(
        data=np.ascontiguousarray(data.transpose(2, 1, 0)).astype(dtype),
        affine=affine[:, [2, 1, 0, 3]],
        format="nifti",
        path=path,
        header={"descrip": img.header.get("descrip", np.array(b"")).item().decode(errors="replace")},
    )


# ----------------------------------------------------------------------------- TIFF projections


def _read_tiff(name: str, value: object) -> np.ndarray:
    """A TIFF file (all pages) or a folder of single-page TIFFs (sorted by name) as one float64 array."""
    import tifffile  # noqa: PLC0415

    path = _existing(name, value)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in TIFF_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"{name}: the folder {str(path)!r} holds no .tif/.tiff files")
    pages = []
    for f in files:
        try:
            pages.append(np.asarray(tifffile.imread(f), dtype=np.float64))
        except Exception as err:  # noqa: BLE001  (TiffFileError, truncated strips, ...)
            raise ValueError(f"{name}: cannot read {str(f)!r} as TIFF ({type(err).__name__}: {err}); expected a complete TIFF file") from err
        if path.is_dir() and pages[-1].shape != pages[0].shape:
            raise ValueError(f"{name}: {str(f)!r} has shape {pages[-1].shape}, {str(files[0])!r} has {pages[0].shape}; expected one image size")
    return np.stack(pages) if path.is_dir() else pages[0]


def _field(name: str, value: object, shape: tuple[int, int]) -> np.ndarray | None:
    """A flat or dark field ``(rows, columns)``: one image, or the mean of a stack of them."""
    if value is None:
        return None
    arr = value if isinstance(value, np.ndarray) else _read_tiff(name, value)
    if arr.ndim == 3:
        arr = arr.mean(axis=0)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected an image (or stack of images) of the projections' size {shape}, received shape {arr.shape}")
    return np.asarray(arr, dtype=np.float64)


def line_integrals(
    projections: np.ndarray, flat: np.ndarray | None = None, dark: np.ndarray | None = None, *, min_transmission: float = 1e-4
) -> tuple[np.ndarray, int]:
    r"""Line integrals :math:`-\log T`, :math:`T = (P - D) / (F - D)`, with the clipping counted.

    Args:
        projections: ``P``, ``(n_angles, rows, columns)`` (or any shape), raw counts or transmissions.
        flat: ``F`` (open beam), broadcastable to ``projections``; None: 1 (``P`` is a transmission).
        dark: ``D`` (no beam), broadcastable to ``projections``; None: 0.
        min_transmission: floor in (0, 1): entries with :math:`T` below it or not finite (``F = D``)
            are set to it, so the largest line integral is :math:`-\log` ``min_transmission``.

    Returns:
        ``(integrals, n_clipped)``: float32 line integrals of the shape of ``projections``, and the
        number of entries that were clipped.

    Example:
        >>> line_integrals(np.array([50.0, 0.0]), flat=np.array(100.0))
        (array([0.6931472, 9.2103405], dtype=float32), 1)
    """
    if not isinstance(projections, np.ndarray) or projections.dtype.kind not in "iuf":
        raise TypeError(f"projections: expected a real numpy array, received {type(projections).__name__}")
    floor = check_positive("min_transmission", min_transmission)
    if floor >= 1:
        raise ValueError(f"min_transmission: expected a number in (0, 1), received {min_transmission!r}")
    p = projections.astype(np.float64)
    d = 0.0 if dark is None else dark
    f = 1.0 if flat is None else flat
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (p - d) / (f - d)
    clipped = ~(t >= floor)  # also catches NaN
    t[clipped] = floor
    return (-np.log(t)).astype(np.float32), int(clipped.sum())


def _angles(angles: object, angle_range: object, unit: str, n: int) -> np.ndarray:
    if (angles is None) == (angle_range is None):
        raise ValueError("angles, angle_range: expected exactly one (a text file or list of angles, or (first, last))")
    scale = math.pi / 180 if unit == "deg" else 1.0
    if angle_range is not None:
        if not isinstance(angle_range, list | tuple) or len(angle_range) != 2:
            raise ValueError(f"angle_range: expected (first, last) angles, received {angle_range!r}")
        first, last = angle_range
        for which, v in (("first", first), ("last", last)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"angle_range: expected finite numbers ({which} received {v!r})")
        if first == last:
            raise ValueError(f"angle_range: expected first != last, received {angle_range!r}")
        return np.linspace(first, last, n) * scale
    if isinstance(angles, str | os.PathLike):
        try:
            values = np.loadtxt(_existing("angles", angles), dtype=np.float64, ndmin=1).ravel()
        except ValueError as err:
            raise ValueError(f"angles: cannot read {str(angles)!r} as numbers, one angle per line ({err})") from err
    else:
        try:
            values = np.asarray(angles, dtype=np.float64).ravel()
        except (TypeError, ValueError) as err:
            raise TypeError(f"angles: expected a text file or a sequence of numbers, received {type(angles).__name__}") from err
    if values.shape != (n,) or not np.all(np.isfinite(values)):
        raise ValueError(f"angles: expected {n} finite angles (one per projection), received {values.size}")
    return values * scale


def estimate_rotation_center(sinogram: np.ndarray, angles: np.ndarray) -> float:
    r"""Rotation axis of a parallel-beam scan from the projections at :math:`\theta_0` and :math:`\theta_0 + \pi`.

    In parallel beam the projection at :math:`\theta + \pi` is the mirror image of the one at
    :math:`\theta` about the axis ``c``: :math:`p_{\theta+\pi}(k) = p_\theta(2c - k)`. Flipping it,
    :math:`q(k) = p_{\theta+\pi}(W - 1 - k) = p_\theta(k + s)` with :math:`s = 2c - (W - 1)`, so the
    peak of the cross-correlation of :math:`p_\theta` and :math:`q` (summed over detector rows,
    zero-padded FFT, parabolic sub-pixel peak) gives :math:`c = (W - 1 + s) / 2`.

    Args:
        sinogram: line integrals ``(n_angles, columns)`` or ``(n_angles, rows, columns)``.
        angles: ``(n_angles,)`` radians; some pair must be :math:`\pi` apart within half the mean
            angular step (or 0.1 degree).

    Returns:
        ``c``, the axis in detector columns (0-based).

    Example:
        >>> estimate_rotation_center(proj.line_integrals, proj.angles)  # doctest: +SKIP
        255.5
    """
    sino = np.asarray(sinogram, dtype=np.float64)
    if sino.ndim == 2:
        sino = sino[:, None]
    angles = np.asarray(angles, dtype=np.float64)
    if sino.ndim != 3 or angles.shape != (sino.shape[0],):
        raise ValueError(
            f"sinogram, angles: expected (n_angles, [rows,] columns) and (n_angles,), received {np.shape(sinogram)} and {angles.shape}"
        )
    gap = np.abs(angles[None, :] - angles[:, None] - math.pi)
    i, j = np.unravel_index(np.argmin(gap), gap.shape)
    step = np.ptp(angles) / max(len(angles) - 1, 1)
    if gap[i, j] > max(step / 2, math.radians(0.1)):
        raise ValueError(
            f"angles: no two projections are 180 degrees apart (closest pair {math.degrees(angles[j] - angles[i]):.3f} degrees); "
            "expected a scan over at least [theta, theta + 180 deg]"
        )
    width = sino.shape[2]
    a, b = sino[i], sino[j][:, ::-1]  # not mean-subtracted: outside the object both are ~0, so the overlap length adds no bias
    n = 2 * width
    corr = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n).sum(axis=0)
    lag = int(np.argmax(corr))
    left, mid, right = corr[lag - 1], corr[lag], corr[(lag + 1) % n]
    denom = left - 2 * mid + right
    frac = 0.5 * (left - right) / denom if denom < 0 else 0.0
    s = (lag if lag < width else lag - n) + frac
    return (width - 1 + s) / 2


def read_projections(
    path: str | os.PathLike,
    *,
    flat: str | os.PathLike | np.ndarray | None = None,
    dark: str | os.PathLike | np.ndarray | None = None,
    angles: str | os.PathLike | Sequence[float] | None = None,
    angle_range: tuple[float, float] | None = None,
    angle_unit: str = "deg",
    center: float | str | None = None,
    min_transmission: float = 1e-4,
    pixel_size: float = 1.0,
) -> Projections:
    """A TIFF projection stack (parallel beam) as line integrals with angles and rotation centre.

    Args:
        path: a multi-page TIFF ``(n_angles, rows, columns)`` or a folder of single-page TIFFs, one
            projection each, sorted by file name.
        flat: open-beam field(s): a TIFF file or folder (a stack is averaged) or an array ``(rows,
            columns)``; None when the projections are already flat-field corrected transmissions.
        dark: dark field(s), as ``flat``; None: zero.
        angles: a text file of ``n_angles`` numbers (one per line) or a sequence of them.
        angle_range: ``(first, last)``: ``n_angles`` evenly spaced angles, both ends included.
        angle_unit: ``"deg"`` or ``"rad"``, the unit of ``angles`` / ``angle_range``.
        center: rotation axis in detector columns (0-based): None for the middle ``(columns - 1)/2``,
            a number, or ``"estimate"`` (:func:`estimate_rotation_center`).
        min_transmission: floor of the transmission (:func:`line_integrals`), in (0, 1).
        pixel_size: detector pixel size at the axis, mm (recorded for the output geometry).

    Returns:
        :class:`Projections`; a ``RuntimeWarning`` says how many entries were clipped, if any.

    Raises:
        TypeError, ValueError: a bad argument or file (the message names it).

    Example:
        >>> proj = read_projections("proj.tiff", flat="flat.tiff", dark="dark.tiff", angle_range=(0, 180), center="estimate")  # doctest: +SKIP
        >>> proj.n_clipped, proj.center
    """
    check_option("angle_unit", angle_unit, ("deg", "rad"))
    pixel_size = check_positive("pixel_size", pixel_size)
    check_positive("min_transmission", min_transmission)
    if center is not None and center != "estimate":
        if isinstance(center, bool) or not isinstance(center, int | float):
            raise TypeError(f"center: expected None, 'estimate' or a number (detector column), received {center!r}")
    stack = _read_tiff("path", path)
    if stack.ndim != 3:
        raise ValueError(f"path: {str(path)!r} holds an array of shape {stack.shape}; expected a stack (n_angles, rows, columns)")
    shape = stack.shape[1:]
    theta = _angles(angles, angle_range, angle_unit, stack.shape[0])
    li, n_clipped = line_integrals(stack, _field("flat", flat, shape), _field("dark", dark, shape), min_transmission=min_transmission)
    if n_clipped:
        warnings.warn(
            f"{str(path)!r}: {n_clipped} of {li.size} transmission values were below min_transmission={min_transmission} "
            "(non-positive or flat = dark) and were clipped to it",
            RuntimeWarning,
            stacklevel=2,
        )
    width = shape[1]
    if center == "estimate":
        center = estimate_rotation_center(li, theta)
    elif center is None:
        center = (width - 1) / 2
    elif not (0 <= center <= width - 1):
        raise ValueError(f"center: expected a detector column in [0, {width - 1}], received {center!r}")
    shift = (width - 1) / 2 - float(center)
    if shift:
        from scipy.ndimage import shift as nd_shift  # noqa: PLC0415

        li = nd_shift(li, (0, 0, shift), order=3, mode="nearest")
    return Projections(
        line_integrals=li.astype(np.float32), angles=theta, n_clipped=n_clipped, min_transmission=float(min_transmission),
        center=float(center), shift=shift, pixel_size=pixel_size, path=Path(path),
    )  # fmt: skip


# ----------------------------------------------------------------------------- k-space


def _xml_encoding(xml: str | bytes, where: str) -> dict:
    """Matrix size, field of view (mm), k-space centres and trajectory of the first encoding of an ISMRMRD header."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise ValueError(f"path: the ISMRMRD header of {where} is not valid XML ({err})") from err
    ns = {"m": root.tag[1:].split("}")[0]} if root.tag.startswith("{") else {"m": ""}
    pre = "m:" if ns["m"] else ""

    def find(*names: str) -> ET.Element | None:
        return root.find("/".join(f"{pre}{n}" for n in ("encoding", *names)), ns)

    def number(*names: str, cast=float):
        node = find(*names)
        return None if node is None or node.text is None else cast(node.text)

    out = {
        "trajectory": (find("trajectory").text if find("trajectory") is not None else "cartesian"),
        "matrix": tuple(number("encodedSpace", "matrixSize", a, cast=int) for a in "xyz"),
        "fov_mm": tuple(number("encodedSpace", "fieldOfView_mm", a) for a in "xyz"),
        "center_1": number("encodingLimits", "kspace_encoding_step_1", "center", cast=int),
        "slices": number("encodingLimits", "slice", "maximum", cast=int),
    }
    if None in out["matrix"]:
        raise ValueError(f"path: the ISMRMRD header of {where} has no encoding/encodedSpace/matrixSize; expected x, y and z")
    return out


def _grid_affine(fov: tuple | None, shape: tuple[int, int]) -> np.ndarray:
    """:func:`axial_affine` of an ``(H, W)`` grid: pixel sizes from the encoded field of view (readout x along H, y along W, z the slice)."""
    if fov is None or None in fov or not all(v > 0 for v in fov):
        return axial_affine()
    return axial_affine((fov[2], fov[0] / shape[0], fov[1] / shape[1]))


def _kspace_result(kspace: np.ndarray, mask: np.ndarray, coil_maps: object, *, fmt: str, path: Path, slice_index: int,
                   n_slices: int, affine: np.ndarray, header: dict) -> KSpace:  # fmt: skip
    if not np.all(np.isfinite(kspace)):
        n_bad = int((~np.isfinite(kspace)).sum())
        raise ValueError(f"path: {str(path)!r} holds {n_bad} NaN/Inf k-space values in slice {slice_index}; expected finite data")
    mask_t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
    k = torch.from_numpy(np.ascontiguousarray(kspace, dtype=np.complex64)) * mask_t
    if not bool(mask_t.any()):
        raise ValueError(f"path: {str(path)!r} slice {slice_index} has no sampled k-space point; expected some data")
    if coil_maps is not None:
        maps = torch.as_tensor(np.asarray(coil_maps) if not isinstance(coil_maps, torch.Tensor) else coil_maps).to(torch.complex64)
        if tuple(maps.shape) != tuple(k.shape):
            raise ValueError(f"coil_maps: expected shape {tuple(k.shape)} (coils, H, W) of the k-space, received {tuple(maps.shape)}")
        estimated = False
    elif k.shape[0] == 1:
        maps, estimated = torch.ones_like(k), False
    else:
        try:
            maps = estimate_coil_maps(k, calib_mask=mask_t)
        except ValueError as err:
            raise ValueError(f"path: cannot estimate coil maps from {str(path)!r} slice {slice_index} ({err}); pass coil_maps") from err
        estimated = True
    return KSpace(kspace=k, mask=mask_t, coil_maps=maps, maps_estimated=estimated, physics=SenseMRI(mask_t, maps), format=fmt,
                  path=path, slice_index=slice_index, n_slices=n_slices, affine=affine, header=header)  # fmt: skip


def _slice_index(value: object, n_slices: int) -> int:
    if value is None:
        return n_slices // 2
    index = check_int("slice_index", value, 0)
    if index >= n_slices:
        raise ValueError(f"slice_index: expected an index in [0, {n_slices - 1}], received {index}")
    return index


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


def read_fastmri(path: str | os.PathLike, *, slice_index: int | None = None, coil_maps: np.ndarray | torch.Tensor | None = None) -> KSpace:
    """One slice of a fastMRI file: dataset ``kspace`` (slices, coils, H, W) complex, optional ``mask``.

    Single-coil files (``kspace`` (slices, H, W)) have one coil with a map of ones. ``mask`` is
    ``(W,)`` (one flag per phase-encoding column, as fastMRI's test sets) or ``(H, W)``; without one,
    the samples are the k-space points that are non-zero in some coil. The root attributes and the
    encoded field of view of ``ismrmrd_header`` (when present) go to :attr:`KSpace.header` and
    :attr:`KSpace.affine`.

    Args:
        path: the ``.h5`` file.
        slice_index: the slice to read; default the middle one (``slices // 2``).
        coil_maps: ``(coils, H, W)`` complex maps to use instead of the ESPIRiT estimate.

    Raises:
        ValueError: unreadable or truncated file, no ``kspace``, a real ``kspace``, a mask of
            another size, a slice out of range, no calibration region for the maps.

    Example:
        >>> ks = read_fastmri("file1000000.h5", slice_index=18)  # doctest: +SKIP
        >>> x, info = recon.tikhonov(ks.physics, ks.y, alpha=1e-3)  # doctest: +SKIP
    """
    import h5py  # noqa: PLC0415

    path = _existing("path", path)
    try:
        with h5py.File(path, "r") as fh:
            if not isinstance(fh.get("kspace"), h5py.Dataset):
                found = ", ".join(fh) or "nothing"
                raise ValueError(f"path: {str(path)!r} has no dataset 'kspace' (found {found}); expected the fastMRI layout")
            ds = fh["kspace"]
            if ds.ndim not in (3, 4) or ds.dtype.kind != "c":
                raise ValueError(
                    f"path: 'kspace' in {str(path)!r} is {ds.dtype} {ds.shape}; expected complex (slices, coils, H, W) or (slices, H, W)"
                )
            index = _slice_index(slice_index, ds.shape[0])
            kspace = ds[index]
            mask = fh["mask"][()] if "mask" in fh else None
            header = {k: _jsonable(v) for k, v in fh.attrs.items()}
            xml = fh["ismrmrd_header"][()] if "ismrmrd_header" in fh else None
            n_slices = ds.shape[0]
    except OSError as err:
        raise ValueError(f"path: cannot read {str(path)!r} as HDF5 ({err}); expected a complete fastMRI .h5 file") from err
    kspace = kspace[None] if kspace.ndim == 2 else kspace
    H, W = kspace.shape[-2:]
    if mask is None:
        mask = (kspace != 0).any(axis=0)
    else:
        mask = np.asarray(mask)
        if mask.shape == (W,):
            mask = np.broadcast_to(mask[None, :], (H, W))
        elif mask.shape != (H, W):
            raise ValueError(f"path: 'mask' in {str(path)!r} has shape {mask.shape}; expected ({W},) or ({H}, {W}) for k-space {kspace.shape}")
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError(f"path: 'mask' in {str(path)!r} holds values other than 0 and 1")
    fov = _xml_encoding(xml, repr(str(path)))["fov_mm"] if xml is not None else None
    return _kspace_result(kspace, mask, coil_maps, fmt="fastmri", path=path, slice_index=index, n_slices=n_slices,
                          affine=_grid_affine(fov, (H, W)), header=header)  # fmt: skip


#: acquisitions that are not image k-space and are left out
_ISMRMRD_SKIP = ("ACQ_IS_NOISE_MEASUREMENT", "ACQ_IS_NAVIGATION_DATA", "ACQ_IS_PHASECORR_DATA", "ACQ_IS_DUMMYSCAN_DATA",
                 "ACQ_IS_RTFEEDBACK_DATA", "ACQ_IS_HPFEEDBACK_DATA", "ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA",
                 "ACQ_IS_PHASE_STABILIZATION", "ACQ_IS_PHASE_STABILIZATION_REFERENCE")  # fmt: skip


def read_ismrmrd(path: str | os.PathLike, *, slice_index: int | None = None, coil_maps: np.ndarray | torch.Tensor | None = None) -> KSpace:
    """One slice of a 2D Cartesian ISMRMRD file (group ``dataset``: ``xml`` header and acquisitions).

    Each image acquisition (noise, navigator, phase-correction and other non-image scans are left
    out) is one readout line: its samples go to column ``kspace_encode_step_1 - c_1 + W // 2``
    (``c_1`` the encoding limit's centre, default ``W // 2``), rows ``n - center_sample + H // 2``;
    ``H``, ``W`` are the encoded matrix size (``x`` at least the samples per readout, ``y``).
    Repeated lines (averages) are averaged. Parallel-imaging calibration lines count as samples.

    Args:
        path: the ISMRMRD HDF5 file.
        slice_index: the slice (``idx.slice``) to read; default the middle one.
        coil_maps: ``(coils, H, W)`` complex maps to use instead of the ESPIRiT estimate.

    Raises:
        ImportError: the ``ismrmrd`` package is missing (``pip install regrecon[mri-raw]``).
        ValueError: not an ISMRMRD file, no header, non-Cartesian or 3D encoding, several
            contrasts / phases / repetitions / sets, reversed (EPI) lines, inconsistent coils.

    Example:
        >>> ks = read_ismrmrd("meas.h5")  # doctest: +SKIP
    """
    try:
        import ismrmrd  # noqa: PLC0415
    except ImportError as err:
        raise ImportError("read_ismrmrd needs the ismrmrd package: pip install 'regrecon[mri-raw]'") from err

    path = _existing("path", path)
    try:
        dset = ismrmrd.Dataset(str(path), "dataset", mode="r")
    except OSError as err:
        raise ValueError(f"path: cannot open {str(path)!r} as HDF5 ({err}); expected a complete ISMRMRD file") from err
    try:
        try:
            xml = dset.read_xml_header()
        except LookupError as err:
            raise ValueError(f"path: {str(path)!r} has no ISMRMRD header 'dataset/xml' ({err}); expected an ISMRMRD file") from err
        enc = _xml_encoding(xml, repr(str(path)))
        if enc["trajectory"] != "cartesian" or enc["matrix"][2] != 1:
            raise ValueError(
                f"path: {str(path)!r} has a {enc['trajectory']} trajectory with matrix {enc['matrix']}; expected 2D Cartesian (z = 1)"
            )
        skip = [getattr(ismrmrd, flag) for flag in _ISMRMRD_SKIP]
        acquisitions = []
        for i in range(dset.number_of_acquisitions()):
            acq = dset.read_acquisition(i)
            if not any(acq.is_flag_set(flag) for flag in skip):
                acquisitions.append(acq)
    except (OSError, LookupError) as err:
        raise ValueError(f"path: cannot read the acquisitions of {str(path)!r} ({err}); expected a complete ISMRMRD file") from err
    finally:
        dset.close()
    if not acquisitions:
        raise ValueError(f"path: {str(path)!r} holds no image acquisitions; expected Cartesian k-space lines")
    for counter in ("contrast", "phase", "repetition", "set"):
        values = sorted({int(getattr(a.idx, counter)) for a in acquisitions})
        if len(values) > 1:
            raise ValueError(f"path: {str(path)!r} has acquisitions with {counter} {values}; expected one (one image per slice)")
    if any(a.is_flag_set(ismrmrd.ACQ_IS_REVERSE) for a in acquisitions):
        raise ValueError(f"path: {str(path)!r} has reversed readouts (EPI); expected ordinary Cartesian lines")
    coils = {a.data.shape[0] for a in acquisitions}
    if len(coils) != 1:
        raise ValueError(f"path: {str(path)!r} has acquisitions with {sorted(coils)} coils; expected one coil count")
    n_slices = max(max(int(a.idx.slice) for a in acquisitions) + 1, (enc["slices"] or 0) + 1)
    index = _slice_index(slice_index, n_slices)
    H = max(enc["matrix"][0], max(a.data.shape[1] for a in acquisitions))
    W = enc["matrix"][1]
    c1 = W // 2 if enc["center_1"] is None else enc["center_1"]
    kspace = np.zeros((coils.pop(), H, W), dtype=np.complex128)
    count = np.zeros((H, W))
    for a in acquisitions:
        if int(a.idx.slice) != index:
            continue
        col = int(a.idx.kspace_encode_step_1) - c1 + W // 2
        row0 = H // 2 - int(a.center_sample)
        n = a.data.shape[1]
        if not (0 <= col < W and 0 <= row0 and row0 + n <= H):
            raise ValueError(
                f"path: {str(path)!r} has a line (kspace_encode_step_1 {a.idx.kspace_encode_step_1}, center_sample {a.center_sample}, "
                f"{n} samples) outside the encoded matrix {(H, W)}; expected lines within encoding/encodedSpace/matrixSize"
            )
        kspace[:, row0 : row0 + n, col] += a.data
        count[row0 : row0 + n, col] += 1
    mask = count > 0
    kspace[:, mask] /= count[mask]
    header = {"matrix": list(enc["matrix"]), "fov_mm": list(enc["fov_mm"]), "n_acquisitions": len(acquisitions)}
    return _kspace_result(kspace, mask, coil_maps, fmt="ismrmrd", path=path, slice_index=index, n_slices=n_slices,
                          affine=_grid_affine(enc["fov_mm"], (H, W)), header=header)  # fmt: skip
