r"""Implicit regularization by the Sobolev H^s data misfit: denoising and deblurring.

After Zhu, Hu, Lou and Yang ("Implicit regularization effects of the Sobolev norms in image
processing"). Images: four bundled with scikit-image (camera, moon, coins, astronaut in gray),
resized to 256x256 in [0, 1], and one COULE-like phantom (``TEST_SEEDS[0]``). Operators, all
periodic convolutions (deepinv ``BlurFFT``): the identity (denoising), a Gaussian blur (std 2
pixels at 256^2) and a motion blur (deepinv ``MotionBlurGenerator``, 15x15 at 256^2, seed 1);
white Gaussian noise at 2 %, 5 % and 10 % (``||e|| = nl ||Kx||``).

For s in {-2, -1, -0.5, 0, 0.5, 1}:

* gradient descent (GD, step 1/||W_s^{1/2} K||^2) and CG in the H^s metric on
  1/2 ||K u - f||_{H^s}^2 from u = 0, run for a fixed budget; the PSNR of every iterate is
  recorded (the truth is used for this report only) and the discrepancy principle
  (||K u - f|| <= 1.01 delta) marks where a user would stop;
* table: best PSNR over the run and its iteration, the discrepancy iteration and the PSNR there
  (means over the images);
* ``H^s + TV`` (s = -1) against ``L2 + TV`` (s = 0) by ADMM, each with lambda tuned on separate
  tuning images (COULE-like seed 5000 and scikit-image's brick), never on the test images.

Frequency convention: ``scale = 2 pi * 10`` (``SCALE``), so |xi| = 1 at 10 cycles per image: the
weight (1 + |xi|^2)^s is near 1 below that and decays (s < 0) above it, at every image size. With
recon's default scale 2 pi (the knee at 1 cycle per image), s = -1 needs 10^4 - 10^5 GD
iterations to reach its best PSNR at 256^2, beyond this demo's budget.

Writes ``<out>/table.md``, ``table.csv``, ``curves.png`` (PSNR against iteration for each s, one
panel per operator and noise level, the discrepancy stops marked) and ``images.png``.

Usage:
    python -m demos.deblur_sobolev --quick   # 128x128, 2 images, 300 GD iterations (77 s on 2 cores)
    python -m demos.deblur_sobolev           # 256x256, 5 images, 1000 GD iterations (19 min on 2 cores
                                             # shared with another job, 2026-11-28)
    python -m demos.deblur_sobolev --tune    # the TV weight sweeps behind TV_LAMBDA (add --quick for 128)
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from deepinv.physics import BlurFFT
from deepinv.physics.functional.blur import gaussian_blur
from deepinv.physics.generator import MotionBlurGenerator
from skimage import color, data, transform

import recon
from demos.common import hill_climb, parser, save_figure, table_lines, write_csv, write_markdown
from recon.metrics import psnr
from recon.noise import add_relative_noise
from recon.phantoms import TEST_SEEDS, coule_like

#: the lines the runner (``python -m demos``) prints for this demo
SUMMARY = {
    "modality": "deblurring, implicit H^s regularization", "methods": ("GD s=-1", "GD s=0"), "metric": "stop_psnr",
    "metric_label": "PSNR at discrepancy stop (dB)", "setting": ("setting",),
    "paper": "best s < 0 for white noise [unverified]",
}  # fmt: skip

S_VALUES = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0)
NOISE_LEVELS = (0.02, 0.05, 0.10)
OPERATORS = ("identity", "gaussian", "motion")
SCALE = 2.0 * math.pi * 10.0
TAU = 1.01
TUNE_SEED = 5000
#: the s of the TV comparison: L2 + TV against H^s + TV
TV_S = (0.0, -1.0)
#: TV weights tried by ``--tune`` on the tuning images: 10^-5 to 10^-1 in half decades
LAMBDA_GRID = tuple(float(10.0**e) for e in np.arange(-5.0, -0.9, 0.5))
DTYPE = torch.float32
#: TV weights per (operator, noise level, s) and image size, from ``--tune`` (``--quick`` for 128) on
#: the tuning images, 2026-11-28
TV_LAMBDA = {
    ("identity", 0.02, 0.0): {128: 1.0e-02, 256: 1.0e-02}, ("identity", 0.02, -1.0): {128: 3.2e-04, 256: 1.0e-04},
    ("identity", 0.05, 0.0): {128: 3.2e-02, 256: 3.2e-02}, ("identity", 0.05, -1.0): {128: 1.0e-03, 256: 3.2e-04},
    ("identity", 0.1, 0.0): {128: 3.2e-02, 256: 3.2e-02}, ("identity", 0.1, -1.0): {128: 3.2e-03, 256: 1.0e-03},
    ("gaussian", 0.02, 0.0): {128: 1.0e-03, 256: 1.0e-03}, ("gaussian", 0.02, -1.0): {128: 3.2e-05, 256: 3.2e-05},
    ("gaussian", 0.05, 0.0): {128: 3.2e-03, 256: 3.2e-03}, ("gaussian", 0.05, -1.0): {128: 3.2e-04, 256: 3.2e-04},
    ("gaussian", 0.1, 0.0): {128: 1.0e-02, 256: 1.0e-02}, ("gaussian", 0.1, -1.0): {128: 3.2e-03, 256: 1.0e-03},
    ("motion", 0.02, 0.0): {128: 3.2e-03, 256: 3.2e-03}, ("motion", 0.02, -1.0): {128: 1.0e-04, 256: 3.2e-05},
    ("motion", 0.05, 0.0): {128: 1.0e-02, 256: 1.0e-02}, ("motion", 0.05, -1.0): {128: 3.2e-04, 256: 3.2e-04},
    ("motion", 0.1, 0.0): {128: 3.2e-02, 256: 3.2e-02}, ("motion", 0.1, -1.0): {128: 1.0e-03, 256: 1.0e-03},
}


def setting(quick: bool) -> dict:
    """Sizes and budgets of the quick and the full run."""
    if quick:
        return {"size": 128, "images": ("camera", "coule"), "gd_iter": 300, "cg_iter": 60, "tv_iter": 150}
    return {
        "size": 256, "images": ("camera", "moon", "coins", "astronaut", "coule"),
        "gd_iter": 1000, "cg_iter": 150, "tv_iter": 300,
    }


def load_image(name: str, size: int) -> torch.Tensor:
    """A (1, 1, size, size) image in [0, 1]: a centre-cropped scikit-image picture or a COULE-like phantom."""
    if name == "coule":
        return coule_like(size, seed=TEST_SEEDS[0]).to(DTYPE).reshape(1, 1, size, size)
    if name == "coule_tune":
        return coule_like(size, seed=TUNE_SEED).to(DTYPE).reshape(1, 1, size, size)
    img = getattr(data, name)()
    img = color.rgb2gray(img) if img.ndim == 3 else img / 255.0
    side = min(img.shape)
    top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    img = transform.resize(img[top : top + side, left : left + side], (size, size), anti_aliasing=True)
    return torch.as_tensor(img, dtype=DTYPE).reshape(1, 1, size, size)


def blur_operator(kind: str, size: int) -> BlurFFT:
    """The periodic convolution of one setting (filters scaled with the image size)."""
    if kind == "identity":
        kernel = torch.ones(1, 1, 1, 1, dtype=DTYPE)
    elif kind == "gaussian":
        kernel = gaussian_blur(sigma=(2.0 * size / 256,) * 2, dtype=DTYPE)
    else:
        side = 15 if size >= 256 else 9
        gen = MotionBlurGenerator((side, side), rng=torch.Generator().manual_seed(1), dtype=DTYPE)
        kernel = gen.step(1, seed=1)["filter"].to(DTYPE)
    return BlurFFT((1, size, size), filter=kernel)


def curves(physics: BlurFFT, y: torch.Tensor, x: torch.Tensor, s: float, method: str, n_iter: int, nl: float):
    """Run GD or CG without early stopping; PSNR per image per iterate (row 0: u = 0) and the discrepancy iterations."""
    rows = [psnr(torch.zeros_like(x), x, 1.0)]
    _, info = recon.sobolev_fit(
        physics, y, s=s, method=method, scale=SCALE, noise_level=nl, tau=TAU, early_stop=False,
        max_iter=n_iter, callback=lambda it, u: rows.append(psnr(u, x, 1.0)), progress=False,
    )
    return torch.stack(rows).numpy(), info.extra["discrepancy_iteration"].numpy()


def implicit_rows(label: str, method: str, psnrs: np.ndarray, stops: np.ndarray, s: float) -> dict:
    """Summary of one (setting, method, s) curve set: best PSNR, its iteration, discrepancy stop and PSNR there."""
    n = len(psnrs) - 1
    reached = stops >= 0
    at_stop = psnrs[np.where(reached, stops, n), np.arange(psnrs.shape[1])]
    return {
        "setting": label, "method": f"{method} s={s:g}", "s": s,
        "best_psnr": float(psnrs.max(axis=0).mean()),
        "best_iter": float(psnrs.argmax(axis=0).mean()),
        "best_at_end": int((psnrs.argmax(axis=0) == n).sum()),
        "stop_iter": float(np.where(reached, stops, n).mean()),
        "stop_reached": int(reached.sum()),
        "stop_psnr": float(at_stop.mean()),
    }


def tune(size: int, n_iter: int) -> dict:
    """TV weights with the best mean PSNR on the tuning images (never the test images), per setting and s.

    A hill climb on :data:`LAMBDA_GRID` from its middle (the PSNR is unimodal in lambda on every
    sweep we ran), so about 4 of the 9 weights are tried.
    """
    x = torch.cat([load_image("coule_tune", size), load_image("brick", size)])
    best = {}
    for kind in OPERATORS:
        physics = blur_operator(kind, size)
        for nl in NOISE_LEVELS:
            y = add_relative_noise(physics.A(x), nl, seed=TUNE_SEED)
            for s in TV_S:
                objective = lambda lam: float(psnr(tv_fit(physics, y, s, lam, n_iter), x, 1.0).mean())  # noqa: B023, E731
                best[(kind, nl, s)], tried = hill_climb(LAMBDA_GRID, objective)
                tried_text = " ".join(f"{lam:.1e}: {v:.2f}" for lam, v in sorted(tried.items()))
                print(f"{kind} {nl:g} s={s:g}: {tried_text}", flush=True)
    return best


def tv_fit(physics: BlurFFT, y: torch.Tensor, s: float, lam: float, n_iter: int) -> torch.Tensor:
    return recon.sobolev_fit(physics, y, s=s, method="tv_admm", scale=SCALE, lam=lam, max_iter=n_iter, progress=False)[0]


def plot_curves(all_curves: dict, out: Path) -> None:
    """PSNR against GD iteration, one panel per operator and noise level, a curve per s."""
    fig, axes = plt.subplots(len(OPERATORS), len(NOISE_LEVELS), figsize=(4.2 * len(NOISE_LEVELS), 3.2 * len(OPERATORS)))
    cmap = plt.get_cmap("coolwarm")
    for i, kind in enumerate(OPERATORS):
        for j, nl in enumerate(NOISE_LEVELS):
            ax = axes[i, j]
            for k, s in enumerate(S_VALUES):
                psnrs, stops = all_curves[(kind, nl, s)]
                mean = psnrs.mean(axis=1)
                it = np.arange(len(mean))
                colour = cmap(k / (len(S_VALUES) - 1))
                ax.semilogx(it[1:], mean[1:], color=colour, label=f"s={s:g}")
                stop = int(np.round(np.where(stops >= 0, stops, len(mean) - 1).mean()))
                ax.plot(max(stop, 1), mean[max(stop, 1)], "o", color=colour, ms=5)
            ax.set_title(f"{kind}, {100 * nl:g}% noise", fontsize=9)
            ax.set_ylim(bottom=max(ax.get_ylim()[0], float(np.nanmax([all_curves[(kind, nl, s)][0].mean(1).max() for s in S_VALUES])) - 12))
            ax.grid(alpha=0.3)
            if i == len(OPERATORS) - 1:
                ax.set_xlabel("GD iteration")
            if j == 0:
                ax.set_ylabel("mean PSNR (dB)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("H^s misfit, gradient descent: PSNR against iteration (dots: discrepancy-principle stop)")
    save_figure(fig, out / "curves.png", dpi=110)


def plot_images(panels: list[tuple[str, torch.Tensor]], out: Path) -> None:
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.4))
    for ax, (title, img) in zip(axes, panels, strict=True):
        ax.imshow(img.squeeze().clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    save_figure(fig, out / "images.png", dpi=110)


def write_tables(rows: list[dict], out: Path) -> str:
    """CSV of every row; Markdown (returned): the implicit rows (best PSNR and discrepancy stop), then the TV rows."""
    write_csv(rows, out / "table.csv")
    cells = []
    for r in rows:
        if "best_iter" in r:
            flag = f" ({r['best_at_end']} at the end)" if r["best_at_end"] else ""
            reach = "" if r["stop_reached"] == r["n_images"] else f" ({r['n_images'] - r['stop_reached']} not reached)"
            cells.append((r["setting"], r["method"], f"{r['best_psnr']:.2f}", f"{r['best_iter']:.0f}{flag}",
                          f"{r['stop_iter']:.0f}{reach}", f"{r['stop_psnr']:.2f}"))  # fmt: skip
        else:
            cells.append((r["setting"], f"{r['method']} (lambda {r['lam']:.1e})", f"{r['best_psnr']:.2f}", "-", "-", "-"))
    header = ("setting", "method", "best PSNR", "best iter", "discrepancy iter", "PSNR at discrepancy")
    return write_markdown(out / "table.md", table_lines(header, cells))


def showcase(physics: BlurFFT, y: torch.Tensor, x: torch.Tensor, nl: float, tv: dict, label: str) -> list:
    """Panels of the first image: truth, data, GD stopped by the discrepancy principle (s = 0, -1), both TVs."""
    panels = [(f"data ({label})", y[:1])]
    for s in (0.0, -1.0):
        u, _ = recon.sobolev_fit(physics, y, s=s, method="gd", scale=SCALE, noise_level=nl, tau=TAU, max_iter=1000, progress=False)
        panels.append((f"GD s={s:g}, discrepancy stop", u[:1]))
    panels += [(name, u[:1]) for name, u in tv.items()]
    return [("truth", x[:1])] + [(f"{title}\n{float(psnr(img, x[:1], 1.0)):.2f} dB", img) for title, img in panels]


def main(argv: list[str] | None = None) -> list[dict]:
    args = parser(__doc__, "deblur_sobolev", "128x128, 2 images, short runs (about a minute)",
                  tune="print the TV weight sweeps on the tuning images and exit").parse_args(argv)  # fmt: skip
    cfg = setting(args.quick)
    if args.tune:
        best = tune(cfg["size"], cfg["tv_iter"])
        print(f"TV_LAMBDA at size {cfg['size']}: " + " ".join(f"{k!r}: {v:.1e}," for k, v in best.items()))
        return []
    args.out.mkdir(parents=True, exist_ok=True)
    x = torch.cat([load_image(name, cfg["size"]) for name in cfg["images"]])
    rows, all_curves, panels = [], {}, []
    t0 = time.perf_counter()
    for kind in OPERATORS:
        physics = blur_operator(kind, cfg["size"])
        for nl in NOISE_LEVELS:
            label = f"{kind} {100 * nl:g}%"
            y = add_relative_noise(physics.A(x), nl, seed=TEST_SEEDS[0])
            for method, n_iter in (("GD", cfg["gd_iter"]), ("CG", cfg["cg_iter"])):
                for s in S_VALUES:
                    psnrs, stops = curves(physics, y, x, s, method.lower(), n_iter, nl)
                    rows.append(implicit_rows(label, method, psnrs, stops, s) | {"n_images": x.shape[0]})
                    if method == "GD":
                        all_curves[(kind, nl, s)] = (psnrs, stops)
            tv = {}
            for s in TV_S:
                lam = TV_LAMBDA[(kind, nl, s)][cfg["size"]]
                name = "L2+TV" if s == 0 else f"H^s+TV s={s:g}"
                tv[name] = tv_fit(physics, y, s, lam, cfg["tv_iter"])
                rows.append({"setting": label, "method": name, "s": s, "best_psnr": float(psnr(tv[name], x, 1.0).mean()), "lam": lam})
            if kind == "motion" and nl == NOISE_LEVELS[1]:
                panels = showcase(physics, y, x, nl, tv, label)
            print(f"[{time.perf_counter() - t0:6.1f} s] {label} done", flush=True)
    print(write_tables(rows, args.out))
    plot_curves(all_curves, args.out)
    plot_images(panels, args.out)
    print(f"total {time.perf_counter() - t0:.0f} s; outputs in {args.out}")
    return rows


if __name__ == "__main__":
    main()
