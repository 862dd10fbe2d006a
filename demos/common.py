"""What the demo scripts share: arguments, tables, figures, timing, tuning, the dynamic-scan report.

Every demo builds its arguments with :func:`parser`, times its methods with :func:`timed`,
writes ``table.csv`` / ``table.md`` with :func:`write_csv`, :func:`table_lines` and
:func:`write_markdown`, and its figures with :func:`save_figure` (matplotlib's Agg backend is
selected here, once). :func:`hill_climb` is the grid search of the demos' ``--tune`` options: it
scores a hyperparameter against the truth on tuning images, which is why it lives here and not in
``recon`` (the library's methods never see a ground truth). The last section is the report of the
two RED-PSM demos (dynamic CT and dynamic MRI): frame metrics, the method table and the figures.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from recon.metrics import hfen, mae, psnr, ssim  # noqa: E402

T = TypeVar("T")


# -- arguments, timing ---------------------------------------------------------------------------
def parser(doc: str, name: str, quick: str, tune: str | None = None) -> argparse.ArgumentParser:
    """A demo's argument parser with ``--quick``, ``--out`` (default ``out/<name>``) and ``--tune``; add the demo's own options.

    Args:
        doc: the demo's module docstring; its first paragraph is the description.
        name: the demo's name, the default output folder ``out/<name>``.
        quick: help text of ``--quick`` (what the quick setting is).
        tune: help text of ``--tune`` (what the demo's tuning run prints); None: no ``--tune``.
    """
    ap = argparse.ArgumentParser(prog=f"python -m demos.{name}", description=doc.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument("--out", type=Path, default=Path("out") / name, help="output folder")
    if tune is not None:
        ap.add_argument("--tune", action="store_true", help=tune)
    return ap


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """``(fn(), seconds)``: the result of one call and its wall-clock time."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# -- tables --------------------------------------------------------------------------------------
def write_csv(rows: Sequence[dict], path: Path) -> None:
    """``rows`` as CSV; the columns are every key in order of first appearance (a missing cell is empty)."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
        writer.writeheader()
        writer.writerows(rows)


def table_lines(header: Sequence[str], cells: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table: the header line, the ``|---|`` rule and one line per row of ``cells``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in cells]


def write_markdown(path: Path, lines: Sequence[str]) -> str:
    """Write ``lines`` (a newline after each) to ``path``; return the text."""
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


# -- figures -------------------------------------------------------------------------------------
def save_figure(fig: plt.Figure, path: Path, dpi: int, **savefig) -> None:
    """Lay out (``tight_layout`` unless the figure has a layout engine), save and close a figure."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi, **savefig)
    plt.close(fig)


def write_sinogram_figure(
    truth: torch.Tensor, shown: dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]], path: Path, *, truth_title: str,
    display: dict, peak: float,
) -> None:  # fmt: skip
    """One row per setting: the truth, the sinogram and each reconstruction with its PSNR.

    Args:
        truth: (1, 1, N, N) image.
        shown: setting label -> (sinogram (1, 1, views, bins), method name -> (1, 1, N, N) reconstruction).
        path: the PNG to write.
        truth_title: the first column's title.
        display: ``imshow`` keywords of the images (colour map, window).
        peak: the PSNR's peak value (units of ``truth``).
    """
    n_cols = 2 + max(len(recs) for _, recs in shown.values())
    fig, axes = plt.subplots(len(shown), n_cols, figsize=(3.0 * n_cols, 3.2 * len(shown)), squeeze=False)
    for row, (label, (y, recs)) in zip(axes, shown.items()):
        row[0].imshow(truth[0, 0].numpy(), **display)
        row[0].set_title(truth_title)
        row[1].imshow(y[0, 0].numpy(), cmap="gray", aspect="auto")
        row[1].set_title(f"sinogram, {label}")
        for ax, (name, rec) in zip(row[2:], recs.items()):
            ax.imshow(rec[0, 0].numpy(), **display)
            ax.set_title(f"{name}: {float(psnr(rec, truth, peak)[0]):.2f} dB")
        for ax in row:
            ax.axis("off")
    save_figure(fig, path, dpi=90)


# -- tuning --------------------------------------------------------------------------------------
def hill_climb(grid: Sequence[float], objective: Callable[[float], float]) -> tuple[float, dict[float, float]]:
    """Maximise ``objective`` over ``grid`` by steps to the better neighbour, from the grid's middle.

    Suited to objectives unimodal along the grid (a PSNR against a log-spaced weight): about
    half the grid is evaluated, each value once.

    Returns:
        ``(best, tried)``: the grid value where no neighbour is better, and value -> objective
        for every value evaluated.
    """
    tried: dict[float, float] = {}

    def value(i: int) -> float:
        if grid[i] not in tried:
            tried[grid[i]] = objective(grid[i])
        return tried[grid[i]]

    i = len(grid) // 2
    while True:
        better = [j for j in (i - 1, i + 1) if 0 <= j < len(grid) and value(j) > value(i)]
        if not better:
            return grid[i], tried
        i = max(better, key=value)


# -- the report of the dynamic (2D + time) demos -------------------------------------------------
def frames_of(x: torch.Tensor) -> torch.Tensor:
    """(1, P, N, N) real frames of a result: an MRI result's (1, 2, P, N, N) real channel, else ``x``."""
    return x[:, 0] if x.ndim == 5 else x


def frame_metrics(frames: torch.Tensor, truth: torch.Tensor) -> dict:
    """PSNR (peak = max - min of the truth), SSIM (mean over frames), MAE and HFEN of (1, P, N, N) frames."""
    peak = float(truth.max() - truth.min())
    return {
        "psnr": float(psnr(frames, truth, peak)[0]),
        "ssim": float(ssim(frames, truth, peak)[0]),
        "mae": float(mae(frames, truth)[0]),
        "hfen": float(hfen(frames, truth)[0]),
    }


def run_frame_methods(runs: dict[str, Callable[[], tuple]], truth: torch.Tensor) -> tuple[list[dict], dict]:
    """Run each method (``runs[name]() -> (x, info)``, in order), time it and score its frames.

    Returns:
        ``(rows, frames)``: one table row per method, and method -> (1, P, N, N) real frames.
    """
    rows, shown = [], {}
    for name, run in runs.items():
        (x, info), seconds = timed(run)
        shown[name] = frames_of(x)
        rows.append({"method": name, **frame_metrics(shown[name], truth), "iterations": info.n_iter, "seconds": seconds})
        print(f"{name:8s} PSNR {rows[-1]['psnr']:6.2f} dB  SSIM {rows[-1]['ssim']:.3f}  MAE {rows[-1]['mae']:.4f}  "
              f"HFEN {rows[-1]['hfen']:.3f}  ({seconds:.1f} s)", flush=True)  # fmt: skip
    return rows, shown


def write_frame_report(rows: list[dict], frames: dict[str, torch.Tensor], truth: torch.Tensor, title: str, note: str, out: Path) -> None:
    """``table.csv``, ``table.md`` (printed), ``frames.png`` and ``xt_profile.png`` of a dynamic demo."""
    write_csv(rows, out / "table.csv")
    cells = [(r["method"], f"{r['psnr']:.2f}", f"{r['ssim']:.3f}", f"{r['mae']:.4f}", f"{r['hfen']:.3f}", r["iterations"],
              f"{r['seconds']:.1f}") for r in rows]  # fmt: skip
    header = ("method", "PSNR (dB)", "SSIM", "MAE", "HFEN", "iterations", "time (s)")
    print(write_markdown(out / "table.md", [f"# {title}", "", note, "", *table_lines(header, cells)]))
    write_frame_figures(truth, frames, out)
    print(f"wrote {out}/table.md, table.csv, frames.png, xt_profile.png")


def write_frame_figures(truth: torch.Tensor, recs: dict[str, torch.Tensor], out: Path, row: int | None = None) -> None:
    """``frames.png``: four frames of the truth and each method; ``xt_profile.png``: row ``row`` over time.

    Args:
        truth: (1, P, N, N) frames.
        recs: method -> (1, P, N, N) frames.
        out: output folder.
        row: image row of the x-t profile (default the middle row).
    """
    p, n = truth.shape[1], truth.shape[-1]
    row = n // 2 if row is None else row
    shown = [0, p // 3, (2 * p) // 3, p - 1]
    vmax = float(truth.max())
    named = {"truth": truth, **recs}
    fig, axes = plt.subplots(len(named), len(shown), figsize=(2.4 * len(shown), 2.4 * len(named)))
    for ax_row, (name, frames) in zip(axes, named.items()):
        for ax, t in zip(ax_row, shown):
            ax.imshow(frames[0, t].numpy(), cmap="gray", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if name == "truth":
                ax.set_title(f"frame {t}")
        label = name if name == "truth" else f"{name}\n{frame_metrics(frames, truth)['psnr']:.2f} dB"
        ax_row[0].set_ylabel(label)
    save_figure(fig, out / "frames.png", dpi=80)

    fig, axes = plt.subplots(1, len(named), figsize=(2.6 * len(named), 3.0))
    for ax, (name, frames) in zip(axes, named.items()):
        ax.imshow(frames[0, :, row, :].numpy(), cmap="gray", vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(name)
        ax.set_xlabel("x (pixel)")
    axes[0].set_ylabel(f"frame t (row {row})")
    save_figure(fig, out / "xt_profile.png", dpi=80)
