"""The one typed result every reconstruction method returns beside its image.

Every public method is ``x, info = method(physics, y, *, ...)`` and ``info`` is a
:class:`ReconInfo`: the same fields for every method, so that code written for one method (a
plot of ``info.history.objective``, a table of ``info.seconds``, the HDF5 writer) works for all.

* ``history``: always one :class:`recon.solvers.History` (empty for closed-form methods; the
  records of several solver runs, such as graphLa's reweighted l1 solves, are concatenated).
* ``n_iter``, ``converged``, ``stop_reason``: as in the history; closed-form methods report
  ``0``, ``True`` and ``"closed form"``.
* ``seconds``: wall-clock time of the whole call.
* ``params``: the hyperparameters the method used, chosen or given (``alpha``, ``noise_std``, ...),
  by their names in the method's signature.
* ``extra``: the method's own by-products (the preliminary image of graphLa, the echo images of
  qMRI, ...), documented in each method's Returns section.

Example:
    >>> x, info = recon.tv(physics, y, noise_level=0.02)
    >>> info.params["alpha"], info.n_iter, info.converged, info.seconds
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from recon.solvers.base import History

__all__ = ["ReconInfo", "concat_histories"]


@dataclass
class ReconInfo:
    """What a reconstruction method reports beside its image (see the module docstring)."""

    history: History = field(default_factory=History)
    n_iter: int = 0
    converged: bool = True
    stop_reason: str = "closed form"
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def closed_form(cls, t0: float, params: dict[str, Any] | None = None, **extra: Any) -> ReconInfo:
        """The result of a method without iterations, timed from ``t0`` (``time.perf_counter()``)."""
        return cls(seconds=time.perf_counter() - t0, params=dict(params or {}), extra=extra)

    @classmethod
    def from_history(
        cls, history: History | Sequence[History], t0: float, params: dict[str, Any] | None = None, **extra: Any
    ) -> ReconInfo:
        """The result of one solver run (or several, concatenated in order), timed from ``t0``."""
        hist = history if isinstance(history, History) else concat_histories(history)
        return cls(
            history=hist,
            n_iter=hist.iterations,
            converged=hist.converged,
            stop_reason=hist.stop_reason,
            seconds=time.perf_counter() - t0,
            params=dict(params or {}),
            extra=extra,
        )


def concat_histories(histories: Sequence[History]) -> History:
    """One :class:`History` holding the records of several runs, in order.

    ``iterations`` is the total, ``converged`` is True when every run converged and
    ``stop_reason`` is the last run's (an empty sequence gives an empty history).
    """
    out = History()
    for h in histories:
        out.objective += h.objective
        out.residual += h.residual
        offset = out.time[-1] if out.time else 0.0
        out.time += [offset + t for t in h.time]
        out.psnr += h.psnr
        out.iterations += h.iterations
    out.converged = bool(histories) and all(h.converged for h in histories)
    out.stop_reason = histories[-1].stop_reason if histories else ""
    return out
