"""Reconstruction configs (TOML) for ``regrecon reconstruct``: read, check, build the operator.

A config has four tables; paths are relative to the config file's folder::

    [input]
    path = "sinogram.npy"         # .npy, .npz or .h5/.hdf5
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

Every error names the key (``geometry.n_angles``), the value received and what was expected.
"""

from __future__ import annotations

import inspect
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from deepinv.physics import LinearPhysics

from recon.methods import get_method

TABLES = ("input", "geometry", "method", "output", "batch")


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
    physics: LinearPhysics
    method: str
    params: dict
    output: Path
    batch: dict = field(default_factory=dict)

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
    for table in ("input", "geometry", "method"):
        if not isinstance(raw.get(table), dict):
            raise ValueError(f"config: missing table [{table}]; expected [input], [geometry] and [method]")
    base = path.parent
    inp = _table(raw, "input", {"path": str, "key": str}, required=("path",))
    out = _table(raw, "output", {"path": str})
    batch = _table(raw, "batch", {"scheduler": str, "n_workers": int})
    geometry = dict(raw["geometry"])
    operator = geometry.get("operator")
    if operator not in GEOMETRIES:
        raise ValueError(f"geometry.operator: expected one of {', '.join(GEOMETRIES)}, received {operator!r}")
    geometry = {"operator": operator} | _table(raw, "geometry", GEOMETRIES[operator] | {"operator": str}, REQUIRED[operator])
    params = dict(raw["method"])
    name = params.pop("name", None)
    if name is None:
        raise ValueError("method.name: missing; expected a method name such as 'tv'")
    try:
        fn = get_method(name)
    except (TypeError, ValueError) as err:
        raise ValueError(f"method.name: {err}") from err
    _check_params(name, fn, params)
    try:
        physics = build_physics(geometry)
    except (TypeError, ValueError) as err:
        raise ValueError(f"geometry: {err}") from err
    return ReconConfig(
        source=path,
        input_path=(base / inp["path"]).resolve(),
        input_key=inp.get("key"),
        geometry=geometry,
        physics=physics,
        method=name,
        params=params,
        output=(base / out["path"]).resolve() if "path" in out else path.with_suffix(".h5").resolve(),
        batch=batch,
    )


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
        if expected is not object and (not isinstance(value, expected) or isinstance(value, bool)):
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
