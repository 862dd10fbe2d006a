r"""Full-waveform inversion (FWI) with an :math:`H^s` trace misfit, :math:`s \le 0`.

After Zhu, Hu, Lou and Yang ("Implicit regularization effects of the Sobolev norms in image
processing") and Engquist, Ren and Yang (the :math:`H^{-1}` / Wasserstein link): the velocity
:math:`c` of a 2D acoustic model (:class:`operators.wave.AcousticWave2D`) minimises

.. math::  J_s(c) = \frac{\tfrac12 \sum_{\text{src, rec}} \|T(d(c) - d_{obs})\|_{H^s}^2}{J_s(c_0)},

the misfit of every trace (one source, one receiver) in the 1D Sobolev norm over time,
normalised by its value at the initial model :math:`c_0`. :math:`T` tapers the last
``taper_fraction`` of each residual trace with a cosine (so the record's end is no jump) and
zero-pads it to twice its length (so its end does not wrap onto its start); the norm's ``scale``
is the padded record length :math:`2 n_t \Delta t` in seconds, so that its frequency
:math:`\xi` is the angular frequency :math:`\omega` in rad/s and the weight is
:math:`(1 + \omega^2)^s \approx \omega^{2s}` over a seismic band. :math:`s = 0` is the (tapered)
L2 misfit by the same code path; :math:`s < 0` weighs the residual towards the low
frequencies, whose longer periods tolerate larger time shifts (less cycle skipping).

Optimisation: L-BFGS (``torch.optim.LBFGS``, strong Wolfe line search, at most
``max_line_search`` misfit evaluations per iteration, ``history_size`` correction pairs) over
:math:`m`, with :math:`c = c_{lo} + (c_{hi} - c_{lo})\,\mathrm{sigmoid}(m)` on the ``free``
cells (so every iterate stays inside ``bounds``) and :math:`c = c_0` elsewhere; the gradient
comes from autograd through the wave solver. One iteration is one ``LBFGS.step``; the run ends
after ``max_iter`` iterations, when the relative model update :math:`\|c_{k+1} - c_k\| /
\|c_k\|` falls to ``tol``, or when the line search finds no decrease.

Shapes and units: velocity (nz, nx) in m/s, traces (n_sources, n_t, n_receivers) as
:meth:`AcousticWave2D.A` returns them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch

from operators._validate import check_int, check_positive, check_shape, check_tensor
from operators.wave import CFL_LIMIT, AcousticWave2D
from recon.regularizers.sobolev import SobolevNorm
from recon.result import ReconInfo
from recon.solvers.base import IterativeSolver, norm

__all__ = ["TraceMisfit", "fwi"]

#: default fraction of each trace's samples, at its end, under the cosine taper of the residual
TAPER_FRACTION = 0.1
#: default velocity bounds of the inversion in m/s
BOUNDS = (1400.0, 4000.0)


class TraceMisfit:
    r""":math:`\tfrac12 \sum \|T r\|_{H^s}^2` over time, trace by trace, of residuals (n_src, n_t, n_rec).

    :math:`T`: a cosine taper over the last ``taper_fraction`` of the samples, then zero padding
    to :math:`2 n_t` samples (see the module docstring).

    Args:
        s: Sobolev exponent (0 is L2; negative orders weigh the low frequencies).
        n_t: samples per trace (>= 1).
        dt: sampling interval in s (> 0); with the zero padding, ``scale`` = :math:`2 n_t\,dt`
            makes :math:`\xi` the angular frequency in rad/s.
        taper_fraction: fraction of the samples under the taper, in [0, 1) (at least one sample
            is tapered).

    Example:
        >>> misfit = TraceMisfit(-1.0, wave.n_t, wave.dt)
        >>> value = misfit(wave.A(c) - d_obs)          # 0-d tensor, differentiable
    """

    def __init__(self, s: float, n_t: int, dt: float, taper_fraction: float = TAPER_FRACTION):
        n_t, dt = check_int("n_t", n_t), check_positive("dt", dt)
        if isinstance(taper_fraction, bool) or not isinstance(taper_fraction, (int, float)) or not 0 <= taper_fraction < 1:
            raise ValueError(f"taper_fraction: expected a number in [0, 1), received {taper_fraction!r}")
        self.norm = SobolevNorm(s, ndim=1, scale=2 * n_t * dt)
        n_taper = max(1, round(taper_fraction * n_t))
        ramp = 0.5 * (1.0 + torch.cos(math.pi * torch.arange(1, n_taper + 1, dtype=torch.float64) / n_taper))
        self.taper = torch.cat([torch.ones(n_t - n_taper, dtype=torch.float64), ramp])

    def __call__(self, residual: torch.Tensor) -> torch.Tensor:
        r = residual.transpose(1, 2) * self.taper.to(residual)
        r = torch.cat([r, torch.zeros_like(r)], dim=-1)
        return 0.5 * torch.sum(r * self.norm.apply(r))


class _NonFinite(Exception):
    """A misfit or gradient evaluation gave NaN/Inf (turned into the base's NonFiniteError)."""


class _CachedObjective:
    """Objective and gradient with a memory of the points already evaluated in this iteration.

    ``torch.optim.LBFGS.step`` (called once per iteration) starts by evaluating the point its
    previous line search accepted; the memory answers that call, and the one that reads the
    accepted point's value after the step.
    """

    def __init__(self, m: torch.Tensor, objective: Callable[[torch.Tensor], torch.Tensor]):
        self.m, self.objective = m, objective
        self.seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.evaluations = 0

    def __call__(self) -> torch.Tensor:
        for point, value, grad in self.seen:
            if torch.equal(point, self.m):
                self.m.grad = grad.clone()
                return value
        self.m.grad = None
        value = self.objective(self.m)
        value.backward()
        value = value.detach()
        self.evaluations += 1
        if not (math.isfinite(float(value)) and bool(torch.isfinite(self.m.grad).all())):
            raise _NonFinite
        self.seen.append((self.m.detach().clone(), value, self.m.grad.clone()))
        return value

    def new_iteration(self) -> None:
        """Keep only the current point (the next step() asks for it first)."""
        self.seen = [entry for entry in self.seen if torch.equal(entry[0], self.m)]


class _VelocityLBFGS(IterativeSolver):
    """L-BFGS on the bounded velocity; history objective: J_s, residual: relative model update."""

    def __init__(
        self,
        wave: AcousticWave2D,
        y: torch.Tensor,
        misfit: TraceMisfit,
        free: torch.Tensor,
        bounds: tuple[float, float],
        max_line_search: int,
        history_size: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.wave, self.y, self.misfit, self.free, self.bounds = wave, y, misfit, free, bounds
        self.max_line_search, self.history_size = max_line_search, history_size

    def init_state(self, x0: torch.Tensor) -> dict:
        lo, hi = self.bounds
        # m is free only where c is; elsewhere its value never matters (zero gradient, c = c0)
        m = torch.where(self.free, torch.logit((x0 - lo) / (hi - lo)), torch.zeros_like(x0)).requires_grad_()

        def velocity(m: torch.Tensor) -> torch.Tensor:
            return torch.where(self.free, lo + (hi - lo) * torch.sigmoid(m), x0)

        with torch.no_grad():
            scale = float(self.misfit(self.wave.A(x0) - self.y))
        scale = scale if scale > 0 else 1.0  # the start fits exactly: the misfit is not normalised
        self.closure = _CachedObjective(m, lambda m: self.misfit(self.wave.A(velocity(m)) - self.y) / scale)
        # max_iter=1: one iteration per step() call; max_eval bounds that call's line search (its
        # default, 5/4 max_iter, would leave the line search no evaluation at all).
        self.opt = torch.optim.LBFGS(
            [m], lr=1.0, max_iter=1, max_eval=self.max_line_search, history_size=self.history_size,
            tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe",
        )  # fmt: skip
        self.velocity, self.initial_misfit = velocity, scale
        return {"x": x0, "m": m}

    def step(self, state: dict) -> tuple[float, float]:
        try:
            self.opt.step(self.closure)
            self.closure.new_iteration()
            value = float(self.closure())  # the accepted point, answered from the memory
        except _NonFinite:
            return math.inf, math.nan  # the base raises NonFiniteError with the last iterate
        c_prev = state["x"]
        c = self.velocity(state["m"].detach())
        if torch.equal(c, c_prev):
            state["stop"] = "the line search found no decrease"
        state["x"] = c
        return value, float(norm(c - c_prev) / norm(c_prev))


def _check_bounds(bounds: object, wave: AcousticWave2D) -> tuple[float, float]:
    ok = isinstance(bounds, Sequence) and len(bounds) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bounds)
    if not ok or not 0 < bounds[0] < bounds[1]:
        raise ValueError(f"bounds: expected (c_lo, c_hi) in m/s with 0 < c_lo < c_hi, received {bounds!r}")
    if bounds[1] * wave.dt / wave.dx > CFL_LIMIT:
        raise ValueError(
            f"bounds: c_hi = {bounds[1]:g} m/s breaks the CFL limit of the operator (c dt / dx <= sqrt(3/8), "
            f"dt = {wave.dt:g} s, dx = {wave.dx:g} m): expected c_hi <= {CFL_LIMIT * wave.dx / wave.dt:.6g} m/s"
        )
    return float(bounds[0]), float(bounds[1])


def fwi(
    physics: AcousticWave2D,
    y: torch.Tensor,
    *,
    x0: torch.Tensor,
    s: float = 0.0,
    free: torch.Tensor | None = None,
    bounds: tuple[float, float] = BOUNDS,
    max_iter: int = 30,
    tol: float = 0.0,
    taper_fraction: float = TAPER_FRACTION,
    max_line_search: int = 20,
    history_size: int = 10,
    progress: bool | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""Full-waveform inversion: L-BFGS on the normalised :math:`H^s` trace misfit (module docstring).

    .. math::  \min_{c_{lo} < c < c_{hi}}\ \frac{\tfrac12 \sum \|T(d(c) - y)\|_{H^s}^2}
               {\tfrac12 \sum \|T(d(c_0) - y)\|_{H^s}^2},\qquad c = c_0 \text{ outside } \texttt{free}.

    Args:
        physics: the wave operator :math:`d(c)` (:class:`operators.wave.AcousticWave2D`).
        y: observed traces (n_sources, n_t, n_receivers), real floating, in the units of
            ``physics.A``'s output.
        x0: initial model :math:`c_0` (nz, nx) in m/s, the dtype of ``y``; strictly inside
            ``bounds`` on the ``free`` cells, and kept as it is on the others (e.g. the water).
        s: Sobolev exponent of the misfit over time (0: L2; -0.5 and -1: low-frequency weighted).
        free: boolean mask (nz, nx) of the inverted cells; default every cell.
        bounds: velocity bounds :math:`(c_{lo}, c_{hi})` in m/s of the free cells; :math:`c_{hi}`
            must satisfy the operator's CFL limit.
        max_iter: L-BFGS iterations (>= 1).
        tol: stop when the relative model update :math:`\|c_{k+1} - c_k\| / \|c_k\|` is <= tol
            (0: run ``max_iter`` iterations).
        taper_fraction: fraction of each residual trace under the cosine taper (:class:`TraceMisfit`).
        max_line_search: most misfit evaluations (forward + backward) per iteration (>= 1).
        history_size: L-BFGS correction pairs kept (>= 1).
        progress: tqdm bar; None shows it only when stderr is a terminal.
        callback: ``callback(iteration, c)`` after every iteration (e.g. to record a model error
            against a known model, for reporting only).

    Returns:
        ``(c, info)``: the final model (nz, nx) in m/s, and a :class:`~recon.result.ReconInfo`
        whose history holds :math:`J_s` (objective, 1 at ``x0``) and the relative model update
        (residual) per iteration; ``params`` the arguments above (``s``, ``bounds``,
        ``max_iter``, ``tol``, ``taper_fraction``, ``max_line_search``, ``history_size``);
        ``extra["evaluations"]``: forward + backward evaluations, ``extra["initial_misfit"]``:
        the unnormalised misfit at ``x0`` (the normalisation).

    Raises:
        NonFiniteError: a misfit or gradient became NaN/Inf; ``last_iterate`` is the last model.

    Example:
        >>> c, info = recon.fwi(wave, d_obs, x0=c0, s=-1.0, free=below_water, max_iter=30)
        >>> info.history.objective[-1], info.extra["evaluations"]
    """
    t0 = time.perf_counter()
    if not isinstance(physics, AcousticWave2D):
        raise TypeError(f"physics: expected an operators.wave.AcousticWave2D, received {type(physics).__name__}")
    shape = tuple(physics.shape)
    traces = (physics.sources.shape[0], physics.n_t, physics.receivers.shape[0])
    check_shape("y", check_tensor("y", y), traces)
    check_shape("x0", check_tensor("x0", x0), shape)
    if x0.dtype != y.dtype:
        raise TypeError(f"x0: expected the dtype of y ({y.dtype}), received {x0.dtype}")
    if free is None:
        free = torch.ones(shape, dtype=torch.bool, device=x0.device)
    elif not isinstance(free, torch.Tensor) or free.dtype != torch.bool or tuple(free.shape) != shape:
        got = f"{free.dtype} {tuple(free.shape)}" if isinstance(free, torch.Tensor) else type(free).__name__
        raise ValueError(f"free: expected a boolean tensor of shape {shape}, received {got}")
    lo, hi = _check_bounds(bounds, physics)
    inside = (x0 > lo) & (x0 < hi)
    if not bool(inside[free].all()):
        raise ValueError(
            f"x0: expected velocities strictly inside bounds ({lo:g}, {hi:g}) m/s on the free cells, "
            f"received [{float(x0[free].min()):g}, {float(x0[free].max()):g}]"
        )
    misfit = TraceMisfit(s, physics.n_t, physics.dt, taper_fraction)
    solver = _VelocityLBFGS(
        physics, y, misfit, free, (lo, hi), check_int("max_line_search", max_line_search),
        check_int("history_size", history_size), max_iter=max_iter, tol=tol, progress=progress, callback=callback,
    )  # fmt: skip
    c, hist = solver.run(x0.detach())
    params = {
        "s": float(s), "bounds": (lo, hi), "max_iter": max_iter, "tol": tol, "taper_fraction": taper_fraction,
        "max_line_search": max_line_search, "history_size": history_size,
    }  # fmt: skip
    return c, ReconInfo.from_history(hist, t0, params, evaluations=solver.closure.evaluations, initial_misfit=solver.initial_misfit)
