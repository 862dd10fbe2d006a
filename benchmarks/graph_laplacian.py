"""Time the construction of the graphLa+Psi Laplacian, numba kernel vs vectorized numpy/scipy.

Methods (same matrix ``L = D - W``, ``||W||_F = 1``, see :mod:`recon.regularizers.graph_laplacian`):

* ``ours-numba``: :func:`recon.regularizers.graph_laplacian.build_graph_laplacian` (closed-form row
  counts, then one parallel pass writing the CSR arrays directly);
* ``numpy-scipy``: the vectorized construction one would write without a kernel: for each of the
  ``(2R - 1)^2 - 1`` window offsets, shift the image over the overlap, compute the weights, stack
  all (row, col, w) triplets, ``scipy.sparse.coo_matrix(...).tocsr()``, normalise by the Frobenius
  norm, ``L = diags(W 1) - W``.

Also timed: ``ours-auto``, the same build with ``sigma="auto"`` (the default of ``recon.graphla``:
Haar noise estimate, bisection for the Gaussian width, smoothing, then the same kernel); target
at most 10 % above ours-numba.

Input: a 256 x 256 COULE-like phantom plus 2% Gaussian noise (seeded; a stand-in for a noisy
preliminary reconstruction), R = 5, sigma = 1e-3 (about 5.2 M stored entries). Timing: numba is
compiled in a warm-up call that is never timed; then the median of ``repeats`` calls per method
(``time.perf_counter``). Both matrices are compared (max abs difference).

Targets (printed as PASS/MISS): ours-numba < 1 s, and >= 5x faster than numpy-scipy; without
``--quick`` also the wall time of a full ``recon.graphla(psi="tv")`` at 256^2 / 120 views (< 60 s).

Usage::

    python benchmarks/graph_laplacian.py            # 256^2, R = 5, 5 repeats
    python benchmarks/graph_laplacian.py --quick    # 2 repeats
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

import numba  # noqa: E402
import torch  # noqa: E402

from recon.phantoms import coule_like  # noqa: E402
from recon.regularizers.graph_laplacian import build_graph_laplacian  # noqa: E402


def numpy_scipy_laplacian(img: np.ndarray, R: int, sigma: float) -> sp.csr_matrix:
    """Vectorized baseline: shifted copies of the image over every window offset, COO -> CSR."""
    n, m = img.shape
    r = R - 1
    idx = np.arange(n * m).reshape(n, m)
    rows, cols, vals = [], [], []
    for da in range(-r, r + 1):
        for db in range(-r, r + 1):
            if da == 0 and db == 0:
                continue
            src = (slice(max(0, -da), min(n, n - da)), slice(max(0, -db), min(m, m - db)))
            dst = (slice(max(0, da), min(n, n + da)), slice(max(0, db), min(m, m + db)))
            diff = img[src] - img[dst]
            rows.append(idx[src].ravel())
            cols.append(idx[dst].ravel())
            vals.append(np.exp(-(diff * diff) / sigma).ravel())
    w = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * m, n * m))
    w = w.tocsr()
    w.data /= np.sqrt(np.sum(w.data * w.data))
    return (sp.diags(np.asarray(w.sum(axis=1)).ravel()) - w).tocsr()


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--R", type=int, default=5)
    parser.add_argument("--sigma", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats

    rng = np.random.default_rng(0)
    img = coule_like(args.size, seed=0, dtype=torch.float64)[0, 0].numpy()
    img = img + 0.02 * rng.standard_normal(img.shape)

    build_graph_laplacian(img[:16, :16], R=args.R, sigma=args.sigma)  # warm-up: numba compile / cache load
    t_nb, lap = _median_time(lambda: build_graph_laplacian(img, R=args.R, sigma=args.sigma), repeats)
    t_auto, auto = _median_time(lambda: build_graph_laplacian(img, R=args.R, sigma="auto"), repeats)
    t_np, ref = _median_time(lambda: numpy_scipy_laplacian(img, args.R, args.sigma), repeats)
    diff = abs(lap.matrix - ref).max()

    print(
        f"graph Laplacian build: {args.size}x{args.size}, R={args.R}, sigma={args.sigma:g}, "
        f"nnz={lap.nnz:,}; numba threads={numba.get_num_threads()}, cpus={os.cpu_count()}; "
        f"median of {repeats}"
    )
    print(f"{'method':<14}{'time [s]':>10}{'ratio':>9}")
    print(f"{'ours-numba':<14}{t_nb:>10.3f}{1.0:>9.2f}")
    print(f"{'ours-auto':<14}{t_auto:>10.3f}{t_auto / t_nb:>9.2f}   ({auto.scale})")
    print(f"{'numpy-scipy':<14}{t_np:>10.3f}{t_np / t_nb:>9.2f}")
    print(f"max |L_numba - L_numpy| = {diff:.2e} (nnz numpy-scipy: {ref.nnz:,})")
    ok_time = t_nb < 1.0
    ok_ratio = t_np / t_nb >= 5.0
    ok_same = diff < 1e-12
    print(f"target ours-numba < 1 s: {'PASS' if ok_time else 'MISS'} ({t_nb:.3f} s)")
    print(f"target >= 5x faster than numpy-scipy: {'PASS' if ok_ratio else 'MISS'} ({t_np / t_nb:.1f}x)")
    print(f"same matrix (max abs diff < 1e-12): {'PASS' if ok_same else 'MISS'}")
    print(f"target ours-auto <= 1.1 x ours-numba: {'PASS' if t_auto <= 1.1 * t_nb else 'MISS'} ({t_auto / t_nb:.2f}x)")
    if not args.quick:
        full_graphla_time()


def full_graphla_time() -> None:
    """Wall time of one ``recon.graphla(psi="tv")`` at 256^2 / 120 views / 2 % noise (target < 60 s).

    Everything a user waits for is timed: the TV preliminary reconstruction (1500 PDHG iterations
    at most), the graph, and the graphLa solve (the demo's 1000-iteration budget).
    """
    from operators.ct import ct_geometry  # noqa: PLC0415
    from recon import graphla  # noqa: PLC0415
    from recon.noise import add_relative_noise  # noqa: PLC0415
    from recon.phantoms import TEST_SEEDS  # noqa: PLC0415

    physics = ct_geometry(256)
    x = coule_like(256, seed=TEST_SEEDS[100])
    y = add_relative_noise(physics.A(x), 0.02, seed=1)
    graphla(physics, y, psi=x, noise_level=0.02, max_iter=2, progress=False)  # warm-up (numba)
    t = time.perf_counter()
    graphla(physics, y, psi="tv", noise_level=0.02, max_iter=1000, progress=False)
    t = time.perf_counter() - t
    print(f"full recon.graphla(psi='tv') at 256^2 / 120 views: {t:.1f} s; target < 60 s: {'PASS' if t < 60 else 'MISS'}")


if __name__ == "__main__":
    main()
