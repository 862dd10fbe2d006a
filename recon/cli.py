"""The ``regrecon`` command line: ``reconstruct`` and ``info``.

* ``regrecon reconstruct CONFIG.toml [--batch] [--output FILE]`` reads measurements and a geometry
  from a TOML config (:mod:`recon.config`): arrays, or scanner files (DICOM, NIfTI, TIFF projection
  stacks, fastMRI / ISMRMRD k-space, :mod:`recon.readers`); runs the method and writes HDF5, NIfTI
  or a DICOM series with provenance (:func:`recon.writers.write`); ``--batch`` treats the first axis
  of the measurements as independent items and runs them on Dask (:func:`recon.batch.reconstruct_many`).
* ``regrecon info``: versions, the backends found (astra CPU / CUDA, numba, CUDA) and the shipped
  weights.

Errors in the input (config, files) end the command with exit status 2 and one line
``regrecon: error: ...`` naming the key, the value received and what was expected.
"""

from __future__ import annotations

import argparse
import inspect
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``regrecon`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except ValueError as err:
        print(f"regrecon: error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    from recon.io import package_version  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="regrecon", description="Regularized image reconstruction (CT, MRI, MIMO radar, deblurring).")
    parser.add_argument("--version", action="version", version=f"regrecon {package_version('regrecon')}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    rec = sub.add_parser("reconstruct", help="reconstruct from a TOML config, write HDF5, NIfTI or DICOM", description=_cmd_reconstruct.__doc__)
    rec.add_argument("config", type=Path, metavar="CONFIG.toml", help="the config (see recon/config.py for its keys)")
    rec.add_argument("--batch", action="store_true", help="the first axis of the measurements indexes independent items: run them on Dask")
    rec.add_argument("--output", "-o", type=Path, help="result: .h5, .nii/.nii.gz or a DICOM folder; overrides [output] path")
    rec.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    rec.set_defaults(run=_cmd_reconstruct)

    info = sub.add_parser("info", help="versions, backends and shipped weights", description=_cmd_info.__doc__)
    info.set_defaults(run=_cmd_info)
    return parser


# ----------------------------------------------------------------------------- reconstruct


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    """Reconstruct the measurements a TOML config names; write HDF5, NIfTI or DICOM with provenance (atomically)."""
    from recon.config import load_config, load_input  # noqa: PLC0415
    from recon.writers import output_format, write  # noqa: PLC0415

    cfg = load_config(args.config)
    output, fmt = cfg.output, cfg.output_format
    if args.output is not None:  # its suffix says the format
        output = args.output.resolve()
        fmt = output_format(output)
    if args.batch and fmt != "h5":
        raise ValueError(f"output: --batch streams the results into an HDF5 store; expected a .h5 output, received {str(output)!r}")
    inp = load_input(cfg)
    if inp.summary:
        print(f"input: {inp.summary}")
    y = inp.y
    item = _measurement_shape(inp.physics)
    params = dict(cfg.params)
    if "progress" in inspect.signature(cfg.method_fn()).parameters and "progress" not in params:
        params["progress"] = args.progress and not args.batch  # one bar over the items in batch mode
    if args.batch:
        from recon.batch import reconstruct_many  # noqa: PLC0415

        if tuple(y.shape[1:]) != item:
            raise ValueError(f"input: --batch expects measurements (N, {', '.join(map(str, item))}) for this geometry, received {tuple(y.shape)}")
        report = reconstruct_many(
            cfg.method, inp.physics, y, store=output, params=params, client=cfg.batch.get("scheduler"),
            n_workers=cfg.batch.get("n_workers"), progress=args.progress,
        )  # fmt: skip
        print(f"{len(report.computed)} computed, {len(report.skipped)} already stored, {len(report.failed)} failed "
              f"in {report.seconds:.1f} s -> {report.store}")  # fmt: skip
        for index, message in report.failed.items():
            print(f"item {index} failed: {message.splitlines()[0]}", file=sys.stderr)
        return 1 if report.failed else 0
    if cfg.input_format == "array":
        if tuple(y.shape) == item:
            y = y[None]
        if tuple(y.shape[1:]) != item or y.shape[0] != 1:
            raise ValueError(
                f"input: expected measurements {item} (or (1, {', '.join(map(str, item))})) for this geometry, received {tuple(y.shape)}"
            )
    elif tuple(y.shape[1:]) != item:
        raise ValueError(f"input: expected measurements (N, {', '.join(map(str, item))}) for this geometry, received {tuple(y.shape)}")
    t0 = time.perf_counter()
    x, info = cfg.method_fn()(inp.physics, y, **params)
    wall = time.perf_counter() - t0
    write(
        output, x, method=cfg.method, params=cfg.params, format=fmt, info=info, affine=inp.affine, source=inp.source,
        geometry=cfg.geometry, input_file=str(cfg.input_path), input_sha256=inp.sha256, wall_time_s=wall, overwrite=cfg.overwrite,
    )  # fmt: skip
    print(f"recon.{cfg.method}: {tuple(x.shape)} in {wall:.1f} s -> {output}")
    return 0


def _measurement_shape(physics) -> tuple[int, ...]:
    """Shape of one measurement (without the batch axis) of an operator."""
    import torch  # noqa: PLC0415

    return tuple(physics.A(torch.zeros(1, *physics.img_size)).shape[1:])


# ----------------------------------------------------------------------------- info


def _cmd_info(args: argparse.Namespace) -> int:  # noqa: ARG001
    """Print versions, the backends found (astra CPU / CUDA, numba, CUDA) and the shipped weights."""
    import torch  # noqa: PLC0415

    from denoisers import zoo  # noqa: PLC0415
    from recon.io import package_version  # noqa: PLC0415

    print(f"regrecon {package_version('regrecon')}  (python {platform.python_version()}, {platform.platform()})")
    for dist in ("torch", "deepinv", "numpy", "scipy", "scikit-image", "numba", "astra-toolbox", "dask", "distributed", "h5py"):
        print(f"  {dist:14s} {package_version(dist)}")
    print("backends:")
    cuda = torch.cuda.is_available()
    print(f"  torch CUDA     {'yes: ' + torch.cuda.get_device_name(0) if cuda else 'no'}")
    print(f"  astra CPU      {_astra_status()[0]}")
    print(f"  astra CUDA     {_astra_status()[1]}")
    print(f"  numba          {_numba_status()}")
    print("shipped weights (data/weights):")
    for name in zoo.available():
        try:
            card = zoo.card(name)
        except (FileNotFoundError, ValueError) as err:
            print(f"  {name:14s} missing ({err})")
            continue
        weights = zoo.WEIGHTS_DIR / card["weights_file"]
        check = "ok" if weights.is_file() and zoo.sha256_file(weights) == card["sha256"] else "MISMATCH"
        print(f"  {name:14s} {card['weights_bytes'] / 1e6:5.2f} MB  sha256 {card['sha256'][:12]} {check}  {card['command']}")
    return 0


def _astra_status() -> tuple[str, str]:
    try:
        import astra  # noqa: PLC0415
    except ImportError as err:
        return f"no ({err})", "no"
    return "yes", "yes" if astra.use_cuda() else "no (no GPU found)"


def _numba_status() -> str:
    try:
        import numba  # noqa: PLC0415
        from numba import cuda  # noqa: PLC0415
    except ImportError as err:
        return f"no ({err})"
    return f"yes, {numba.config.NUMBA_NUM_THREADS} threads; numba CUDA {'yes' if cuda.is_available() else 'no'}"


if __name__ == "__main__":
    sys.exit(main())
