r"""The ``ct_unet`` recipe: a noise-blind :class:`denoisers.unet.CTUNet` that post-processes
parallel-beam FBP images (graphLa+Psi "Net") at any relative noise level in 0.5-5 %.

Objects: COULE-like images (:func:`recon.phantoms.coule_like`, seeds ``0 .. n_train-1``) and the
first ``n_photos`` train400 photographs as attenuation maps (:func:`recon.phantoms.photo_phantom`:
centre square, resized to 256, scaled to [0, 1]). Neither the rock family nor BSD68, on which the
robustness grid ranks graphLa (``benchmarks/robustness.py``), is ever seen.

Geometry: every object at each side of ``sizes`` (default 256 x 256 only, with 362 detector bins;
128 x 128 has 182), 120 views over [0, 179] degrees (:func:`operators.ct.ct_geometry`), ram-lak FBP
input -> ground-truth target. The FBP is linear,
so the input of object :math:`x_i` at relative noise :math:`\nu` is

.. math::
    \mathrm{FBP}(A x_i) + \nu \frac{\|A x_i\|}{\|w_k\|} \mathrm{FBP}(w_k),

with :math:`w_k` one of ``n_noise`` white sinograms (:func:`recon.training.data.ct_noise_bank`):
exactly :func:`recon.noise.add_relative_noise`'s model (:math:`\|e\| = \nu \|A x\|`). Every epoch draws,
per object, a noise level log-uniform on ``[noise_min, noise_max]``, a noise draw ``k``, one random
``crop x crop`` window (the same for image and noise) and one of the 8 flips / rotations; the loss
is L1 and the optimiser Adam with cosine decay to 0. The net never receives the noise level.

Validation: COULE-like seeds ``100000 .. 100000+n_val-1`` (:func:`recon.training.data.ct_pairs`) at
relative noise 1, 2 and 4 %, on the full 256 x 256 images, after every epoch; a checkpoint every
few minutes (``--resume`` continues the run bit for bit).

Example:
    $ python -m recon.training ct_unet --threads 1
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch

from denoisers.unet import CTUNet
from operators.ct import CT_LAST_ANGLE_DEG, CT_N_DETECTORS, CT_N_VIEWS
from recon.phantoms import coule_like, photo_phantom
from recon.training.data import CT_VAL_FIRST_SEED, DATASETS_DIR, ct_clean_fbps, ct_noise_bank, ct_pairs, file_list_sha256, photo_set
from recon.training.loop import (
    SHARED_DEFAULTS, Checkpoint, TrainSpec, adam_cosine, dihedral, model_card, psnr_before_after, run_epoch,
)  # fmt: skip

__all__ = ["SPEC", "VAL_NOISE_LEVELS", "evaluate_ct_unet", "train"]

#: relative noise levels of the validation (and of the card's figures)
VAL_NOISE_LEVELS = (0.01, 0.02, 0.04)
SIZE = 256


@torch.no_grad()
def evaluate_ct_unet(net: torch.nn.Module, x_fbp: torch.Tensor, x_true: torch.Tensor, batch: int = 4) -> tuple[float, float]:
    """Mean PSNR (dB, data range 1, no clipping) of FBP and of ``net(FBP)`` against the truth."""
    net.eval()
    return psnr_before_after(net, x_fbp, x_true, batch)


def validate(net: torch.nn.Module, val: dict[float, tuple[torch.Tensor, torch.Tensor]]) -> dict[float, tuple[float, float]]:
    """``{noise level: (psnr FBP, psnr net)}`` over the validation pairs of each level."""
    return {nl: evaluate_ct_unet(net, *pairs) for nl, pairs in val.items()}


def _photos(args: argparse.Namespace) -> tuple[list[torch.Tensor], list]:
    """The first ``n_photos`` train400 photographs and their files (none for 0), read once for every size."""
    if not args.n_photos:
        return [], []
    images, files = photo_set("train400", args.data_dir)
    if args.n_photos > len(images):
        raise ValueError(f"--n-photos: expected at most {len(images)} (the train400 images), received {args.n_photos}")
    return images[: args.n_photos], files[: args.n_photos]


def _objects(args: argparse.Namespace, size: int, photos: list[torch.Tensor]) -> torch.Tensor:
    """The training objects at side ``size``: (n_train + len(photos), 1, size, size)."""
    coule = [coule_like(size, s) for s in range(args.n_train)]
    return torch.cat(coule + [photo_phantom(img, size) for img in photos])


def train(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """Train ``ct_unet`` as the module docstring says (the :attr:`~recon.training.loop.TrainSpec.train` protocol)."""
    if not 0.0 < args.noise_min <= args.noise_max:
        raise ValueError(f"--noise-min/--noise-max: expected 0 < min <= max, received {args.noise_min}, {args.noise_max}")
    t0 = time.perf_counter()
    sizes = tuple(args.sizes)
    if not sizes or any(sz not in CT_N_DETECTORS or sz < args.crop for sz in sizes):
        raise ValueError(f"--sizes: expected image sides among {sorted(CT_N_DETECTORS)}, each >= --crop, received {args.sizes}")
    photos, files = _photos(args)
    truth, fbp_clean, y_norms, banks, counts = [], [], [], [], []
    for k, size in enumerate(sizes):
        objects = _objects(args, size, photos)
        fbps, norms = ct_clean_fbps(objects)
        truth += list(objects)
        fbp_clean += list(fbps)
        y_norms.append(norms)
        banks.append(ct_noise_bank(args.n_noise, size, seed=args.seed + k))
        counts.append(len(objects))
    y_norm = torch.cat(y_norms)
    size_of = [k for k, count in enumerate(counts) for _ in range(count)]
    val_seeds = range(CT_VAL_FIRST_SEED, CT_VAL_FIRST_SEED + args.n_val)
    val = {nl: ct_pairs(val_seeds, SIZE, noise_level=nl) for nl in VAL_NOISE_LEVELS}
    log(f"data: {args.n_train} COULE-like + {len(files)} train400 objects at sides {sizes}, {args.n_noise} noise draws per "
        f"side, {len(val_seeds)} val objects x {len(VAL_NOISE_LEVELS)} levels at {SIZE}x{SIZE} in {time.perf_counter() - t0:.1f} s")  # fmt: skip

    torch.manual_seed(args.seed)
    model_kwargs = {"width": args.width, "levels": args.levels}
    net = CTUNet(**model_kwargs)
    if args.crop % net.stride:
        raise ValueError(f"--crop: expected a multiple of {net.stride}, received {args.crop}")
    n, c = len(truth), args.crop
    opt, sched = adam_cosine(net, args, n)
    gen = torch.Generator().manual_seed(args.seed)
    ckpt = Checkpoint(args.checkpoint, net, opt, sched, gen, args)
    history = ckpt.load() if args.resume else []
    if history:
        log(f"resumed from {ckpt.path} after epoch {len(history)}")
    log_lo, log_hi = math.log(args.noise_min), math.log(args.noise_max)
    loss_epoch = history[-1]["train_l1"] if history else float("nan")
    for epoch in range(len(history) + 1, args.epochs + 1):
        te = time.perf_counter()
        net.train()
        perm = torch.randperm(n, generator=gen)
        # corners drawn size group by size group (objects are stored grouped by size): one size draws as before
        tops, lefts = (torch.cat([torch.randint(0, sz - c + 1, (m,), generator=gen) for sz, m in zip(sizes, counts)]) for _ in "tl")
        levels = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(n, generator=gen, dtype=torch.float64))
        draws = torch.randint(0, args.n_noise, (n,), generator=gen)
        moves = torch.randint(0, 8, (n,), generator=gen)

        def batches(perm=perm, tops=tops, lefts=lefts, levels=levels, draws=draws, moves=moves):
            for k in range(0, n, args.batch_size):
                xs, gs = [], []
                for i in perm[k : k + args.batch_size].tolist():
                    window = (slice(None), slice(tops[i], tops[i] + c), slice(lefts[i], lefts[i] + c))
                    d = int(draws[i])
                    noise_fbp, w_norm = banks[size_of[i]]
                    scale = float(levels[i] * y_norm[i] / w_norm[d])
                    xs.append(dihedral(fbp_clean[i][window] + scale * noise_fbp[d][window], int(moves[i])))
                    gs.append(dihedral(truth[i][window], int(moves[i])))
                yield (torch.stack(xs),), torch.stack(gs)

        loss_epoch = run_epoch(net, opt, sched, batches(), lambda out, gb: (out - gb).abs().mean())
        scores = validate(net, val)
        seconds = time.perf_counter() - te
        history.append({"epoch": epoch, "train_l1": loss_epoch, "val_psnr_net": [p for _, p in scores.values()], "seconds": round(seconds, 1)})
        text = ", ".join(f"{100 * nl:g} %: {p:.2f} dB (FBP {q:.2f})" for nl, (q, p) in scores.items())
        log(f"epoch {epoch:3d}/{args.epochs}  train L1 {loss_epoch:.5f}  val PSNR net {text}  lr {sched.get_last_lr()[0]:.2e}  {seconds:.1f} s")
        ckpt.save(history, final=epoch == args.epochs)

    net.eval()
    scores = validate(net, val)
    scores_128 = validate(net, {nl: ct_pairs(val_seeds, 128, noise_level=nl) for nl in VAL_NOISE_LEVELS})
    log("final: " + "; ".join(f"{100 * nl:g} %: FBP {q:.2f} dB, net {p:.2f} dB" for nl, (q, p) in scores.items()))
    card = {
        "model": model_card(net, model_kwargs),
        "task": "noise-blind post-processing of parallel-beam CT FBP images (graphLa+Psi 'Net'), relative noise "
        f"{100 * args.noise_min:g}-{100 * args.noise_max:g} %: FBP image -> clean image",
        "data": {
            "objects": f"recon.phantoms.coule_like(size, seed) for the train seeds, and recon.phantoms.photo_phantom(image, size) "
            f"of the first {len(files)} train400 images (file names in sorted order), at every size of training_sizes",
            "train_seeds": [0, args.n_train - 1],
            "photos": {"set": "train400", "n": len(files), "file_list_sha256": file_list_sha256(files) if files else None},
            "image_size": SIZE,
            "training_sizes": list(sizes),
            "geometry": f"ParallelBeamCT, {CT_N_VIEWS} views over [0, {CT_LAST_ANGLE_DEG:g}] deg (torch.linspace), "
            + ", ".join(f"{CT_N_DETECTORS[sz]} detector bins at {sz}x{sz}" for sz in sizes) + ", numba backend",
            "noise": f"relative Gaussian, ||e|| = level ||A x||, level log-uniform on [{args.noise_min:g}, {args.noise_max:g}] "
            f"per object and epoch; FBP(A x) + level ||A x|| / ||w_k|| FBP(w_k) with {args.n_noise} white draws w_k "
            "per size (recon.training.data.ct_noise_bank, seed = --seed + index of the size)",
            "input": "ParallelBeamCT.fbp(y, filter='ram-lak'), float32",
            "target": "ground-truth image",
            "training_patches": f"one random {c}x{c} window and one of 8 flips / rotations per object per epoch (seeded generator)",
            "val_seeds": [val_seeds.start, val_seeds.stop - 1],
            "pipeline": "recon.training.data.ct_clean_fbps, ct_noise_bank; validation recon.training.data.ct_pairs(seeds, size, noise_level)",
        },
        "training": {
            "loss": "L1 (mean absolute error)",
            "optimizer": "Adam",
            "lr": args.lr,
            "lr_schedule": "cosine annealing to 0 over all steps (per step)",
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "crop": c,
            "final_train_l1": loss_epoch,
            "history": history,
        },
        "validation": {
            "metric": "mean PSNR in dB over the held-out COULE-like images, data_range 1, output not clipped (recon.metrics.psnr)",
            "seeds": [val_seeds.start, val_seeds.stop - 1],
            "noise_levels": list(VAL_NOISE_LEVELS),
            "psnr_fbp_256": [q for q, _ in scores.values()],
            "psnr_net_256": [p for _, p in scores.values()],
            "psnr_fbp_128": [q for q, _ in scores_128.values()],
            "psnr_net_128": [p for _, p in scores_128.values()],
            "note_128": f"same seeds at 128x128 with {CT_N_DETECTORS[128]} bins: generalisation of the net trained at 256",
        },
    }
    return net, card


SPEC = TrainSpec(
    description="noise-blind residual U-Net post-processing of 256x256 parallel-beam FBP images, 0.5-5 % noise",
    build=CTUNet,
    train=train,
    defaults={
        **SHARED_DEFAULTS,
        "epochs": 40,
        "batch_size": 8,
        "n_train": 400,
        "n_photos": 400,
        "n_noise": 64,
        "noise_min": 0.005,
        "noise_max": 0.05,
        "n_val": 8,
        "sizes": (256,),
        "crop": 96,
        "width": 16,
        "levels": 4,
        "data_dir": DATASETS_DIR,
    },
    val_first_seed=CT_VAL_FIRST_SEED,
)
