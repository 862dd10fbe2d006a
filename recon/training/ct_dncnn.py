r"""The ``ct_dncnn`` recipe: :class:`denoisers.dncnn.DnCNN` blind Gaussian denoiser of single frames of
dynamic objects (the RED denoiser of RED-PSM). Data: :func:`~recon.training.data.dynamic_frames`:
the 8 frames of ``dynamic_object(128, 8, seed, kind)`` (:func:`recon.phantoms.dynamic_object`) for
training seeds ``0 .. n_train-1`` and validation seeds ``300000 .. 300000+n_val-1``, of kind
:data:`~recon.training.data.DNCNN_KINDS` ``[seed % 4]`` (three COULE-like objects, then a cardiac
one; never Shepp-Logan, whose image is the same for every seed), and with ``--n-photos K`` (default 0, the
shipped weights) also the first K train400 photographs (``--data-dir``, :func:`~recon.training.data.photo_set`)
as frames (:func:`recon.phantoms.photo_phantom` at 128x128, each repeated ``DNCNN_FRAMES`` times so that a
photograph weighs as much as a dynamic object: 8 different random crops per epoch), objects unlike any ranked
family of the robustness grid (``benchmarks/robustness.py``: coule, shepp_logan, rock). Each epoch draws one random ``crop
x crop`` patch per training frame, a noise level ``sigma ~ U[0, sigma_max]`` per patch (0.1 by
default, i.e. down to 20 dB PSNR on [0, 1] frames, a blind range for the iterates RED denoises) and
noisy = clean + sigma * N(0, 1) (:func:`~recon.training.data.gaussian_noisy`); the loss is the MSE
to the clean patch, with Adam (lr 1e-3, cosine decay to 0). Validation: PSNR of the noisy and of the
denoised full 128x128 frames at sigma 0.02, 0.05 and 0.1.

Example:
    $ python -m recon.training ct_dncnn --threads 1
    $ python -m recon.training ct_dncnn --threads 1 --n-photos 400   # + 3200 photograph frames (issue 20)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from denoisers.dncnn import DnCNN
from recon.phantoms import photo_phantom
from recon.training.data import (
    DATASETS_DIR, DNCNN_FRAMES, DNCNN_KINDS, DNCNN_SIZE, DNCNN_VAL_FIRST_SEED, dynamic_frames, file_list_sha256,
    gaussian_noisy, photo_set,
)  # fmt: skip
from recon.training.loop import SHARED_DEFAULTS, TrainSpec, fit_denoiser, model_card, mse_training_card, psnr_before_after, sigma_validation_card

__all__ = ["SPEC", "evaluate_dncnn", "photo_frames", "seeded_dncnn", "train"]

DNCNN_VAL_SIGMAS = (0.02, 0.05, 0.1)


@torch.no_grad()
def evaluate_dncnn(
    net: torch.nn.Module, clean: torch.Tensor, sigma: float, noise_seed: int = DNCNN_VAL_FIRST_SEED, batch: int = 8
) -> tuple[float, float]:
    """Mean PSNR (dB, data range 1, no clipping) of the noisy and of the denoised frames.

    The ``ct_dncnn`` twin of :func:`recon.training.mimo_unet3d.evaluate_mimo_unet3d`: ``net`` is a
    :class:`denoisers.dncnn.DnCNN` (blind: it does not get ``sigma``), ``clean`` frames
    (B, 1, N, N) and the noisy frames :func:`~recon.training.data.gaussian_noisy` with the noise
    drawn from a generator seeded with ``noise_seed``; ``batch`` frames per forward pass.

    Returns:
        ``(psnr_noisy, psnr_net)``.
    """
    net.eval()
    noisy = gaussian_noisy(clean, sigma, torch.Generator().manual_seed(noise_seed))
    return psnr_before_after(net, noisy, clean, batch)


def seeded_dncnn(args: argparse.Namespace, max_crop: int) -> tuple[torch.nn.Module, dict, int]:
    """Seed torch, build the DnCNN of ``--width`` / ``--depth`` (and ``--scale`` where the recipe has it) and check
    ``--crop`` <= ``max_crop``."""
    torch.manual_seed(args.seed)
    model_kwargs = {"width": args.width, "depth": args.depth}
    if getattr(args, "scale", None) is not None:
        model_kwargs["scale"] = args.scale
    c = args.crop
    if not 1 <= c <= max_crop:
        raise ValueError(f"--crop: expected a patch side in [1, {max_crop}], received {c}")
    return DnCNN(**model_kwargs), model_kwargs, c


def photo_frames(n_photos: int, data_dir) -> tuple[torch.Tensor, list]:
    """The first ``n_photos`` train400 photographs as 128x128 frames, each ``DNCNN_FRAMES`` times, and their files.

    Returns:
        ``(frames, files)``: (n_photos * DNCNN_FRAMES, 1, 128, 128) float32 in [0, 1] (empty for 0) and the files.
    """
    if n_photos == 0:
        return torch.zeros(0, 1, DNCNN_SIZE, DNCNN_SIZE), []
    images, files = photo_set("train400", data_dir)
    if not 0 < n_photos <= len(images):
        raise ValueError(f"--n-photos: expected 0 to {len(images)} (the train400 images), received {n_photos}")
    frames = torch.cat([photo_phantom(img, DNCNN_SIZE) for img in images[:n_photos]])
    return frames.repeat_interleave(DNCNN_FRAMES, dim=0), files[:n_photos]


def train(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """Train ``ct_dncnn`` as the module docstring says (the :attr:`~recon.training.loop.TrainSpec.train` protocol)."""
    net, model_kwargs, c = seeded_dncnn(args, DNCNN_SIZE)

    train_seeds = range(0, args.n_train)
    val_seeds = range(DNCNN_VAL_FIRST_SEED, DNCNN_VAL_FIRST_SEED + args.n_val)
    t0 = time.perf_counter()
    if args.n_photos < 0:
        raise ValueError(f"--n-photos: expected 0 or more train400 photographs, received {args.n_photos}")
    photos, files = photo_frames(args.n_photos, args.data_dir)
    x_gt = torch.cat([dynamic_frames(train_seeds), photos])
    v_gt = dynamic_frames(val_seeds)
    log(
        f"data: {len(x_gt)} train ({len(photos)} of them photograph frames) + {len(v_gt)} val frames "
        f"({DNCNN_FRAMES} per object) in {time.perf_counter() - t0:.1f} s"
    )

    loss_epoch, history, p_val = fit_denoiser(
        net, args, log, x_gt, (c, c), gaussian_noisy, lambda s: evaluate_dncnn(net, v_gt, s), DNCNN_VAL_SIGMAS, False
    )
    card = {
        "model": model_card(net, model_kwargs),
        "task": "blind Gaussian denoising of single frames of dynamic objects (the RED denoiser of RED-PSM): frame + noise -> frame",
        "data": {
            "phantom": "recon.phantoms.dynamic_object(128, 8, seed, kind=DNCNN_KINDS[seed % 4]), "
            f"DNCNN_KINDS = {list(DNCNN_KINDS)}, every frame",
            "image_size": DNCNN_SIZE,
            "frames_per_object": DNCNN_FRAMES,
            "train_seeds": [train_seeds.start, train_seeds.stop - 1],
            "val_seeds": [val_seeds.start, val_seeds.stop - 1],
            "pipeline": "recon.training.data.dynamic_frames(seeds)",
            "photos": {
                "set": "train400", "n": len(files), "frames_each": DNCNN_FRAMES,
                "phantom": f"recon.phantoms.photo_phantom(image, {DNCNN_SIZE})",
                "file_list_sha256": file_list_sha256(files) if files else None,
            },
            "training_patches": f"one random {c}x{c} crop per training frame per epoch (seeded generator)",
            "noise": f"clean + sigma N(0, 1), sigma ~ U[0, {args.sigma_max:g}] per patch; the net does not get sigma",
        },
        "training": mse_training_card(args, loss_epoch, history, crop=c),
        "validation": sigma_validation_card(
            "frames",
            val_seeds,
            f"recon.training.data.gaussian_noisy(clean, sigma, torch.Generator().manual_seed({DNCNN_VAL_FIRST_SEED}))",
            "recon.training.ct_dncnn.evaluate_dncnn(net, dynamic_frames(seeds), sigma)",
            DNCNN_VAL_SIGMAS,
            p_val,
        ),
    }
    return net, card


SPEC = TrainSpec(
    description="DnCNN (6 hidden layers of 16 channels) blind Gaussian denoiser of 128x128 dynamic-object frames, noise std in [0, 0.1]",
    build=DnCNN,
    train=train,
    defaults={
        **SHARED_DEFAULTS,
        "epochs": 20,
        "batch_size": 16,
        "n_train": 1024,
        "n_val": 3,
        "crop": 64,
        "sigma_max": 0.1,
        "width": 16,
        "depth": 6,
        "n_photos": 0,
        "data_dir": DATASETS_DIR,
    },
    val_first_seed=DNCNN_VAL_FIRST_SEED,
)
