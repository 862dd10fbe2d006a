r"""The ``mimo_unet3d`` recipe: :class:`denoisers.unet3d.UNet3D` Gaussian denoiser of 3D magnitudes (the
deep prior of magnitude plug-and-play MIMO imaging). Data: magnitudes ``|mimo_scene(shape, seed)|``
(:func:`recon.phantoms.mimo_scene`, grid 25x25x49) of training seeds ``0 .. n_train-1`` and
validation seeds ``200000 .. 200000+n_val-1``. Each epoch draws one random ``crop_shape`` patch per
training volume, a noise level ``sigma ~ U[0, sigma_max]`` per patch and noisy =
:func:`~recon.training.data.magnitude_noisy` (the magnitude of the complex scene plus circular
complex Gaussian noise of standard deviation sigma, all from one seeded generator); the loss is the
MSE to the clean patch, with Adam (lr 1e-3, cosine decay to 0). Validation: PSNR of the noisy and
the denoised full 25x25x49 volumes at sigma 0.05 and 0.1.

Example:
    $ python -m recon.training mimo_unet3d --threads 1
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from denoisers.unet3d import UNet3D
from recon.phantoms import MIMO_SCENE_SHAPE
from recon.training.data import MIMO_VAL_FIRST_SEED, magnitude_noisy, mimo_magnitudes
from recon.training.loop import SHARED_DEFAULTS, TrainSpec, fit_denoiser, model_card, mse_training_card, psnr_before_after, sigma_validation_card

__all__ = ["SPEC", "evaluate_mimo_unet3d", "train"]

MIMO_VAL_SIGMAS = (0.05, 0.1)


@torch.no_grad()
def evaluate_mimo_unet3d(
    net: torch.nn.Module, clean: torch.Tensor, sigma: float, noise_seed: int = MIMO_VAL_FIRST_SEED, batch: int = 4
) -> tuple[float, float]:
    """Mean PSNR (dB, data range 1, no clipping) of the noisy and of the denoised magnitudes.

    The noisy volumes are :func:`~recon.training.data.magnitude_noisy` with the noise drawn from a
    generator seeded with ``noise_seed``; the network gets the true ``sigma``.

    Args:
        net: a :class:`denoisers.unet3d.UNet3D` (put in eval mode here).
        clean: clean magnitudes (B, 1, Nx, Ny, Nz).
        sigma: noise standard deviation.
        noise_seed: seed of the noise generator.
        batch: volumes per forward pass.

    Returns:
        ``(psnr_noisy, psnr_net)``.
    """
    net.eval()
    noisy = magnitude_noisy(clean, sigma, torch.Generator().manual_seed(noise_seed))
    return psnr_before_after(lambda chunk: net(chunk, sigma), noisy, clean, batch)


def train(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """Train ``mimo_unet3d`` as the module docstring says (the :attr:`~recon.training.loop.TrainSpec.train` protocol)."""
    shape = MIMO_SCENE_SHAPE
    torch.manual_seed(args.seed)
    model_kwargs = {"widths": list(args.widths)}
    net = UNet3D(**model_kwargs)
    crop = tuple(args.crop_shape)
    if any(c < net.stride or c > n or c % net.stride for c, n in zip(crop, shape)):
        raise ValueError(f"--crop-shape: expected 3 multiples of {net.stride} no larger than {shape}, received {crop}")

    train_seeds = range(0, args.n_train)
    val_seeds = range(MIMO_VAL_FIRST_SEED, MIMO_VAL_FIRST_SEED + args.n_val)
    t0 = time.perf_counter()
    x_gt = mimo_magnitudes(train_seeds, shape)
    v_gt = mimo_magnitudes(val_seeds, shape)
    log(f"data: {len(train_seeds)} train + {len(val_seeds)} val scenes of {shape} in {time.perf_counter() - t0:.1f} s")

    loss_epoch, history, p_val = fit_denoiser(
        net, args, log, x_gt, crop, magnitude_noisy, lambda s: evaluate_mimo_unet3d(net, v_gt, s), MIMO_VAL_SIGMAS, True
    )
    card = {
        "model": model_card(net, model_kwargs),
        "task": "denoising of Rician-noisy 3D magnitudes (deep prior of magnitude PnP MIMO imaging): (|x| + noise, sigma) -> |x|",
        "data": {
            "phantom": "|recon.phantoms.mimo_scene(shape, seed)|",
            "scene_shape": list(shape),
            "train_seeds": [train_seeds.start, train_seeds.stop - 1],
            "val_seeds": [val_seeds.start, val_seeds.stop - 1],
            "pipeline": "recon.training.data.mimo_magnitudes(seeds, shape)",
            "training_patches": f"one random {'x'.join(map(str, crop))} crop per training volume per epoch (seeded generator)",
            "noise": f"|clean + sigma (n1 + j n2) / sqrt 2| (Rician), sigma ~ U[0, {args.sigma_max:g}] per patch; the net gets sigma",
        },
        "training": mse_training_card(args, loss_epoch, history, crop_shape=list(crop)),
        "validation": sigma_validation_card(
            "volumes",
            val_seeds,
            f"recon.training.data.magnitude_noisy(clean, sigma, torch.Generator().manual_seed({MIMO_VAL_FIRST_SEED}))",
            "recon.training.mimo_unet3d.evaluate_mimo_unet3d(net, mimo_magnitudes(seeds), sigma)",
            MIMO_VAL_SIGMAS,
            p_val,
        ),
    }
    return net, card


SPEC = TrainSpec(
    description="3D U-Net Gaussian denoiser of MIMO scene magnitudes (25x25x49), noise std in [0, 0.2]",
    build=UNet3D,
    train=train,
    defaults={
        **SHARED_DEFAULTS,
        "epochs": 24,
        "batch_size": 16,
        "n_train": 2048,
        "n_val": 16,
        "crop_shape": (16, 16, 32),
        "sigma_max": 0.2,
        "widths": (16, 32, 64),
    },
    val_first_seed=MIMO_VAL_FIRST_SEED,
)
