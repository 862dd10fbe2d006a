r"""Robustness grids: a method and its baselines over object families x seeds x noise levels x thread counts.

A ranking that holds on the phantoms a method was tuned on can turn over one step away (issue 20).
A grid runs ``solve(cell) -> {method: PSNR (dB)}`` on every cell of the cartesian product of its
axes and prints, per ranking it claims, the mean PSNR of each method (with the min-max spread over
the cells), the mean margin of each claimed pair, how many cells keep the ranking (k/N and %,
also by axis value) and the largest PSNR difference between the 1- and the 2-thread run of the
same cell. The engine (:class:`Cell`, :func:`grid_cells`, :class:`Ranking`, :class:`Grid`,
:func:`run_grid`, :func:`summarize`, :func:`report`) knows nothing of CT: another grid (the MIMO
grid of issue 21) reuses it with its own axes and ``solve``.

Each cell runs with torch at ``cell.threads`` threads and the calling thread's numba kernels under
:func:`operators.kernels.threads.limited_threads` ``(cell.threads)`` (which can only lower numba's
count: :func:`main` sets the process to the largest count of the axis first); both counts are
restored after the cell, errors included.

Object families (``cell.seed`` is the index k = 0, 1, ... of the object in its family, and seeds
the noise draw):

* ``coule``: the family the CT networks were trained on, with unseen seeds:
  :func:`recon.phantoms.coule_like` of ``TEST_SEEDS[OBJECT_SEED0 + k]`` (the demos use
  ``TEST_SEEDS[0]`` and ``TEST_SEEDS[100:110]``);
* ``rock``: :func:`recon.phantoms.rock_like` (grains, inclusions, pores, cracks), same seeds: no
  network of ours was trained on it;
* ``bsd68``: BSD68 photograph k (``../shared/datasets/bsd68``, never downloaded) as an attenuation
  map: centre square crop, resized to the grid size (anti-aliased), min-max scaled to [0, 1];
  skipped with a message when the folder is absent;
* dynamic (RED-PSM) families: :func:`recon.phantoms.dynamic_object` of kind ``coule`` (the
  ``ct_dncnn`` training kinds are coule and cardiac: ``recon.training.data.DNCNN_KINDS``),
  ``shepp_logan`` and ``rock`` (neither seen in training), object seed as above.

Noise: always the relative level :math:`\|e\| / \|Ax\|` (:func:`recon.noise.add_relative_noise`,
seed ``NOISE_SEED0 + 1000 k + round(1e4 * level)``), passed to the methods that take one. (The
RED-PSM demo's noise is an absolute std, 5e-3 max(sinogram); the grid's 0.5 % is relative.)

Grids (``--grid``):

* ``graphla``: 256x256, 120 views over [0, 179] deg (:func:`operators.ct.ct_geometry`), noise 1, 2,
  4 %; FBP, Tik, TV, Net (the shipped U-Net on FBP) and La+Psi for each, plus the oracle La+True,
  as ``demos/ct_graphla.py`` runs them (TV and graphLa: 1000 PDHG iterations at most, tolerance
  2e-4). Rankings: ``La+Psi >= Psi + 1.5`` for each Psi, and La+Net the best non-oracle method.
  Families coule, bsd68, rock; 4 objects each; ``--quick``: 128x128, one object, 400 iterations
  (the demo's quick setting; at 100 the PDHG runs are far from converged and the ranking is another).
* ``red_psm``: dynamic CT as ``demos/ct_dynamic_red_psm.py`` sets it up (one parallel view per
  frame, bit-reversal angles), N x N frames with N = 64 and 128 and P = N / 2 frames, noise 0.5
  and 2 %; window FBP, PSM, PSM-TV and RED-PSM (``ct_dncnn``) with ``lam="auto"`` (the weight from
  the iteration budget, :func:`recon.methods.red_psm.auto_weight`, tuned on cardiac / coule objects
  outside the grid's seeds), 201 outer iterations. Ranking: ``RED-PSM >= PSM-TV + 0.3 >= PSM + 1 >= window FBP + 1``.
  Families coule, shepp_logan, rock; 3 objects each; ``--quick``: 64x64 (P = 32), one object,
  30 outer iterations (at 32x32 every prior loses to plain PSM: too small a scale to rank at).

Both grids run every cell at 1 and 2 threads. Targets (issue 20): each ranking kept in at least
90 % of the cells (PASS/MISS), 1- and 2-thread PSNRs within 0.05 dB.

Writes ``--out`` (Markdown; default ``out/robustness/<grid>[_quick].md``) and optionally ``--json`` (every
cell's PSNRs and seconds and the summaries); exit status 1 when a ranking misses its target.

Usage::

    python benchmarks/robustness.py --grid red_psm --quick      # 12 cells, 8 minutes on 2 cores busy with trainings
    python benchmarks/robustness.py --grid graphla --quick      # 18 cells, about 20 minutes there
    python benchmarks/robustness.py --grid graphla --json out/robustness/graphla.json   # 72 cells, hours
    python benchmarks/robustness.py --grid red_psm --seeds 1 --families rock,coule      # a slice of the grid
"""

from __future__ import annotations

import argparse
import datetime
import functools
import itertools
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

import numpy as np  # noqa: E402
import torch  # noqa: E402

import recon  # noqa: E402
from operators import DynamicCT, ParallelBeamCT  # noqa: E402
from operators.ct import CT_LAST_ANGLE_DEG, CT_N_DETECTORS, CT_N_VIEWS, ct_geometry  # noqa: E402
from operators.kernels import threads as thread_pool  # noqa: E402
from recon.methods.graphla import preliminary  # noqa: E402
from recon.methods.red_psm import BETA, DEFAULTS, RED_WEIGHT_BUDGET, TV_WEIGHT_BUDGET, auto_weight  # noqa: E402
from recon.metrics import psnr  # noqa: E402
from recon.noise import add_relative_noise  # noqa: E402
from recon.phantoms import TEST_SEEDS, coule_like, dynamic_object, photo_phantom, rock_like  # noqa: E402
from recon.training.data import DATASETS_DIR, photo_files, photo_set  # noqa: E402

#: object k of a procedural family has the seed ``TEST_SEEDS[OBJECT_SEED0 + k]`` (no demo uses these)
OBJECT_SEED0 = 2000
NOISE_SEED0 = 7_000_000
#: the share of cells a ranking must keep (issue 20)
TARGET = 0.9
#: largest PSNR difference between the 1- and 2-thread runs of a cell (issue 20), dB
THREAD_TOLERANCE_DB = 0.05

# ============================================================================= the generic engine


@dataclass(frozen=True)
class Cell:
    """One point of a grid: an object family, its k-th object, a noise level, a thread count, free axes.

    Attributes:
        family: name of the object family.
        seed: index k >= 0 of the object in its family (the family maps it to a phantom seed, an image...).
        noise: the noise level in the grid's own unit (the CT grids: relative, 0.02 = 2 %; a grid in
            another unit, e.g. SNR in dB, passes its ``noise_format`` to the report).
        threads: torch and numba threads the cell runs with (>= 1).
        extra: the free axes, ``((name, value), ...)`` in the grid's order (e.g. ``(("size", 64),)``);
            read them as ``cell["size"]``.
    """

    family: str
    seed: int
    noise: float
    threads: int
    extra: tuple[tuple[str, object], ...] = ()

    def __getitem__(self, name: str) -> object:
        for key, value in self.extra:
            if key == name:
                return value
        raise KeyError(f"cell has no axis {name!r}; its free axes are {[k for k, _ in self.extra]}")

    @property
    def key(self) -> tuple:
        """Everything but the thread count: the cells of one key are the same problem run with other thread counts."""
        return (self.family, self.seed, self.noise, self.extra)

    def axes(self) -> dict[str, object]:
        """``{"family": ..., "seed": ..., "noise": ..., "threads": ..., **extra}``."""
        return {"family": self.family, "seed": self.seed, "noise": self.noise, "threads": self.threads, **dict(self.extra)}

    def label(self, noise_format: Callable[[float], str] | None = None) -> str:
        """A short text such as ``rock #0, noise 2 %, 1 thread, size 64`` (``noise_format`` default :func:`percent`)."""
        free = "".join(f", {k} {v}" for k, v in self.extra)
        noise = (noise_format or percent)(self.noise)
        return f"{self.family} #{self.seed}, noise {noise}, {self.threads} thread{'s' * (self.threads > 1)}{free}"


def percent(level: float) -> str:
    """``0.02 -> "2 %"``, ``0.005 -> "0.5 %"``."""
    return f"{100 * level:g} %"


def _values(name: str, values: object, check: Callable[[object], bool], expected: str) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"{name}: expected a non-empty sequence of {expected}, received {values!r}")
    bad = [v for v in values if not check(v)]
    if bad:
        raise ValueError(f"{name}: expected a non-empty sequence of {expected}, received {values!r} (bad: {bad!r})")
    if len(set(values)) != len(values):
        raise ValueError(f"{name}: expected distinct values, received {values!r}")
    return tuple(values)


def _is_int(v: object, low: int) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low


def grid_cells(
    families: Sequence[str], seeds: Sequence[int], noises: Sequence[float], threads: Sequence[int] = (1, 2), **extra: Sequence
) -> tuple[Cell, ...]:
    """The cartesian product of the axes, threads varying fastest (the runs of one problem stand together).

    Args:
        families: family names.
        seeds: object indices (integers >= 0).
        noises: noise levels (finite numbers, in the grid's unit).
        threads: thread counts (integers >= 1).
        **extra: free axes, each a non-empty sequence of values (e.g. ``size=(64, 128)``), outer to
            the seeds in the given order.

    Returns:
        The cells, ordered family, free axes, seed, noise, threads (last varies fastest).

    Example:
        >>> grid_cells(("coule", "rock"), (0, 1), (0.01, 0.04), size=(64,))   # 16 cells
    """
    families = _values("families", families, lambda v: isinstance(v, str) and v != "", "family names")
    seeds = _values("seeds", seeds, lambda v: _is_int(v, 0), "integers >= 0")
    noises = _values("noises", noises, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), "finite numbers")
    threads = _values("threads", threads, lambda v: _is_int(v, 1), "integers >= 1")
    free = {name: _values(name, values, lambda v: True, "values") for name, values in extra.items()}
    cells = []
    for family, *rest in itertools.product(families, *free.values(), seeds, noises, threads):
        *free_values, seed, noise, n_threads = rest
        cells.append(Cell(family, int(seed), float(noise), int(n_threads), tuple(zip(free, free_values, strict=True))))
    return tuple(cells)


@dataclass(frozen=True)
class Claim:
    """``upper >= lower + margin`` (PSNR in dB) in one cell."""

    upper: str
    lower: str
    margin: float = 0.0

    def __str__(self) -> str:
        return f"{self.upper} >= {self.lower}" + (f" + {self.margin:g}" if self.margin else "")


@dataclass(frozen=True)
class Ranking:
    """A ranking claim: pairs ``upper >= lower + margin`` that must all hold in a cell for it to keep the ranking.

    Build it with :meth:`chain` (an ordered tuple of methods with the margins between consecutive
    ones), :meth:`parse` (the same written out) or :meth:`best` (one method above each of others).

    Attributes:
        name: how the report calls it.
        claims: the pairs.
        target: the share of cells that must keep it (PASS/MISS), default :data:`TARGET` (0.9).
    """

    name: str
    claims: tuple[Claim, ...]
    target: float = TARGET

    def __post_init__(self):
        if not self.claims or not all(isinstance(c, Claim) for c in self.claims):
            raise ValueError(f"claims: expected a non-empty tuple of Claim, received {self.claims!r}")
        if not 0.0 <= self.target <= 1.0:
            raise ValueError(f"target: expected a share in [0, 1], received {self.target!r}")

    @classmethod
    def chain(cls, methods: Sequence[str], margins: Sequence[float], *, name: str | None = None, target: float = TARGET) -> Ranking:
        """``methods[0] >= methods[1] + margins[0] >= methods[2] + margins[1] ...`` (margins in dB).

        Example:
            >>> Ranking.chain(("RED-PSM", "PSM-TV", "PSM", "window FBP"), (0.3, 1.0, 1.0))
        """
        if isinstance(methods, str) or len(methods) < 2:
            raise ValueError(f"methods: expected at least two method names, received {methods!r}")
        if len(margins) != len(methods) - 1:
            raise ValueError(f"margins: expected {len(methods) - 1} margins (one per consecutive pair), received {margins!r}")
        claims = tuple(Claim(a, b, float(m)) for a, b, m in zip(methods[:-1], methods[1:], margins, strict=True))
        written = methods[0] + "".join(str(c).removeprefix(c.upper) for c in claims)  # "A >= B + 1 >= C"
        return cls(name or written, claims, target)

    @classmethod
    def parse(cls, text: str, *, name: str | None = None, target: float = TARGET) -> Ranking:
        """A chain written out: ``"A >= B + 1.5 >= C + 1 >= D"`` (spaces around ``+`` and ``>=``; names may hold ``+``).

        Example:
            >>> Ranking.parse("La+TV >= TV + 1.5")
        """
        methods, margins = [], []
        for k, part in enumerate(text.split(">=")):
            name_k, plus, margin = part.strip().rpartition(" + ")
            if not plus or k == 0:
                name_k, margin = part.strip(), "0"
            try:
                margins.append(float(margin))
            except ValueError:
                raise ValueError(f"text: expected 'A >= B + margin >= ...', received {text!r} (margin {margin!r})") from None
            if not name_k.strip():
                raise ValueError(f"text: expected 'A >= B + margin >= ...', received {text!r} (an empty method name)")
            methods.append(name_k.strip())
        return cls.chain(methods, margins[1:], name=name or text.strip(), target=target)

    @classmethod
    def best(cls, method: str, over: Sequence[str], *, margin: float = 0.0, name: str | None = None, target: float = TARGET) -> Ranking:
        """``method >= other + margin`` for every ``other`` in ``over``: the best of them in the cell."""
        if isinstance(over, str) or not over or method in over:
            raise ValueError(f"over: expected method names other than {method!r}, received {over!r}")
        return cls(name or f"{method} best of {', '.join(over)}", tuple(Claim(method, o, float(margin)) for o in over), target)

    @property
    def methods(self) -> tuple[str, ...]:
        """Every method named, in order of first appearance."""
        return tuple(dict.fromkeys(m for c in self.claims for m in (c.upper, c.lower)))

    def kept(self, psnrs: Mapping[str, float]) -> bool:
        """Whether every claim holds for these PSNRs (dB)."""
        return all(psnrs[c.upper] >= psnrs[c.lower] + c.margin for c in self.claims)


Solve = Callable[[Cell], Mapping[str, float]]


@dataclass(frozen=True)
class Grid:
    """A grid: its cells, the rankings it claims and the function that scores a cell.

    Attributes:
        name: short name (``--grid``).
        cells: from :func:`grid_cells`.
        rankings: the claims checked.
        solve: ``solve(cell) -> {method: PSNR (dB)}``, at least every method the rankings name.
        setting: one line on what the grid holds fixed (geometry, iterations), for the report.
        noise_format: how a noise level is written (default :func:`percent`: 0.02 -> "2 %").
    """

    name: str
    cells: tuple[Cell, ...]
    rankings: tuple[Ranking, ...]
    solve: Solve
    setting: str = ""
    noise_format: Callable[[float], str] = percent


@dataclass(frozen=True)
class CellResult:
    """What one cell gave: PSNR per method (dB), seconds, the numba threads in effect."""

    cell: Cell
    psnr: dict[str, float]
    seconds: float
    numba_threads: int


@contextmanager
def cell_threads(n: int) -> Iterator[int]:
    """torch at ``n`` threads and this thread's numba kernels under ``limited_threads(n)``; both restored on exit.

    Yields the numba thread count in effect (``min(n, the count before)``).
    """
    with thread_pool.limited_threads(n) as numba_threads:
        saved = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            yield numba_threads
        finally:
            torch.set_num_threads(saved)


def run_grid(grid: Grid, *, log: Callable[[str], None] | None = print) -> list[CellResult]:
    """Run ``grid.solve`` on every cell, each under :func:`cell_threads` ``(cell.threads)``.

    Raises:
        ValueError: ``solve`` returned no PSNR for a method a ranking names, or a non-finite one.
    """
    needed = {m for r in grid.rankings for m in r.methods}
    results = []
    for i, cell in enumerate(grid.cells):
        with cell_threads(cell.threads) as numba_threads:
            t0 = time.perf_counter()
            scores = {str(m): float(v) for m, v in grid.solve(cell).items()}
            seconds = time.perf_counter() - t0
        missing = sorted(needed - scores.keys())
        if missing or not all(math.isfinite(v) for v in scores.values()):
            raise ValueError(f"solve: expected a finite PSNR for each of {sorted(needed)} in {cell.label(grid.noise_format)}, received {scores}")
        results.append(CellResult(cell, scores, seconds, numba_threads))
        if log is not None:
            shown = ", ".join(f"{m} {v:.2f}" for m, v in scores.items())
            note = "" if numba_threads == cell.threads else f" [numba ran {numba_threads} thread(s)]"
            log(f"[{i + 1}/{len(grid.cells)}] {cell.label(grid.noise_format)}: {shown} ({seconds:.1f} s){note}")
    return results


def thread_spread(results: Sequence[CellResult]) -> dict[str, float]:
    """Per method, the largest PSNR difference (dB) between runs of the same cell with other thread counts (0 if none)."""
    by_key: dict[tuple, list[CellResult]] = {}
    for r in results:
        by_key.setdefault(r.cell.key, []).append(r)
    spread: dict[str, float] = {}
    for runs in by_key.values():
        for m in runs[0].psnr:
            values = [r.psnr[m] for r in runs if m in r.psnr]
            spread[m] = max(spread.get(m, 0.0), max(values) - min(values))
    return spread


@dataclass(frozen=True)
class ClaimSummary:
    """One claim over the cells: ``upper - lower`` in dB (mean, min, max) and the cells where it holds."""

    claim: Claim
    mean: float
    low: float
    high: float
    kept: int
    n: int


@dataclass(frozen=True)
class RankingSummary:
    """A ranking over the cells.

    Attributes:
        ranking: the claim.
        kept, n: cells that keep every pair of it, and all cells.
        methods: method -> (mean, min, max) PSNR in dB.
        claims: one :class:`ClaimSummary` per pair.
        by_axis: axis -> value -> (kept, n), for every axis with more than one value.
    """

    ranking: Ranking
    kept: int
    n: int
    methods: dict[str, tuple[float, float, float]]
    claims: tuple[ClaimSummary, ...]
    by_axis: dict[str, dict[object, tuple[int, int]]] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.kept / self.n

    @property
    def passed(self) -> bool:
        return self.share >= self.ranking.target


def summarize(ranking: Ranking, results: Sequence[CellResult]) -> RankingSummary:
    """Mean / min / max PSNR of the ranking's methods, the margin of each pair, and the cells that keep it."""
    if not results:
        raise ValueError("results: expected at least one cell result, received none")
    kept = [ranking.kept(r.psnr) for r in results]
    methods = {}
    for m in ranking.methods:
        v = np.array([r.psnr[m] for r in results])
        methods[m] = (float(v.mean()), float(v.min()), float(v.max()))
    claims = []
    for c in ranking.claims:
        d = np.array([r.psnr[c.upper] - r.psnr[c.lower] for r in results])
        claims.append(ClaimSummary(c, float(d.mean()), float(d.min()), float(d.max()), int((d >= c.margin).sum()), len(d)))
    by_axis: dict[str, dict[object, tuple[int, int]]] = {}
    for axis in results[0].cell.axes():
        counts: dict[object, list[int]] = {}
        for r, k in zip(results, kept, strict=True):
            entry = counts.setdefault(r.cell.axes()[axis], [0, 0])
            entry[0] += k
            entry[1] += 1
        if len(counts) > 1:
            by_axis[axis] = {value: (a, b) for value, (a, b) in counts.items()}
    return RankingSummary(ranking, sum(kept), len(results), methods, tuple(claims), by_axis)


def _count(kept: int, n: int) -> str:
    return f"{kept}/{n} ({100 * kept / n:.0f} %)"


def _axis_value(axis: str, value: object, noise_format: Callable[[float], str]) -> str:
    return noise_format(value) if axis == "noise" else f"#{value}" if axis == "seed" else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def report(
    results: Sequence[CellResult], rankings: Sequence[Ranking], *, title: str, notes: Sequence[str] = (),
    noise_format: Callable[[float], str] = percent,
) -> str:  # fmt: skip
    """The grid's Markdown report (deterministic in the PSNRs: no timings unless ``notes`` carry them).

    Layout: ``# title``, the notes, one line on the axes, a table of every method (mean, min, max
    PSNR, largest 1- vs 2-thread difference), then per ranking a heading with its k/N and
    PASS/MISS, a table of its methods, a table of its pairs (required margin, mean, min, max
    margin, cells kept) and one line of cells kept by axis value.
    """
    if not results:
        raise ValueError("results: expected at least one cell result, received none")
    axes: dict[str, list] = {}
    for r in results:
        for axis, value in r.cell.axes().items():
            if value not in axes.setdefault(axis, []):
                axes[axis].append(value)
    spread = thread_spread(results)
    lines = [f"# {title}", "", *notes, *([""] if notes else [])]
    shown = "; ".join(f"{a} {', '.join(_axis_value(a, v, noise_format) for v in vs)}" for a, vs in axes.items())
    lines.append(f"{len(results)} cells: {shown}.")
    lines.append("")
    method_rows = []
    for m in results[0].psnr:
        v = np.array([r.psnr[m] for r in results])
        method_rows.append((m, f"{v.mean():.2f}", f"{v.min():.2f}", f"{v.max():.2f}", f"{spread.get(m, 0.0):.3f}"))
    lines += _table(("method", "mean PSNR (dB)", "min", "max", "max diff over thread counts (dB)"), method_rows)
    worst = max(spread.values(), default=0.0)
    lines += ["", f"Largest PSNR difference between the thread counts of one cell: {worst:.3f} dB "
                  f"({'PASS' if worst <= THREAD_TOLERANCE_DB else 'MISS'}: <= {THREAD_TOLERANCE_DB} dB)."]  # fmt: skip
    for ranking in rankings:
        s = summarize(ranking, results)
        lines += ["", f"## {ranking.name}: kept in {_count(s.kept, s.n)} cells, "
                      f"{'PASS' if s.passed else 'MISS'} (target {100 * ranking.target:.0f} %)", ""]  # fmt: skip
        lines += _table(("method", "mean PSNR (dB)", "min-max (dB)"),
                        [(m, f"{mean:.2f}", f"{lo:.2f} to {hi:.2f}") for m, (mean, lo, hi) in s.methods.items()])  # fmt: skip
        lines.append("")
        rows = [(str(c.claim), f"{c.claim.margin:g}", f"{c.mean:+.2f}", f"{c.low:+.2f} to {c.high:+.2f}", _count(c.kept, c.n)) for c in s.claims]
        lines += _table(("pair", "required margin (dB)", "mean margin (dB)", "min-max (dB)", "cells kept"), rows)
        if s.by_axis:
            by = [f"{a} (" + ", ".join(f"{_axis_value(a, v, noise_format)} {k}/{n}" for v, (k, n) in counts.items()) + ")"
                  for a, counts in s.by_axis.items()]  # fmt: skip
            lines += ["", f"Cells kept by {', '.join(by)}."]
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary ``<name>.part`` renamed over it (no half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    tmp.replace(path)


def results_json(grid: Grid, results: Sequence[CellResult], wall_s: float) -> dict:
    """Every cell (axes, PSNRs, seconds, numba threads) and every ranking's summary, JSON-ready."""
    summaries = [summarize(r, results) for r in grid.rankings]
    return {
        "grid": grid.name, "setting": grid.setting, "wall_s": wall_s,
        "cells": [{**r.cell.axes(), "psnr": r.psnr, "seconds": r.seconds, "numba_threads": r.numba_threads} for r in results],
        "thread_spread_db": thread_spread(results),
        "rankings": [{"name": s.ranking.name, "kept": s.kept, "cells": s.n, "target": s.ranking.target, "passed": s.passed,
                      "methods": s.methods,
                      "claims": [{"claim": str(c.claim), "margin": c.claim.margin, "mean": c.mean, "min": c.low, "max": c.high,
                                  "kept": c.kept} for c in s.claims],
                      "by_axis": {a: {str(v): kn for v, kn in counts.items()} for a, counts in s.by_axis.items()}}
                     for s in summaries],
    }  # fmt: skip


# ============================================================================= object families (CT)

STATIC_FAMILIES = ("coule", "bsd68", "rock")
DYNAMIC_FAMILIES = ("coule", "shepp_logan", "rock")


def object_seed(cell: Cell) -> int:
    """The phantom seed of the cell's object: ``TEST_SEEDS[OBJECT_SEED0 + k]``."""
    return TEST_SEEDS[OBJECT_SEED0 + cell.seed]


def noise_seed(cell: Cell) -> int:
    """The seed of the cell's noise draw: one per object and noise level, the same at every thread count."""
    return NOISE_SEED0 + 1000 * cell.seed + round(1e4 * cell.noise)


@functools.lru_cache(maxsize=2)
def _photos(data_dir: Path) -> tuple[torch.Tensor, ...]:
    return tuple(photo_set("bsd68", data_dir)[0])


def photo_object(index: int, size: int, data_dir: Path = DATASETS_DIR) -> torch.Tensor:
    """BSD68 photograph ``index`` as an attenuation map: centre square crop, resized to ``size``, min-max scaled to [0, 1].

    Returns:
        float32 (1, 1, size, size).
    """
    photos = _photos(Path(data_dir))
    if not 0 <= index < len(photos):
        raise ValueError(f"index: expected 0 <= index < {len(photos)} (the bsd68 images), received {index!r}")
    return photo_phantom(photos[index], size)


def static_object(cell: Cell, size: int, data_dir: Path = DATASETS_DIR) -> torch.Tensor:
    """The cell's 2D object, (1, 1, size, size) float32 in [0, 1], for the families of :data:`STATIC_FAMILIES`."""
    if cell.family == "bsd68":
        return photo_object(cell.seed, size, data_dir)
    makers = {"coule": coule_like, "rock": rock_like}
    if cell.family not in makers:
        raise ValueError(f"cell.family: expected one of {STATIC_FAMILIES}, received {cell.family!r}")
    return makers[cell.family](size, object_seed(cell))


def available(families: Sequence[str], data_dir: Path, log: Callable[[str], None] | None = print) -> tuple[str, ...]:
    """``families`` without ``bsd68`` when its folder holds no image (said through ``log``)."""
    if "bsd68" not in families:
        return tuple(families)
    try:
        photo_files("bsd68", data_dir)
    except ValueError as err:
        if log is not None:
            log(f"family bsd68 skipped: {err}")
        return tuple(f for f in families if f != "bsd68")
    return tuple(families)


# ============================================================================= the two CT grids

PSIS = ("FBP", "Tik", "TV", "Net")
GRAPHLA_NON_ORACLE = (*PSIS, *(f"La+{p}" for p in PSIS))


@functools.lru_cache(maxsize=4)
def ct_physics(size: int) -> ParallelBeamCT:
    """The graphLa geometry (120 views over [0, 179] deg): :func:`operators.ct.ct_geometry` at 128 / 256,
    the same views with the default detector count at other sizes (the tests' tiny cells)."""
    if size in CT_N_DETECTORS:
        return ct_geometry(size)
    angles = torch.linspace(0.0, math.radians(CT_LAST_ANGLE_DEG), CT_N_VIEWS, dtype=torch.float64)
    return ParallelBeamCT(size, angles, backend="numba")


def graphla_solve(iters: int, data_dir: Path = DATASETS_DIR) -> Solve:
    """``solve(cell)`` of the graphLa grid (``cell["size"]``): PSNR (peak 1) of FBP, Tik, TV, Net, La+each and La+True."""

    def solve(cell: Cell) -> dict[str, float]:
        size, nl = cell["size"], cell.noise
        physics = ct_physics(size)
        x = static_object(cell, size, data_dir)
        y = add_relative_noise(physics.A(x), nl, seed=noise_seed(cell))
        images = {
            "FBP": recon.fbp(physics, y)[0],
            "Tik": recon.tikhonov(physics, y, noise_level=nl)[0],
            "TV": recon.tv(physics, y, noise_level=nl, max_iter=iters, tol=2e-4, progress=False)[0],
            "Net": preliminary(physics, y, "net", noise_level=nl),
        }
        for name, psi in [*list(images.items()), ("True", x)]:
            images[f"La+{name}"] = recon.graphla(physics, y, psi=psi, noise_level=nl, max_iter=iters, progress=False)[0]
        return {m: float(psnr(img, x, 1.0)[0]) for m, img in images.items()}

    return solve


def graphla_grid(
    *, families: Sequence[str] = STATIC_FAMILIES, seeds: Sequence[int] = (0, 1, 2, 3), noises: Sequence[float] = (0.01, 0.02, 0.04),
    threads: Sequence[int] = (1, 2), size: int = 256, iters: int = 1000, data_dir: Path = DATASETS_DIR,
    log: Callable[[str], None] | None = print,
) -> Grid:  # fmt: skip
    """The graphLa+Psi grid (module docstring); ``bsd68`` is dropped when its folder is absent."""
    rankings = [Ranking.parse(f"La+{p} >= {p} + 1.5") for p in PSIS]
    rankings.append(Ranking.best("La+Net", [m for m in GRAPHLA_NON_ORACLE if m != "La+Net"], name="La+Net best non-oracle"))
    return Grid(
        "graphla", grid_cells(available(families, data_dir, log), seeds, noises, threads, size=(size,)), tuple(rankings),
        graphla_solve(iters, data_dir),
        f"{size}x{size}, {CT_N_VIEWS} parallel views over [0, {CT_LAST_ANGLE_DEG:g}] deg, relative Gaussian noise; "
        f"TV and graphLa: at most {iters} PDHG iterations (tolerance 2e-4), alpha by the discrepancy principle; "
        "Net: the shipped ct_unet on FBP; La+True: the oracle graph (not ranked)",
    )  # fmt: skip


def red_psm_solve(n_iter: int | None) -> Solve:
    """``solve(cell)`` of the RED-PSM grid (``cell["size"]`` = N, P = N / 2 frames): PSNR (peak max - min of the truth)."""

    def solve(cell: Cell) -> dict[str, float]:
        size = cell["size"]
        truth = dynamic_object(size, size // 2, seed=object_seed(cell), kind=cell.family)
        physics = DynamicCT(size, n_frames=size // 2)
        y = add_relative_noise(physics.A(truth), cell.noise, seed=noise_seed(cell))
        runs = {
            "window FBP": lambda: recon.sliding_window_fbp(physics, y),
            "PSM": lambda: recon.psm(physics, y, beta=BETA, n_iter=n_iter, progress=False),
            "PSM-TV": lambda: recon.psm(physics, y, prior="tv", lam="auto", beta=BETA, n_iter=n_iter, progress=False),
            "RED-PSM": lambda: recon.red_psm(physics, y, prior="ct_dncnn", lam="auto", beta=BETA, n_iter=n_iter, progress=False),
        }
        peak = float(truth.max() - truth.min())
        return {m: float(psnr(run()[0], truth, peak)[0]) for m, run in runs.items()}

    return solve


def red_psm_grid(
    *, families: Sequence[str] = DYNAMIC_FAMILIES, seeds: Sequence[int] = (0, 1, 2), noises: Sequence[float] = (0.005, 0.02),
    threads: Sequence[int] = (1, 2), sizes: Sequence[int] = (64, 128), n_iter: int | None = None, log: Callable[[str], None] | None = print,
) -> Grid:  # fmt: skip
    """The RED-PSM grid (module docstring); ``n_iter`` None: the method's default (201 outer iterations)."""
    ranking = Ranking.chain(("RED-PSM", "PSM-TV", "PSM", "window FBP"), (0.3, 1.0, 1.0))
    iters = DEFAULTS[128][2] if n_iter is None else n_iter  # the default at P <= 128 (P = N / 2 <= 64 here)
    weights = f"lambda 'auto' (recon.methods.red_psm.auto_weight, weight x iterations = {{}}: {{:.3g}} at {iters} iterations)"
    tv_w, red_w = (weights.format(f"{c:g}", auto_weight(c, iters)) for c in (TV_WEIGHT_BUDGET, RED_WEIGHT_BUDGET))
    return Grid(
        "red_psm", grid_cells(families, seeds, noises, threads, size=tuple(sizes)), (ranking,), red_psm_solve(n_iter),
        "N x N frames, P = N / 2, one parallel view per frame (bit-reversal angles), relative Gaussian noise; "
        f"PSM variants: {iters} outer iterations, beta {BETA:g}; PSM-TV {tv_w}; RED-PSM ct_dncnn, {red_w}",
    )  # fmt: skip


GRIDS = {"graphla": graphla_grid, "red_psm": red_psm_grid}
QUICK = {"graphla": {"seeds": (0,), "size": 128, "iters": 400}, "red_psm": {"seeds": (0,), "sizes": (64,), "n_iter": 30}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", choices=sorted(GRIDS), required=True, help="which grid")
    ap.add_argument("--quick", action="store_true", help="graphla: 128x128, 1 object, 400 iterations; red_psm: 64x64, 1 object, 30 iterations")
    ap.add_argument("--seeds", type=int, default=None, help="objects per family (default 4 graphla, 3 red_psm; quick 1)")
    ap.add_argument("--families", default=None, help="comma-separated subset of the grid's families")
    ap.add_argument("--threads", default="1,2", help="the thread-count axis (default 1,2)")
    ap.add_argument("--data-dir", type=Path, default=DATASETS_DIR, help="folder holding bsd68/ (graphla)")
    ap.add_argument("--out", type=Path, default=None, help="Markdown report (default out/robustness/<grid>[_quick].md)")
    ap.add_argument("--json", type=Path, default=None, help="also write every cell and the summaries here")
    args = ap.parse_args(argv)
    options = dict(QUICK[args.grid]) if args.quick else {}
    if args.seeds is not None:
        options["seeds"] = tuple(range(args.seeds))
    if args.families is not None:
        options["families"] = tuple(f.strip() for f in args.families.split(","))
    options["threads"] = tuple(int(t) for t in args.threads.split(","))
    if args.grid == "graphla":
        options["data_dir"] = args.data_dir
    grid = GRIDS[args.grid](**options)
    out = args.out or Path("out") / "robustness" / f"{args.grid}{'_quick' if args.quick else ''}.md"

    saved = (torch.get_num_threads(), thread_pool.num_threads())
    thread_pool.set_num_threads(max(options["threads"]))  # limited_threads only lowers numba's count
    try:
        t0 = time.perf_counter()
        results = run_grid(grid)
        wall = time.perf_counter() - t0
    finally:
        thread_pool.set_num_threads(saved[1])
        torch.set_num_threads(saved[0])
    notes = [
        grid.setting + ".",
        f"Command: `python benchmarks/robustness.py {' '.join(argv if argv is not None else sys.argv[1:])}`; "
        f"{datetime.date.today().isoformat()}; wall {wall:.0f} s ({wall / len(results):.0f} s per cell); "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}.",
    ]
    title = f"Robustness grid `{grid.name}`{' (quick)' if args.quick else ''}"
    text = report(results, grid.rankings, title=title, notes=notes, noise_format=grid.noise_format)
    print("\n" + text)
    write_text(out, text)
    if args.json is not None:
        write_text(args.json, json.dumps(results_json(grid, results, wall), indent=1))
    print(f"wrote {out}" + (f" and {args.json}" if args.json else ""))
    return 0 if all(summarize(r, results).passed for r in grid.rankings) else 1


if __name__ == "__main__":
    raise SystemExit(main())
