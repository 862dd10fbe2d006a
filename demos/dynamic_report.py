"""Metrics, tables and figures shared by the two RED-PSM demos (dynamic CT and dynamic MRI).

Imported by ``demos/ct_dynamic_red_psm.py`` and ``demos/mri_dynamic_red_psm.py`` (the demos
folder is on ``sys.path`` when a demo runs as a script or from ``tests/demo_runner.py``).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import recon  # noqa: E402
from recon.metrics import hfen, mae, psnr, ssim  # noqa: E402

#: the methods of both demos, in the order of the paper's expected ranking (worst first)
METHODS = ("window", "PSM", "PSM-TV", "RED-PSM")


def frame_metrics(frames: torch.Tensor, truth: torch.Tensor) -> dict:
    """PSNR (peak = max - min of the truth), SSIM (mean over frames), MAE and HFEN of (1, P, N, N) frames."""
    peak = float(truth.max() - truth.min())
    return {
        "psnr": float(psnr(frames, truth, peak)[0]),
        "ssim": float(ssim(frames, truth, peak)[0]),
        "mae": float(mae(frames, truth)[0]),
        "hfen": float(hfen(frames, truth)[0]),
    }


def run_methods(runs: dict[str, Callable[[], tuple]], truth: torch.Tensor) -> tuple[list[dict], dict]:
    """Run each method of :data:`METHODS` (``runs[name]() -> (x, info)``), time it and score it.

    Returns:
        ``(rows, frames)``: one table row per method, and method -> (1, P, N, N) real frames
        (an MRI result's real channel).
    """
    rows, shown = [], {}
    for name in METHODS:
        t0 = time.perf_counter()
        x, info = runs[name]()
        seconds = time.perf_counter() - t0
        shown[name] = x[:, 0] if x.ndim == 5 else x
        rows.append({"method": name, **frame_metrics(shown[name], truth), "iterations": info.get("iterations", 1), "seconds": seconds})
        print(f"{name:8s} PSNR {rows[-1]['psnr']:6.2f} dB  SSIM {rows[-1]['ssim']:.3f}  MAE {rows[-1]['mae']:.4f}  "
              f"HFEN {rows[-1]['hfen']:.3f}  ({seconds:.1f} s)", flush=True)  # fmt: skip
    return rows, shown


def sweep(physics, y: torch.Tensor, truth: torch.Tensor, beta: float, tv_lams, red_lams, n_iter: int) -> None:
    """Print the PSNR of PSM, PSM-TV and RED-PSM over lambda (for ``--tune`` on a tuning seed; picks nothing)."""

    def report(name: str, x: torch.Tensor) -> None:
        frames = x[:, 0] if x.ndim == 5 else x  # MRI: the real channel
        print(f"{name}: {frame_metrics(frames, truth)['psnr']:.2f} dB", flush=True)

    report(f"PSM     beta {beta:g}", recon.psm(physics, y, beta=beta, n_iter=n_iter)[0])
    for lam in tv_lams:
        report(f"PSM-TV  beta {beta:g} lam {lam:g}", recon.psm(physics, y, prior="tv", lam=lam, beta=beta, n_iter=n_iter)[0])
    for lam in red_lams:
        report(f"RED-PSM beta {beta:g} lam {lam:g}", recon.red_psm(physics, y, lam=lam, beta=beta, n_iter=n_iter)[0])


def write_report(rows: list[dict], frames: dict[str, torch.Tensor], truth: torch.Tensor, title: str, note: str, out: Path) -> None:
    """Write and print the tables (:func:`write_tables`) and write the figures (:func:`write_figures`)."""
    print(write_tables(rows, title, note, out))
    write_figures(truth, frames, out)
    print(f"wrote {out}/table.md, table.csv, frames.png, xt_profile.png")


def write_tables(rows: list[dict], title: str, note: str, out: Path) -> str:
    """Write ``table.csv`` and ``table.md`` (one row per method); return the markdown."""
    with open(out / "table.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"# {title}", "", note, "", "| method | PSNR (dB) | SSIM | MAE | HFEN | iterations | time (s) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['mae']:.4f} | {r['hfen']:.3f} | "
            f"{r['iterations']} | {r['seconds']:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    return text


def write_figures(truth: torch.Tensor, recs: dict[str, torch.Tensor], out: Path, row: int | None = None) -> None:
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
    fig.tight_layout()
    fig.savefig(out / "frames.png", dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(named), figsize=(2.6 * len(named), 3.0))
    for ax, (name, frames) in zip(axes, named.items()):
        ax.imshow(frames[0, :, row, :].numpy(), cmap="gray", vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(name)
        ax.set_xlabel("x (pixel)")
    axes[0].set_ylabel(f"frame t (row {row})")
    fig.tight_layout()
    fig.savefig(out / "xt_profile.png", dpi=80)
    plt.close(fig)
