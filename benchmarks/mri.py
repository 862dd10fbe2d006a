"""Time the SENSE operator's wrappers against deepinv, and NLCG against torch's L-BFGS on a T2 qMRI fit.

Part 1, multi-coil Cartesian MRI (8 coils, 8 echoes with one 1D variable-density mask each at
R = 4, complex64 coil maps, 256 x 256 pixels): the time of one forward plus one adjoint of

* ``deepinv``: ``deepinv.physics.MultiCoilMRI`` built with the layout :class:`operators.mri.SenseMRI`
  hands it (mask ``(1, 1, E, H, W)``, coil maps expanded to ``(1, N, E, H, W)``,
  ``img_size=(1, 2, E, H, W)``), on real ``(1, 2, E, H, W)`` images;
* ``SenseMRI.A``: ``SenseMRI.A`` / ``A_adjoint`` on the same real tensors (shape validation and a
  dtype cast on top of deepinv);
* ``SenseMRI.A_complex``: ``SenseMRI.A_complex`` / ``A_adjoint_complex`` on complex ``(1, E, H, W)``
  images (validation, then the same product computed in the complex layout with deepinv's
  buffers and centred FFT);
* ``SenseMRI.apply``: that complex path without validation (what the qMRI solvers call inside
  their loops).

The three must agree (checked before timing). Timing: ``torch.set_num_threads(2)`` (``--threads``;
on cores busy with other processes, 2 threads can be many times slower than 1, as every parallel
region waits for a scheduler slice, so compare runs at the same setting), two warm-up calls each,
then ``repeats`` rounds in which every candidate runs once, in an order rotated every round
(round-robin, so background load hits all of them alike); the median per candidate. The overhead
of a wrapper is its median over deepinv's, minus 1. Target: overhead < 10 % for both.

Part 2, T2 mapping (``qmri_brain(128)``, 8 coils, 8 echoes TE = 23..184 ms, R = 4, complex Gaussian
noise at image SNR 30, all seeded as in ``demos/mri_qmri_nlcg.py``): the objective
:math:`\\tfrac12\\|A(s v) - y\\|^2` of :func:`recon.nlcg_maps` in its scaled variables ``v`` (built
with ``prepare``, ``initial_maps``, ``scales`` and ``data_consistency``, so both optimisers minimise
the same function with the same analytic gradient from the same start). NLCG runs as
``nlcg_maps`` configures it (Dai-Yuan, secant line search, at most 20 evaluations per search,
projection onto R >= R_min) for a fixed number of iterations; its final objective is ``f_N``.
``torch.optim.LBFGS`` (history 10, ``line_search_fn="strong_wolfe"``, a closure that sets
``v.grad`` from the analytic gradient, no projection) then runs until the first point it evaluates
has objective <= ``f_N``, or for at most ``lbfgs_factor`` times NLCG's iterations. Reported: the
iterations, objective evaluations (each one forward + one adjoint) and wall time of each, seconds
and evaluations per iteration, and the ratio of the times to reach ``f_N``. Whether the bound
R >= R_min is active is checked at the final point of each (pixels with R <= R_min). No target.

Usage::

    python benchmarks/mri.py            # 256^2 operators, 21 rounds; 128^2 qMRI, 100 NLCG iterations (< 2 min)
    python benchmarks/mri.py --quick    # 128^2 operators, 15 rounds; 64^2 qMRI, 40 NLCG iterations (< 30 s)
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from deepinv.physics import MultiCoilMRI  # noqa: E402

from operators.coil_maps import simulated_coil_maps  # noqa: E402
from operators.kspace_masks import cartesian_mask  # noqa: E402
from operators.mri import SenseMRI, to_channels, to_complex  # noqa: E402
from operators.qmri import QuantitativeMRI  # noqa: E402
from recon.methods.qmri import RATE_MIN, data_consistency, initial_maps, prepare, rate_projection, scales  # noqa: E402
from recon.phantoms import TEST_SEEDS, qmri_brain  # noqa: E402
from recon.solvers import NLCG  # noqa: E402

N_COILS, ACCELERATION, SNR = 8, 4, 30.0
ECHO_TIMES = [23.0 * k for k in range(1, 9)]  # ms
SEED = TEST_SEEDS[0]
OVERHEAD_TARGET = 0.10

# ----------------------------------------------------------------------------- part 1: operators


def operators(size: int) -> tuple[MultiCoilMRI, SenseMRI]:
    """deepinv's MultiCoilMRI and SenseMRI on the same per-echo masks and coil maps."""
    n_echoes = len(ECHO_TIMES)
    masks = cartesian_mask((size, size), ACCELERATION, n_masks=n_echoes, seed=SEED)
    maps = simulated_coil_maps(N_COILS, (size, size))
    sense = SenseMRI(masks, maps)
    peer = MultiCoilMRI(
        mask=masks[None, None], coil_maps=maps[None, :, None].expand(1, N_COILS, n_echoes, size, size),
        img_size=(1, 2, n_echoes, size, size),
    )  # fmt: skip
    return peer, sense


def candidates(peer: MultiCoilMRI, sense: SenseMRI) -> dict[str, Callable[[], tuple[torch.Tensor, torch.Tensor]]]:
    """name -> a call of A and A^H in that candidate's layout, on the same data."""
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(1, 2, *sense.x_shape, generator=gen)
    y = peer.A(torch.randn(x.shape, generator=gen))
    xc, yc = to_complex(x), to_complex(y)
    return {
        "deepinv": lambda: (peer.A(x), peer.A_adjoint(y)),
        "SenseMRI.A": lambda: (sense.A(x), sense.A_adjoint(y)),
        "SenseMRI.A_complex": lambda: (sense.A_complex(xc), sense.A_adjoint_complex(yc)),
        "SenseMRI.apply": lambda: (sense.apply(xc), sense.apply_adjoint(yc)),
    }


def check_agree(calls: dict[str, Callable]) -> None:
    """Both wrappers return deepinv's A x and A^H y (the complex layout converted to deepinv's)."""
    ref = calls["deepinv"]()
    torch.testing.assert_close(calls["SenseMRI.A"](), ref)
    for name in ("SenseMRI.A_complex", "SenseMRI.apply"):
        torch.testing.assert_close(tuple(to_channels(z) for z in calls[name]()), ref)


def round_robin(calls: dict[str, Callable], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each candidate over ``repeats`` rounds, the order rotated every round."""
    for fn in calls.values():
        fn()
        fn()
    names, times = list(calls), {name: [] for name in calls}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def part_operators(size: int, repeats: int) -> None:
    """Check, time and print part 1 (SENSE A + A^H: deepinv vs the two SenseMRI layouts)."""
    peer, sense = operators(size)
    calls = candidates(peer, sense)
    check_agree(calls)
    times = round_robin(calls, repeats)
    base = statistics.median(times["deepinv"])
    print(f"\n# SENSE A + A^H: {size}x{size}, {N_COILS} coils, {len(ECHO_TIMES)} echoes (one mask each), "
          f"R = {ACCELERATION}, complex64; median of {repeats} round-robin rounds")
    header = f"{'method':<20} {'A+A^H (ms)':>11} {'q25-q75 (ms)':>14} {'overhead':>9}"
    print(header)
    print("-" * len(header))
    overheads = {}
    for name, t in times.items():
        q1, _, q3 = statistics.quantiles(t, n=4)
        med = statistics.median(t)
        overheads[name] = med / base - 1.0
        print(f"{name:<20} {1e3 * med:11.2f} {f'{1e3 * q1:.1f}-{1e3 * q3:.1f}':>14} {100 * overheads[name]:+8.1f}%")
    print("(overhead = median / deepinv's median - 1; every output checked equal to deepinv's; "
          "SenseMRI.apply is the unvalidated complex path the qMRI solvers call inside their loops)")
    for name in ("SenseMRI.A", "SenseMRI.A_complex"):
        ok = overheads[name] < OVERHEAD_TARGET
        print(f"{'PASS' if ok else 'MISS'}  {name} wrapper overhead < {100 * OVERHEAD_TARGET:.0f} %: "
              f"{100 * overheads[name]:+.1f} %")


# ----------------------------------------------------------------------------- part 2: NLCG vs L-BFGS


class Counted:
    """A ``f_and_grad`` that counts its calls."""

    def __init__(self, f_and_grad: Callable):
        self.f_and_grad, self.calls = f_and_grad, 0

    def __call__(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        return self.f_and_grad(v)


class TargetReached(Exception):
    """Raised by the L-BFGS closure at the first point it evaluates with objective <= the target."""


def qmri_problem(size: int) -> tuple[QuantitativeMRI, Callable, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(physics, f_and_grad in scaled variables, scales s, start v0, tissue mask) of nlcg_maps on a noisy T2 scan."""
    ph = qmri_brain(size, SEED)
    masks = cartesian_mask((size, size), ACCELERATION, n_masks=len(ECHO_TIMES), seed=SEED + ACCELERATION)
    physics = QuantitativeMRI(SenseMRI(masks, simulated_coil_maps(N_COILS, (size, size))), "t2", ECHO_TIMES)
    y0 = physics.A(torch.cat([ph.m0.real, ph.m0.imag, ph.r2()], dim=1))
    sigma = float(ph.m0.abs()[ph.mask].mean()) / SNR
    gen = torch.Generator().manual_seed(SEED + 7)
    noise = torch.complex(torch.randn(y0.shape, generator=gen), torch.randn(y0.shape, generator=gen)) / math.sqrt(2)
    yn, _ = prepare(physics, y0 + sigma * noise * physics.sense.sampling_mask())
    x0 = initial_maps(physics, yn)
    s = scales(physics, x0)
    return physics, data_consistency(physics, yn, s), s, x0 / s, ph.mask[:, 0]


def run_nlcg(physics: QuantitativeMRI, f_and_grad: Callable, s: torch.Tensor, v0: torch.Tensor, n_iter: int) -> dict:
    """NLCG configured as nlcg_maps (DY, secant, 20 evaluations per search, R >= R_min), ``n_iter`` iterations."""
    fg = Counted(f_and_grad)
    solver = NLCG(
        fg, beta="DY", line_search="secant", projection=rate_projection(physics, s), max_ls=20,
        max_iter=n_iter, tol=0.0, progress=False,
    )  # fmt: skip
    t0 = time.perf_counter()
    v, hist = solver.run(v0)
    wall = time.perf_counter() - t0
    return {"iters": hist.iterations, "evals": fg.calls, "time": wall, "f": hist.objective[-1], "v": v}


def run_lbfgs(f_and_grad: Callable, v0: torch.Tensor, target: float, max_iter: int) -> dict:
    """torch L-BFGS (strong Wolfe) until it evaluates a point with f <= ``target``, or ``max_iter`` iterations."""
    fg, v, last = Counted(f_and_grad), v0.clone().requires_grad_(True), [math.inf]

    def closure() -> torch.Tensor:
        with torch.no_grad():
            f, g = fg(v)
        v.grad, last[0] = g, float(f)
        if last[0] <= target:
            raise TargetReached
        return f

    opt = torch.optim.LBFGS([v], lr=1.0, max_iter=max_iter, max_eval=25 * max_iter, history_size=10,
                            line_search_fn="strong_wolfe")
    t0 = time.perf_counter()
    try:
        opt.step(closure)
        reached = False
    except TargetReached:
        reached = True
    wall = time.perf_counter() - t0
    iters = opt.state[v]["n_iter"]
    note = "" if reached else ("iteration cap" if iters >= max_iter else "stopped by its own tolerances")
    return {"iters": iters, "evals": fg.calls, "time": wall, "f": last[0], "v": v.detach(), "reached": reached,
            "note": note}


def bound_report(r: dict, low: float, tissue: torch.Tensor) -> str:
    """Pixels of the final point with scaled rate <= ``low`` (at or past R_min), and how many lie in the tissue."""
    below = r["v"][:, 2] <= low
    return f"{int(below.sum())} ({int((below & tissue).sum())} in tissue)"


def part_optimisers(size: int, n_iter: int, lbfgs_factor: int) -> None:
    """Run and print part 2 (NLCG for ``n_iter`` iterations, then L-BFGS down to NLCG's objective)."""
    physics, f_and_grad, s, v0, tissue = qmri_problem(size)
    f0 = float(f_and_grad(v0)[0])
    nlcg = run_nlcg(physics, f_and_grad, s, v0, n_iter)
    lbfgs = run_lbfgs(f_and_grad, v0, nlcg["f"], lbfgs_factor * n_iter)
    r_min = RATE_MIN[physics.model]
    low = r_min / float(s[0, 2, 0, 0])  # the projection's bound in the scaled variables
    print(f"\n# NLCG vs L-BFGS: T2 qMRI {size}x{size}, {N_COILS} coils, {len(ECHO_TIMES)} echoes, R = {ACCELERATION}, "
          f"SNR {SNR:g}; f(v0) = {f0:.6g}, f_N = f after {n_iter} NLCG iterations = {nlcg['f']:.6g}")
    header = f"{'method':<14} {'iters':>6} {'evals':>6} {'evals/iter':>10} {'ms/iter':>8} {'time (s)':>9} " \
             f"{'f':>12} {'px R <= R_min':>20}"
    print(header)
    print("-" * len(header))
    for name, r in (("NLCG DY/secant", nlcg), ("L-BFGS wolfe", lbfgs)):
        print(f"{name:<14} {r['iters']:6d} {r['evals']:6d} {r['evals'] / r['iters']:10.2f} "
              f"{1e3 * r['time'] / r['iters']:8.1f} {r['time']:9.2f} {r['f']:12.6g} {bound_report(r, low, tissue):>20}")
    print("(evals: objective + gradient evaluations, one A and one A^H each, the one at the start included; "
          "L-BFGS stops at the first point it evaluates with f <= f_N, inside its iteration then; "
          f"px: pixels of the {size * size} whose rate is at or below R_min at the final point)")
    if lbfgs["reached"]:
        print(f"time to reach f_N: NLCG {nlcg['time']:.2f} s, L-BFGS {lbfgs['time']:.2f} s "
              f"(L-BFGS / NLCG = {lbfgs['time'] / nlcg['time']:.2f})")
    else:
        print(f"L-BFGS did not reach f_N ({lbfgs['note']}, after {lbfgs['iters']} iterations, {lbfgs['time']:.2f} s)")
    binds = any(bool((r["v"][:, 2] <= low).any()) for r in (nlcg, lbfgs))
    verdict = "is ACTIVE (see px): the two minimise over different sets" if binds else "is inactive: same problem"
    print(f"note: L-BFGS runs unconstrained, NLCG projects onto R >= R_min = {r_min:g} 1/s; "
          f"at the final points the bound {verdict}")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="128^2 operators, 64^2 qMRI, 40 NLCG iterations")
    parser.add_argument("--repeats", type=int, default=None, help="round-robin rounds of part 1 (default 21, quick 15)")
    parser.add_argument("--nlcg-iter", type=int, default=None, help="NLCG iterations (default 100, quick 40)")
    parser.add_argument("--lbfgs-factor", type=int, default=4, help="L-BFGS iteration cap, times the NLCG iterations")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (15 if args.quick else 21)
    n_iter = args.nlcg_iter or (40 if args.quick else 100)

    torch.set_num_threads(args.threads)
    print(f"# MRI: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    part_operators(128 if args.quick else 256, repeats)
    part_optimisers(64 if args.quick else 128, n_iter, args.lbfgs_factor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
