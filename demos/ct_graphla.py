"""graphLa+Psi against its preliminary reconstructions Psi, as in the paper's COULE table.

Setting of Bianchi et al. (2023): parallel beam, 120 views over [0, 179] deg, 362 bins for
256x256 (182 for 128x128), relative noise 2 % and 4 % (||e|| = nl ||A x||). Methods: FBP,
Tikhonov, TV (discrepancy principle), Net (the shipped CT U-Net on FBP), and La+Psi for each Psi
plus La+True (the oracle graph from the ground truth). COULE cannot be downloaded: the test
images are procedural COULE-like phantoms (seeds from ``recon.phantoms.TEST_SEEDS``, disjoint
from the U-Net's training seeds). The noise sweep (PSNR against noise level for each Psi and
La+Psi) runs on the first test image at 128x128 in both modes, to keep its cost bounded.

Every iterative method stops by its iteration budget or tolerance, never by the truth.

Writes ``<out>/table.md``, ``table.csv``, ``figure.png`` (nine reconstructions of one image with
error maps) and ``noise_sweep.png``; prints the table.

Usage:
    python -m demos.ct_graphla --quick   # 128x128, 3 images (about 3 minutes on 2 cores)
    python -m demos.ct_graphla           # 256x256, 10 images (about 80 minutes on 2 cores; run it alone)
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import recon
from demos.common import parser, save_figure, table_lines, write_csv, write_markdown
from operators.ct import ct_geometry
from recon.metrics import psnr, ssim
from recon.noise import add_relative_noise
from recon.phantoms import TEST_SEEDS, coule_like_batch

#: the lines the runner (``python -m demos``) prints for this demo
SUMMARY = {
    "modality": "CT, 2D parallel beam", "methods": ("La+FBP", "La+Tik", "La+TV", "La+Net"), "metric": "psnr_mean",
    "metric_label": "PSNR (dB)", "setting": ("noise",), "paper": "paper_psnr",
}  # fmt: skip

PSIS = ("FBP", "Tik", "TV", "Net")
METHODS = PSIS + tuple(f"La+{p}" for p in PSIS) + ("La+True",)
#: PSNR (dB) / SSIM from the paper (one COULE test image, its reference repository's figures)
PAPER = {
    0.02: dict(zip(METHODS, [(21.95, .24), (26.22, .47), (28.80, .80), (34.71, .986), (30.24, .70), (30.80, .94),
                             (34.92, .98), (39.01, .986), (47.44, .99)])),
    0.04: dict(zip(METHODS, [(17.90, .16), (24.41, .34), (26.20, .68), (32.38, .965), (25.56, .41), (27.04, .85),
                             (29.85, .94), (34.02, .93), (43.05, .96)])),
}
SWEEP_LEVELS = (0.01, 0.02, 0.04, 0.06, 0.08, 0.10)


def setting(quick: bool) -> dict:
    """Sizes and iteration budgets of the quick and the full run."""
    if quick:
        return {"size": 128, "n_images": 3, "iters": 400, "sweep": (0.01, 0.04, 0.10)}
    return {"size": 256, "n_images": 10, "iters": 1000, "sweep": SWEEP_LEVELS}


def reconstruct_all(physics, y: torch.Tensor, x_true: torch.Tensor, nl: float, iters: int) -> dict:
    """All nine methods on one sinogram (1, 1, A, D); returns {method: image}."""
    psi = {
        "FBP": recon.fbp(physics, y)[0],
        "Tik": recon.tikhonov(physics, y, noise_level=nl)[0],
        "TV": recon.tv(physics, y, noise_level=nl, max_iter=iters, tol=2e-4)[0],
    }
    psi["Net"] = recon.methods.graphla.preliminary(physics, y, "net", noise_level=nl)
    out = dict(psi)
    for name, image in list(psi.items()) + [("True", x_true)]:
        out[f"La+{name}"] = recon.graphla(physics, y, psi=image, noise_level=nl, max_iter=iters)[0]
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    args = parser(__doc__, "ct_graphla", "128x128, 3 images, 400 iterations, 3 sweep levels").parse_args(argv)
    cfg = setting(args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    physics = ct_geometry(cfg["size"])
    x_all = coule_like_batch(cfg["n_images"], cfg["size"], first_seed=TEST_SEEDS[100])
    rows, shown = [], {}
    t0 = time.perf_counter()
    for k, nl in enumerate((0.02, 0.04)):
        scores = {m: ([], []) for m in METHODS}
        for i in range(cfg["n_images"]):
            x = x_all[i : i + 1]
            y = add_relative_noise(physics.A(x), nl, seed=TEST_SEEDS[100] + 1000 * k + i)
            recs = reconstruct_all(physics, y, x, nl, cfg["iters"])
            for m in METHODS:
                scores[m][0].append(float(psnr(recs[m], x, 1.0)[0]))
                scores[m][1].append(float(ssim(recs[m], x, 1.0)[0]))
            if i == 0 and nl == 0.02:
                shown = recs
            print(f"noise {nl:.0%} image {i + 1}/{cfg['n_images']} done ({time.perf_counter() - t0:.0f} s)", flush=True)
        for m in METHODS:
            p, s = np.array(scores[m][0]), np.array(scores[m][1])
            rows.append({"noise": nl, "method": m, "psnr_mean": p.mean(), "psnr_std": p.std(), "ssim_mean": s.mean(),
                         "ssim_std": s.std(), "paper_psnr": PAPER[nl][m][0], "paper_ssim": PAPER[nl][m][1]})
    table = write_tables(rows, cfg, args.out)
    print(table)
    write_figure(x_all[:1], shown, args.out / "figure.png")
    write_sweep(cfg["sweep"], noise_sweep(cfg["sweep"], cfg["iters"]), args.out / "noise_sweep.png")
    print(f"wrote {args.out}/table.md, table.csv, figure.png, noise_sweep.png ({time.perf_counter() - t0:.0f} s)")
    return rows


def write_tables(rows: list[dict], cfg: dict, out: Path) -> str:
    """CSV and Markdown tables (ours: mean +- std over the test images; paper: one image)."""
    write_csv(rows, out / "table.csv")
    title = (f"# graphLa+Psi on {cfg['n_images']} COULE-like images, {cfg['size']}x{cfg['size']}, 120 views "
             f"(PDHG budget {cfg['iters']} iterations)")  # fmt: skip
    header = ("noise", "method", "PSNR (dB)", "SSIM", "paper PSNR", "paper SSIM")
    cells = [(f"{r['noise']:.0%}", r["method"], f"{r['psnr_mean']:.2f} ± {r['psnr_std']:.2f}",
              f"{r['ssim_mean']:.3f} ± {r['ssim_std']:.3f}", f"{r['paper_psnr']:.2f}", f"{r['paper_ssim']:.3f}") for r in rows]  # fmt: skip
    return write_markdown(out / "table.md", [title, "", *table_lines(header, cells)])


def write_figure(x_true: torch.Tensor, recs: dict, path: Path) -> None:
    """The nine reconstructions of the first image at 2 % noise (top) and their error maps (bottom)."""
    fig, axes = plt.subplots(2, len(METHODS), figsize=(2.4 * len(METHODS), 5.2))
    for j, m in enumerate(METHODS):
        img = recs[m][0, 0].clamp(0, 1).numpy()
        axes[0, j].imshow(img, cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(f"{m}\n{float(psnr(recs[m], x_true, 1.0)[0]):.2f} dB", fontsize=9)
        axes[1, j].imshow(np.abs(img - x_true[0, 0].numpy()), cmap="magma", vmin=0, vmax=0.3)
        axes[1, j].set_title("|error| (0-0.3)", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    save_figure(fig, path, dpi=90)


def noise_sweep(levels: tuple[float, ...], iters: int) -> dict:
    """PSNR of each Psi and La+Psi against the noise level, first test image at 128x128."""
    physics = ct_geometry(128)
    x = coule_like_batch(1, 128, first_seed=TEST_SEEDS[100])
    curves: dict[str, list[float]] = {m: [] for m in METHODS if m != "La+True"}
    for j, nl in enumerate(levels):
        y = add_relative_noise(physics.A(x), nl, seed=TEST_SEEDS[100] + 7 + j)
        recs = reconstruct_all(physics, y, x, nl, iters)
        for m in curves:
            curves[m].append(float(psnr(recs[m], x, 1.0)[0]))
        print(f"sweep noise {nl:.0%} done", flush=True)
    return curves


def write_sweep(levels: tuple[float, ...], curves: dict, path: Path) -> None:
    """PSNR versus noise: Psi dashed, La+Psi solid, one colour per Psi."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    levels = 100 * np.array(levels)
    for c, p in enumerate(PSIS):
        ax.plot(levels, curves[p], "--o", color=f"C{c}", label=p)
        ax.plot(levels, curves[f"La+{p}"], "-s", color=f"C{c}", label=f"La+{p}")
    ax.set_xlabel("noise level ||e|| / ||Ax|| (%)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("graphLa+Psi noise sweep (128x128, one COULE-like image)")
    ax.grid(alpha=0.3)
    ax.legend(ncol=2, fontsize=8)
    save_figure(fig, path, dpi=100)


if __name__ == "__main__":
    main()
