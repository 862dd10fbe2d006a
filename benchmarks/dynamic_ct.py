"""Time one RED-PSM outer iteration on dynamic CT: our DynamicCT against deepinv's Tomography per frame.

Problem: 128 x 128 frames, P = 128, one parallel view per frame (bit-reversal angles), the
object and noise of ``demos/ct_dynamic_red_psm.py``. One outer ADMM iteration of
:func:`recon.red_psm` (rank 7, 9 latent samples, 25 Adam steps on the factors, one RED step with
the shipped DnCNN ``ct_dncnn``, the dual update) runs with the same code for both candidates;
only the forward model of the data term differs:

* ``ours``: :class:`operators.DynamicCT`, all P frames projected (and, in the backward pass,
  back-projected) in one numba call;
* ``deepinv``: P ``deepinv.physics.Tomography([theta_t], 128, circle=False, normalize=False)`` operators, one per
  frame (its default exact adjoint through autograd), the frame sinograms concatenated.

Both see data they reproduce exactly (each candidate's own projection of the truth plus the same
noise draw), start from the same factors and have the same iteration cost apart from the
operator. Timing: ``torch.set_num_threads`` and numba threads at ``--threads`` (default 2), one
warm-up iteration each (numba compilation and the first DnCNN call untimed), then ``repeats``
rounds, each timing one outer iteration of every candidate in rotated order; the median. Also
timed separately: the x-step alone (the 25 Adam steps, where the operator is used) and the
RED step (the same for both).

Target (printed PASS/MISS): ours >= 3x faster than deepinv per outer iteration.

Usage::

    python benchmarks/dynamic_ct.py            # 9 rounds (about 3 minutes on 2 cores)
    python benchmarks/dynamic_ct.py --quick    # 64 x 64, P = 32, 3 rounds
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from deepinv.physics import Tomography  # noqa: E402

from denoisers.zoo import load  # noqa: E402
from operators import DynamicCT  # noqa: E402
from operators.kernels.threads import set_num_threads  # noqa: E402
from recon.methods import red_psm as rp  # noqa: E402
from recon.phantoms import TEST_SEEDS, dynamic_object  # noqa: E402
from recon.regularizers.psm import hermite_spline_matrix, truncated_svd_factors  # noqa: E402

TARGET = 3.0
RANK, LATENT = 7, 9


class PerFrameTomography:
    """deepinv's parallel-beam Radon transform, one Tomography operator per frame: (1, P, N, N) -> (1, P, 1, D)."""

    def __init__(self, angles_rad: torch.Tensor, n: int):
        self.ops = [Tomography([math.degrees(float(a))], n, circle=False, normalize=False) for a in angles_rad]
        self.img_shape = (len(self.ops), n, n)  # one object (P, N, N), as operators.shapes reads it

    def A(self, x: torch.Tensor) -> torch.Tensor:  # deepinv's sinogram of one frame is (1, 1, D, 1)
        return torch.cat([op.A(x[:, t : t + 1]).transpose(-1, -2) for t, op in enumerate(self.ops)], dim=1)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([op.A_adjoint(y[:, t : t + 1].transpose(-1, -2)) for t, op in enumerate(self.ops)], dim=1)


def build(physics, truth: torch.Tensor, noise: torch.Tensor, spatial, latent, spline, net) -> tuple:
    """The ADMM of red_psm on ``physics``' own data, ready for ``step``: (solver, state)."""
    clean = physics.A(truth)
    if clean.shape != noise.shape:
        raise ValueError(f"{type(physics).__name__}: sinograms {tuple(clean.shape)}, expected {tuple(noise.shape)}")
    y = clean + noise * float(clean.max())
    model = rp._FrameModel(physics, y)
    x_step = rp._FactorStep(model, y, spline, spatial, latent, rp._projection(truth.shape[-1], y.dtype, True, False),
                            rp.XI, rp.CHI, rp.ADAM_STEPS, rp.LR)  # fmt: skip
    f0 = x_step.frames().detach()
    solver = rp._PSMADMM(x_step, rp._REDStep(net, rp.LAM, f0), rho=rp.BETA, max_iter=1, tol=0.0, progress=False)
    return solver, solver.init_state(f0)


def time_calls(calls: dict, repeats: int) -> dict[str, float]:
    """Median seconds per call, round-robin with a rotating order."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 x 64, P = 32, 3 rounds")
    ap.add_argument("--threads", type=int, default=2, help="torch and numba threads (default 2)")
    args = ap.parse_args(argv)
    n, p, repeats = (64, 32, 3) if args.quick else (128, 128, 9)
    set_num_threads(args.threads)
    print(f"# dynamic CT, one RED-PSM outer iteration: {n}x{n}, P = {p}, one view per frame; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads")  # fmt: skip

    truth = dynamic_object(n, p, seed=TEST_SEEDS[0])
    ours = DynamicCT(n, n_frames=p)
    peer = PerFrameTomography(ours.angles[:, 0], n)
    noise = 5e-3 * torch.randn(1, p, 1, ours.n_detectors, generator=torch.Generator().manual_seed(0))
    spline = hermite_spline_matrix(p, LATENT)
    spatial, latent = truncated_svd_factors(rp.sliding_window_fbp(ours, ours.A(truth))[0][0], RANK, spline)
    net = load("ct_dncnn").eval()
    setups = {name: build(phys, truth, noise, spatial, latent, spline, net) for name, phys in (("ours", ours), ("deepinv", peer))}

    def outer(name: str):
        solver, state = setups[name]
        return lambda: solver.step(state)

    def x_step(name: str):
        solver, state = setups[name]
        return lambda: solver.x_step(state["z"] - state["u"], state["rho"], state["x"])

    red = setups["ours"][0].z_step
    for name in setups:  # warm-up: numba compilation, first DnCNN and autograd calls
        outer(name)()
    full = time_calls({name: outer(name) for name in setups}, repeats)
    xs = time_calls({name: x_step(name) for name in setups}, repeats)
    red_t = time_calls({"red": lambda: red(setups["ours"][1]["x"], rp.BETA)}, repeats)["red"]

    print(f"{'candidate':<10} {'outer it (s)':>13} {'x-step (s)':>11} {'RED step (s)':>13}")
    for name in setups:
        print(f"{name:<10} {full[name]:13.3f} {xs[name]:11.3f} {red_t:13.3f}")
    ratio, ratio_x = full["deepinv"] / full["ours"], xs["deepinv"] / xs["ours"]
    print(f"ratio deepinv / ours: outer iteration {ratio:.2f}x, x-step (25 Adam steps) {ratio_x:.2f}x")
    print(f"{'PASS' if ratio >= TARGET else 'MISS'}  ours >= {TARGET:g}x faster per outer iteration ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
