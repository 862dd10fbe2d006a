r"""PnP-HVAE: deblurring and inpainting with a hierarchical VAE prior, against PnP-ADMM, RED, TV and Wiener.

After Prost, Houdard, Almansa and Papadakis ("Inverse problem regularization with hierarchical
variational autoencoders", ICCV 2023), with the small HVAE trained here (``hvae``,
``python -m recon.training hvae``) in place of the paper's VDVAE.

Images: the four scikit-image pictures the HVAE (and the DnCNN) never saw in training,
:data:`recon.training.data.HVAE_HELD_OUT_IMAGES` (camera, astronaut, moon, coins), gray, in [0, 1]: the
central 128x128 crop of the 256x256 anti-aliased resize of the central square
(``deblur_sobolev.load_image(name, 256)``), i.e. a 2x downscale of the 512-pixel pictures (1.2x for
coins), inside the range of scales the HVAE was trained on (downscales by 1 to 2).

Settings (noise std in units of 1/255, white Gaussian, seeded with ``TEST_SEEDS[0]``):

* deblurring: the periodic convolutions (deepinv ``BlurFFT``) of ``deblur_sobolev.blur_operator``
  at 128x128 (Gaussian, std 1 pixel; motion, 9x9 ``MotionBlurGenerator`` kernel of seed 1), noise
  std 2.55, 7.65 and 12.75 (the paper's levels);
* inpainting: 50 % of the pixels missing (deepinv ``Inpainting``, Bernoulli mask of seed
  ``TEST_SEEDS[0]``), noise std 3 on the observed pixels.

Methods:

* PnP-HVAE (:func:`recon.pnp_hvae`) with the paper's settings: beta = 1, temperatures 0.8 -> 0.6
  linearly over the levels, 50 iterations for deblurring and 100 for inpainting, output the
  decoder mean;
* PnP-ADMM and RED (:mod:`recon.methods.pnp_baselines`) with the blind DnCNN ``dncnn_natural``
  (``python -m recon.training dncnn_natural``), 100 ADMM iterations;
* TV: :math:`\tfrac12\|Ax - y\|^2 + \alpha\,\mathrm{TV}(x)` (isotropic, periodic differences) by
  ADMM, 300 iterations from ``y``, with the exact Fourier x-step for blur and CG for inpainting
  (:func:`recon.sobolev_fit` with ``s = 0``, ``method="tv_admm"``: its L2 + TV). :func:`recon.tv`'s
  PDHG, whose default steps suit CT, is far from converged after 300 iterations here (12 dB on the
  Gaussian blur from zero, 9-11 dB on inpainting);
* Wiener deconvolution (:func:`recon.methods.pnp_baselines.wiener`; deblurring only);
* "observed": the data ``y`` itself (the blurred image, or the masked one with zeros), for reference.

The baselines' hyperparameters (PnP-ADMM's denoiser sigma, RED's lambda, TV's weight, Wiener's
signal power) come from ``--tune``, a hill climb on log-spaced grids (GRIDS) maximising the mean
PSNR on two tuning images that are not test images (scikit-image ``brick`` and a COULE-like phantom
of seed 5000, cropped the same way), with the same blur and mask operators and noise and mask seed
5000; the values it prints are stored in :data:`TUNED`. PnP-HVAE is not tuned (the paper's values).

Metrics: PSNR and SSIM (data range 1) of the outputs clipped to [0, 1], averaged over the images.
The PSNR-against-iteration curves come from each solver's history (``reference=`` the truth; the
PSNR of the whole batch; for reporting only, never for stopping). The measured numbers are in the
README and in ``table.md``.

Writes ``<out>/table.md``, ``table.csv``, ``images.png`` (first image, one row per setting, one
column per method) and ``curves.png`` (PSNR against iteration, one panel per setting).

Usage:
    python -m demos.deblur_pnp_hvae --quick   # camera and coins, 3 settings (about a minute on 2 cores)
    python -m demos.deblur_pnp_hvae           # 4 images, 7 settings (about 5 minutes)
    python -m demos.deblur_pnp_hvae --tune    # print the baselines' hyperparameters for TUNED
    python -m demos.deblur_pnp_hvae --quick --weights-dir DIR   # hvae / dncnn_natural weights from DIR
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from deepinv.physics import Inpainting, LinearPhysics

import recon
from demos.common import hill_climb, parser, save_figure, table_lines, timed, write_csv, write_markdown
from demos.deblur_sobolev import TUNE_SEED, blur_operator, load_image
from recon.training.data import HVAE_HELD_OUT_IMAGES
from denoisers.zoo import WEIGHTS_DIR, load
from recon.methods.pnp_baselines import pnp_admm, red, wiener
from recon.metrics import psnr, ssim
from recon.phantoms import TEST_SEEDS
from recon.result import ReconInfo

#: the lines the runner (``python -m demos``) prints for this demo
SUMMARY = {
    "modality": "deblurring / inpainting", "methods": ("PnP-HVAE", "PnP-ADMM (DnCNN)"), "metric": "psnr",
    "metric_label": "PSNR (dB)", "setting": ("setting",), "paper": "close to DPIR / GS-PnP [unverified]",
}  # fmt: skip

SIZE = 128
#: (operator, noise std x 255) of the full run; the quick run takes QUICK_SETTINGS
SETTINGS = tuple((kind, s) for kind in ("gaussian", "motion") for s in (2.55, 7.65, 12.75)) + (("inpainting", 3.0),)
QUICK_SETTINGS = (("gaussian", 7.65), ("motion", 7.65), ("inpainting", 3.0))
QUICK_IMAGES = ("camera", "coins")
TUNE_IMAGES = ("brick", "coule_tune")
MISSING = 0.5
METHODS = ("observed", "PnP-HVAE", "PnP-ADMM (DnCNN)", "RED (DnCNN)", "TV", "Wiener")
#: iterations: PnP-HVAE (deblurring, inpainting), the two ADMM baselines (PnP-ADMM, RED), TV's ADMM
ITERS = {"hvae": 50, "hvae_inpainting": 100, "admm": 100, "tv": 300}
#: the tuned hyperparameter of each baseline: its name in the table and its log-spaced grid
GRIDS = {
    "PnP-ADMM (DnCNN)": ("denoiser_sigma", tuple(float(10.0**e) for e in np.arange(-3.0, -0.4, 0.25))),
    "RED (DnCNN)": ("lam", tuple(float(10.0**e) for e in np.arange(0.0, 5.1, 0.5))),
    "TV": ("alpha", tuple(float(10.0**e) for e in np.arange(-5.0, -0.9, 0.5))),
    "Wiener": ("signal_power", tuple(float(10.0**e) for e in np.arange(-5.0, 0.1, 0.5))),
}
#: per (operator, noise std x 255): the baselines' hyperparameters printed by ``--tune`` on TUNE_IMAGES
TUNED = {
    ('gaussian', 2.55): {'PnP-ADMM (DnCNN)': 1.8e-02, 'RED (DnCNN)': 3.2e+03, 'TV': 1.0e-03, 'Wiener': 3.2e-03},
    ('gaussian', 7.65): {'PnP-ADMM (DnCNN)': 1.8e-02, 'RED (DnCNN)': 3.2e+03, 'TV': 1.0e-02, 'Wiener': 1.0e-02},
    ('gaussian', 12.75): {'PnP-ADMM (DnCNN)': 1.8e-02, 'RED (DnCNN)': 3.2e+03, 'TV': 1.0e-02, 'Wiener': 3.2e-02},
    ('motion', 2.55): {'PnP-ADMM (DnCNN)': 3.2e-02, 'RED (DnCNN)': 1.0e+04, 'TV': 3.2e-03, 'Wiener': 3.2e-03},
    ('motion', 7.65): {'PnP-ADMM (DnCNN)': 1.8e-02, 'RED (DnCNN)': 3.2e+03, 'TV': 1.0e-02, 'Wiener': 1.0e-02},
    ('motion', 12.75): {'PnP-ADMM (DnCNN)': 1.8e-02, 'RED (DnCNN)': 3.2e+03, 'TV': 3.2e-02, 'Wiener': 1.0e-02},
    ('inpainting', 3.0): {'PnP-ADMM (DnCNN)': 5.6e-02, 'RED (DnCNN)': 1.0e+00, 'TV': 3.2e-03},
}


def crop_image(name: str) -> torch.Tensor:
    """(1, 1, 128, 128): the central crop of ``deblur_sobolev.load_image(name, 256)`` (scikit-image name or "coule_tune")."""
    lo = SIZE // 2
    return load_image(name, 2 * SIZE)[..., lo : lo + SIZE, lo : lo + SIZE].contiguous()


def label(kind: str, sigma255: float) -> str:
    """The setting's name in the table, e.g. ``"motion 7.65"``."""
    return f"{kind} {sigma255:g}"


def problem(kind: str, sigma255: float, x: torch.Tensor, seed: int) -> tuple[LinearPhysics, torch.Tensor]:
    """Operator and noisy data of one setting: ``y = A x + e`` (blur), ``y = A (x + e)`` (inpainting: noise where observed)."""
    if kind == "inpainting":
        physics = Inpainting(img_size=(1, SIZE, SIZE), mask=1.0 - MISSING, rng=torch.Generator().manual_seed(seed))
    else:
        physics = blur_operator(kind, SIZE)
    noise = sigma255 / 255.0 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    return physics, physics.A(x + noise) if kind == "inpainting" else physics.A(x) + noise


def methods_of(kind: str) -> tuple[str, ...]:
    """The methods run on a setting: all of METHODS, Wiener only for the blurs."""
    return tuple(m for m in METHODS if not (m == "Wiener" and kind == "inpainting"))


def reconstruct(
    method: str, kind: str, physics: LinearPhysics, y: torch.Tensor, noise_std: float, param: float | None, models: dict,
    reference: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ReconInfo]:  # fmt: skip
    """One method on one setting's data; ``param`` is the baseline's tuned hyperparameter (GRIDS)."""
    common = {"progress": False, "reference": reference}
    if method == "observed":
        return y, ReconInfo()
    if method == "PnP-HVAE":
        n_iter = ITERS["hvae_inpainting" if kind == "inpainting" else "hvae"]
        return recon.pnp_hvae(physics, y, noise_std=noise_std, model=models["hvae"], max_iter=n_iter, **common)
    if method == "PnP-ADMM (DnCNN)":
        return pnp_admm(
            physics, y, prior=models["dncnn"], noise_std=noise_std, denoiser_sigma=param, max_iter=ITERS["admm"], **common
        )
    if method == "RED (DnCNN)":
        # the DnCNN is blind: denoiser_sigma (its strength) is not used
        return red(
            physics, y, prior=models["dncnn"], noise_std=noise_std, lam=param, denoiser_sigma=noise_std,
            max_iter=ITERS["admm"], **common,
        )  # fmt: skip
    if method == "TV":
        return recon.sobolev_fit(physics, y, s=0.0, method="tv_admm", lam=param, max_iter=ITERS["tv"], x0=y, **common)
    return wiener(physics, y, noise_std=noise_std, signal_power=param)


def score(x_hat: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image PSNR and SSIM of the estimate clipped to [0, 1]."""
    x_hat = x_hat.clamp(0.0, 1.0)
    return psnr(x_hat, x, 1.0), ssim(x_hat, x, 1.0)


def _mean_psnr(
    method: str, kind: str, physics: LinearPhysics, y: torch.Tensor, noise_std: float, models: dict, x: torch.Tensor,
    param: float,
) -> float:
    """Mean PSNR over the images of ``method`` at hyperparameter ``param`` (the tuning objective)."""
    return float(score(reconstruct(method, kind, physics, y, noise_std, param, models)[0], x)[0].mean())


def tune(settings: tuple, models: dict) -> dict:
    """The baselines' hyperparameters with the best mean PSNR on TUNE_IMAGES, per setting (never the test images)."""
    x = torch.cat([crop_image(name) for name in TUNE_IMAGES])
    best = {}
    for kind, s255 in settings:
        physics, y = problem(kind, s255, x, TUNE_SEED)
        best[(kind, s255)] = {}
        for method in (m for m in methods_of(kind) if m in GRIDS):
            objective = partial(_mean_psnr, method, kind, physics, y, s255 / 255, models, x)
            value, tried = hill_climb(GRIDS[method][1], objective)
            best[(kind, s255)][method] = value
            print(f"{label(kind, s255)} {method}: " + " ".join(f"{p:.1e}: {v:.2f}" for p, v in sorted(tried.items())), flush=True)
    return best


def run_setting(kind: str, s255: float, x: torch.Tensor, models: dict) -> tuple[list[dict], dict, dict]:
    """All methods on one setting: table rows, outputs (for the figure) and PSNR histories (for the curves)."""
    physics, y = problem(kind, s255, x, TEST_SEEDS[0])
    rows, outputs, curves = [], {}, {}
    for method in methods_of(kind):
        param = TUNED[(kind, s255)].get(method)
        (x_hat, info), seconds = timed(lambda: reconstruct(method, kind, physics, y, s255 / 255, param, models, reference=x))  # noqa: B023
        p, q = score(x_hat, x)
        outputs[method] = x_hat
        if info.history.psnr:
            curves[method] = info.history.psnr
        param_text = "" if param is None else f"{GRIDS[method][0]} = {param:.2e}"
        rows.append({
            "setting": label(kind, s255), "method": method, "psnr": float(p.mean()), "ssim": float(q.mean()),
            "iterations": info.n_iter, "seconds": round(seconds, 2), "params": param_text,
        })  # fmt: skip
    return rows, outputs, curves


def write_tables(rows: list[dict], out: Path, n_images: int) -> str:
    """CSV and Markdown tables: PSNR, SSIM, iterations, time and the tuned hyperparameter per setting and method; the Markdown."""
    write_csv(rows, out / "table.csv")
    header = ("setting", "method", "PSNR (dB)", "SSIM", "iterations", "time (s)", "hyperparameter")
    cells = [(r["setting"], r["method"], f"{r['psnr']:.2f}", f"{r['ssim']:.3f}", r["iterations"], f"{r['seconds']:.1f}",
              r["params"]) for r in rows]  # fmt: skip
    title = f"Mean over {n_images} images (128x128, outputs clipped to [0, 1]); noise std in units of 1/255."
    return write_markdown(out / "table.md", [title, "", *table_lines(header, cells)])


def plot_images(x: torch.Tensor, outputs: dict, out: Path) -> None:
    """First image: one row per setting, columns truth and every method (PSNR in the titles)."""
    cols = ("truth",) + METHODS
    fig, axes = plt.subplots(len(outputs), len(cols), figsize=(1.9 * len(cols), 2.1 * len(outputs)), squeeze=False)
    for row, (setting, images) in zip(axes, outputs.items()):
        for ax, name in zip(row, cols):
            ax.axis("off")
            img = x[:1] if name == "truth" else images.get(name)
            if img is None:
                continue
            title = name if name == "truth" else f"{name}\n{float(psnr(img[:1].clamp(0, 1), x[:1], 1.0)[0]):.2f} dB"
            ax.imshow(img[0, 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=7)
        row[0].text(-0.1, 0.5, setting, transform=row[0].transAxes, rotation=90, va="center", ha="right", fontsize=8)
    save_figure(fig, out / "images.png", dpi=100)


def plot_curves(curves: dict, out: Path) -> None:
    """PSNR of the batch against iteration for every iterative method, one panel per setting."""
    n = len(curves)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.0 * rows), squeeze=False)
    for ax, (setting, by_method) in zip(axes.flat, curves.items()):
        for method, values in by_method.items():
            ax.semilogx(np.arange(1, len(values) + 1), values, label=method)
        ax.set_title(setting, fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("PSNR of the batch (dB)")
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("PSNR against iteration (solver histories with the truth as reference; report only)")
    save_figure(fig, out / "curves.png", dpi=100)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = parser(__doc__, "deblur_pnp_hvae", "camera and coins, 3 settings (about a minute)",
                tune="print the baselines' hyperparameters on the tuning images and exit")  # fmt: skip
    ap.add_argument(
        "--weights-dir", dest="weights_dir", type=Path, default=WEIGHTS_DIR, help="folder of hvae and dncnn_natural .pt/.json"
    )
    args = ap.parse_args(argv)
    settings = QUICK_SETTINGS if args.quick else SETTINGS
    dncnn = load("dncnn_natural", weights_dir=args.weights_dir)
    # the blind DnCNN as a denoiser D(x, sigma) of the prior protocol (sigma unused)
    models = {"hvae": load("hvae", weights_dir=args.weights_dir), "dncnn": lambda x, sigma: dncnn(x)}
    if args.tune:
        best = tune(settings, models)
        print("TUNED = {")
        for key, values in best.items():
            print(f"    {key!r}: {{" + ", ".join(f"{m!r}: {v:.1e}" for m, v in values.items()) + "},")
        print("}")
        return []
    args.out.mkdir(parents=True, exist_ok=True)
    names = QUICK_IMAGES if args.quick else HVAE_HELD_OUT_IMAGES
    x = torch.cat([crop_image(name) for name in names])
    rows, outputs, curves = [], {}, {}
    t0 = time.perf_counter()
    for kind, s255 in settings:
        setting_rows, outputs[label(kind, s255)], curves[label(kind, s255)] = run_setting(kind, s255, x, models)
        rows += setting_rows
        best = max(setting_rows, key=lambda r: r["psnr"])
        elapsed = time.perf_counter() - t0
        print(f"[{elapsed:6.1f} s] {label(kind, s255)} done (best: {best['method']} {best['psnr']:.2f} dB)", flush=True)
    print(write_tables(rows, args.out, len(names)))
    plot_images(x, outputs, args.out)
    plot_curves(curves, args.out)
    print(f"total {time.perf_counter() - t0:.0f} s; outputs in {args.out}")
    return rows


if __name__ == "__main__":
    main()
