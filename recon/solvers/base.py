"""The small base every iterative solver shares.

A solver subclasses :class:`IterativeSolver`, implements :meth:`IterativeSolver.init_state`
and :meth:`IterativeSolver.step`, and gets from the base: the iteration loop, the history
(objective, residual, wall time and, only for reporting, PSNR against a reference), a tqdm bar
when stderr is a terminal, stopping by tolerance or iteration count, and the NaN/Inf guard that
raises :class:`NonFiniteError` carrying the last finite iterate.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm


class NonFiniteError(FloatingPointError):
    """Raised when an iterate becomes NaN/Inf.

    Attributes:
        last_iterate: the last iterate whose entries were all finite (a tensor, never lost).
        iteration: index of the iteration that produced the non-finite value.
        history: the history recorded up to the failure.
    """

    def __init__(self, message: str, last_iterate: torch.Tensor, iteration: int, history: History):
        super().__init__(message)
        self.last_iterate = last_iterate
        self.iteration = iteration
        self.history = history


@dataclass
class History:
    """Per-iteration records of a solver run.

    Attributes:
        objective: objective value per iteration (``nan`` where a solver has none).
        residual: the stopping quantity per iteration (solver specific, documented by each solver).
            Solvers without an objective record ``nan`` there; a NaN/Inf residual or iterate,
            or an infinite objective, stops the run with :class:`NonFiniteError`.
        time: wall-clock seconds since the start of ``run`` at the end of each iteration.
        psnr: PSNR in dB against the ``reference`` passed to the solver, for reporting only;
            empty when no reference was given. It never influences stopping.
        converged: True when the tolerance was met before ``max_iter``.
        iterations: number of iterations performed.
    """

    objective: list[float] = field(default_factory=list)
    residual: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    converged: bool = False
    iterations: int = 0


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    data_range = float(ref.max() - ref.min()) or 1.0
    mse = float(torch.mean((x.real - ref.real) ** 2))
    return 10.0 * math.log10(data_range**2 / mse) if mse > 0 else float("inf")


class IterativeSolver:
    """Base class: subclasses define ``init_state`` and ``step``.

    Args:
        max_iter: maximum number of iterations (>= 1).
        tol: stop when the residual returned by ``step`` is <= ``tol`` (0 disables).
        progress: show a tqdm bar; ``None`` means "only when stderr is a terminal".
        reference: optional ground truth, used ONLY to record PSNR in the history.
        callback: optional ``callback(iteration, x)`` called after each iteration.
    """

    def __init__(
        self,
        max_iter: int = 100,
        tol: float = 0.0,
        progress: bool | None = None,
        reference: torch.Tensor | None = None,
        callback: Callable[[int, torch.Tensor], None] | None = None,
    ):
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"max_iter: expected an integer >= 1, received {max_iter!r}")
        if not isinstance(tol, (int, float)) or tol < 0 or tol != tol:
            raise ValueError(f"tol: expected a number >= 0, received {tol!r}")
        self.max_iter = max_iter
        self.tol = float(tol)
        self.progress = sys.stderr.isatty() if progress is None else bool(progress)
        self.reference = reference
        self.callback = callback

    # -- to implement -------------------------------------------------------------------------
    def init_state(self, x0: torch.Tensor) -> dict:
        """Return the mutable solver state; must hold the current iterate under key ``"x"``."""
        raise NotImplementedError

    def step(self, state: dict) -> tuple[float, float]:
        """Advance ``state`` by one iteration in place; return ``(objective, residual)``."""
        raise NotImplementedError

    # -- shared loop ----------------------------------------------------------------------------
    def run(self, x0: torch.Tensor) -> tuple[torch.Tensor, History]:
        """Iterate from ``x0`` until ``residual <= tol`` or ``max_iter`` iterations.

        Returns:
            ``(x, history)``: the final iterate and its :class:`History`.

        Raises:
            NonFiniteError: when an iterate or the objective becomes NaN/Inf; the exception's
                ``last_iterate`` holds the last finite iterate.
        """
        state = self.init_state(x0)
        hist = History()
        t0 = time.perf_counter()
        bar = tqdm(total=self.max_iter, desc=type(self).__name__, disable=not self.progress, leave=False)
        try:
            for it in range(self.max_iter):
                last = state["x"].detach().clone()
                objective, residual = self.step(state)
                x = state["x"]
                bad = not bool(torch.isfinite(x).all()) or not math.isfinite(residual) or math.isinf(objective)
                if bad:
                    raise NonFiniteError(
                        f"{type(self).__name__}: non-finite value at iteration {it}; "
                        "the last finite iterate is in .last_iterate",
                        last_iterate=last,
                        iteration=it,
                        history=hist,
                    )
                hist.objective.append(float(objective))
                hist.residual.append(float(residual))
                hist.time.append(time.perf_counter() - t0)
                if self.reference is not None:
                    hist.psnr.append(_psnr(x, self.reference))
                hist.iterations = it + 1
                if self.callback is not None:
                    self.callback(it, x)
                bar.update(1)
                bar.set_postfix(res=f"{residual:.2e}")
                if self.tol > 0 and residual <= self.tol:
                    hist.converged = True
                    break
        finally:
            bar.close()
        return state["x"], hist
