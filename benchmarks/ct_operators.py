"""Time our 2D parallel-beam CT operators against their peers, in one process, and print ratios.

Methods (forward projection A and back-projection A^T of one float32 image):

* ``ours-astra``: :class:`operators.ParallelBeamCT` with ``backend="astra"`` (astra CPU ``linear``,
  one block of angles per core in threads);
* ``ours-numba``: :class:`operators.ParallelBeamCT` with ``backend="numba"`` (Joseph kernel);
* ``deepinv``: ``deepinv.physics.Tomography(angles_deg, N, circle=False, normalize=False)``
  (pure torch; exact adjoint through autograd, its default);
* ``skimage``: ``skimage.transform.radon(circle=False)`` and ``iradon(filter_name=None)``
  (an unfiltered back-projection).

Timing: for each method, one warm-up call (numba compilation happens in a global warm-up before
any measurement and is never timed), then the median of ``repeats`` calls of A and of A^T
separately (``time.perf_counter``).

Peak memory: the peak resident set size (RSS) of this process while the method builds its
operator and runs its first A + A^T, minus the RSS just before (so it counts the operator's
buffers plus the call's temporaries). The kernel's RSS high-water mark ``VmHWM`` is reset through
``/proc/self/clear_refs`` before each method and read from ``/proc/self/status`` after; glibc's
``mmap`` threshold is pinned at 128 KiB (``mallopt``) so large buffers are returned to the OS on
free and one method's freed memory is not silently reused by the next. Unlike sampling RSS from a
thread, this also sees peaks inside calls that hold the GIL (numba, astra). Linux only; elsewhere
the column reads ``n/a``.

Targets (printed as PASS/MISS): ours-astra A+A^T >= 2x faster than deepinv at 256^2/180 views and
>= 5x at 512^2/360 views with <= 1/10 of its peak memory; ours-numba within 2x of ours-astra.

Usage::

    python benchmarks/ct_operators.py            # 256^2/180 and 512^2/360 (about 1-2 minutes)
    python benchmarks/ct_operators.py --quick    # 256^2/180 only, 1 repeat
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from operators import ParallelBeamCT  # noqa: E402

# ----------------------------------------------------------------------------- memory probes


def _pin_malloc() -> None:
    """Return large blocks to the OS on free (fixed 128 KiB mmap threshold), glibc only."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- methods


def _ours(backend: str) -> Callable:
    def build(n: int, angles_rad: np.ndarray):
        op = ParallelBeamCT(n, torch.from_numpy(angles_rad), backend=backend)
        return op.A, op.A_adjoint

    return build


def _deepinv(n: int, angles_rad: np.ndarray):
    from deepinv.physics import Tomography  # noqa: PLC0415

    op = Tomography(torch.from_numpy(np.rad2deg(angles_rad)).float(), n, circle=False, normalize=False)
    return op.A, op.A_adjoint


def _skimage(n: int, angles_rad: np.ndarray):
    from skimage.transform import iradon, radon  # noqa: PLC0415

    theta = np.rad2deg(angles_rad)

    def fwd(x):
        return radon(x[0, 0].numpy(), theta=theta, circle=False)

    def adj(y):
        return iradon(y, theta=theta, filter_name=None, circle=False, output_size=n)

    return fwd, adj


METHODS = {
    "ours-astra": _ours("astra"),
    "ours-numba": _ours("numba"),
    "deepinv": _deepinv,
    "skimage": _skimage,
}


def _measure(build: Callable, n: int, angles: np.ndarray, x: torch.Tensor, repeats: int) -> dict:
    gc.collect()
    base = _status_mib("VmRSS")
    have_peak = _reset_peak()
    fwd, adj = build(n, angles)
    y = fwd(x)
    adj(y)
    peak = _status_mib("VmHWM")
    t_fwd, t_adj = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        y = fwd(x)
        t1 = time.perf_counter()
        adj(y)
        t_fwd.append(t1 - t0)
        t_adj.append(time.perf_counter() - t1)
    del fwd, adj, y
    gc.collect()
    mem = peak - base if (have_peak and peak is not None and base is not None) else float("nan")
    return {"A": statistics.median(t_fwd), "AT": statistics.median(t_adj), "mem": mem}


def _warm_up() -> None:
    """Compile the numba kernels and initialise torch/astra/skimage before anything is measured."""
    angles = np.linspace(0, math.pi, 8, endpoint=False)
    x = torch.rand(1, 1, 32, 32)
    for build in METHODS.values():
        fwd, adj = build(32, angles)
        adj(fwd(x))


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256^2/180 views only, 1 repeat")
    args = parser.parse_args(argv)

    _pin_malloc()
    torch.manual_seed(0)
    print(
        f"# CT operators: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    _warm_up()

    sizes = [(256, 180, 1, 1)] if args.quick else [(256, 180, 5, 3), (512, 360, 3, 1)]
    results: dict[tuple[int, str], dict] = {}
    header = f"{'size':>10} {'method':>11} {'A (s)':>8} {'A^T (s)':>8} {'A+A^T':>8} {'peak MiB':>9} " \
             f"{'vs deepinv':>10} {'vs skimage':>10}"
    print(header)
    print("-" * len(header))
    for n, n_angles, repeats, peer_repeats in sizes:
        angles = np.linspace(0.0, math.pi, n_angles, endpoint=False)
        x = torch.rand(1, 1, n, n)
        for name, build in METHODS.items():
            reps = repeats if name.startswith("ours") else peer_repeats
            results[n, name] = r = _measure(build, n, angles, x, reps)
            r["total"] = r["A"] + r["AT"]
        for name in METHODS:
            r = results[n, name]
            vs = [results[n, peer]["total"] / r["total"] for peer in ("deepinv", "skimage")]
            print(
                f"{f'{n}^2/{n_angles}':>10} {name:>11} {r['A']:8.3f} {r['AT']:8.3f} {r['total']:8.3f} "
                f"{r['mem']:9.1f} {vs[0]:9.2f}x {vs[1]:9.2f}x"
            )
    print("(vs X = X's A+A^T time / this method's: > 1 means faster than X; peak = RSS high-water mark "
          "above the RSS before building the operator)")

    print("\n# targets")
    checks = []
    for n, need in ((256, 2.0), (512, 5.0)):
        if (n, "deepinv") not in results:
            continue
        speed = results[n, "deepinv"]["total"] / results[n, "ours-astra"]["total"]
        checks.append((f"{n}^2 astra A+A^T >= {need:g}x faster than deepinv", speed >= need, f"{speed:.2f}x"))
    if (512, "deepinv") in results:
        ratio = results[512, "ours-astra"]["mem"] / results[512, "deepinv"]["mem"]
        checks.append(("512^2 astra peak memory <= 1/10 of deepinv's", ratio <= 0.1, f"{ratio:.4f}"))
    for n in sorted({k[0] for k in results}):
        ratio = results[n, "ours-numba"]["total"] / results[n, "ours-astra"]["total"]
        checks.append((f"{n}^2 numba A+A^T within 2x of astra", ratio <= 2.0, f"numba/astra = {ratio:.2f}"))
    for label, ok, value in checks:
        print(f"{'PASS' if ok else 'MISS'}  {label}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
