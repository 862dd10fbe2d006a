"""RED-PSM on dynamic CT: one parallel-beam view per frame of a deforming object.

Setting of Iskender, Klasky & Bresler (ICCV 2023 / TCI 2024): a 128x128 object warped over time
by a smooth piecewise-affine deformation (``recon.phantoms.dynamic_object``, COULE-like, test seed
``TEST_SEEDS[0]``), P frames, ONE projection of 182 bins per frame, view angles in bit-reversal
order over [0, pi), Gaussian noise of std 5e-3 * max(sinogram). Methods:

* ``window``: per-frame FBP (Hann) of a sliding window of neighbouring views (``recon.sliding_window_fbp``);
* ``PSM``: the spline partially separable model without a prior (lambda = 0);
* ``PSM-TV``: PSM with a per-frame TV prior in the same ADMM;
* ``RED-PSM``: PSM with the RED prior of the shipped DnCNN ``ct_dncnn``.

All three PSM variants start from the truncated SVD of the sliding-window frames and run the
same number of outer iterations (no selection of iterates against the truth). Metrics: PSNR
(peak = max - min of the truth), SSIM (mean over frames), MAE, HFEN. The paper's ranking:
RED-PSM > PSM-TV > PSM > sliding window.

Writes ``<out>/table.md``, ``table.csv``, ``frames.png`` (selected frames) and ``xt_profile.png``
(the middle image row over time).

Usage:
    python -m demos.ct_dynamic_red_psm                # 128x128, P = 128, 201 outer iterations (about 10 min on 2 cores)
    python -m demos.ct_dynamic_red_psm --frames 64    # 128x128, P = 64
    python -m demos.ct_dynamic_red_psm --quick        # 64x64, P = 32 (under 3 min)
    python -m demos.ct_dynamic_red_psm --tune         # the sweeps behind the weights (tuning seed 5000)
"""

from __future__ import annotations

import torch

import recon
from demos.common import frame_metrics, frames_of, parser, run_frame_methods, write_frame_report
from operators import DynamicCT
from recon.methods.red_psm import BETA, model_defaults
from recon.methods.red_psm import LAM as LAM_RED
from recon.phantoms import TEST_SEEDS, dynamic_object

#: the lines the runner (``python -m demos``) prints for this demo
SUMMARY = {
    "modality": "dynamic CT, one view per frame", "methods": ("RED-PSM", "PSM-TV"), "metric": "psnr",
    "metric_label": "PSNR (dB)", "setting": (), "paper": "RED-PSM > PSM-TV > PSM; ~1-3 dB over TD-DIP [unverified]",
}  # fmt: skip

#: PSM-TV weight in normalised units (frames of order one), from the ``--tune`` sweeps on seed TUNE_SEED
#: at 64x64, P = 32 (PSNR there: PSM-TV 22.0 dB at 0.03, RED-PSM 24.9 dB at beta 3 for lambda 1-10,
#: whence red_psm's defaults LAM = BETA = 3, used here)
LAM_TV = 0.03
NOISE = 5e-3
TUNE_SEED = 5000  # below TEST_SEEDS and outside the denoiser's training seeds (0-1023)


def config(quick: bool, frames: int | None) -> dict:
    """Sizes of the quick and the full run."""
    if quick:
        return {"size": 64, "frames": frames or 32, "n_iter": 100}
    return {"size": 128, "frames": frames or 128, "n_iter": 201}


def scan(cfg: dict, seed: int) -> tuple[DynamicCT, torch.Tensor, torch.Tensor]:
    """``(physics, noisy sinogram, truth)`` of the dynamic object of ``seed``."""
    truth = dynamic_object(cfg["size"], cfg["frames"], seed=seed)
    physics = DynamicCT(cfg["size"], n_frames=cfg["frames"])
    clean = physics.A(truth)
    gen = torch.Generator().manual_seed(seed)
    return physics, clean + NOISE * float(clean.max()) * torch.randn(clean.shape, generator=gen), truth


def runs(physics: DynamicCT, y: torch.Tensor, cfg: dict) -> dict:
    """method -> a call returning ``(frames, info)``."""
    return {
        "window": lambda: recon.sliding_window_fbp(physics, y),
        "PSM": lambda: recon.psm(physics, y, beta=BETA, n_iter=cfg["n_iter"]),
        "PSM-TV": lambda: recon.psm(physics, y, prior="tv", lam=LAM_TV, beta=BETA, n_iter=cfg["n_iter"]),
        "RED-PSM": lambda: recon.red_psm(physics, y, prior="ct_dncnn", lam=LAM_RED, beta=BETA, n_iter=cfg["n_iter"]),
    }


def sweep(physics, y: torch.Tensor, truth: torch.Tensor, beta: float, tv_lams, red_lams, n_iter: int) -> None:
    """Print the PSNR of PSM, PSM-TV and RED-PSM over lambda (for ``--tune`` on a tuning seed; picks nothing).

    Shared with ``demos/mri_dynamic_red_psm.py``.
    """

    def report(name: str, x: torch.Tensor) -> None:
        print(f"{name}: {frame_metrics(frames_of(x), truth)['psnr']:.2f} dB", flush=True)

    report(f"PSM     beta {beta:g}", recon.psm(physics, y, beta=beta, n_iter=n_iter)[0])
    for lam in tv_lams:
        report(f"PSM-TV  beta {beta:g} lam {lam:g}", recon.psm(physics, y, prior="tv", lam=lam, beta=beta, n_iter=n_iter)[0])
    for lam in red_lams:
        report(f"RED-PSM beta {beta:g} lam {lam:g}", recon.red_psm(physics, y, lam=lam, beta=beta, n_iter=n_iter)[0])


def tune(cfg: dict) -> None:
    """The sweeps behind LAM_TV, LAM_RED and BETA, on the tuning seed (prints; picks nothing itself)."""
    physics, y, truth = scan(cfg, TUNE_SEED)
    for beta in (0.3, 3.0):
        sweep(physics, y, truth, beta, (0.003, 0.03, 0.3), (0.1, 1.0, 10.0), cfg["n_iter"])


def main(argv: list[str] | None = None) -> list[dict]:
    ap = parser(__doc__, "ct_dynamic_red_psm", "64x64, P = 32 (under 3 minutes)",
                tune="print the weight sweeps on the tuning seed and exit")  # fmt: skip
    ap.add_argument("--frames", type=int, choices=(32, 64, 128, 256), help="number of frames P (default 128; quick 32)")
    args = ap.parse_args(argv)
    cfg = config(args.quick, args.frames)
    if args.tune:
        tune(cfg)
        return []
    args.out.mkdir(parents=True, exist_ok=True)
    physics, y, truth = scan(cfg, TEST_SEEDS[0])
    print(f"dynamic CT {cfg['size']}x{cfg['size']}, P = {cfg['frames']}, one view per frame", flush=True)
    rows, frames = run_frame_methods(runs(physics, y, cfg), truth)
    rank, latent, _ = model_defaults(cfg["frames"])
    note = (
        f"{cfg['size']}x{cfg['size']} COULE-like object deformed over time (seed {TEST_SEEDS[0]}), P = {cfg['frames']} "
        f"frames, one parallel view per frame ({physics.n_detectors} bins, bit-reversal angles), noise std "
        f"{NOISE:g} * max(sinogram). PSM variants: rank {rank}, {latent} latent samples, beta = {BETA:g}, "
        f"{cfg['n_iter']} outer iterations of 25 Adam steps; PSM-TV lambda = {LAM_TV:g}, RED-PSM lambda = {LAM_RED:g} "
        "(normalised units). Window: FBP of 32 neighbouring views."
    )
    write_frame_report(rows, frames, truth, f"RED-PSM, dynamic CT ({'quick' if args.quick else 'full'} setting)", note, args.out)
    return rows


if __name__ == "__main__":
    main()
