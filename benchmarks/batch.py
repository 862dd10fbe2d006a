"""Batch TV-CT on a local Dask cluster (``recon.batch.reconstruct_many``) against a plain loop.

Problem: ``--slices`` COULE-like 128 x 128 phantoms (seeds 0, 1, ...), ``ParallelBeamCT(128,
--angles views over [0, 180) degrees, backend="numba")``, 1 % relative noise, ``recon.tv`` with a
fixed alpha and exactly ``--iters`` PDHG iterations (tol=0, so every slice costs the same).

Timed in this one process:

* **loop, 1 thread**: ``recon.tv`` on each slice in turn, torch and numba at one thread (the
  per-core baseline);
* **loop, W threads**: the same loop at ``--workers`` threads (what a user's plain loop gets
  from torch's and numba's own parallelism on W cores);
* **cluster start**: ``LocalCluster(n_workers=W, threads_per_worker=1, processes=True)`` + Client;
* **cluster, cold**: the first ``reconstruct_many`` on the new cluster (its workers import torch,
  deepinv and regrecon and load the numba kernels while they unpickle the operator);
* **cluster, warm**: the same call again into a new store;
* **no-op tasks**: the same pipeline (scatter, submit, transfer, HDF5 write) with a method that
  returns zeros at once; its wall time per task is the per-task overhead.

Speed-ups are loop time / warm cluster time (the issue's target: >= 1.6x over the one-thread
loop on 2 cores); the end-to-end line adds the cluster start and the cold run's extra time. The
cluster's images are checked against the one-thread loop's.

Usage:
    python benchmarks/batch.py [--slices 64] [--iters 100] [--angles 180] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from distributed import Client, LocalCluster

import recon
from operators import ParallelBeamCT
from operators.kernels.threads import set_num_threads
from recon.batch import reconstruct_many
from recon.noise import add_relative_noise
from recon.phantoms import coule_like


def noop(physics, y, **_params):
    """A method that does nothing: zeros of the image shape (measures the pipeline alone)."""
    return torch.zeros((1, 1, *physics.image_shape), dtype=y.dtype), {}


def run_loop(physics, y: torch.Tensor, params: dict, threads: int) -> tuple[float, np.ndarray]:
    """Sequential ``recon.tv`` over the slices at ``threads`` torch / numba threads."""
    set_num_threads(threads)
    recon.tv(physics, y[:1], **{**params, "max_iter": 2})  # warm-up at this thread count
    t0 = time.perf_counter()
    xs = [recon.tv(physics, y[i : i + 1], **params)[0] for i in range(y.shape[0])]
    return time.perf_counter() - t0, torch.cat(xs).numpy()


def run_cluster(method, physics, y, params, client, store: Path) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    report = reconstruct_many(method, physics, y, store, params=params, client=client, progress=False)
    wall = time.perf_counter() - t0
    if report.failed:
        raise RuntimeError(f"tasks failed: {report.failed}")
    with h5py.File(store, "r") as fh:
        return wall, fh["x"][()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slices", type=int, default=64, help="number of slices")
    ap.add_argument("--iters", type=int, default=100, help="PDHG iterations per slice (exactly)")
    ap.add_argument("--angles", type=int, default=180, help="projection angles")
    ap.add_argument("--alpha", type=float, default=4.0, help="fixed TV weight (about the discrepancy choice)")
    ap.add_argument("--workers", type=int, default=2, help="cluster workers = threads of the second loop")
    args = ap.parse_args(argv)
    n, w = args.slices, args.workers

    physics = ParallelBeamCT(128, torch.linspace(0.0, math.pi, args.angles + 1)[:-1], backend="numba")
    x_true = torch.cat([coule_like(128, seed=s) for s in range(n)])
    y = add_relative_noise(physics.A(x_true), 0.01, seed=1)
    params = {"alpha": args.alpha, "max_iter": args.iters, "tol": 0.0, "progress": False}
    print(f"{n} slices 128x128, {args.angles} views, recon.tv alpha={args.alpha} x {args.iters} iterations, "
          f"{w} workers\n")

    t_loop1, x_loop1 = run_loop(physics, y, params, 1)
    t_loopw, x_loopw = run_loop(physics, y, params, w)
    set_num_threads(1)

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    t_start = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t_cold, x_cold = run_cluster("tv", physics, y, params, client, Path(tmp) / "cold.h5")
            t_warm, x_warm = run_cluster("tv", physics, y, params, client, Path(tmp) / "warm.h5")
            t_noop, _ = run_cluster(noop, physics, y, {}, client, Path(tmp) / "noop.h5")
    finally:
        client.close()
        cluster.close()

    rows = [
        ("loop, 1 thread", t_loop1), (f"loop, {w} threads", t_loopw), ("cluster start", t_start),
        ("cluster, cold (first call)", t_cold), ("cluster, warm", t_warm), ("no-op tasks (pipeline only)", t_noop),
    ]  # fmt: skip
    print("| run | wall (s) | per slice (ms) |")
    print("|---|---|---|")
    for name, t in rows:
        per = f"{1e3 * t / n:.1f}" if name != "cluster start" else ""
        print(f"| {name} | {t:.2f} | {per} |")

    s1, sw = t_loop1 / t_warm, t_loopw / t_warm
    e2e = t_start + t_cold
    print(f"\nspeed-up cluster (warm) over loop at 1 thread: {s1:.2f}x  (target >= 1.6x on 2 cores: "
          f"{'PASS' if s1 >= 1.6 else 'MISS'})")
    print(f"speed-up cluster (warm) over loop at {w} threads: {sw:.2f}x")
    print(f"end to end (start + cold call = {e2e:.1f} s) over loop at 1 thread: {t_loop1 / e2e:.2f}x, "
          f"at {w} threads: {t_loopw / e2e:.2f}x")
    print(f"overhead per task, measured with no-op tasks: {1e3 * t_noop / n:.1f} ms "
          f"(wall of the no-op batch / {n} tasks)")
    print(f"overhead per task, inferred: (warm wall - loop_1thread / {w}) / {n} = "
          f"{1e3 * (t_warm - t_loop1 / w) / n:.1f} ms")
    print(f"cold call minus warm call (worker imports, numba cache loads): {t_cold - t_warm:.2f} s")
    print(f"\nmax |cluster - loop 1 thread| = {np.abs(x_warm - x_loop1).max():.2e} (warm), "
          f"{np.abs(x_cold - x_loop1).max():.2e} (cold); max |loop {w} threads - loop 1 thread| = "
          f"{np.abs(x_loopw - x_loop1).max():.2e}  (images in [0, 1])")


if __name__ == "__main__":
    main()
