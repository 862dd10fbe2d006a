r"""The ``dncnn_natural`` recipe: a blind Gaussian denoiser of grayscale photographs, the denoiser of
the PnP-ADMM and RED baselines of PnP-HVAE (:mod:`recon.methods.pnp_baselines`).

Model: :class:`denoisers.dncnn.DnCNN` with ``scale=2`` (the residual branch works on 2x2
pixel-unshuffled images, as FFDNet does, but blind: no noise-level input), 15 hidden layers of 64
channels (0.49 M parameters, 1.9 MB), initialised by :func:`he_init`. Data: the ``train400`` photographs (:data:`PHOTO_TRAIN`, 400
gray 180x180 images, the training set of the DnCNN paper) under ``--data-dir`` (default
:data:`recon.training.data.DATASETS_DIR`), the first ``n_train`` of them in file-name order, cut
once into the :data:`PHOTO_PATCH` x :data:`PHOTO_PATCH` windows of a grid of step
:data:`PHOTO_STRIDE` (36 per image, :func:`~recon.training.data.grid_patches`). Each epoch crops
one random ``crop x crop`` patch from every window, applies one of the 8 flips / rotations, draws
``sigma ~ U[0, sigma_max]`` (55/255 by default: the DnCNN-B range) and adds ``sigma N(0, 1)``;
MSE loss, Adam (lr 1e-4, cosine decay to 0 per step over 30 epochs), seeded, checkpointed every few minutes
(``--resume`` continues a run). Validation: mean PSNR (peak 1, whole image, output not clipped) of
the noisy and the denoised first ``n_val`` images of ``bsd68`` (:data:`PHOTO_VAL`) at sigma 15, 25
and 50 / 255, the noise drawn from a generator seeded with 0; the full BSD68 table of the
published protocol comes from ``benchmarks/bsd68.py``. BSD68 is never trained on.

Why lr 1e-4 (runs of 2026-12-03, logs kept beside the checkpoints in ``out/train``): Adam moves
every weight by about lr per step whatever its gradient, and the He-initialised weights of the
hidden layers have std sqrt(2 / 576) = 0.06, so at 1e-3 or 3e-4 a few hundred steps re-randomise the
deep layers. At 1e-3 a run reached 27.11 dB at sigma 15/255 on the validation images after one
epoch and fell back to 24.80 dB (the noisy images' 24.61) in the second; at 3e-4, 27.56 then 26.79
dB (25.79 then 23.03 dB at sigma 25) while the epoch's training MSE went down, and the epoch-2 net
was as poor on training images (23.2 dB at sigma 25). Batch normalisation (the paper's DnCNN-B) did
not help at 1e-3: the residual branch stayed silent (75 steps: training MSE 0.0156, the noise
variance; after one epoch 25.34 dB at sigma 15) nor at 1e-4 (75 steps: 14.53 dB at sigma 50),
where the plain net at 1e-4 learns from the start (75 steps: 25.21 / 21.66 / 16.02 dB at sigma
15 / 25 / 50 on three 160x160 BSD68 crops, noisy 24.61 / 20.17 / 14.15; training MSE 0.0115).

Cost (measured on two idle cores, ``--threads 2``): 0.39 s per Adam step of 32 64x64 patches, 450
steps per epoch, about 3 min per epoch; 3-4 times that beside another training.

Example:
    $ nohup python -m recon.training dncnn_natural > dncnn_natural.log 2>&1 &
    $ python -m recon.training dncnn_natural --resume    # after an interruption
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import torch

from denoisers.dncnn import DnCNN
from recon.metrics import psnr
from recon.training.ct_dncnn import seeded_dncnn
from recon.training.data import DATASETS_DIR, file_list_sha256, gaussian_noisy, grid_patches, photo_set
from recon.training.loop import SHARED_DEFAULTS, TrainSpec, fit_denoiser, model_card, mse_training_card, sigma_validation_card

__all__ = ["SPEC", "he_init", "PHOTO_TRAIN", "PHOTO_VAL", "PHOTO_PATCH", "PHOTO_STRIDE", "PHOTO_VAL_SIGMAS", "evaluate_photos", "train"]

PHOTO_TRAIN = "train400"
PHOTO_VAL = "bsd68"
PHOTO_PATCH = 80
PHOTO_STRIDE = 20
PHOTO_VAL_SIGMAS = (15 / 255, 25 / 255, 50 / 255)


@torch.no_grad()
def evaluate_photos(
    net: Callable[[torch.Tensor], torch.Tensor], images: Sequence[torch.Tensor], sigma: float, noise_seed: int = 0
) -> tuple[float, float]:
    """Mean PSNR (dB, peak 1, whole image, no clipping) of the noisy and of the denoised images.

    The noise of image ``k`` is ``sigma N(0, 1)`` drawn, image after image, from one generator
    seeded with ``noise_seed`` (:func:`~recon.training.data.gaussian_noisy`); the noisy image is not
    clipped, as in the published BSD68 protocol.

    Args:
        net: denoiser ``(1, 1, H, W) -> (1, 1, H, W)``.
        images: clean (1, 1, H, W) images in [0, 1], any sizes.
        sigma: noise standard deviation (image units).
        noise_seed: seed of the noise.

    Returns:
        ``(psnr_noisy, psnr_net)`` averaged over the images.
    """
    if isinstance(net, torch.nn.Module):
        net.eval()
    gen = torch.Generator().manual_seed(noise_seed)
    before, after = [], []
    for clean in images:
        noisy = gaussian_noisy(clean, sigma, gen)
        before.append(float(psnr(noisy, clean, 1.0)))
        after.append(float(psnr(net(noisy), clean, 1.0)))
    return sum(before) / len(before), sum(after) / len(after)


def he_init(net: DnCNN) -> None:
    """He initialisation for a deep plain ReLU net without normalisation, in place, from torch's global generator.

    Every convolution: weights ``N(0, 2 / fan_in)`` (``kaiming_normal_``), biases 0; then the output
    convolution's weights ``N(0, 1e-6)``, so the untrained net is nearly the identity. With torch's
    default (uniform, variance ``1 / (3 fan_in)``) initialisation the signal of the 15-layer
    residual branch fades and its output stays near 0: in the default run (2026-12-03) the first
    epoch ended at a training MSE of 1.54e-2 (the mean noise variance, 1.55e-2) and 24.60 dB on the
    validation images at sigma 15/255 (noisy: 24.61 dB); with this initialisation, 1.01e-2 and
    27.11 dB.
    """
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        torch.nn.init.zeros_(conv.bias)
    torch.nn.init.normal_(convs[-1].weight, std=1e-3)


def train(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """Train ``dncnn_natural`` as the module docstring says (the :attr:`~recon.training.loop.TrainSpec.train` protocol)."""
    net, model_kwargs, c = seeded_dncnn(args, PHOTO_PATCH)
    he_init(net)
    if not 1 <= args.n_train <= 400 or not 1 <= args.n_val <= 68:
        raise ValueError(f"--n-train/--n-val: expected 1..400 train400 and 1..68 bsd68 images, received {args.n_train}, {args.n_val}")
    t0 = time.perf_counter()
    train_images, train_files = photo_set(PHOTO_TRAIN, args.data_dir)
    val_images, val_files = photo_set(PHOTO_VAL, args.data_dir)
    train_images, train_files = train_images[: args.n_train], train_files[: args.n_train]
    val_images, val_files = val_images[: args.n_val], val_files[: args.n_val]
    x_gt = grid_patches(train_images, PHOTO_PATCH, PHOTO_STRIDE)
    log(f"data: {len(x_gt)} windows of {PHOTO_PATCH}x{PHOTO_PATCH} from {len(train_files)} {PHOTO_TRAIN} images, "
        f"{len(val_files)} {PHOTO_VAL} validation images, in {time.perf_counter() - t0:.1f} s")  # fmt: skip

    loss_epoch, history, p_val = fit_denoiser(
        net, args, log, x_gt, (c, c), gaussian_noisy, lambda s: evaluate_photos(net, val_images, s), PHOTO_VAL_SIGMAS, False,
        augment=True,
    )  # fmt: skip
    card = {
        "model": model_card(net, model_kwargs, init="recon.training.dncnn_natural.he_init (He normal, zero biases, output std 1e-3)"),
        "task": "blind Gaussian denoising of grayscale photographs, noise std in [0, 55/255] (the PnP-ADMM / RED denoiser "
        "of PnP-HVAE): image + noise -> image",
        "data": {
            "dataset": f"{PHOTO_TRAIN} (the BSD400 training set of the DnCNN paper), first {len(train_files)} files in name order",
            "file_list_sha256": file_list_sha256(train_files),
            "file_list_sha256_rule": "recon.training.data.file_list_sha256: sha256 of the lines '<name> <sha256 of bytes>'",
            "pipeline": f"recon.training.data.grid_patches({PHOTO_TRAIN} images, {PHOTO_PATCH}, {PHOTO_STRIDE})",
            "training_patches": f"one random {c}x{c} crop per window per epoch, one of 8 flips/rotations (seeded generator)",
            "noise": f"clean + sigma N(0, 1), sigma ~ U[0, {args.sigma_max:g}] per patch; the net does not get sigma",
            "validation_set": f"{PHOTO_VAL}: first {len(val_files)} files {[f.name for f in val_files]}",
            "validation_file_list_sha256": file_list_sha256(val_files),
        },
        "training": mse_training_card(args, loss_epoch, history, crop=c, windows=len(x_gt)),
        "validation": sigma_validation_card(
            f"{PHOTO_VAL} images",
            range(0, len(val_files)),
            "clean + sigma N(0, 1), one generator seeded with 0, image after image, not clipped",
            "recon.training.dncnn_natural.evaluate_photos(net, images, sigma)",
            PHOTO_VAL_SIGMAS,
            p_val,
        ),
    }
    return net, card


SPEC = TrainSpec(
    description="DnCNN (scale 2, 15 hidden layers of 64 channels) blind Gaussian denoiser of grayscale photographs, "
    "trained on train400 with noise std in [0, 55/255]; the PnP-ADMM / RED denoiser of PnP-HVAE",
    build=DnCNN,
    train=train,
    defaults={
        **SHARED_DEFAULTS,
        "lr": 1e-4,
        "epochs": 30,
        "batch_size": 32,
        "n_train": 400,
        "n_val": 4,
        "crop": 64,
        "sigma_max": 55 / 255,
        "width": 64,
        "depth": 15,
        "scale": 2,
        "data_dir": DATASETS_DIR,
    },
    val_first_seed=None,
)
