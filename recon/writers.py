"""Standard files out: NIfTI volumes and derived DICOM series, beside our HDF5 with provenance.

:func:`write` is the one entry point the command line and the file-to-reconstruction API use: it
picks the format from ``format=`` or the path (:func:`output_format`) and records the provenance of
:func:`recon.io.provenance` (package, torch and deepinv versions, method, parameters, geometry,
input file and checksum, time) in each format:

* ``h5``: :func:`recon.io.write_result` (the reconstruction, solver history and provenance attributes);
* ``nifti``: :func:`write_nifti`, ``.nii`` or ``.nii.gz``; the provenance is a JSON comment
  extension of the header, ``descrip`` names the method and version;
* ``dicom``: :func:`write_dicom`, a folder holding one file per slice: a derived series with fresh
  series and instance UIDs that keeps the patient and study identifiers of a source dataset,
  and records the method in ``SeriesDescription``, the parameters in ``ImageComments`` and
  ``DerivationDescription``, the version in ``SoftwareVersions`` and the whole provenance (JSON) in
  a private tag (group :data:`PRIVATE_GROUP`, creator :data:`PRIVATE_CREATOR`), which
  :func:`recon.readers.read_dicom` returns as ``header["provenance"]``.

Geometry follows :mod:`recon.readers`: volumes ``(D, H, W)``, an affine from the voxel index
``(k, r, c, 1)`` to RAS+ millimetres (1 mm axial voxels, :func:`recon.readers.axial_affine`, when
none is given). A DICOM reader orders slices along the image normal :math:`u \times v`: a volume
whose slice axis points the other way reads back reversed, with the affine that says so. Every writer writes under a
temporary name in the target folder and renames when complete (:func:`recon.io.atomic_output`);
an existing output path raises ``ValueError`` unless ``overwrite=True``.

Example:
    >>> x, info = recon.fbp(physics, y)                                  # doctest: +SKIP
    >>> write("fbp_series", x, method="fbp", params=info.params, source=vol, affine=vol.affine)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from recon.io import atomic_output, check_hdf5_path, provenance, write_result
from recon.readers import LPS_TO_RAS, PRIVATE_CREATOR, PRIVATE_GROUP, Volume, axial_affine
from recon.result import ReconInfo

__all__ = ["OUTPUT_FORMATS", "as_volume", "output_format", "write", "write_dicom", "write_nifti"]

#: formats :func:`write` knows
OUTPUT_FORMATS = ("h5", "nifti", "dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: patient and study attributes a derived series copies from its source
SOURCE_TAGS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight", "StudyInstanceUID",
    "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
    "FrameOfReferenceUID",
)  # fmt: skip


def _nifti_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in reversed(NIFTI_SUFFIXES) if name.endswith(s)), None)


def output_format(path: str | os.PathLike, format: str | None = None) -> str:  # noqa: A002
    """The output format of ``path``: ``.h5``/``.hdf5`` -> ``"h5"``, ``.nii``/``.nii.gz`` -> ``"nifti"``, else ``"dicom"`` (a folder).

    Raises:
        TypeError: ``path`` is not a path.
        ValueError: ``format`` is not one of :data:`OUTPUT_FORMATS`, or disagrees with the suffix.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"output: expected a path (str or os.PathLike), received {type(path).__name__}")
    path = Path(path)
    inferred = "h5" if path.suffix.lower() in (".h5", ".hdf5") else "nifti" if _nifti_suffix(path) else "dicom"
    if format is None:
        return inferred
    if format not in OUTPUT_FORMATS:
        raise ValueError(f"format: expected one of {', '.join(OUTPUT_FORMATS)}, received {format!r}")
    if format != inferred:
        expected = {"h5": "a name ending in .h5 or .hdf5", "nifti": "a name ending in .nii or .nii.gz",
                    "dicom": "a folder name without .h5/.nii"}  # fmt: skip
        raise ValueError(f"output: format {format!r} expects {expected[format]}, received {str(path)!r}")
    return format


def as_volume(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """A reconstruction as a volume ``(D, H, W)``.

    ``(H, W)`` -> one slice; ``(D, H, W)`` as is; ``(B, 1, H, W)`` (our images) -> ``(B, H, W)``;
    ``(B, 2, E, H, W)`` (deepinv's complex MRI layout) -> complex ``(B * E, H, W)``.

    Raises:
        TypeError: not an array or tensor. ValueError: another shape (e.g. several channels).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x: expected a torch.Tensor or numpy array, received {type(x).__name__}")
    if x.ndim == 2:
        return x[None]
    if x.ndim == 3:
        return x
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim == 5 and x.shape[1] == 2 and not np.iscomplexobj(x):
        z = x[:, 0] + 1j * x[:, 1]
        return z.reshape(-1, *x.shape[-2:])
    raise ValueError(f"x: expected (H, W), (D, H, W), (B, 1, H, W) or (B, 2, E, H, W) (complex MRI), received shape {x.shape}")


def _volume_and_affine(volume: object, affine: object) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(volume, Volume):
        data, default = volume.data, volume.affine
    else:
        data, default = as_volume(volume), axial_affine()
    data = np.asarray(data)
    if data.ndim != 3 or data.dtype.kind not in "iufc":
        raise ValueError(f"volume: expected a numeric (D, H, W) volume, received {data.dtype} {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"volume: expected finite values, received {int((~np.isfinite(data)).sum())} NaN/Inf")
    affine = default if affine is None else np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError(f"affine: expected a finite invertible (4, 4) matrix (voxel (k, r, c, 1) -> mm), received shape {affine.shape}")
    return data, affine


# ----------------------------------------------------------------------------- NIfTI


def write_nifti(
    path: str | os.PathLike,
    volume: Volume | np.ndarray | torch.Tensor,
    *,
    affine: np.ndarray | None = None,
    provenance: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a volume ``(D, H, W)`` as NIfTI-1 (``.nii`` or ``.nii.gz``), atomically.

    The array is stored as ``(W, H, D)`` = ``(i, j, k)`` with the affine's columns permuted to match
    (the inverse of :func:`recon.readers.read_nifti`), float32 (complex64 for complex data),
    ``sform`` and ``qform`` code 1 (scanner), units mm.

    Args:
        path: target ``.nii`` / ``.nii.gz`` file.
        volume: a :class:`recon.readers.Volume`, or anything :func:`as_volume` takes.
        affine: ``(4, 4)``, voxel ``(k, r, c, 1)`` -> RAS+ mm; default the Volume's, else :func:`~recon.readers.axial_affine`.
        provenance: attributes of :func:`recon.io.provenance`, stored as a JSON comment extension.
        overwrite: replace an existing file.

    Returns:
        The path written.

    Example:
        >>> write_nifti("x.nii.gz", x, affine=vol.affine, provenance=recon.io.provenance("tv", info.params))  # doctest: +SKIP
    """
    import nibabel as nib  # noqa: PLC0415

    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"output: expected a path (str or os.PathLike), received {type(path).__name__}")
    path = Path(path)
    suffix = _nifti_suffix(path)
    if suffix is None:
        raise ValueError(f"output: expected a file ending in .nii or .nii.gz, received {str(path)!r}")
    data, affine = _volume_and_affine(volume, affine)
    array = np.ascontiguousarray(data.transpose(2, 1, 0)).astype(np.complex64 if np.iscomplexobj(data) else np.float32)
    nifti_affine = affine[:, [2, 1, 0, 3]]
    img = nib.Nifti1Image(array, nifti_affine)
    img.set_sform(nifti_affine, code=1)
    img.set_qform(nifti_affine, code=1)
    img.header.set_xyzt_units("mm")
    if provenance is not None:
        img.header["descrip"] = f"regrecon {provenance.get('regrecon_version', '')} {provenance.get('method', '')}".encode()[:79]
        img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", json.dumps(dict(provenance), sort_keys=True).encode()))
    with atomic_output(path, overwrite=overwrite, suffix=".part" + suffix) as tmp:
        nib.save(img, tmp)
    return path


# ----------------------------------------------------------------------------- DICOM


def _source_dataset(source: object):
    """The pydicom Dataset of a source argument (Volume, Dataset, DICOM file path or None)."""
    import pydicom  # noqa: PLC0415

    if source is None or isinstance(source, pydicom.Dataset):
        return source
    if isinstance(source, Volume):
        if source.source is None:
            raise ValueError(f"source: expected a Volume read from DICOM, received one read from {source.format}")
        return source.source
    if isinstance(source, str | os.PathLike):
        try:
            return pydicom.dcmread(source, stop_before_pixels=True)
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"source: cannot read {str(source)!r} as DICOM ({type(err).__name__}: {err})") from err
    raise TypeError(f"source: expected a Volume, a pydicom Dataset, a DICOM file path or None, received {type(source).__name__}")


def _dicom_geometry(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float], np.ndarray]:
    """(row cosine u, column cosine v, (row spacing, column spacing), slice step) in LPS from a RAS (k, r, c) affine."""
    lps = LPS_TO_RAS @ affine
    row_spacing, col_spacing = np.linalg.norm(lps[:3, 1]), np.linalg.norm(lps[:3, 2])
    u, v = lps[:3, 2] / col_spacing, lps[:3, 1] / row_spacing
    if abs(u @ v) > 1e-3:
        raise ValueError(f"affine: the row and column axes make {np.degrees(np.arccos(u @ v)):.2f} degrees; expected 90 (DICOM stores no shear)")
    return u, v, (float(row_spacing), float(col_spacing)), lps[:3, 0]


def _ds_number(value: float) -> str:
    """A DICOM decimal string (16 characters at most)."""
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.8e}"


def write_dicom(
    folder: str | os.PathLike,
    volume: Volume | np.ndarray | torch.Tensor,
    *,
    provenance: Mapping[str, str],
    affine: np.ndarray | None = None,
    source: object = None,
    modality: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a real volume ``(D, H, W)`` as a derived DICOM series, one file per slice, atomically.

    The series is new (``SeriesInstanceUID`` and every ``SOPInstanceUID`` generated here,
    ``ImageType`` DERIVED\\SECONDARY). With a ``source``, its patient and study identifiers
    (:data:`SOURCE_TAGS`, the frame of reference included) are kept and it is referenced in
    ``SourceImageSequence``; without one, a new study is made and the patient left empty. The
    values are stored as unsigned 16-bit integers with one ``RescaleSlope`` / ``RescaleIntercept``
    for the series (slope = range / 65535: a round trip is exact to half a slope). Geometry from
    ``affine``: ``ImagePositionPatient`` per slice, ``ImageOrientationPatient``, ``PixelSpacing``,
    ``SliceThickness`` and ``SpacingBetweenSlices`` (LPS, mm).

    Args:
        folder: the series folder to create (files ``IM0001.dcm``, ...).
        volume: a :class:`recon.readers.Volume`, or anything :func:`as_volume` takes; real (write
            ``np.abs`` of a complex image, as :func:`write` does).
        provenance: attributes of :func:`recon.io.provenance` (method, parameters, versions, ...).
        affine: ``(4, 4)``, voxel ``(k, r, c, 1)`` -> RAS+ mm; default the Volume's, else :func:`~recon.readers.axial_affine`.
        source: the source series: a DICOM :class:`~recon.readers.Volume`, a ``pydicom.Dataset``,
            a DICOM file path, or None.
        modality: ``"CT"``, ``"MR"``, ... (CT / MR image storage; anything else secondary
            capture); default the source's, else ``"OT"``.
        overwrite: replace an existing folder.

    Returns:
        The folder written.

    Example:
        >>> vol = recon.readers.read_dicom("series/")                                  # doctest: +SKIP
        >>> write_dicom("tv_series", x, provenance=recon.io.provenance("tv", info.params), source=vol, affine=vol.affine)  # doctest: +SKIP
    """
    from pydicom.dataset import Dataset, FileMetaDataset  # noqa: PLC0415
    from pydicom.uid import (  # noqa: PLC0415
        PYDICOM_IMPLEMENTATION_UID,
        CTImageStorage,
        ExplicitVRLittleEndian,
        MRImageStorage,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    if not isinstance(folder, str | os.PathLike):
        raise TypeError(f"output: expected a folder path (str or os.PathLike), received {type(folder).__name__}")
    folder = Path(folder)
    if folder.suffix.lower() in (".h5", ".hdf5") or _nifti_suffix(folder):
        raise ValueError(f"output: expected a folder name for a DICOM series, received {str(folder)!r}")
    if not isinstance(provenance, Mapping) or "method" not in provenance:
        raise TypeError("provenance: expected the mapping of recon.io.provenance (with 'method'), received " + type(provenance).__name__)
    data, affine = _volume_and_affine(volume, affine)
    if np.iscomplexobj(data):
        raise TypeError("volume: expected a real volume (DICOM stores real images), received complex values; pass np.abs(volume)")
    src = _source_dataset(source)
    if modality is None:
        modality = str(src.get("Modality", "")) if src is not None else (volume.modality if isinstance(volume, Volume) else "")
        modality = modality or "OT"
    if not isinstance(modality, str) or not modality:
        raise ValueError(f"modality: expected a DICOM modality such as 'CT' or 'MR', received {modality!r}")
    sop_class = {"CT": CTImageStorage, "MR": MRImageStorage}.get(modality, SecondaryCaptureImageStorage)
    u, v, pixel_spacing, step = _dicom_geometry(affine)
    origin = (LPS_TO_RAS @ affine)[:3, 3]
    lo, hi = float(data.min()), float(data.max())
    slope = (hi - lo) / 65535 if hi > lo else 1.0
    pixels = np.round((data - lo) / slope).astype(np.uint16)
    method = str(provenance["method"])
    version = str(provenance.get("regrecon_version", ""))
    params = str(provenance.get("params", "{}"))
    now = datetime.datetime.now()
    series_uid = generate_uid()

    base = Dataset()
    if src is not None:
        for tag in SOURCE_TAGS:
            if tag in src:
                setattr(base, tag, src.data_element(tag).value)
    base.PatientName = base.get("PatientName", "")
    base.PatientID = base.get("PatientID", "")
    base.StudyInstanceUID = base.get("StudyInstanceUID", generate_uid())
    base.FrameOfReferenceUID = base.get("FrameOfReferenceUID", generate_uid())
    base.StudyDate = base.get("StudyDate", now.strftime("%Y%m%d"))
    base.StudyTime = base.get("StudyTime", now.strftime("%H%M%S"))
    base.SOPClassUID = sop_class
    base.Modality = modality
    base.SeriesInstanceUID = series_uid
    base.SeriesNumber = int(src.get("SeriesNumber", 0) or 0) + 1000 if src is not None else 1000
    base.SeriesDescription = f"regrecon {method}"[:64]
    base.SeriesDate = base.ContentDate = now.strftime("%Y%m%d")
    base.SeriesTime = base.ContentTime = now.strftime("%H%M%S")
    base.ImageType = ["DERIVED", "SECONDARY"]
    base.SoftwareVersions = f"regrecon {version}"[:64]
    base.DerivationDescription = f"{method} reconstruction, regrecon {version}; parameters {params}"[:1024]
    base.ImageComments = f"{method} {params}"[:10240]
    if src is not None and "SOPInstanceUID" in src:
        ref = Dataset()
        ref.ReferencedSOPClassUID = src.get("SOPClassUID", sop_class)
        ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
        base.SourceImageSequence = [ref]
    base.ImageOrientationPatient = [_ds_number(t) for t in (*u, *v)]
    base.PixelSpacing = [_ds_number(pixel_spacing[0]), _ds_number(pixel_spacing[1])]
    base.SliceThickness = base.SpacingBetweenSlices = _ds_number(float(np.linalg.norm(step)))
    base.SamplesPerPixel = 1
    base.PhotometricInterpretation = "MONOCHROME2"
    base.Rows, base.Columns = data.shape[1:]
    base.BitsAllocated = base.BitsStored = 16
    base.HighBit = 15
    base.PixelRepresentation = 0
    base.RescaleSlope = _ds_number(slope)
    base.RescaleIntercept = _ds_number(lo)
    base.RescaleType = "HU" if modality == "CT" else "US"
    base.WindowCenter, base.WindowWidth = _ds_number((lo + hi) / 2), _ds_number(max(hi - lo, 1e-6))
    base.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True).add_new(0x01, "UT", json.dumps(dict(provenance), sort_keys=True))

    with atomic_output(folder, overwrite=overwrite, folder=True) as tmp:
        for k in range(data.shape[0]):
            ds = base.copy()
            ds.SOPInstanceUID = generate_uid()
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [_ds_number(t) for t in origin + k * step]
            ds.PixelData = pixels[k].tobytes()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = sop_class
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            ds.save_as(tmp / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
    return folder


# ----------------------------------------------------------------------------- one entry point


def write(
    path: str | os.PathLike,
    x: torch.Tensor | np.ndarray,
    *,
    method: str,
    params: Mapping | None = None,
    format: str | None = None,  # noqa: A002
    info: ReconInfo | Mapping | None = None,
    affine: np.ndarray | None = None,
    source: object = None,
    geometry: Mapping | None = None,
    input_file: str | None = None,
    input_sha256: str | None = None,
    wall_time_s: float = 0.0,
    overwrite: bool = False,
) -> Path:
    """Write a reconstruction with its provenance as HDF5, NIfTI or a DICOM series (see the module docstring).

    Args:
        path: ``.h5``/``.hdf5``, ``.nii``/``.nii.gz``, or a folder name (DICOM).
        x: the reconstruction; NIfTI and DICOM take it through :func:`as_volume` (a complex MRI
            image is written as its magnitude to DICOM, recorded as ``image = "magnitude"``).
        method: the method's name.
        params: its parameters (``info.params``, or those given).
        format: one of :data:`OUTPUT_FORMATS`; default from the path (:func:`output_format`).
        info: the method's :class:`~recon.result.ReconInfo` (HDF5 stores its history).
        affine: voxel ``(k, r, c, 1)`` -> RAS+ mm of the volume (NIfTI, DICOM); default :func:`~recon.readers.axial_affine`.
        source: DICOM source series (see :func:`write_dicom`).
        geometry, input_file, input_sha256: provenance (:func:`recon.io.provenance`).
        wall_time_s: the reconstruction's wall time (HDF5).
        overwrite: replace an existing output.

    Returns:
        The path written.
    """
    fmt = output_format(path, format)
    attrs = provenance(method, params or {}, geometry, input_file, input_sha256)
    if fmt == "h5":
        return write_result(check_hdf5_path("output", path), x, info if info is not None else {}, attrs, wall_time_s, overwrite=overwrite)
    volume = as_volume(x)
    if fmt == "nifti":
        return write_nifti(path, volume, affine=affine, provenance=attrs, overwrite=overwrite)
    if np.iscomplexobj(volume):
        volume, attrs = np.abs(volume), {**attrs, "image": "magnitude"}
    return write_dicom(path, volume, provenance=attrs, affine=affine, source=source, overwrite=overwrite)
