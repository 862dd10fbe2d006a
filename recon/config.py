"""Reconstruction configs (TOML) for ``regrecon reconstruct``: read, check, build the operator.

A config has four tables; paths are relative to the config file's folder::

    [input]
    path = "sinogram.npy"         # .npy, .npz or .h5/.hdf5 (or a scanner file, see below)
    key = "y"                     # array name in an .npz / HDF5 file (optional if it holds one)

    [geometry]
    operator = "parallel_beam_ct" # one of GEOMETRIES
    img_size = 128
    n_angles = 180                # angles k pi / n_angles, k = 0..n_angles-1 (or `angles`, radians)
    backend = "numba"

    [method]
    name = "tv"                   # one of recon.methods.METHOD_NAMES
    noise_level = 0.01            # every other key is a keyword argument of the method

    [output]
    path = "result.h5"            # optional; default <config name>.h5 beside the config
    format = "h5"                 # optional: "h5", "nifti" (.nii/.nii.gz) or "dicom" (a folder);
                                  # default from the path's suffix
    overwrite = true              # optional; false: an existing output is an error

    [batch]                       # optional, used by `regrecon reconstruct --batch`
    scheduler = "tcp://host:8786" # optional; default a LocalCluster sized to the machine
    n_workers = 2                 # optional, LocalCluster only

Geometries (keys of ``[geometry]`` besides ``operator``; required ones have no default):

* ``parallel_beam_ct``: ``img_size``; ``n_angles`` or ``angles``; ``n_detectors``,
  ``detector_spacing``, ``backend`` ("astra" or "numba"). Measurements (C, n_angles, n_detectors).
* ``fan_beam_ct``: as parallel beam plus ``n_detectors``, ``source_origin``, ``origin_detector``
  (pixels).
* ``mri``: single-coil Cartesian (deepinv ``MRI``): ``img_size`` (N or [H, W]), ``acceleration``,
  ``pattern``, ``center_fraction``, ``seed`` (the mask of :func:`operators.kspace_masks.cartesian_mask`).
  Measurements (2, H, W): real and imaginary k-space.
* ``blur``: circular convolution (deepinv ``BlurFFT``) with a Gaussian kernel: ``img_size``,
  ``sigma`` (pixels), ``channels``. Measurements (C, H, W).

Input formats (``[input] format``; default ``"array"`` for ``.npy`` / ``.npz`` and for HDF5 files
that are neither fastMRI nor ISMRMRD, else :func:`recon.readers.detect_format`), with their keys
(the readers' keyword arguments, :mod:`recon.readers`):

* ``array``: ``key``. The measurements as stored, one item (or N with ``--batch``).
* ``dicom`` (``series_uid``), ``nifti``: an image volume (D, H, W) whose slices are the
  measurements of an image-domain geometry (``blur``): measurements (D, 1, H, W), all slices in one
  call. A DICOM input is the source of a DICOM output (patient and study identifiers kept).
* ``tiff``: ``flat``, ``dark``, ``angles`` (a text file or a list), ``angle_range``,
  ``angle_unit``, ``center`` (a number or ``"estimate"``), ``min_transmission``, ``pixel_size``.
  Parallel-beam projections; ``[geometry]`` is optional (``operator = "parallel_beam_ct"`` with
  ``img_size``, ``backend`` only: angles and detectors come from the file). One sinogram per
  detector row, all in one call.
* ``fastmri``, ``ismrmrd``: ``slice_index``. Raw k-space; the SENSE operator (mask, coil maps)
  comes from the file, so there is no ``[geometry]`` table.

Every error names the key (``geometry.n_angles``), the value received and what was expected.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from deepinv.physics import LinearPhysics

from recon.io import MEASUREMENT_SUFFIXES, load_measurements
from recon.methods import get_method
from recon.readers import KSpace, Projections, axial_affine, detect_format, read
from recon.writers import output_format

TABLES = ("input", "geometry", "method", "output", "batch")
#: ``[input] format`` values: plain arrays, or a reader of :mod:`recon.readers`
INPUT_FORMATS = ("array", "dicom", "nifti", "tiff", "fastmri", "ismrmrd")
#: format -> {key: type} of its ``[input]`` keys besides ``path`` and ``format``
INPUT_KEYS: dict[str, dict[str, type]] = {
    "array": {"key": str},
    "dicom": {"series_uid": str},
    "nifti": {},
    "tiff": {"flat": str, "dark": str, "angles": object, "angle_range": list, "angle_unit": str, "center": object,
             "min_transmission": float, "pixel_size": float},
    "fastmri": {"slice_index": int},
    "ismrmrd": {"slice_index": int},
}  # fmt: skip
#: suffixes of the scanner files (a missing one is reported as missing, not as of unknown format)
SCANNER_SUFFIXES = (".dcm", ".nii", ".gz", ".tif", ".tiff", ".mrd")
#: ``[input]`` keys that name files (relative to the config's folder)
INPUT_PATH_KEYS = ("flat", "dark", "angles")
#: the ``[geometry]`` keys a TIFF projection input allows (the rest comes from the file)
TIFF_GEOMETRY_KEYS = ("operator", "img_size", "backend")


def _ct_keys(extra: dict) -> dict:
    return {"img_size": int, "n_angles": int, "angles": list, "n_detectors": int, "detector_spacing": float, "backend": str, **extra}


#: operator name -> {key: type} of its ``[geometry]`` keys
GEOMETRIES: dict[str, dict[str, type]] = {
    "parallel_beam_ct": _ct_keys({}),
    "fan_beam_ct": _ct_keys({"source_origin": float, "origin_detector": float}),
    "mri": {"img_size": object, "acceleration": float, "pattern": str, "center_fraction": float, "seed": int},
    "blur": {"img_size": object, "sigma": float, "channels": int},
}
REQUIRED = {
    "parallel_beam_ct": ("img_size",),
    "fan_beam_ct": ("img_size", "n_detectors", "source_origin", "origin_detector"),
    "mri": ("img_size", "acceleration"),
    "blur": ("img_size", "sigma"),
}


@dataclass
class ReconConfig:
    """A checked config. ``params`` are the method's keyword arguments (without ``name``)."""

    source: Path
    input_path: Path
    input_key: str | None
    geometry: dict
    physics: LinearPhysics | None  # None where the input file carries the geometry (tiff, k-space)
    method: str
    params: dict
    output: Path
    batch: dict = field(default_factory=dict)
    input_format: str = "array"
    input_options: dict = field(default_factory=dict)  # the reader's keyword arguments
    output_format: str = "h5"
    overwrite: bool = True

    def method_fn(self) -> Callable:
        """The one-call method ``recon.<method>``."""
        return get_method(self.method)


def load_config(path: str | Path) -> ReconConfig:
    """Read and check a TOML config (see the module docstring for the keys).

    Raises:
        ValueError: missing file, TOML syntax error, unknown table or key, wrong type, missing
            required key, unknown operator or method, or a parameter the method does not take.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config: no such file {str(path)!r}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config: {str(path)!r} is not valid TOML ({err})") from err
    unknown = sorted(set(raw) - set(TABLES))
    if unknown:
        raise ValueError(f"config: unknown table [{unknown[0]}]; expected tables {', '.join(TABLES)}")
    for table in ("input", "method"):
        if not isinstance(raw.get(table), dict):
            raise ValueError(f"config: missing table [{table}]; expected [input], [geometry] and [method]")
    base = path.parent
    fmt, inp = _input_table(raw, base)
    out = _table(raw, "output", {"path": str, "format": str, "overwrite": bool})
    batch = _table(raw, "batch", {"scheduler": str, "n_workers": int})
    geometry = _geometry_table(raw, fmt)
    params = dict(raw["method"])
    name = params.pop("name", None)
    if name is None:
        raise ValueError("method.name: missing; expected a method name such as 'tv'")
    try:
        fn = get_method(name)
    except (TypeError, ValueError) as err:
        raise ValueError(f"method.name: {err}") from err
    _check_params(name, fn, params)
    physics = None
    if geometry and fmt != "tiff":
        try:
            physics = build_physics(geometry)
        except (TypeError, ValueError) as err:
            raise ValueError(f"geometry: {err}") from err
    if "path" in out:
        output = (base / out["path"]).resolve()
        out_fmt = _output_format(output, out.get("format"))
    else:
        out_fmt = out.get("format", "h5")
        if out_fmt not in ("h5", "nifti", "dicom"):
            raise ValueError(f"output.format: expected one of h5, nifti, dicom, received {out_fmt!r}")
        output = path.with_suffix({"h5": ".h5", "nifti": ".nii.gz", "dicom": ""}[out_fmt]).resolve()
    options = {k: v for k, v in inp.items() if k not in ("path", "format", "key")}
    return ReconConfig(
        source=path,
        input_path=(base / inp["path"]).resolve(),
        input_key=inp.get("key"),
        geometry=geometry,
        physics=physics,
        method=name,
        params=params,
        output=output,
        batch=batch,
        input_format=fmt,
        input_options=options,
        output_format=out_fmt,
        overwrite=out.get("overwrite", True),
    )


def _output_format(output: Path, fmt: str | None) -> str:
    try:
        return output_format(output, fmt)
    except ValueError as err:
        raise ValueError(f"output.format: {err}") from err


def _input_table(raw: Mapping, base: Path) -> tuple[str, dict]:
    """The input format and the checked ``[input]`` keys (file keys resolved against ``base``)."""
    table = raw["input"]
    fmt = table.get("format")
    if fmt is not None and fmt not in INPUT_FORMATS:
        raise ValueError(f"input.format: expected one of {', '.join(INPUT_FORMATS)}, received {fmt!r}")
    if fmt is None:
        if not isinstance(table.get("path"), str):
            raise ValueError(f"input.path: expected str, received {table.get('path')!r}")
        fmt = _default_format(base / table["path"], table)
    inp = _table(raw, "input", {"path": str, "format": str} | INPUT_KEYS[fmt], required=("path",))
    for key in INPUT_PATH_KEYS:
        if isinstance(inp.get(key), str):
            inp[key] = str((base / inp[key]).resolve())
    return fmt, inp


def _default_format(path: Path, table: Mapping) -> str:
    """``array`` for .npy / .npz, and for HDF5 unless it has the fastMRI or ISMRMRD layout; else the file's format."""
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz") or "key" in table:
        return "array"
    if not path.exists():
        if suffix in (*MEASUREMENT_SUFFIXES, *SCANNER_SUFFIXES, ""):
            raise ValueError(f"input: no such file {str(path)!r}")
        raise ValueError(
            f"input: expected a file ending in {', '.join(MEASUREMENT_SUFFIXES)} or a scanner file or folder (DICOM, "
            f"NIfTI, TIFF, fastMRI, ISMRMRD: format one of {', '.join(INPUT_FORMATS[1:])}), received {str(path)!r}"
        )
    try:
        return detect_format(path)
    except ValueError as err:
        if suffix in MEASUREMENT_SUFFIXES:  # an HDF5 file of plain arrays
            return "array"
        raise ValueError(f"input: {err}") from err


def _geometry_table(raw: Mapping, fmt: str) -> dict:
    """The checked ``[geometry]`` table: required for arrays and volumes, limited for TIFF, absent for k-space."""
    table = raw.get("geometry")
    if fmt in ("fastmri", "ismrmrd"):
        if table is not None:
            raise ValueError(
                f"geometry: the SENSE operator comes from the {fmt} file (mask, coil maps); expected no [geometry] table, "
                f"received keys {', '.join(table) if isinstance(table, dict) else table!r}"
            )
        return {}
    if fmt == "tiff":
        table = dict(table or {"operator": "parallel_beam_ct"})
        if table.get("operator", "parallel_beam_ct") != "parallel_beam_ct":
            raise ValueError(
                f"geometry.operator: TIFF projections are parallel beam; expected 'parallel_beam_ct', received {table['operator']!r}"
            )
        for key, value in table.items():
            if key not in TIFF_GEOMETRY_KEYS:
                raise ValueError(
                    f"geometry.{key}: comes from the projection file (value {value!r}); expected only {', '.join(TIFF_GEOMETRY_KEYS)}"
                )
        return {"operator": "parallel_beam_ct"} | _table({"geometry": table}, "geometry", GEOMETRIES["parallel_beam_ct"] | {"operator": str})
    if not isinstance(table, dict):
        raise ValueError("config: missing table [geometry]; expected [input], [geometry] and [method]")
    operator = table.get("operator")
    if operator not in GEOMETRIES:
        raise ValueError(f"geometry.operator: expected one of {', '.join(GEOMETRIES)}, received {operator!r}")
    return {"operator": operator} | _table(raw, "geometry", GEOMETRIES[operator] | {"operator": str}, REQUIRED[operator])


def _table(raw: Mapping, table: str, keys: Mapping[str, type], required: tuple[str, ...] = ()) -> dict:
    values = raw.get(table, {})
    if not isinstance(values, dict):
        raise ValueError(f"{table}: expected a table [{table}], received {values!r}")
    for key, value in values.items():
        if key not in keys:
            raise ValueError(f"{table}.{key}: unknown key (value {value!r}); expected one of {', '.join(keys)}")
        expected = keys[key]
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        if expected is not object and (not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool)):
            raise ValueError(f"{table}.{key}: expected {expected.__name__}, received {value!r} ({type(value).__name__})")
    missing = [k for k in required if k not in values]
    if missing:
        raise ValueError(f"{table}.{missing[0]}: missing; required keys of [{table}]: {', '.join(required)}")
    return dict(values)


def _check_params(name: str, fn: Callable, params: Mapping) -> None:
    """Every key must be a keyword of the method other than physics / y."""
    signature = inspect.signature(fn)
    accepted = [p for p in list(signature.parameters)[2:] if signature.parameters[p].kind != inspect.Parameter.VAR_KEYWORD]
    for key, value in params.items():
        if key not in accepted:
            raise ValueError(f"method.{key}: not a parameter of recon.{name} (value {value!r}); expected one of {', '.join(accepted)}")


def build_physics(geometry: Mapping) -> LinearPhysics:
    """The operator of a checked ``[geometry]`` table (see the module docstring)."""
    g = dict(geometry)
    operator = g.pop("operator")
    if operator in ("parallel_beam_ct", "fan_beam_ct"):
        from operators import FanBeamCT, ParallelBeamCT  # noqa: PLC0415

        if ("angles" in g) == ("n_angles" in g):
            raise ValueError(f"geometry.n_angles: give exactly one of n_angles and angles, received {sorted(set(g) & {'angles', 'n_angles'})}")
        n_angles = g.pop("n_angles", None)
        angles = g.pop("angles", None)
        if angles is None:
            angles = torch.arange(n_angles, dtype=torch.float64) * (math.pi / n_angles)
        cls = ParallelBeamCT if operator == "parallel_beam_ct" else FanBeamCT
        return cls(angles=angles, **g)
    if operator == "mri":
        from deepinv.physics import MRI  # noqa: PLC0415

        from operators.kspace_masks import cartesian_mask  # noqa: PLC0415

        size = _image_size(g.pop("img_size"))
        mask = cartesian_mask(size, g.pop("acceleration"), **g)
        return MRI(mask=mask, img_size=(1, 2, *size))
    from deepinv.physics import BlurFFT  # noqa: PLC0415
    from deepinv.physics.functional.blur import gaussian_blur  # noqa: PLC0415

    size = _image_size(g["img_size"])
    return BlurFFT(img_size=(g.get("channels", 1), *size), filter=gaussian_blur(sigma=g["sigma"]))


def _image_size(value: object) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return value[0], value[1]
    raise ValueError(f"geometry.img_size: expected a positive int N or a list [H, W], received {value!r}")


@dataclass
class LoadedInput:
    """What ``regrecon reconstruct`` reconstructs: the operator, the measurements and what the output needs.

    ``y`` is the array as stored for ``array`` inputs (the command checks its shape), and
    ``(N, *measurement)`` for the scanner files: N slices (volumes), detector rows (TIFF) or 1
    (k-space). ``affine`` (voxel ``(k, r, c, 1)`` -> mm) and ``source`` (a DICOM source dataset)
    go to NIfTI / DICOM outputs; ``summary`` is one line on what the reader found.
    """

    physics: LinearPhysics
    y: torch.Tensor
    sha256: str
    affine: np.ndarray | None = None
    source: object | None = None
    summary: str = ""


def load_input(cfg: ReconConfig) -> LoadedInput:
    """Read the input of a checked config and build its operator (from ``[geometry]`` or from the file).

    Raises:
        ValueError: the reader's errors (bad or missing file, key, tag...), prefixed ``input:``;
            complex array measurements.
    """
    from denoisers.zoo import sha256_file  # noqa: PLC0415

    if cfg.input_format == "array":
        y = load_measurements(cfg.input_path, cfg.input_key)
        if np.iscomplexobj(y):
            raise ValueError(f"input: expected real measurements (MRI k-space as 2 real channels), received dtype {y.dtype}")
        y = torch.from_numpy(y if y.dtype == np.float64 else y.astype(np.float32))
        return LoadedInput(cfg.physics, y, sha256_file(cfg.input_path))
    try:
        data = read(cfg.input_path, format=cfg.input_format, **cfg.input_options)
    except (TypeError, ValueError) as err:
        raise ValueError(f"input: {err}") from err
    if cfg.input_path.is_dir():
        lines = "".join(f"{p.name} {sha256_file(p)}\n" for p in sorted(cfg.input_path.iterdir()) if p.is_file())
        sha = hashlib.sha256(lines.encode()).hexdigest()
    else:
        sha = sha256_file(cfg.input_path)
    if isinstance(data, Projections):
        physics = data.physics(img_size=cfg.geometry.get("img_size"), backend=cfg.geometry.get("backend", "numba"))
        summary = (f"{data.n_angles} projections of {data.line_integrals.shape[1]} x {data.n_detectors}, rotation centre "
                   f"{data.center:.2f} (shift {data.shift:+.2f} columns), {data.n_clipped} transmission values clipped")  # fmt: skip
        return LoadedInput(physics, data.sinograms(), sha, affine=axial_affine((data.pixel_size,) * 3), summary=summary)
    if isinstance(data, KSpace):
        summary = (f"slice {data.slice_index} of {data.n_slices}, {data.kspace.shape[0]} coils, acceleration "
                   f"{float(data.mask.numel() / data.mask.sum()):.2f}, coil maps {'estimated' if data.maps_estimated else 'given'}")  # fmt: skip
        return LoadedInput(data.physics, data.y, sha, affine=data.affine, summary=summary)
    if np.iscomplexobj(data.data):
        raise ValueError(f"input: {str(cfg.input_path)!r} holds a complex volume; expected real images")
    D, H, W = data.data.shape
    summary = f"{D} slices of {H} x {W}, voxel {', '.join(f'{s:.3g}' for s in data.spacing)} mm"
    return LoadedInput(cfg.physics, data.images(), sha, affine=data.affine, source=data.source, summary=summary)
