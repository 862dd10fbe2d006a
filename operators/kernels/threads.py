r"""numba's thread pool, started and sized without touching torch's: the one module of ``operators`` that calls numba's threading API.

**Why this exists.** numba starts its threading layer lazily, at the first parallel kernel call or
the first ``numba.get_num_threads()`` / ``numba.set_num_threads()``. Its OpenMP layer (chosen
here: no TBB) then calls ``omp_set_num_threads(NUMBA_NUM_THREADS)`` once, and its OpenMP calls
resolve to the GNU OpenMP runtime that torch loaded first (torch's ``libgomp.so.1``, in the
global symbol scope). torch's intra-op thread count *is* that runtime's ``omp_get_max_threads()``
on the calling thread, so a process that had ``torch.set_num_threads(1)`` saw
``torch.get_num_threads()`` jump to ``NUMBA_NUM_THREADS`` (the core count) after its first CT
projection. :func:`start` starts the layer once and puts torch's count back; every parallel
kernel of :mod:`operators.kernels` is wrapped by :func:`parallel_kernel`, which calls it first.

**What stays where.** ``numba.set_num_threads`` is thread-local (numba keeps the count in a
thread-local slot): :func:`limited_threads` changes it for the calling thread only, for the
length of a ``with`` block, and restores it on every exit path. The start is lazy on purpose:
numba's GNU OpenMP layer refuses to run parallel kernels in a child forked after the parent
started it, so starting it at import would break ``fork``-based workers (e.g. a torch
``DataLoader``) of programs that never project in the parent.

Example:
    >>> with limited_threads(1):          # this thread's numba kernels run serially here
    ...     joseph.joseph_forward(...)     # doctest: +SKIP
    >>> set_num_threads(2)                 # program set-up: torch and numba, in the right order
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numba
import torch
from numba import njit

__all__ = ["limited_threads", "num_threads", "parallel_kernel", "set_num_threads", "start"]

_STARTED = False


def start() -> None:
    """Start numba's threading layer once, leaving torch's thread count as it was before."""
    global _STARTED
    if _STARTED:
        return
    before = torch.get_num_threads()
    numba.get_num_threads()  # launches the layer (OpenMP: omp_set_num_threads(NUMBA_NUM_THREADS))
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)
    _STARTED = True


def num_threads() -> int:
    """numba's thread count for the calling thread (starting the layer safely if needed)."""
    start()
    return numba.get_num_threads()


@contextmanager
def limited_threads(n: int | None) -> Iterator[int]:
    """Run the calling thread's numba kernels on ``min(n, current)`` threads inside the block.

    ``None`` keeps the current count. Yields the count in effect; the previous count is restored
    on exit, exceptions included. Other threads and torch are not affected.
    """
    before = num_threads()
    inside = before if n is None else max(1, min(int(n), before))
    numba.set_num_threads(inside)
    try:
        yield inside
    finally:
        numba.set_num_threads(before)


def set_num_threads(n: int) -> None:
    """Set torch's and the calling thread's numba thread count to ``n`` (capped at NUMBA_NUM_THREADS).

    For program or worker set-up (a CLI, a batch worker, a test session), where a process-wide
    choice is the point. numba is started first, so torch's count is the last one written.
    """
    start()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    torch.set_num_threads(int(n))


def parallel_kernel(**options) -> Callable[[Callable], Callable]:
    """``njit(parallel=True, cache=True, **options)``, every call going through :func:`start` first."""

    def wrap(fn: Callable) -> Callable:
        kernel = njit(parallel=True, cache=True, **options)(fn)

        @functools.wraps(fn)
        def call(*args):
            start()
            return kernel(*args)

        return call

    return wrap
