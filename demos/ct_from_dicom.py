"""A real CT slice from a DICOM file: simulated low-dose scan, FBP, TV and graphLa+Psi, results as DICOM.

The slice is CT_small.dcm, the 128 x 128 CT image (0.66 mm pixels, Hounsfield units) that ships
inside the pydicom wheel: it is read from the installed package by ``recon.readers.read``, nothing
is downloaded. Its HU become attenuation per pixel (``recon.readers.hu_to_attenuation``, water
0.0193 / mm), scaled by the attenuation at +1000 HU so that tissue and bone span [0, ~1] (the
intensity scale graphLa's weight sigma is set for). A parallel-beam scan (180 views over
[0, 180) degrees, 182 bins) is simulated with Poisson photon counts, ``I0`` photons per ray
unattenuated (the dose); the counts become line integrals through the TIFF reader's normalisation
(``recon.readers.line_integrals``, floor half a photon, the clipped zero counts reported in the
table). TV and graphLa+Psi choose their weight by the discrepancy principle with a noise estimate
taken from the counts alone, ``noise_std = sqrt(mean(1 / counts))`` (the std of -log of a Poisson
count is about 1 / sqrt(count)); graphLa's graph comes from the FBP or the TV image (La+FBP,
La+TV). PSNR and SSIM are computed in HU against the slice, peak = its range.

Writes ``<out>/table.md``, ``table.csv``, ``figure.png`` and one derived DICOM series per method
and dose under ``<out>/dicom/`` (the sample's patient and study identifiers kept, the method, its
parameters and the package version recorded).

Usage:
    python -m demos.ct_from_dicom --quick   # one dose, I0 = 2000 photons, 300 iterations (under a minute)
    python -m demos.ct_from_dicom           # I0 = 1e4, 2000 and 500 photons, 1000 iterations (a few minutes)
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pydicom.data
import torch

import recon
from demos.common import parser, table_lines, timed, write_csv, write_markdown, write_sinogram_figure
from operators import ParallelBeamCT
from recon.metrics import psnr, ssim
from recon.readers import MU_WATER, attenuation_to_hu, hu_to_attenuation, line_integrals, read
from recon.writers import write

METHODS = ("FBP", "TV", "La+FBP", "La+TV")
#: the lines the runner (``python -m demos``) prints for this demo
SUMMARY = {
    "modality": "CT from DICOM (real slice)", "methods": METHODS, "metric": "psnr", "metric_label": "PSNR (dB, HU)",
    "setting": ("dose",), "paper": "-",
}  # fmt: skip
N_VIEWS = 180
SEED = 20260924
#: attenuation at +1000 HU, the unit of the images the methods see (tissue and bone in [0, ~1])
BONE_HU = 1000.0


def setting(quick: bool) -> dict:
    """Doses (photons per unattenuated ray) and iteration budgets of the quick and the full run."""
    if quick:
        return {"doses": (2000.0,), "iters": 300}
    return {"doses": (1e4, 2000.0, 500.0), "iters": 1000}


def simulate(physics: ParallelBeamCT, mu: torch.Tensor, dose: float, seed: int) -> tuple[torch.Tensor, float, int]:
    """Poisson counts of ``dose`` photons per ray through ``mu``; returns (line integrals, noise_std estimate, clipped)."""
    clean = physics.A(mu).double().numpy()
    counts = np.random.default_rng(seed).poisson(dose * np.exp(-clean)).astype(np.float64)
    li, n_clipped = line_integrals(counts, np.array(dose), min_transmission=0.5 / dose)
    noise_std = float(np.sqrt(np.mean(1.0 / np.maximum(counts, 0.5))))
    return torch.from_numpy(li), noise_std, n_clipped


def reconstruct_all(physics: ParallelBeamCT, y: torch.Tensor, noise_std: float, iters: int) -> dict:
    """FBP, TV, La+FBP and La+TV of one sinogram; returns {method: (x, info, seconds)}."""
    out = {"FBP": timed(lambda: recon.fbp(physics, y, filter="hann"))}
    out["TV"] = timed(lambda: recon.tv(physics, y, noise_std=noise_std, max_iter=iters, tol=2e-4))
    for psi in ("FBP", "TV"):
        image = out[psi][0][0]
        out[f"La+{psi}"] = timed(lambda image=image: recon.graphla(physics, y, psi=image, noise_std=noise_std, max_iter=iters))
    return {name: (x, info, seconds) for name, ((x, info), seconds) in out.items()}


def main(argv: list[str] | None = None) -> list[dict]:
    args = parser(__doc__, "ct_from_dicom", "one dose (I0 = 2000), 300 iterations: under a minute").parse_args(argv)
    cfg = setting(args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    vol = read(pydicom.data.get_testdata_file("CT_small.dcm", download=False))
    pixel = vol.spacing[2]
    scale = MU_WATER * pixel * (1 + BONE_HU / 1000)  # attenuation per pixel at +1000 HU
    truth_hu = torch.from_numpy(vol.data)[:, None]  # (1, 1, 128, 128)
    mu = hu_to_attenuation(truth_hu, pixel) / scale
    size = mu.shape[-1]
    physics = ParallelBeamCT(size, torch.arange(N_VIEWS, dtype=torch.float64) * (math.pi / N_VIEWS), backend="numba")
    peak = float(truth_hu.max() - truth_hu.min())
    print(f"{vol.path.name}: {vol.modality} {size}x{size}, {pixel:.3f} mm pixels, HU in [{truth_hu.min():.0f}, {truth_hu.max():.0f}]")
    rows, shown = [], {}
    t0 = time.perf_counter()
    for k, dose in enumerate(cfg["doses"]):
        # the counts see the physical line integrals (attenuation per pixel), the methods the scaled ones
        li, noise_std, n_clipped = simulate(physics, mu * scale, dose, SEED + k)
        y, noise_std = (li / scale).float(), noise_std / scale
        results = reconstruct_all(physics, y, noise_std, cfg["iters"])
        label = f"I0 = {dose:g}"
        for name, (x, info, seconds) in results.items():
            hu = attenuation_to_hu(x * scale, pixel)
            rows.append({
                "dose": label, "method": name, "psnr": float(psnr(hu, truth_hu, peak)[0]), "ssim": float(ssim(hu, truth_hu, peak)[0]),
                "rmse_hu": float((hu - truth_hu).pow(2).mean().sqrt()), "iterations": info.n_iter, "clipped": n_clipped,
                "seconds": seconds,
            })  # fmt: skip
            params = {**info.params, "I0": dose, "image_scale": scale}
            if name.startswith("La+"):
                params["psi"] = name[3:].lower()
            write(args.out / "dicom" / f"{name.replace('+', '_')}_I0_{dose:g}", hu, method=name, params=params, source=vol,
                  affine=vol.affine, wall_time_s=seconds, overwrite=True)  # fmt: skip
            print(f"{label:12s} {name:7s} PSNR {rows[-1]['psnr']:6.2f} dB  SSIM {rows[-1]['ssim']:.3f}  "
                  f"RMSE {rows[-1]['rmse_hu']:6.1f} HU  ({seconds:.1f} s)", flush=True)  # fmt: skip
        shown[label] = (y, {name: attenuation_to_hu(x * scale, pixel) for name, (x, _, _) in results.items()})
    print(write_tables(rows, cfg, args.out, n_clipped_note=any(r["clipped"] for r in rows)))
    # soft-tissue window [-400, 600] HU
    write_sinogram_figure(truth_hu, shown, args.out / "figure.png", truth_title="CT_small.dcm",
                          display={"cmap": "gray", "vmin": -400, "vmax": 600}, peak=float(truth_hu.max() - truth_hu.min()))  # fmt: skip
    print(f"wrote {args.out}/table.md, table.csv, figure.png and {len(rows)} DICOM series in {args.out / 'dicom'} "
          f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    return rows


def write_tables(rows: list[dict], cfg: dict, out: Path, n_clipped_note: bool) -> str:
    """CSV and Markdown tables; returns the Markdown."""
    write_csv(rows, out / "table.csv")
    lines = [
        "# CT from a real DICOM slice (pydicom's CT_small.dcm, 128x128, HU)",
        "",
        f"Parallel beam, {N_VIEWS} views over [0, 180) deg, Poisson counts (I0 photons per unattenuated ray); TV and "
        f"graphLa: discrepancy principle with the noise estimated from the counts, PDHG budget {cfg['iters']} iterations. "
        "PSNR / SSIM in HU, peak = the slice's range."
        + (" Some zero counts were clipped to half a photon (column 'clipped')." if n_clipped_note else ""),
        "",
    ]
    header = ("dose", "method", "PSNR (dB)", "SSIM", "RMSE (HU)", "iterations", "clipped", "time (s)")
    cells = [(r["dose"], r["method"], f"{r['psnr']:.2f}", f"{r['ssim']:.3f}", f"{r['rmse_hu']:.1f}", r["iterations"], r["clipped"],
              f"{r['seconds']:.1f}") for r in rows]  # fmt: skip
    return write_markdown(out / "table.md", lines + table_lines(header, cells))


if __name__ == "__main__":
    main()
