"""Magnitude plug-and-play for 3D near-field MIMO radar, against back-projection and Kirchhoff migration.

Setting of Oral & Oktem (IEEE TCI 2024): X-shaped 0.3 m array (12 Tx, 13 Rx), 4-16 GHz, scene
x, y in [-0.15, 0.15] m, z in [0.35, 0.65] m. Three measurement settings: 20 frequencies at
30 dB and at 20 dB SNR (M/N = 10 %), and a stronger compression, 10 frequencies at 30 dB
(M/N = 5 %). Test scenes are procedural (``recon.phantoms.mimo_scene``, seeds from
``TEST_SEEDS``, never seen in training). SNR = 10 log10(||A x||^2 / E||n||^2) with circular
complex Gaussian noise (seeded per scene). Methods: BP (A^H y), KM (Kirchhoff migration), and
C-SALSA with the magnitude priors l1, 3D TV and the shipped 3D U-Net (``recon.magnitude_pnp``).
Metric: the paper's magnitude PSNR (``recon.metrics.magnitude_psnr``). Every iterative method
stops by its tolerance or iteration budget, never by the truth.

``--tune`` picks each prior's ``denoiser_sigma`` on training-seed scenes (seeds 5000-5001, never test
scenes) by a small grid search and prints them; the defaults in ``recon.methods.magnitude_pnp``
were set that way.

Writes ``<out>/table.md``, ``table.csv`` and ``figure.png`` (maximum-intensity projections along
x, y and z of the truth and every method, first scene, first setting); prints the table.

Usage:
    python -m demos.mimo_magnitude_pnp --quick   # 13x13x25 voxels, 1 scene, 2 settings (~2 minutes)
    python -m demos.mimo_magnitude_pnp           # 25x25x49 voxels, 2 scenes, 3 settings (~25 minutes alone)
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import recon
from demos.common import parser, save_figure, table_lines, write_csv, write_markdown
from operators import NearFieldMIMO
from operators import mimo_geometry as mg
from recon.metrics import magnitude_psnr
from recon.phantoms import TEST_SEEDS, mimo_scene

#: the lines the runner (``python -m demos``) prints for this demo
SUMMARY = {
    "modality": "near-field MIMO radar (3D)", "methods": ("PnP-UNet3D", "TV"), "metric": "psnr_mean",
    "metric_label": "magnitude PSNR (dB)", "setting": ("setting",),
    "paper": "network prior best, several dB above TV and l1 [unverified]",
}  # fmt: skip

METHODS = ("BP", "KM", "l1", "TV", "PnP-UNet3D")
PRIOR = {"l1": "l1", "TV": "tv", "PnP-UNet3D": "mimo_unet3d"}
TUNE_SEEDS = (5000, 5001)
#: denoiser_sigma grids per prior; for l1 / TV the square roots of the prox weights (threshold, TV weight) searched
TUNE_GRID = {
    "l1": tuple(math.sqrt(w) for w in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)),
    "tv": tuple(math.sqrt(w) for w in (0.002, 0.005, 0.01, 0.02, 0.05, 0.1)),
    "mimo_unet3d": (0.02, 0.05, 0.1, 0.15, 0.2, 0.3),
}


def setting(quick: bool) -> dict:
    """Grid, scenes and measurement settings (label, number of frequencies, SNR in dB)."""
    if quick:
        return {"grid": (13, 13, 25), "n_scenes": 1, "cases": [("20 freqs, 30 dB", 20, 30.0), ("20 freqs, 20 dB", 20, 20.0)]}
    return {
        "grid": (25, 25, 49),
        "n_scenes": 2,
        "cases": [("20 freqs, 30 dB", 20, 30.0), ("20 freqs, 20 dB", 20, 20.0), ("10 freqs, 30 dB", 10, 30.0)],
    }


def measure(physics: NearFieldMIMO, x: torch.Tensor, snr_db: float, seed: int) -> tuple[torch.Tensor, float]:
    """Noisy echoes at the given SNR and the noise standard deviation per entry."""
    y0 = physics.A(x)
    sigma = float(y0.norm()) / math.sqrt(y0.numel()) * 10 ** (-snr_db / 20)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.complex(torch.randn(y0.shape, generator=gen), torch.randn(y0.shape, generator=gen)) / math.sqrt(2)
    return y0 + sigma * noise.to(y0.dtype), sigma


def reconstruct_all(physics: NearFieldMIMO, y: torch.Tensor, sigma: float) -> dict:
    """Every method on one measurement: name -> (x, seconds, iterations)."""
    out = {}
    for name in METHODS:
        t = time.perf_counter()
        if name == "BP":
            x, info = recon.backprojection(physics, y)
        elif name == "KM":
            x, info = recon.kirchhoff_migration(physics, y)
        else:
            x, info = recon.magnitude_pnp(physics, y, prior=PRIOR[name], noise_std=sigma)
        out[name] = (x, time.perf_counter() - t, info.n_iter)
    return out


def tune(cfg: dict, priors: list[str]) -> None:
    """Grid search of each prior's denoiser_sigma on training-seed scenes (first setting); prints the best."""
    _, n_freq, snr = cfg["cases"][0]
    physics = NearFieldMIMO(*mg.x_array(), mg.default_frequencies(n=n_freq), mg.default_grid(cfg["grid"]))
    data = []
    for seed in TUNE_SEEDS:
        x = mimo_scene(cfg["grid"], seed)
        data.append((x, *measure(physics, x, snr, seed)))
    for prior in priors:
        grid, scores = TUNE_GRID[prior], []
        for sd in grid:
            vals = [float(magnitude_psnr(recon.magnitude_pnp(physics, y, prior=prior, noise_std=s, denoiser_sigma=sd)[0], x)) for x, y, s in data]
            scores.append(float(np.mean(vals)))
            print(f"tune {prior} denoiser_sigma {sd:g}: {scores[-1]:.2f} dB", flush=True)
        print(f"best {prior}: {grid[int(np.argmax(scores))]:g}")


def main(argv: list[str] | None = None) -> list[dict]:
    ap = parser(__doc__, "mimo_magnitude_pnp", "13x13x25 voxels, 1 scene, 2 settings",
                tune="choose the prior strengths on training-seed scenes and exit")  # fmt: skip
    ap.add_argument("--scenes", type=int, help="number of test scenes (default: 1 quick, 2 full)")
    ap.add_argument("--priors", nargs="+", choices=list(TUNE_GRID), default=list(TUNE_GRID), help="priors to --tune")
    args = ap.parse_args(argv)
    cfg = setting(args.quick)
    if args.scenes is not None:
        if args.scenes < 1:
            raise ValueError(f"--scenes: expected a positive number of test scenes, received {args.scenes}")
        cfg["n_scenes"] = args.scenes
    if args.tune:
        tune(cfg, args.priors)
        return []
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tx, rx = mg.x_array()
    scenes = [mimo_scene(cfg["grid"], TEST_SEEDS[i]) for i in range(cfg["n_scenes"])]
    rows, first = [], None
    for label, n_freq, snr in cfg["cases"]:
        physics = NearFieldMIMO(tx, rx, mg.default_frequencies(n=n_freq), mg.default_grid(cfg["grid"]))
        scores = {m: [] for m in METHODS}
        secs = {m: [] for m in METHODS}
        iters = {m: [] for m in METHODS}
        for i, x in enumerate(scenes):
            y, sigma = measure(physics, x, snr, TEST_SEEDS[i])
            recs = reconstruct_all(physics, y, sigma)
            for m, (xh, sec, it) in recs.items():
                scores[m].append(float(magnitude_psnr(xh, x)))
                secs[m].append(sec)
                iters[m].append(it)
            first = first or (x, recs)
            print(f"{label}: scene {i + 1}/{len(scenes)} done ({time.perf_counter() - t0:.0f} s)", flush=True)
        for m in METHODS:
            rows.append({
                "setting": label, "method": m, "psnr_mean": float(np.mean(scores[m])), "psnr_std": float(np.std(scores[m])),
                "iterations": float(np.mean(iters[m])), "seconds": float(np.mean(secs[m])), "m_over_n": physics.n_measurements / physics.n_voxels,
            })
    table = write_tables(rows, cfg, args.out)
    write_figure(first[0], first[1], args.out / "figure.png")
    print(table)
    print(f"wrote {args.out}/table.md, table.csv, figure.png ({time.perf_counter() - t0:.0f} s)")
    return rows


def write_tables(rows: list[dict], cfg: dict, out: Path) -> str:
    """Markdown and CSV tables; returns the markdown."""
    write_csv(rows, out / "table.csv")
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    row = {(r["setting"], r["method"]): r for r in rows}
    header = ["method"] + [f"{s} (M/N = {row[(s, METHODS[0])]['m_over_n']:.0%})" for s in settings]
    cells = [[m] + [f"{row[(s, m)]['psnr_mean']:.2f} +- {row[(s, m)]['psnr_std']:.2f} ({row[(s, m)]['iterations']:.0f} it, "
                    f"{row[(s, m)]['seconds']:.1f} s)" for s in settings] for m in METHODS]  # fmt: skip
    title = (f"Magnitude PSNR (dB), mean +- std over {cfg['n_scenes']} test scene(s), grid {cfg['grid']}; "
             "iterations and seconds per reconstruction in brackets")  # fmt: skip
    paper = "Paper (Oral & Oktem 2024): PnP with the 3D U-Net best in every setting, TV and l1 above BP and KM."
    return write_markdown(out / "table.md", [title, "", *table_lines(header, cells), "", paper])


def write_figure(x_true: torch.Tensor, recs: dict, path: Path) -> None:
    """Maximum-intensity projections (peak-normalised magnitudes) along x, y and z."""
    images = {"truth": x_true, **{m: v[0] for m, v in recs.items()}}
    fig, axes = plt.subplots(len(images), 3, figsize=(7.5, 2.1 * len(images)))
    for row, (name, img) in enumerate(images.items()):
        mag = img.abs()[0, 0].numpy()
        mag = mag / max(mag.max(), 1e-30)
        score = "" if name == "truth" else f" ({float(magnitude_psnr(img, x_true)):.1f} dB)"
        for col, (axis, label) in enumerate(((0, "MIP along x (y-z)"), (1, "MIP along y (x-z)"), (2, "MIP along z (x-y)"))):
            ax = axes[row, col]
            ax.imshow(mag.max(axis=axis), cmap="inferno", vmin=0, vmax=1, aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(label, fontsize=9)
            if col == 0:
                ax.set_ylabel(name + score, fontsize=9)
    save_figure(fig, path, dpi=110)


if __name__ == "__main__":
    main()
