"""The small base every iterative solver shares.

A solver subclasses :class:`IterativeSolver`, implements :meth:`IterativeSolver.init_state`
and :meth:`IterativeSolver.step`, and gets from the base: the iteration loop, the history
(objective, residual, wall time and, only for reporting, PSNR against a reference), a tqdm bar
when stderr is a terminal, stopping by tolerance or iteration count, and the NaN/Inf guard that
raises :class:`NonFiniteError` carrying the last finite iterate.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
import time
from collections.abc import Callable, Sequence
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
        stop_reason: why the run ended: ``"tol"``, ``"max_iter"``, or a solver's own message
            when it ended early without meeting the tolerance (e.g. a stalled line search).
    """

    objective: list[float] = field(default_factory=list)
    residual: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    converged: bool = False
    iterations: int = 0
    stop_reason: str = ""


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    data_range = float(ref.max() - ref.min()) or 1.0
    mse = float(torch.mean((x.real - ref.real) ** 2))
    return 10.0 * math.log10(data_range**2 / mse) if mse > 0 else float("inf")


def check_count(name: str, value: object) -> int:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int >= 1 (not a bool); return it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, received {value!r}")
    return value


class IterativeSolver:
    """Base class: subclasses define ``init_state`` and ``step``.

    The keyword arguments below are every solver's, validated here and only here: a solver's
    ``__init__`` takes its own problem's arguments and is decorated with :func:`solver_keywords`,
    which appends these five (keyword-only, with that solver's defaults) to its signature.

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
        self.max_iter = check_count("max_iter", max_iter)
        if not isinstance(tol, (int, float)) or tol < 0 or tol != tol:
            raise ValueError(f"tol: expected a number >= 0, received {tol!r}")
        if progress is not None and not isinstance(progress, bool):
            raise TypeError(f"progress: expected True, False or None, received {type(progress).__name__}")
        self.tol = float(tol)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.reference = reference
        self.callback = None if callback is None else check_callable("callback", callback)

    # -- to implement -------------------------------------------------------------------------
    def init_state(self, x0: torch.Tensor) -> dict:
        """Return the mutable solver state; must hold the current iterate under key ``"x"``."""
        raise NotImplementedError

    def step(self, state: dict) -> tuple[float, float]:
        """Advance ``state`` by one iteration in place; return ``(objective, residual)``.

        A solver that ends the run itself sets ``state["stop"]`` to a short message; the loop
        records the iteration and ends with ``history.stop_reason`` set to that message and
        ``history.converged`` set to ``state.get("converged", False)``: a solver that reached its
        goal (an exact solution, a discrepancy principle met) also sets ``state["converged"] = True``;
        one that cannot make further progress (a line search that stalls) does not.
        """
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
        ref = self.reference
        if ref is not None and (not isinstance(ref, torch.Tensor) or ref.shape != state["x"].shape):
            got = tuple(ref.shape) if isinstance(ref, torch.Tensor) else type(ref).__name__
            raise ValueError(
                f"reference: expected a tensor of the iterate's shape {tuple(state['x'].shape)}, received {got}"
            )
        hist = History(stop_reason="max_iter")
        t0 = time.perf_counter()
        bar = tqdm(total=self.max_iter, desc=type(self).__name__, disable=not self.progress, leave=False)
        try:
            for it in range(self.max_iter):
                last = state["x"].detach().clone()
                objective, residual = self.step(state)
                x = state["x"]
                bad = not bool(torch.isfinite(x).all()) or not math.isfinite(residual) or math.isinf(objective)
                if bad:
                    hist.stop_reason = "non-finite value"
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
                    hist.stop_reason = "tol"
                    break
                if state.get("stop"):
                    hist.stop_reason = str(state["stop"])
                    hist.converged = bool(state.get("converged", False))
                    break
        finally:
            bar.close()
        return state["x"], hist


def solver_keywords(*, max_iter: int = 100, tol: float = 0.0) -> Callable[[Callable], Callable]:
    """Decorate a solver's ``__init__`` with the keyword arguments every solver takes.

    The decorated ``__init__`` declares only its own problem's arguments. The returned one also
    takes ``max_iter`` (default ``max_iter``), ``tol`` (default ``tol``), ``progress``,
    ``reference`` and ``callback``, keyword-only and last in its signature, runs
    :meth:`IterativeSolver.__init__` with them (validation) and then the decorated body.

    Example:
        >>> class Halve(IterativeSolver):
        ...     @solver_keywords(max_iter=10)
        ...     def __init__(self, factor: float = 0.5):
        ...         self.factor = factor
        ...     def init_state(self, x0): return {"x": x0.clone()}
        ...     def step(self, state): state["x"] = state["x"] * self.factor; return float("nan"), 0.5
        >>> x, hist = Halve(max_iter=3, progress=False).run(torch.ones(2))
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    shared = [
        inspect.Parameter("max_iter", keyword, default=max_iter, annotation="int"),
        inspect.Parameter("tol", keyword, default=tol, annotation="float"),
        inspect.Parameter("progress", keyword, default=None, annotation="bool | None"),
        inspect.Parameter("reference", keyword, default=None, annotation="torch.Tensor | None"),
        inspect.Parameter("callback", keyword, default=None, annotation="Callable[[int, torch.Tensor], None] | None"),
    ]

    def decorate(init: Callable) -> Callable:
        own = inspect.signature(init)

        @functools.wraps(init)
        def __init__(self, *args, max_iter=max_iter, tol=tol, progress=None, reference=None, callback=None, **kwargs):
            IterativeSolver.__init__(
                self, max_iter=max_iter, tol=tol, progress=progress, reference=reference, callback=callback
            )
            init(self, *args, **kwargs)

        __init__.__signature__ = own.replace(parameters=[*own.parameters.values(), *shared])
        return __init__

    return decorate


# -- vector-space helpers shared by the solvers ------------------------------------------------
# Solvers treat a whole tensor (batch included) as ONE vector. A "block" is a list/tuple of
# tensors (e.g. the dual variable of K = [A; grad]) and is treated as the direct sum of its parts.

Block = torch.Tensor | Sequence[torch.Tensor]


def is_block(a: object) -> bool:
    """True for a list/tuple of tensors (a block vector), False for a plain tensor."""
    return isinstance(a, (list, tuple))


def bmap(fn: Callable[..., torch.Tensor], *blocks: Block) -> Block:
    """Apply ``fn`` part by part: ``fn(a, b)`` for tensors, ``[fn(a_i, b_i)]`` for blocks.

    Example:
        >>> bmap(lambda a, b: a + 2 * b, [torch.ones(2), torch.zeros(1)], [torch.ones(2), torch.ones(1)])
        [tensor([3., 3.]), tensor([2.])]
    """
    if is_block(blocks[0]):
        return [fn(*parts) for parts in zip(*blocks, strict=True)]
    return fn(*blocks)


def inner(a: Block, b: Block) -> torch.Tensor:
    r"""Real inner product :math:`\mathrm{Re}\sum_i \overline{a_i} b_i` over all entries (0-d tensor)."""
    if is_block(a):
        return sum((inner(ai, bi) for ai, bi in zip(a, b, strict=True)), torch.zeros((), device=a[0].device))
    return torch.vdot(a.reshape(-1), b.reshape(-1)).real


def norm(a: Block) -> torch.Tensor:
    """Euclidean norm over all entries (and all parts of a block), as a 0-d real tensor."""
    if is_block(a):
        return torch.sqrt(sum(torch.linalg.vector_norm(ai) ** 2 for ai in a))
    return torch.linalg.vector_norm(a)


def numel(a: Block) -> int:
    """Number of entries of a tensor or block."""
    return sum(ai.numel() for ai in a) if is_block(a) else a.numel()


def all_finite(a: Block) -> bool:
    """True when every entry of the tensor / block is finite."""
    return all(bool(torch.isfinite(ai).all()) for ai in a) if is_block(a) else bool(torch.isfinite(a).all())


def check_callable(name: str, value: object) -> Callable:
    """Raise ``TypeError`` naming ``name`` unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(f"{name}: expected a callable, received {type(value).__name__}")
    return value


def as_linear_operator(
    name: str, op: object, adjoint: Callable | None = None, adjoint_name: str | None = None
) -> tuple[Callable[[torch.Tensor], Block], Callable[[Block], torch.Tensor]]:
    """Return ``(A, A_adjoint)`` from a ``deepinv.physics.LinearPhysics`` or a pair of callables.

    A physics object is recognised by its ``A`` and ``A_adjoint`` methods (it is never called
    directly, since ``physics(x)`` adds noise). For a plain callable, ``adjoint`` is required.

    Args:
        name: argument name used in error messages.
        op: a ``LinearPhysics`` (or anything with ``.A`` and ``.A_adjoint``) or a callable ``A(x)``.
        adjoint: the adjoint callable when ``op`` is a plain callable; must be ``None`` for physics.
        adjoint_name: argument name of ``adjoint`` in messages (default ``name + "_adjoint"``).
    """
    adjoint_name = adjoint_name or f"{name}_adjoint"
    if hasattr(op, "A") and hasattr(op, "A_adjoint"):
        if adjoint is not None:
            raise ValueError(
                f"{adjoint_name}: expected None when {name} is a LinearPhysics (its A_adjoint is used), "
                f"received {type(adjoint).__name__}"
            )
        return op.A, op.A_adjoint
    if not callable(op):
        raise TypeError(f"{name}: expected a LinearPhysics or a callable, received {type(op).__name__}")
    if adjoint is None:
        raise ValueError(f"{adjoint_name}: expected a callable adjoint when {name} is a plain callable, received None")
    return op, check_callable(adjoint_name, adjoint)
