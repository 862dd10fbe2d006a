r"""The ``dncnn_natural`` recipe: :class:`denoisers.dncnn.DnCNN` (8 hidden layers of 32 channels) blind
Gaussian denoiser of grayscale natural-like images, the denoiser of the PnP-ADMM and RED baselines
of PnP-HVAE (:mod:`recon.methods.pnp_baselines`). Data: the ``hvae`` pool and split
(:func:`~recon.training.data.natural_patches`): ``patches`` clean
:data:`~recon.training.data.DNCNN_NATURAL_PATCH` x :data:`~recon.training.data.DNCNN_NATURAL_PATCH`
patches drawn once by :func:`~recon.training.data.hvae_patches` from
:func:`~recon.training.data.hvae_pool` of the training seeds ``0 .. n_train-1`` (generator seeded
with ``seed + 1``; the held-out images :data:`~recon.training.data.HVAE_HELD_OUT_IMAGES` never
appear). Each epoch crops one random ``crop x crop`` window per patch and adds noise as for
``ct_dncnn`` (``sigma ~ U[0, sigma_max]``, the same loop, loss and optimizer). Validation: PSNR of
the noisy and of the denoised non-overlapping 64x64 tiles of the COULE-like and texture images of
the validation seeds ``400000 .. 400000+n_val-1`` (the ``hvae`` validation tiles) at sigma 0.02,
0.05 and 0.1. Cost of the default run: 25 epochs of 4000 patches = 6250 Adam steps of 16 48x48
patches at about 0.13 s of CPU time each on one core (process time), i.e. about 14 min with
``--threads 1`` and about 8 min with ``--threads 2`` on two otherwise idle cores (estimated).

Example:
    $ python -m recon.training dncnn_natural
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from denoisers.dncnn import DnCNN
from recon.training.ct_dncnn import DNCNN_VAL_SIGMAS, evaluate_dncnn, seeded_dncnn
from recon.training.data import (
    DNCNN_NATURAL_PATCH,
    DNCNN_VAL_FIRST_SEED,
    HVAE_CROP,
    HVAE_VAL_FIRST_SEED,
    gaussian_noisy,
    hvae_pool,
    hvae_pool_card,
    hvae_tiles,
    natural_patches,
)
from recon.training.loop import TrainSpec, fit_denoiser, mse_training_card, sigma_validation_card

__all__ = ["SPEC", "train"]


def train(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """Train ``dncnn_natural`` as the module docstring says.

    Args:
        args: the parsed options of ``python -m recon.training dncnn_natural``, every default of :data:`SPEC` filled in.
        log: progress printer.

    Returns:
        ``(net, fields)``: the trained network and the card sections it adds (model, task, data, training,
        validation).
    """
    net, model_kwargs, c = seeded_dncnn(args, DNCNN_NATURAL_PATCH)
    if args.patches < 1:
        raise ValueError(f"--patches: expected >= 1 training patches, received {args.patches}")

    train_seeds = range(0, args.n_train)
    val_seeds = range(HVAE_VAL_FIRST_SEED, HVAE_VAL_FIRST_SEED + args.n_val)
    t0 = time.perf_counter()
    x_gt = natural_patches(train_seeds, args.patches, args.seed + 1)
    val_pool = hvae_pool(val_seeds, natural=())
    v_gt = hvae_tiles(val_pool["coule"] + val_pool["texture"], HVAE_CROP)
    side = DNCNN_NATURAL_PATCH
    log(f"data: {len(x_gt)} training patches of {side}x{side}, {len(v_gt)} validation tiles in {time.perf_counter() - t0:.1f} s")

    loss_epoch, history, p_val = fit_denoiser(
        net, args, log, x_gt, (c, c), gaussian_noisy, lambda s: evaluate_dncnn(net, v_gt, s), DNCNN_VAL_SIGMAS, False
    )
    card = {
        "model": {"class": "denoisers.dncnn.DnCNN", "kwargs": model_kwargs, "n_parameters": sum(p.numel() for p in net.parameters())},
        "task": "blind Gaussian denoising of grayscale natural-like images (the PnP-ADMM / RED denoiser of the PnP-HVAE demo): "
        "image + noise -> image",
        "data": {
            **hvae_pool_card(),
            "train_seeds": [train_seeds.start, train_seeds.stop - 1],
            "val_seeds": [val_seeds.start, val_seeds.stop - 1],
            "pipeline": f"recon.training.data.natural_patches(train_seeds, {args.patches}, seed={args.seed + 1})",
            "training_patches": f"one random {c}x{c} crop per {DNCNN_NATURAL_PATCH}x{DNCNN_NATURAL_PATCH} clean patch per epoch "
            "(seeded generator)",
            "noise": f"clean + sigma N(0, 1), sigma ~ U[0, {args.sigma_max:g}] per patch; the net does not get sigma",
        },
        "training": mse_training_card(args, loss_epoch, history, crop=c, patches=args.patches),
        "validation": sigma_validation_card(
            "validation tiles",
            val_seeds,
            f"recon.training.data.gaussian_noisy(clean, sigma, torch.Generator().manual_seed({DNCNN_VAL_FIRST_SEED}))",
            "recon.training.ct_dncnn.evaluate_dncnn(net, hvae_tiles(coule + texture images of hvae_pool(seeds, natural=()), "
            f"{HVAE_CROP}), sigma)",
            DNCNN_VAL_SIGMAS,
            p_val,
        ),
    }
    return net, card


SPEC = TrainSpec(
    description="DnCNN (8 hidden layers of 32 channels) blind Gaussian denoiser of grayscale natural-like images "
    "(the hvae patch pool, held-out images excluded), noise std in [0, 0.1]; the PnP-ADMM / RED denoiser of PnP-HVAE's demo",
    build=DnCNN,
    train=train,
    defaults={
        "epochs": 25,
        "seed": 0,
        "batch_size": 16,
        "lr": 1e-3,
        "n_train": 256,
        "n_val": 2,
        "crop": 48,
        "patches": 4000,
        "sigma_max": 0.1,
        "width": 32,
        "depth": 8,
    },
    val_first_seed=HVAE_VAL_FIRST_SEED,
)
