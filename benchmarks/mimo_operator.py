"""Time the near-field MIMO operator: numba kernels vs a chunked dense torch implementation.

Methods (same operator, complex64, the paper's default geometry: 12 Tx, 13 Rx, 20 frequencies,
25 x 25 x 49 voxels, M = 3120, N = 30625):

* ``ours-numba``: :class:`operators.NearFieldMIMO` (matrix-free; separable transmitter/receiver
  factors, frequency recurrence, parallel over voxels);
* ``torch-chunked``: the vectorized implementation one writes without a kernel: build the rows
  of the system matrix ``A[m, n] = exp(-j k (|p_n - t| + |p_n - r|)) / (4 pi |p_n - t| |p_n - r|)``
  in chunks of ``chunk`` measurements (broadcast distances, one ``exp`` per entry) and multiply
  (``A_chunk @ x`` forward, ``A_chunk^H y_chunk`` accumulated for the adjoint).

Timing: one warm-up (numba compilation) never timed, then the median of ``repeats`` calls of
forward + adjoint per method, in this process. Peak memory: the largest increase of the process's
resident set during the calls (sampled every millisecond by a thread, psutil), minus the size of
the input and output tensors (which both methods share), floored at 1 MiB (the resolution of
RSS sampling: ours allocates about 0.2 MiB of per-chunk buffers). The two results are compared.

Targets (PASS/MISS): ours >= 3x faster and >= 10x less peak memory than torch-chunked; without
``--quick`` also the wall time of a full ``recon.magnitude_pnp(prior="mimo_unet3d")`` (< 2 minutes).

Usage::

    python benchmarks/mimo_operator.py            # 5 repeats, chunk 256 rows
    python benchmarks/mimo_operator.py --quick    # 2 repeats, no full reconstruction
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

import psutil  # noqa: E402
import torch  # noqa: E402

import recon  # noqa: E402
from operators import NearFieldMIMO  # noqa: E402
from operators import mimo_geometry as mg  # noqa: E402
from recon.phantoms import TEST_SEEDS, mimo_scene  # noqa: E402


class TorchChunked:
    """Dense rows of A built chunk by chunk with torch (the baseline)."""

    def __init__(self, op: NearFieldMIMO, chunk: int):
        self.chunk = chunk
        f, t, r = (torch.as_tensor(v) for v in (op.k, op.tx, op.rx))
        kk, tt, rr = torch.meshgrid(torch.arange(f.numel()), torch.arange(t.shape[0]), torch.arange(r.shape[0]), indexing="ij")
        self.k = f[kk.reshape(-1)].float()
        self.t = t[tt.reshape(-1)].float()
        self.r = r[rr.reshape(-1)].float()
        self.p = torch.as_tensor(op.grid.points()).float()

    def _rows(self, lo: int, hi: int) -> torch.Tensor:
        dt = torch.cdist(self.t[lo:hi], self.p)
        dr = torch.cdist(self.r[lo:hi], self.p)
        return torch.polar(1.0 / (4 * math.pi * dt * dr), -self.k[lo:hi, None] * (dt + dr))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1)
        return torch.cat([self._rows(lo, min(lo + self.chunk, self.k.numel())) @ flat for lo in range(0, self.k.numel(), self.chunk)])

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        flat, out = y.reshape(-1), torch.zeros(self.p.shape[0], dtype=y.dtype)
        for lo in range(0, self.k.numel(), self.chunk):
            hi = min(lo + self.chunk, self.k.numel())
            out += self._rows(lo, hi).conj().T @ flat[lo:hi]
        return out


def _measure(fn, repeats: int) -> tuple[float, float, object]:
    """Median seconds and peak RSS increase (bytes) over ``repeats`` calls of ``fn``."""
    proc = psutil.Process()
    times, peak, out = [], 0, None
    for _ in range(repeats):
        base, high, stop = proc.memory_info().rss, [0], threading.Event()

        def sample(base=base, high=high, stop=stop):
            while not stop.is_set():
                high[0] = max(high[0], proc.memory_info().rss - base)
                time.sleep(0.001)

        th = threading.Thread(target=sample)
        th.start()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        stop.set()
        th.join()
        peak = max(peak, high[0])
    return statistics.median(times), peak, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=256, help="rows of A per chunk in the torch baseline")
    ap.add_argument("--quick", action="store_true", help="2 repeats, skip the full reconstruction")
    args = ap.parse_args()
    repeats = 2 if args.quick else args.repeats
    print(f"threads: torch {torch.get_num_threads()}, cores {psutil.cpu_count()}")
    op = NearFieldMIMO(*mg.x_array(), mg.default_frequencies(), mg.default_grid())
    base = TorchChunked(op, args.chunk)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, *op.image_shape, dtype=torch.complex64, generator=gen)
    y = torch.randn(1, 1, *op.data_shape, dtype=torch.complex64, generator=gen)

    def ours():
        return op.A(x), op.A_adjoint(y)

    def theirs():
        return base.forward(x), base.adjoint(y)

    ours()  # compile
    theirs()
    t_ours, m_ours, (ya, xa) = _measure(ours, repeats)
    t_base, m_base, (yb, xb) = _measure(theirs, repeats)
    err = max(float((ya.reshape(-1) - yb).norm() / yb.norm()), float((xa.reshape(-1) - xb).norm() / xb.norm()))
    io = (x.numel() + y.numel()) * 8
    floor = 2**20  # RSS sampling does not resolve less than this (freed pages are reused)
    m_ours, m_base = max(m_ours - io, floor), max(m_base - io, floor)
    print(f"{'method':<14} {'fwd+adj (s)':>12} {'peak mem (MiB)':>15}")
    print(f"{'ours-numba':<14} {t_ours:>12.4f} {('<= 1' if m_ours == floor else f'{m_ours / 2**20:.2f}'):>15}")
    print(f"{'torch-chunked':<14} {t_base:>12.4f} {m_base / 2**20:>15.2f}")
    print(f"max relative difference: {err:.2e}")
    speed, mem = t_base / t_ours, m_base / m_ours
    bound = ">= " if m_ours == floor else ""
    print(f"speed-up {speed:.1f}x (target >= 3x: {'PASS' if speed >= 3 else 'MISS'}); "
          f"memory {bound}{mem:.0f}x less (target >= 10x: {'PASS' if mem >= 10 else 'MISS'})")
    if not args.quick:
        scene = mimo_scene(op.image_shape, TEST_SEEDS[0])
        y0 = op.A(scene)
        sigma = float(y0.norm()) / math.sqrt(y0.numel()) * 10 ** (-30 / 20)
        noisy = y0 + sigma * torch.randn(y0.shape, dtype=y0.dtype, generator=gen)
        t0 = time.perf_counter()
        _, info = recon.magnitude_pnp(op, noisy, prior="mimo_unet3d", noise_std=sigma)
        wall = time.perf_counter() - t0
        print(f"full magnitude_pnp(prior='mimo_unet3d'), 30 dB: {wall:.1f} s, {info.n_iter} iterations "
              f"(target < 120 s: {'PASS' if wall < 120 else 'MISS'})")


if __name__ == "__main__":
    main()
