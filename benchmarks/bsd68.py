"""BSD68 Gaussian denoising: the shipped ``dncnn_natural`` against BM3D, same noisy images, same process.

Protocol of the published BSD68 table (``../shared/datasets/README.md``, the DnCNN paper): the clean
8-bit image plus ``N(0, sigma^2)`` noise in [0, 255] units, not clipped; PSNR with peak 255 on the
whole image, averaged over the images; sigma 15, 25, 50. The noise of image ``k`` at sigma ``s`` is
drawn from ``torch.Generator().manual_seed(1000 * s + k)``. Neither output is clipped.

* ``ours``: :func:`denoisers.zoo.load` ``("dncnn_natural")`` (blind: the same network at every
  sigma), applied to ``noisy / 255``;
* ``bm3d``: the ``bm3d`` package (``pip install bm3d``, in the ``bench`` extra), ``bm3d.bm3d(noisy /
  255, sigma_psd=sigma / 255)``, told the true sigma.

Printed per sigma: mean PSNR of each, the published BM3D and DnCNN-B figures, mean seconds per
image of each and the time ratio; targets (issue 19): ours >= published BM3D (31.07 / 28.57 /
25.62 dB), printed as PASS/MISS.

Usage::

    python benchmarks/bsd68.py                     # all 68 images (about 40 min on 2 cores, most of it BM3D)
    python benchmarks/bsd68.py --quick             # the first 12 images
    python benchmarks/bsd68.py --no-bm3d --weights-dir out/train   # a candidate network only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

import numpy as np  # noqa: E402
import torch  # noqa: E402

from denoisers.zoo import card, load  # noqa: E402
from operators.kernels import threads  # noqa: E402
from recon.metrics import psnr  # noqa: E402
from recon.training.data import DATASETS_DIR, photo_set  # noqa: E402

SIGMAS = (15, 25, 50)
PUBLISHED = {"BM3D": (31.07, 28.57, 25.62), "DnCNN-B": (31.61, 29.16, 26.23)}


def noisy_image(clean255: torch.Tensor, sigma: float, k: int) -> torch.Tensor:
    """``clean + sigma N(0, 1)`` in [0, 255] units, not clipped; noise seeded with ``1000 sigma + k``."""
    gen = torch.Generator().manual_seed(int(1000 * sigma) + k)
    return clean255 + sigma * torch.randn(clean255.shape, generator=gen, dtype=clean255.dtype)


def run(images: list[torch.Tensor], weights_dir: Path | None, with_bm3d: bool) -> dict:
    """Denoise every image at every sigma; returns per-sigma lists of PSNR (dB) and seconds per method."""
    net = load("dncnn_natural", weights_dir=weights_dir)
    bm3d = None
    if with_bm3d:
        import bm3d  # noqa: PLC0415  (optional: the bench extra)
    out = {s: {"ours": [], "ours_s": [], "bm3d": [], "bm3d_s": [], "noisy": []} for s in SIGMAS}
    for s in SIGMAS:
        for k, img in enumerate(images):
            clean = img.double() * 255.0
            noisy = noisy_image(clean, s, k)
            out[s]["noisy"].append(float(psnr(noisy, clean, 255.0)))
            t = time.perf_counter()
            with torch.no_grad():
                ours = net((noisy / 255.0).float()).double() * 255.0
            out[s]["ours_s"].append(time.perf_counter() - t)
            out[s]["ours"].append(float(psnr(ours, clean, 255.0)))
            if bm3d is not None:
                t = time.perf_counter()
                den = bm3d.bm3d(noisy[0, 0].numpy() / 255.0, sigma_psd=s / 255.0) * 255.0
                out[s]["bm3d_s"].append(time.perf_counter() - t)
                out[s]["bm3d"].append(float(psnr(torch.from_numpy(np.asarray(den))[None, None], clean, 255.0)))
        print(f"sigma {s}: done ({len(images)} images)", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the first 12 BSD68 images")
    parser.add_argument("--no-bm3d", dest="bm3d", action="store_false", help="skip BM3D (ours only)")
    parser.add_argument("--data-dir", type=Path, default=DATASETS_DIR, help="folder holding bsd68/")
    parser.add_argument("--weights-dir", type=Path, default=None, help="folder of dncnn_natural.pt/.json (default: shipped)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the per-image figures here")
    args = parser.parse_args(argv)
    saved = torch.get_num_threads()
    threads.set_num_threads(args.threads)
    try:
        images, files = photo_set("bsd68", args.data_dir)
        images = images[:12] if args.quick else images
        t0 = time.perf_counter()
        res = run(images, args.weights_dir, args.bm3d)
        wall = time.perf_counter() - t0
    finally:
        torch.set_num_threads(saved)
    info = card("dncnn_natural", args.weights_dir)
    print(f"\nBSD68, {len(images)} images, dncnn_natural sha256 {info['sha256'][:12]}, {args.threads} threads, "
          f"torch {torch.__version__}, wall {wall:.0f} s")  # fmt: skip
    print("| sigma | noisy | ours (dB) | bm3d here (dB) | BM3D published | DnCNN-B published | ours s/img | bm3d s/img | time ratio | target |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    misses = 0
    for i, s in enumerate(SIGMAS):
        r = res[s]
        ours, mean = float(np.mean(r["ours"])), lambda v: float(np.mean(v)) if v else float("nan")
        ok = ours >= PUBLISHED["BM3D"][i]
        misses += not ok
        ratio = mean(r["bm3d_s"]) / mean(r["ours_s"]) if r["bm3d_s"] else float("nan")
        print(f"| {s} | {mean(r['noisy']):.2f} | {ours:.2f} | {mean(r['bm3d']):.2f} | {PUBLISHED['BM3D'][i]:.2f} | "
              f"{PUBLISHED['DnCNN-B'][i]:.2f} | {mean(r['ours_s']):.3f} | {mean(r['bm3d_s']):.2f} | {ratio:.0f}x | "
              f"{'PASS' if ok else 'MISS'} (>= BM3D published) |")  # fmt: skip
    if args.json is not None:
        tmp = args.json.with_name(args.json.name + ".part")
        tmp.write_text(json.dumps({"files": [f.name for f in files[: len(images)]], "results": res}, indent=1))
        tmp.replace(args.json)
    return 1 if misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
