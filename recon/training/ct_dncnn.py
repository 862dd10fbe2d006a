r"""The ``ct_dncnn`` recipe: :class:`denoisers.dncnn.DnCNN` blind Gaussian denoiser of single frames of
dynamic objects (the RED denoiser of RED-PSM). Data: :func:`~recon.training.data.dynamic_frames`:
the 8 frames of ``dynamic_object(128, 8, seed, kind)`` (:func:`recon.phantoms.dynamic_object`) for
training seeds ``0 .. n_train-1`` and validation seeds ``300000 .. 300000+n_val-1``, of kind
:data:`~recon.training.data.DNCNN_KINDS` ``[seed % 4]`` (three COULE-like objects, then a cardiac
one; never Shepp-Logan, whose image is the same for every seed). Each epoch draws one random ``crop
x crop`` patch per training frame, a noise level ``sigma ~ U[0, sigma_max]`` per patch (0.1 by
default, i.e. down to 20 dB PSNR on [0, 1] frames, a blind range for the iterates RED denoises) and
noisy = clean + sigma * N(0, 1) (:func:`~recon.training.data.gaussian_noisy`); the loss is the MSE
to the clean patch, with Adam (lr 1e-3, cosine decay to 0). Validation: PSNR of the noisy and of the
denoised full 128x128 frames at sigma 0.02, 0.05 and 0.1.

Example:
    $ python -m recon.training ct_dncnn --threads 1
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from denoisers.dncnn import DnCNN
from recon.training.data import DNCNN_FRAMES, DNCNN_KINDS, DNCNN_SIZE, DNCNN_VAL_FIRST_SEED, dynamic_frames, gaussian_noisy
from recon.training.loop import SHARED_DEFAULTS, TrainSpec, fit_denoiser, model_card, mse_training_card, psnr_before_after, sigma_validation_card

__all__ = ["SPEC", "evaluate_dncnn", "seeded_dncnn", "train"]

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


def train(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """Train ``ct_dncnn`` as the module docstring says (the :attr:`~recon.training.loop.TrainSpec.train` protocol)."""
    net, model_kwargs, c = seeded_dncnn(args, DNCNN_SIZE)

    train_seeds = range(0, args.n_train)
    val_seeds = range(DNCNN_VAL_FIRST_SEED, DNCNN_VAL_FIRST_SEED + args.n_val)
    t0 = time.perf_counter()
    x_gt = dynamic_frames(train_seeds)
    v_gt = dynamic_frames(val_seeds)
    log(f"data: {len(x_gt)} train + {len(v_gt)} val frames ({DNCNN_FRAMES} per object) in {time.perf_counter() - t0:.1f} s")

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
    },
    val_first_seed=DNCNN_VAL_FIRST_SEED,
)
