"""Files in and out: measurements from ``.npy`` / ``.npz`` / HDF5, results to HDF5 with provenance.

A result file written by :func:`write_result` holds

* dataset ``x``: the reconstruction, (B, C, *spatial), float32 or float64 as computed;
* group ``history``: one dataset per solver-history series (objective, residual, time, ...);
  group ``info``: any other array the method reports (e.g. one parameter per batch element);
* root attributes (JSON text where the value is not a number or a string): ``regrecon_version``,
  ``torch_version``, ``deepinv_version``, ``method``, ``params``, ``geometry``, ``input_file``,
  ``input_sha256``, ``wall_time_s``, ``created`` (UTC, ISO 8601), ``info`` (the method's scalar
  info fields).

Writes are atomic: the file is written under a temporary name in the target folder and renamed
over the target only once complete, so an interrupted run never leaves a half-written result.
:func:`atomic_output` is that step, shared with the NIfTI and DICOM writers of :mod:`recon.writers`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from recon.result import ReconInfo

#: file suffixes :func:`load_measurements` reads
MEASUREMENT_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")


def sha256_array(a: np.ndarray) -> str:
    """Hex SHA-256 of an array's dtype, shape and C-order bytes (the fingerprint of in-memory data)."""
    a = np.ascontiguousarray(a)
    digest = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    digest.update(a.tobytes())
    return digest.hexdigest()


def load_measurements(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """Read one array of measurements.

    Args:
        path: ``.npy``; ``.npz`` (``key`` names the array; optional when the archive holds one);
            ``.h5`` / ``.hdf5`` (``key`` is the dataset path; optional when the file holds one
            dataset at its root).
        key: array name inside an ``.npz`` / HDF5 file; must be None for ``.npy``.

    Returns:
        The array as stored (any shape; real or complex).

    Raises:
        ValueError: unknown suffix, missing file, ``key`` absent or ambiguous, or the array holds
            NaN / Inf (the message says which).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MEASUREMENT_SUFFIXES:
        raise ValueError(f"input: expected a file ending in {', '.join(MEASUREMENT_SUFFIXES)}, received {str(path)!r}")
    if not path.is_file():
        raise ValueError(f"input: no such file {str(path)!r}")
    if suffix == ".npy":
        if key is not None:
            raise ValueError(f"key: a .npy file holds one array, so key must be absent; received {key!r}")
        data = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            data = archive[_pick_key(key, list(archive.files), path)]
    else:
        import h5py  # noqa: PLC0415

        with h5py.File(path, "r") as fh:
            names = [k for k, v in fh.items() if isinstance(v, h5py.Dataset)]
            name = key if key is not None and key in fh else _pick_key(key, names, path)
            data = fh[name][()]
    data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"input: expected a numeric array in {str(path)!r}, received dtype {data.dtype}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"input: {str(path)!r} holds {int(np.size(data) - np.isfinite(data).sum())} NaN/Inf values; expected finite data")
    return data


def _pick_key(key: str | None, names: list[str], path: Path) -> str:
    if key is None:
        if len(names) != 1:
            raise ValueError(f"key: {str(path)!r} holds {len(names)} arrays ({', '.join(names)}); name one with key")
        return names[0]
    if key not in names:
        raise ValueError(f"key: {key!r} is not in {str(path)!r}; expected one of {', '.join(names)}")
    return key


def provenance(
    method: str,
    params: Mapping,
    geometry: Mapping | None = None,
    input_file: str | None = None,
    input_sha256: str | None = None,
) -> dict[str, str]:
    """The provenance attributes of a result: versions, method, parameters, geometry, input checksum.

    Nested values are JSON text so that any HDF5 reader shows them. The time stamp is UTC.
    """
    return {
        "regrecon_version": package_version("regrecon"),
        "torch_version": str(torch.__version__),
        "deepinv_version": package_version("deepinv"),
        "method": method,
        "params": json.dumps(dict(params), sort_keys=True, default=_jsonable),
        "geometry": json.dumps(dict(geometry or {}), sort_keys=True, default=_jsonable),
        "input_file": input_file or "",
        "input_sha256": input_sha256 or "",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def package_version(dist: str) -> str:
    """Installed version of a distribution, or "unknown"."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _jsonable(value: object) -> object:
    """JSON fallback: tensors and arrays as (nested) lists, numpy scalars as numbers, the rest as text."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return repr(value)


def split_info(info: ReconInfo | Mapping) -> tuple[dict, dict[str, np.ndarray]]:
    """Split a method's info into JSON-able scalars and array series (the solver history).

    A :class:`recon.result.ReconInfo` is read field by field (``history``, ``n_iter``,
    ``converged``, ``stop_reason``, ``seconds``, ``params/...``, ``extra/...``); a plain mapping (from
    a user's own callable in :func:`recon.batch.reconstruct_many`) key by key. Nested mappings
    and dataclasses (a solver ``History``) are flattened with ``/`` in the key; numeric sequences
    and tensors of other than one element become array series, one-element ones numbers; anything
    else is kept as its text.
    """
    if isinstance(info, ReconInfo):
        info = {field.name: getattr(info, field.name) for field in dataclasses.fields(info)}
    elif not isinstance(info, Mapping):
        raise TypeError(f"info: expected a ReconInfo or a mapping, received {type(info).__name__}")
    scalars: dict = {}
    series: dict[str, np.ndarray] = {}
    for key, value in _flatten(info):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, list | tuple | np.ndarray | np.generic):
            arr = np.asarray(value)
            if arr.dtype.kind in "biuf" and arr.size != 1:
                series[key] = arr
                continue
            if arr.dtype.kind in "biufU" and arr.size == 1:
                value = arr.reshape(()).item()
        scalars[key] = value if isinstance(value, bool | int | float | str) or value is None else repr(value)
    return scalars, series


def _flatten(info: Mapping, prefix: str = "") -> list[tuple[str, object]]:
    items = []
    for key, value in info.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        if isinstance(value, Mapping):
            items += _flatten(value, f"{prefix}{key}/")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def write_attrs(node, attrs: Mapping) -> None:
    """Set HDF5 attributes: numbers and strings as they are, anything else as JSON text."""
    for key, value in attrs.items():
        node.attrs[key] = value if isinstance(value, int | float | str) else json.dumps(value, default=_jsonable)


def check_hdf5_path(name: str, path: object) -> Path:
    """``path`` as a Path, checked to be a str / PathLike ending in ``.h5`` or ``.hdf5``.

    Raises:
        TypeError: not a str or os.PathLike. ValueError: another suffix (the message names ``name``).
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{name}: expected a path (str or os.PathLike), received {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(f"{name}: expected a file ending in .h5 or .hdf5, received {str(path)!r}")
    return path


@contextlib.contextmanager
def atomic_output(path: Path, *, overwrite: bool, name: str = "output", folder: bool = False, suffix: str = ".part") -> Iterator[Path]:
    """A temporary file (or folder) beside ``path``, renamed to ``path`` when the block ends without error.

    The temporary name starts with ``.<name of path>.`` and ends in ``suffix`` (a writer that infers
    the format from the name passes e.g. ``".part.nii.gz"``). If the block raises, the temporary
    file or folder is removed and ``path`` is untouched. A file is renamed over an existing one in one
    step (``os.replace``); an existing folder is first renamed aside, then removed once the new one
    is in place (should the second rename fail, the old folder is put back).

    Args:
        path: the target file or folder; its parent folder is created if missing.
        overwrite: replace an existing ``path``; False raises instead.
        name: the argument name used in error messages.
        folder: the target is a folder (the block fills the yielded folder), else a file.
        suffix: end of the temporary name.

    Raises:
        ValueError: ``path`` exists and ``overwrite`` is False, or it exists as a folder where a file
            is written (or the reverse).

    Example:
        >>> with atomic_output(Path("out/x.txt"), overwrite=False) as tmp:  # doctest: +SKIP
        ...     tmp.write_text("done")
    """
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise ValueError(f"{name}: {str(path)!r} exists; expected a new path (or overwrite=True to replace it)")
        if path.is_dir() != folder:
            kind, other = ("a folder", "a file") if folder else ("a file", "a folder")
            raise ValueError(f"{name}: {str(path)!r} is {other}; expected {kind} (or a new path)")
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent))
    else:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod((0o777 if folder else 0o666) & ~umask)  # mkstemp / mkdtemp make private 0600 / 0700: give the usual modes
    try:
        yield tmp
        if folder and path.exists():
            old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)
                raise
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_result(
    path: str | os.PathLike,
    x: torch.Tensor | np.ndarray,
    info: ReconInfo | Mapping,
    attrs: Mapping,
    wall_time_s: float,
    *,
    overwrite: bool = True,
) -> Path:
    """Write one reconstruction with its provenance to HDF5, atomically (temporary file + rename).

    Args:
        path: target ``.h5`` / ``.hdf5`` file; its folder is created if missing; an existing file
            is replaced only once the new one is complete.
        x: the reconstruction.
        info: the method's :class:`~recon.result.ReconInfo` (see :func:`split_info`).
        attrs: provenance attributes (see :func:`provenance`).
        wall_time_s: wall time of the reconstruction, seconds.
        overwrite: replace an existing ``path`` (the default, so that a rerun replaces its
            result); False raises ``ValueError`` instead.

    Returns:
        The path written.
    """
    import h5py  # noqa: PLC0415

    path = check_hdf5_path("output", path)
    scalars, series = split_info(info)
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    with atomic_output(path, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as fh:
        fh.create_dataset("x", data=x)
        for name, arr in series.items():
            fh.create_dataset(name if name.startswith("history/") else f"info/{name}", data=arr)
        write_attrs(fh, {**attrs, "info": scalars, "wall_time_s": float(wall_time_s)})
    return path
