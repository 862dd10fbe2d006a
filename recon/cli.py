"""The ``regrecon`` command line: ``demo``, ``reconstruct`` and ``info``.

* ``regrecon demo [NAME ...] [--quick] [--out DIR]`` runs demo scripts of the repository's
  ``demos/`` folder (all by default) and prints one summary table: per demo the lines its
  ``SUMMARY`` names (method, modality, setting, our metric, the paper's figure).
* ``regrecon reconstruct CONFIG.toml [--batch] [--output FILE]`` reads measurements and a geometry
  from a TOML config (:mod:`recon.config`), runs the method and writes HDF5 with provenance
  (:func:`recon.io.write_result`); ``--batch`` treats the first axis of the measurements as
  independent items and runs them on Dask (:func:`recon.batch.reconstruct_many`).
* ``regrecon info``: versions, the backends found (astra CPU / CUDA, numba, CUDA) and the shipped
  weights.

Errors in the input (config, files) end the command with exit status 2 and one line
``regrecon: error: ...`` naming the key, the value received and what was expected.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import math
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

#: the repository's demo scripts (present in a source checkout, not in an installed wheel)
DEMOS_DIR = Path(__file__).resolve().parents[1] / "demos"


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

    demo = sub.add_parser("demo", help="run demo scripts and print a summary table", description=_cmd_demo.__doc__)
    demo.add_argument("names", nargs="*", metavar="NAME", help=f"demos to run (default: all): {', '.join(demo_names())}")
    demo.add_argument("--quick", action="store_true", help="the demos' small settings (minutes instead of hours)")
    demo.add_argument("--out", type=Path, default=Path("out"), help="folder for the demos' outputs (default: out/)")
    demo.set_defaults(run=_cmd_demo)

    rec = sub.add_parser("reconstruct", help="reconstruct from a TOML config, write HDF5", description=_cmd_reconstruct.__doc__)
    rec.add_argument("config", type=Path, metavar="CONFIG.toml", help="the config (see recon/config.py for its keys)")
    rec.add_argument("--batch", action="store_true", help="the first axis of the measurements indexes independent items: run them on Dask")
    rec.add_argument("--output", "-o", type=Path, help="result file (.h5), overrides [output] path")
    rec.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    rec.set_defaults(run=_cmd_reconstruct)

    info = sub.add_parser("info", help="versions, backends and shipped weights", description=_cmd_info.__doc__)
    info.set_defaults(run=_cmd_info)
    return parser


# ----------------------------------------------------------------------------- demo


def demo_names() -> list[str]:
    """Names of the demo scripts that declare a ``SUMMARY`` (empty outside a source checkout)."""
    if not DEMOS_DIR.is_dir():
        return []
    return sorted(p.stem for p in DEMOS_DIR.glob("*.py") if "\nSUMMARY = " in p.read_text())


def _cmd_demo(args: argparse.Namespace) -> int:
    """Run demos (all by default) and print one table: method, modality, setting, ours, the paper's figure."""
    available = demo_names()
    if not available:
        raise ValueError(f"demo: no demos folder at {DEMOS_DIR}; the demos ship with the source repository")
    names = args.names or available
    for name in names:
        if name not in available:
            raise ValueError(f"NAME: unknown demo {name!r}; expected one of {', '.join(available)}")
    lines, failed = [], []
    t_all = time.perf_counter()
    for k, name in enumerate(names, 1):
        print(f"=== [{k}/{len(names)}] {name}{' --quick' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        module = _load_demo(name)
        try:
            rows = module.main(["--out", str(args.out / name)] + (["--quick"] if args.quick else []))
        except Exception as err:  # noqa: BLE001  (one failing demo must not hide the others' results)
            print(f"=== {name} FAILED: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        lines += summary_lines(name, module.SUMMARY, rows)
        print(f"=== {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    table = render_summary(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(table)
    print(f"\n{table}\n{len(names) - len(failed)}/{len(names)} demos in {time.perf_counter() - t_all:.0f} s; table in {args.out / 'summary.md'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _load_demo(name: str):
    if str(DEMOS_DIR) not in sys.path:  # demos import their shared helpers as when run as scripts
        sys.path.insert(0, str(DEMOS_DIR))
    spec = importlib.util.spec_from_file_location(f"regrecon_demo_{name}", DEMOS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def summary_lines(name: str, summary: dict, rows: list[dict]) -> list[dict]:
    """The rows of one demo that its ``SUMMARY`` names, as table lines.

    ``summary`` keys: ``modality``; ``methods`` (row ``method`` values to show); ``metric`` (row
    key) and ``metric_label``; ``setting`` (row keys that make the setting label); ``paper``: a
    row key holding the paper's figure for that row, else a text shown as it is.
    """
    lines = []
    for row in rows:
        if row["method"] not in summary["methods"]:
            continue
        paper = summary["paper"]
        if paper in row:
            paper = "-" if row[paper] is None or math.isnan(row[paper]) else f"{row[paper]:.2f}"
        lines.append({
            "demo": name, "method": row["method"], "modality": summary["modality"],
            "setting": ", ".join(_setting_text(k, row[k]) for k in summary["setting"]) or "-",
            "metric": summary["metric_label"], "ours": f"{row[summary['metric']]:.3g}" if abs(row[summary["metric"]]) < 1 else f"{row[summary['metric']]:.2f}",
            "paper": paper,
        })  # fmt: skip
    return lines


def _setting_text(key: str, value: object) -> str:
    if key == "noise" and isinstance(value, float):
        return f"noise {value:.0%}"
    return str(value)


def render_summary(lines: list[dict]) -> str:
    """Markdown table of :func:`summary_lines` output."""
    head = ("demo", "method", "modality", "setting", "metric", "ours", "paper")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(line[h]) for h in head) + " |" for line in lines]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- reconstruct


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    """Reconstruct the measurements a TOML config names; write HDF5 with provenance (atomically)."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from recon.config import load_config  # noqa: PLC0415
    from denoisers.zoo import sha256_file  # noqa: PLC0415
    from recon.io import load_measurements, provenance, write_result  # noqa: PLC0415

    cfg = load_config(args.config)
    output = args.output.resolve() if args.output is not None else cfg.output
    y = load_measurements(cfg.input_path, cfg.input_key)
    if np.iscomplexobj(y):
        raise ValueError(f"input: expected real measurements (MRI k-space as 2 real channels), received dtype {y.dtype}")
    y = torch.from_numpy(y if y.dtype == np.float64 else y.astype(np.float32))
    item = _measurement_shape(cfg.physics)
    params = dict(cfg.params)
    if "progress" in inspect.signature(cfg.method_fn()).parameters and "progress" not in params:
        params["progress"] = args.progress and not args.batch  # one bar over the items in batch mode
    if args.batch:
        from recon.batch import reconstruct_many  # noqa: PLC0415

        if tuple(y.shape[1:]) != item:
            raise ValueError(f"input: --batch expects measurements (N, {', '.join(map(str, item))}) for this geometry, received {tuple(y.shape)}")
        report = reconstruct_many(
            cfg.method, cfg.physics, y, store=output, params=params, client=cfg.batch.get("scheduler"),
            n_workers=cfg.batch.get("n_workers"), progress=args.progress,
        )  # fmt: skip
        print(f"{len(report.computed)} computed, {len(report.skipped)} already stored, {len(report.failed)} failed "
              f"in {report.seconds:.1f} s -> {report.store}")  # fmt: skip
        for index, message in report.failed.items():
            print(f"item {index} failed: {message.splitlines()[0]}", file=sys.stderr)
        return 1 if report.failed else 0
    if tuple(y.shape) == item:
        y = y[None]
    if tuple(y.shape[1:]) != item or y.shape[0] != 1:
        raise ValueError(f"input: expected measurements {item} (or (1, {', '.join(map(str, item))})) for this geometry, received {tuple(y.shape)}")
    t0 = time.perf_counter()
    x, info = cfg.method_fn()(cfg.physics, y, **params)
    wall = time.perf_counter() - t0
    attrs = provenance(cfg.method, cfg.params, cfg.geometry, str(cfg.input_path), sha256_file(cfg.input_path))
    write_result(output, x, info, attrs, wall)
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
