r"""Reproduce the shipped network weights: ``python -m denoisers.train NAME [options]``.

Every trainable model has one entry in :data:`REGISTRY` (a :class:`TrainSpec`: its default
hyperparameters and a ``train`` function). Running the module trains the model on procedural data
with a fixed seed and writes ``data/weights/NAME.pt`` (the ``state_dict``) and
``data/weights/NAME.json`` (the card: command line, seed, data, epochs, loss, validation PSNRs,
sha256 of the ``.pt`` file, wall time, torch version). :func:`denoisers.zoo.load` reads both.

Known names:

* ``ct_unet``: :class:`denoisers.unet.CTUNet` post-processing of parallel-beam FBP images
  (graphLa+Psi "Net"). Data: COULE-like images (:func:`recon.phantoms.coule_like`) of side 256,
  parallel-beam sinograms with 120 views over [0, 179] degrees and 362 detector bins, 2 %
  relative Gaussian noise (:func:`recon.noise.add_relative_noise`, noise seed = image seed),
  ram-lak FBP input -> ground-truth target. Training pairs use image seeds ``0 .. n_train-1``,
  validation pairs seeds ``100000 .. 100000+n_val-1`` (both far below
  :data:`recon.phantoms.TEST_SEEDS`). The net is trained on random ``crop x crop`` patches of
  the 256x256 pairs (it is fully convolutional) with the L1 loss and Adam (lr 1e-3, cosine
  decay to 0), and validated on the full 256x256 images.
* ``mimo_unet3d``: :class:`denoisers.unet3d.UNet3D` Gaussian denoiser of 3D magnitudes (the deep
  prior of magnitude plug-and-play MIMO imaging). Data: magnitudes ``|mimo_scene(shape, seed)|``
  (:func:`recon.phantoms.mimo_scene`, grid 25x25x49) of training seeds ``0 .. n_train-1`` and
  validation seeds ``200000 .. 200000+n_val-1``. Each epoch draws one random
  ``crop_shape`` patch per training volume, a noise level ``sigma ~ U[0, sigma_max]`` per patch
  and noisy = :func:`magnitude_noisy` (the magnitude of the complex scene plus circular complex
  Gaussian noise of standard deviation sigma, all from one seeded generator); the loss is the
  MSE to the clean patch, with Adam (lr 1e-3, cosine decay to 0). Validation: PSNR of the noisy
  and the denoised full 25x25x49 volumes at sigma 0.05 and 0.1.
* ``ct_dncnn``: :class:`denoisers.dncnn.DnCNN` blind Gaussian denoiser of single frames of
  dynamic objects (the RED denoiser of RED-PSM). Data: :func:`dynamic_frames`: the 8 frames of
  ``dynamic_object(128, 8, seed, kind)`` (:func:`recon.phantoms.dynamic_object`) for training
  seeds ``0 .. n_train-1`` and validation seeds ``300000 .. 300000+n_val-1``, of kind
  :data:`DNCNN_KINDS` ``[seed % 4]`` (three COULE-like objects, then a cardiac one; never
  Shepp-Logan, whose image is the same for every seed). Each epoch draws one random
  ``crop x crop`` patch per training frame, a noise level ``sigma ~ U[0, sigma_max]`` per patch
  (0.1 by default, i.e. down to 20 dB PSNR on [0, 1] frames, a blind range for the iterates RED
  denoises) and noisy = clean + sigma * N(0, 1) (:func:`gaussian_noisy`); the loss is
  the MSE to the clean patch, with Adam (lr 1e-3, cosine decay to 0). Validation: PSNR of the
  noisy and of the denoised full 128x128 frames at sigma 0.02, 0.05 and 0.1.

* ``hvae``: :class:`denoisers.hvae.HVAE`, the hierarchical VAE prior of PnP-HVAE (3 latent
  levels at strides 8, 4, 2 of 8 channels each, widths (32, 64, 96, 128), Gaussian decoder of
  fixed std gamma = 5/255). Data (:func:`hvae_pool`, :func:`hvae_patches`): each epoch draws
  ``patches`` fresh random ``crop x crop`` patches, 60 % from the scikit-image photos
  :data:`HVAE_TRAIN_IMAGES` (gray, [0, 1]), 20 % from COULE-like images
  (:func:`recon.phantoms.coule_like`, side 256) and 20 % from procedural textures
  (:func:`hvae_texture`, side 256) of training seeds ``0 .. n_train-1``; a random downscaling
  by a factor in [1, 2] and one of the 8 flips / 90-degree rotations augment every patch. The
  scikit-image images :data:`HVAE_HELD_OUT_IMAGES` (camera, astronaut, moon, coins: the test
  images of the PnP-HVAE and deblurring demos) are never trained on. Loss: the negative ELBO
  (:meth:`denoisers.hvae.HVAE.elbo`, nats per dimension, one posterior sample) with the KL
  weight rising linearly from 0 to 1 over the first ``kl_warmup`` epochs; Adam (lr 1e-3, linear
  warm-up over 100 steps, cosine decay to 0), gradient norm clipped at 200, non-finite steps
  skipped. Logged per epoch: the train -ELBO in bits/dim with its reconstruction and per-level
  KL terms, and the validation -ELBO on the 64x64 tiles of the COULE-like and texture images of
  seeds ``400000 .. 400000+n_val-1``. At the end the card gets the held-out -ELBO (bits/dim)
  over every non-overlapping 64x64 tile of the held-out images (:func:`evaluate_hvae`, posterior
  noise seeded with 0), per image too. Cost of the default run: 40 epochs of 2000 patches =
  5000 Adam steps of 16 64x64 patches at about 0.66 s of CPU time each on one core (measured
  as process time), i.e. about 35-40 min with ``--threads 2`` on two otherwise idle cores and
  about 55 min with ``--threads 1``. ``brick`` (a training image here) is only the tuning image
  of the deblurring demo, never one of its test images.
* ``dncnn_natural``: :class:`denoisers.dncnn.DnCNN` (8 hidden layers of 32 channels) blind
  Gaussian denoiser of grayscale natural-like images, the denoiser of the PnP-ADMM and RED
  baselines of PnP-HVAE (:mod:`recon.methods.pnp_baselines`). Data: the ``hvae`` pool and split
  (:func:`natural_patches`): ``patches`` clean :data:`DNCNN_NATURAL_PATCH` x
  :data:`DNCNN_NATURAL_PATCH` patches drawn once by :func:`hvae_patches` from
  :func:`hvae_pool` of the training seeds ``0 .. n_train-1`` (generator seeded with ``seed + 1``;
  the held-out images :data:`HVAE_HELD_OUT_IMAGES` never appear). Each epoch crops one random
  ``crop x crop`` window per patch and adds noise as for ``ct_dncnn`` (``sigma ~ U[0,
  sigma_max]``, the same loop, loss and optimizer). Validation: PSNR of the noisy and of the
  denoised non-overlapping 64x64 tiles of the COULE-like and texture images of the validation
  seeds ``400000 .. 400000+n_val-1`` (the ``hvae`` validation tiles) at sigma 0.02, 0.05 and
  0.1. Cost of the default run: 25 epochs of 4000 patches = 6250 Adam steps of 16 48x48
  patches at about 0.13 s of CPU time each on one core (process time), i.e. about 14 min with
  ``--threads 1`` and about 8 min with ``--threads 2`` on two otherwise idle cores (estimated).

Training is seeded and deterministic on CPU (``torch.manual_seed``,
``torch.use_deterministic_algorithms(True)``, a fixed data order from a seeded generator), so
re-running the command reproduces the card's numbers up to floating-point differences between
machines.

Example:
    $ python -m denoisers.train ct_unet --epochs 36 --seed 0
    $ python -m denoisers.train mimo_unet3d --threads 1
    $ python -m denoisers.train ct_dncnn --threads 1
    $ python -m denoisers.train hvae
    $ python -m denoisers.train dncnn_natural
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from denoisers.zoo import WEIGHTS_DIR, sha256_file

__all__ = [
    "REGISTRY",
    "TrainSpec",
    "WEIGHTS_DIR",
    "ct_pairs",
    "ct_geometry",
    "evaluate_ct_unet",
    "mimo_magnitudes",
    "evaluate_mimo_unet3d",
    "magnitude_noisy",
    "dynamic_frames",
    "gaussian_noisy",
    "evaluate_dncnn",
    "natural_patches",
    "hvae_image",
    "hvae_texture",
    "hvae_pool",
    "hvae_patches",
    "hvae_tiles",
    "hvae_elbo_terms",
    "evaluate_hvae",
    "sha256_file",
    "main",
]


CT_N_VIEWS = 120
CT_LAST_ANGLE_DEG = 179.0
CT_N_DETECTORS = {128: 182, 256: 362}
CT_NOISE_LEVEL = 0.02
CT_VAL_FIRST_SEED = 100_000
MIMO_VAL_FIRST_SEED = 200_000
MIMO_VAL_SIGMAS = (0.05, 0.1)
DNCNN_VAL_FIRST_SEED = 300_000
DNCNN_VAL_SIGMAS = (0.02, 0.05, 0.1)
DNCNN_SIZE = 128
DNCNN_FRAMES = 8
#: Kind of the dynamic object of seed ``s`` in the ``ct_dncnn`` data: ``DNCNN_KINDS[s % 4]``.
DNCNN_KINDS = ("coule", "coule", "coule", "cardiac")
#: scikit-image images the ``hvae`` trains on (:func:`hvae_image`); none of them is held out.
HVAE_TRAIN_IMAGES = (
    "brick", "cell", "chelsea", "clock", "coffee", "grass", "gravel", "horse", "hubble_deep_field",
    "immunohistochemistry", "motorcycle", "page", "retina", "rocket", "text",
)  # fmt: skip
#: scikit-image images the ``hvae`` never sees in training: the test images of PnP-HVAE (the same
#: four natural images as the deblurring demo ``demos/deblur_sobolev.py``); the card's held-out
#: ELBO is over their non-overlapping 64x64 tiles (:func:`hvae_tiles`).
HVAE_HELD_OUT_IMAGES = ("camera", "astronaut", "moon", "coins")
#: Probability of each kind of source image of an ``hvae`` training patch.
HVAE_MIX = {"natural": 0.6, "coule": 0.2, "texture": 0.2}
HVAE_PROCEDURAL_SIZE = 256
HVAE_MIN_SCALE = 0.5
HVAE_CROP = 64
HVAE_VAL_FIRST_SEED = 400_000
HVAE_EVAL_SEED = 0
HVAE_GRAD_CLIP = 200.0
HVAE_LR_WARMUP_STEPS = 100
HVAE_STRIDES = (8, 4, 2)
HVAE_ENC_BLOCKS = 2
HVAE_DEC_BLOCKS = 2
HVAE_MAX_CROP = 160  # largest multiple of the stride 8 that fits the smallest training image (text, 172 x 448)
#: Side of the clean ``dncnn_natural`` patches (:func:`natural_patches`); each epoch crops ``--crop`` from each.
DNCNN_NATURAL_PATCH = 96


# ----------------------------------------------------------------------------- CT data


def ct_geometry(size: int, backend: str = "numba"):
    """The graphLa CT setup: parallel beam, 120 views over [0, 179] deg, 182 (N=128) or 362 (N=256) bins."""
    from operators.ct import ParallelBeamCT  # noqa: PLC0415

    if size not in CT_N_DETECTORS:
        raise ValueError(f"size: expected one of {tuple(CT_N_DETECTORS)}, received {size!r}")
    angles = torch.linspace(0.0, math.radians(CT_LAST_ANGLE_DEG), CT_N_VIEWS, dtype=torch.float64)
    return ParallelBeamCT(size, angles, n_detectors=CT_N_DETECTORS[size], backend=backend)


def ct_pairs(
    seeds: Sequence[int], size: int = 256, noise_level: float = CT_NOISE_LEVEL, chunk: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """(FBP input, ground truth) pairs of the ``ct_unet`` pipeline, one per image seed.

    Image ``s`` is ``coule_like(size, s)``; its sinogram gets relative noise with noise seed ``s``;
    the input is the ram-lak FBP (numba backend, float32).

    Args:
        seeds: image seeds (use seeds below ``recon.phantoms.TEST_SEEDS.start`` for training).
        size: image side, 128 or 256.
        noise_level: relative noise level ``||e|| / ||A x||``.
        chunk: images projected per call.

    Returns:
        ``(x_fbp, x_true)``, each (len(seeds), 1, size, size) float32.

    Example:
        >>> x_fbp, x_true = ct_pairs(range(100_000, 100_004), size=256)
    """
    from recon.noise import add_relative_noise  # noqa: PLC0415
    from recon.phantoms import coule_like  # noqa: PLC0415

    seeds = [int(s) for s in seeds]
    physics = ct_geometry(size)
    fbps, truths = [], []
    for i in range(0, len(seeds), chunk):
        part = seeds[i : i + chunk]
        x = torch.cat([coule_like(size, s) for s in part])
        y_clean = physics.A(x)
        y = torch.cat([add_relative_noise(y_clean[j : j + 1], noise_level, seed=s) for j, s in enumerate(part)])
        fbps.append(physics.fbp(y, filter="ram-lak"))
        truths.append(x)
    return torch.cat(fbps), torch.cat(truths)


def _adam_cosine(net: torch.nn.Module, args: argparse.Namespace, n_train: int) -> tuple:
    """Adam at ``args.lr`` with a per-step cosine decay to 0 over all ``args.epochs`` epochs."""
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(n_train / args.batch_size)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)


def _run_epoch(net: torch.nn.Module, opt, sched, batches, loss_fn: Callable) -> float:
    """One pass of Adam steps (and per-step scheduler steps) over ``batches`` of ``(inputs, target)``;
    returns the sample-weighted mean loss."""
    total, count = 0.0, 0
    for inputs, target in batches:
        loss = loss_fn(net(*inputs), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(target)
        count += len(target)
    return total / count


def _noisy_patch_batches(
    clean: torch.Tensor, crop: Sequence[int], batch_size: int, sigma_max: float, gen: torch.Generator, noisy_fn: Callable
) -> Iterator[tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """One epoch of denoiser training batches: a random crop and noise level per clean sample.

    Draws, in this order from ``gen``: the sample order, one crop corner per sample, one
    ``sigma ~ U[0, sigma_max]`` per sample; then, batch by batch (lazily), the noise of
    ``noisy_fn(patches, sigma, gen)`` with ``sigma`` shaped to broadcast over each patch.

    Args:
        clean: clean samples (n, 1, *spatial).
        crop: patch shape, one size per spatial axis.
        batch_size: patches per batch.
        sigma_max: largest noise standard deviation.
        gen: the seeded generator of every draw.
        noisy_fn: ``(clean, sigma, gen) -> noisy``, e.g. :func:`gaussian_noisy`.

    Yields:
        ``(noisy, sigma), clean_patches``: (b, 1, *crop), (b,) and (b, 1, *crop).
    """
    n = len(clean)
    perm = torch.randperm(n, generator=gen)
    corners = torch.stack([torch.randint(0, s - c + 1, (n,), generator=gen) for s, c in zip(clean.shape[2:], crop)], dim=1)
    sigmas = sigma_max * torch.rand(n, generator=gen)
    for k in range(0, n, batch_size):
        idx = perm[k : k + batch_size].tolist()
        boxes = zip(idx, corners[idx].tolist())
        patches = torch.stack([clean[(i, slice(None), *(slice(a, a + c) for a, c in zip(box, crop)))] for i, box in boxes])
        sig = sigmas[idx]
        yield (noisy_fn(patches, sig.reshape(-1, *[1] * (patches.ndim - 1)), gen), sig), patches


@torch.no_grad()
def _psnr_before_after(denoise: Callable, degraded: torch.Tensor, clean: torch.Tensor, batch: int) -> tuple[float, float]:
    """Mean PSNR (dB, data range 1, no clipping) of ``degraded`` and of ``denoise(degraded)``, in chunks of ``batch``."""
    from recon.metrics import psnr  # noqa: PLC0415

    out = torch.cat([denoise(degraded[i : i + batch]) for i in range(0, len(degraded), batch)])
    return float(psnr(degraded, clean, 1.0).mean()), float(psnr(out, clean, 1.0).mean())


def _fit_denoiser(
    net: torch.nn.Module,
    args: argparse.Namespace,
    log: Callable[[str], None],
    clean: torch.Tensor,
    crop: Sequence[int],
    noisy_fn: Callable,
    evaluate: Callable[[float], tuple[float, float]],
    sigmas: Sequence[float],
    gets_sigma: bool,
) -> tuple[float, list[dict], list[tuple[float, float]]]:
    """The MSE training loop of the denoisers trained on noisy patches (``mimo_unet3d``, ``ct_dncnn``).

    Adam with cosine decay (:func:`_adam_cosine`) over ``args.epochs`` epochs of
    :func:`_noisy_patch_batches` (generator seeded with ``args.seed``); after each epoch
    ``evaluate(sigma)`` gives the validation ``(psnr_noisy, psnr_net)`` at every ``sigmas``.

    Args:
        net: the untrained network; called as ``net(noisy, sigma)`` when ``gets_sigma``, else ``net(noisy)``.
        args: parsed options (epochs, seed, batch_size, lr, sigma_max).
        log: progress printer.
        clean: clean training samples (n, 1, *spatial).
        crop: training patch shape.
        noisy_fn: ``(clean, sigma, gen) -> noisy``.
        evaluate: validation at one noise level.
        sigmas: validation noise levels.
        gets_sigma: whether the network takes the noise level.

    Returns:
        ``(final_train_mse, history, p_val)``: the last epoch's mean loss, one dict per epoch and
        the final ``(psnr_noisy, psnr_net)`` per validation sigma.
    """
    opt, sched = _adam_cosine(net, args, len(clean))
    gen = torch.Generator().manual_seed(args.seed)
    history = []
    loss_epoch = float("nan")
    for epoch in range(1, args.epochs + 1):
        te = time.perf_counter()
        net.train()
        batches = _noisy_patch_batches(clean, crop, args.batch_size, args.sigma_max, gen, noisy_fn)
        if not gets_sigma:
            batches = (((noisy,), target) for (noisy, _), target in batches)
        loss_epoch = _run_epoch(net, opt, sched, batches, lambda out, target: (out - target).square().mean())
        p_val = [evaluate(s) for s in sigmas]
        history.append({"epoch": epoch, "train_mse": loss_epoch, "val_psnr_net": [p for _, p in p_val]})
        scores = ", ".join(f"sigma {s:g}: {p:.2f} dB (noisy {q:.2f})" for s, (q, p) in zip(sigmas, p_val))
        log(
            f"epoch {epoch:3d}/{args.epochs}  train MSE {loss_epoch:.2e}  val PSNR net {scores}  "
            f"lr {sched.get_last_lr()[0]:.2e}  {time.perf_counter() - te:.1f} s"
        )
    p_val = [evaluate(s) for s in sigmas]
    scores = ", ".join(f"sigma {s:g}: noisy {q:.2f} dB, net {p:.2f} dB" for s, (q, p) in zip(sigmas, p_val))
    log(f"final: val PSNR {scores}")
    return loss_epoch, history, p_val


def _mse_training_card(args: argparse.Namespace, final_mse: float, history: list[dict], **patch: object) -> dict:
    """The ``training`` section of the card of a :func:`_fit_denoiser` model (``patch``: its crop entry)."""
    return {
        "loss": "MSE",
        "optimizer": "Adam",
        "lr": args.lr,
        "lr_schedule": "cosine annealing to 0 over all steps (per step)",
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        **patch,
        "sigma_max": args.sigma_max,
        "final_train_mse": final_mse,
        "history": history,
    }


def _sigma_validation_card(
    samples: str, seeds: range, noise: str, pipeline: str, sigmas: Sequence[float], p_val: Sequence[tuple[float, float]]
) -> dict:
    """The ``validation`` section of the card of a :func:`_fit_denoiser` model (``samples``: "volumes", "frames")."""
    return {
        "metric": f"mean PSNR in dB over the held-out {samples}, data_range 1, output not clipped (recon.metrics.psnr)",
        "seeds": [seeds.start, seeds.stop - 1],
        "noise": noise,
        "pipeline": pipeline,
        "sigmas": list(sigmas),
        "psnr_noisy": [q for q, _ in p_val],
        "psnr_net": [p for _, p in p_val],
    }


@torch.no_grad()
def evaluate_ct_unet(net: torch.nn.Module, x_fbp: torch.Tensor, x_true: torch.Tensor, batch: int = 4) -> tuple[float, float]:
    """Mean PSNR (dB, data range 1, no clipping) of FBP and of ``net(FBP)`` against the truth."""
    net.eval()
    return _psnr_before_after(net, x_fbp, x_true, batch)


# ----------------------------------------------------------------------------- MIMO data


def mimo_magnitudes(seeds: Sequence[int], shape: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Clean magnitudes of the ``mimo_unet3d`` pipeline: ``|mimo_scene(shape, s)|`` for each seed.

    Args:
        seeds: scene seeds (use seeds below ``recon.phantoms.TEST_SEEDS.start`` for training).
        shape: grid (Nx, Ny, Nz); default :data:`recon.phantoms.MIMO_SCENE_SHAPE`.

    Returns:
        (len(seeds), 1, Nx, Ny, Nz) float32 magnitudes in [0, 1].

    Example:
        >>> clean = mimo_magnitudes(range(200_000, 200_004))
    """
    from recon.phantoms import MIMO_SCENE_SHAPE, mimo_scene  # noqa: PLC0415

    shape = MIMO_SCENE_SHAPE if shape is None else shape
    return torch.cat([mimo_scene(shape, int(s)).abs() for s in seeds])


def magnitude_noisy(clean: torch.Tensor, sigma: float | torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    r"""Rician-noisy magnitudes :math:`|m + \sigma (n_1 + j n_2)/\sqrt{2}|`, :math:`n_i \sim N(0, 1)`.

    The noise is what a magnitude prior sees inside magnitude PnP: the modulus of a complex
    reflectivity with circular complex Gaussian error (``E|noise|^2 = sigma^2``). The scene's
    phase does not matter (circular noise), so the clean magnitude stands for the complex value.

    Args:
        clean: clean magnitudes (B, 1, ...), real.
        sigma: noise standard deviation, a float or a tensor broadcastable to ``clean``.
        gen: the seeded generator the two noise draws come from.
    """
    n1 = torch.randn(clean.shape, generator=gen, dtype=clean.dtype)
    n2 = torch.randn(clean.shape, generator=gen, dtype=clean.dtype)
    return torch.hypot(clean + sigma * n1 / 2**0.5, sigma * n2 / 2**0.5)


@torch.no_grad()
def evaluate_mimo_unet3d(
    net: torch.nn.Module, clean: torch.Tensor, sigma: float, noise_seed: int = MIMO_VAL_FIRST_SEED, batch: int = 4
) -> tuple[float, float]:
    """Mean PSNR (dB, data range 1, no clipping) of the noisy and of the denoised magnitudes.

    The noisy volumes are :func:`magnitude_noisy` with the noise drawn from a generator seeded
    with ``noise_seed``; the network gets the true ``sigma``.

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
    return _psnr_before_after(lambda chunk: net(chunk, sigma), noisy, clean, batch)


# ----------------------------------------------------------------------------- dynamic-object frames


def dynamic_frames(seeds: Sequence[int], size: int = DNCNN_SIZE, n_frames: int = DNCNN_FRAMES) -> torch.Tensor:
    """Single frames of the ``ct_dncnn`` pipeline: every frame of one dynamic object per seed.

    Seed ``s`` gives ``dynamic_object(size, n_frames, s, DNCNN_KINDS[s % 4])``
    (:func:`recon.phantoms.dynamic_object`, default deformation), so a quarter of the objects
    are cardiac-like and the rest COULE-like.

    Args:
        seeds: object seeds (use seeds below ``recon.phantoms.TEST_SEEDS.start`` for training).
        size: image side N.
        n_frames: frames per object.

    Returns:
        (len(seeds) * n_frames, 1, N, N) float32 frames in [0, 1], object-major.

    Example:
        >>> clean = dynamic_frames(range(300_000, 300_004))  # (32, 1, 128, 128)
    """
    from recon.phantoms import dynamic_object  # noqa: PLC0415

    objects = [dynamic_object(size, n_frames, int(s), DNCNN_KINDS[int(s) % len(DNCNN_KINDS)]) for s in seeds]
    return torch.cat(objects, dim=1).reshape(-1, 1, size, size)


def gaussian_noisy(clean: torch.Tensor, sigma: float | torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``clean + sigma * n`` with i.i.d. ``n ~ N(0, 1)`` drawn from ``gen`` (``sigma`` a float or broadcastable tensor)."""
    return clean + sigma * torch.randn(clean.shape, generator=gen, dtype=clean.dtype)


@torch.no_grad()
def evaluate_dncnn(
    net: torch.nn.Module, clean: torch.Tensor, sigma: float, noise_seed: int = DNCNN_VAL_FIRST_SEED, batch: int = 8
) -> tuple[float, float]:
    """:func:`evaluate_mimo_unet3d` for the ``ct_dncnn`` pipeline: ``(psnr_noisy, psnr_net)`` of frames.

    ``net`` is a :class:`denoisers.dncnn.DnCNN` (blind: it does not get ``sigma``), ``clean``
    frames (B, 1, N, N) and the noisy frames :func:`gaussian_noisy` with the noise drawn from a
    generator seeded with ``noise_seed``; ``batch`` frames per forward pass. Mean PSNR in dB,
    data range 1, no clipping.
    """
    net.eval()
    noisy = gaussian_noisy(clean, sigma, torch.Generator().manual_seed(noise_seed))
    return _psnr_before_after(net, noisy, clean, batch)


# ----------------------------------------------------------------------------- hvae data


def hvae_image(name: str) -> torch.Tensor:
    """One grayscale image bundled with scikit-image, as used by the ``hvae`` pipeline.

    RGB images are converted by ``skimage.color.rgb2gray``, 8-bit ones divided by 255, the
    binary ``horse`` cast to {0, 1}; ``"motorcycle"`` is the left view of
    ``skimage.data.stereo_motorcycle()``. Nothing is downloaded: every name in
    :data:`HVAE_TRAIN_IMAGES` and :data:`HVAE_HELD_OUT_IMAGES` ships inside scikit-image.

    Args:
        name: one of :data:`HVAE_TRAIN_IMAGES` or :data:`HVAE_HELD_OUT_IMAGES`.

    Returns:
        (1, 1, H, W) float32 image in [0, 1] at its native size.

    Example:
        >>> x = hvae_image("camera")  # (1, 1, 512, 512)
    """
    import numpy as np  # noqa: PLC0415
    from skimage import color, data  # noqa: PLC0415

    known = HVAE_TRAIN_IMAGES + HVAE_HELD_OUT_IMAGES
    if name not in known:
        raise ValueError(f"name: expected one of {known}, received {name!r}")
    img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    if img.ndim == 3:
        img = color.rgb2gray(img[..., :3])  # float in [0, 1]
    elif img.dtype == np.uint8:
        img = img / 255.0
    img = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(img)).float()[None, None]


def hvae_texture(size: int = HVAE_PROCEDURAL_SIZE, seed: int = 0) -> torch.Tensor:
    r"""A seeded procedural texture of the ``hvae`` training data.

    The sum of anisotropic power-law noise (white noise filtered by :math:`1/|\xi_A|^{\alpha}`,
    :math:`|\xi_A|^2 = u^2 + (a v)^2` in frequency coordinates rotated by a random angle,
    :math:`\alpha \sim U[1, 2.5]`, :math:`a \sim U[1, 4]`, periodic) and of 1-5 oriented
    sinusoids (frequencies 0.01-0.2 cycles per pixel, random orientation, phase and amplitude),
    with random weights; a quarter of the textures are then sharpened to near-binary patterns
    by :math:`\tanh(k\,\cdot)`, :math:`k \sim U[2, 8]`. The result is mapped affinely onto a
    random range :math:`[lo, hi]`, :math:`lo \sim U[0, 0.4]`, :math:`hi \sim U[0.6, 1]`.

    Args:
        size: image side N.
        seed: seed of the numpy generator (training seeds ``0 .. n_train-1``, validation
            :data:`HVAE_VAL_FIRST_SEED` ``..``, never :data:`recon.phantoms.TEST_SEEDS`).

    Returns:
        (1, 1, N, N) float32 image in [0, 1].

    Example:
        >>> t = hvae_texture(256, seed=3)
    """
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(int(seed))
    f = np.fft.fftfreq(size)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    theta = rng.uniform(0.0, np.pi)
    u = fx * np.cos(theta) + fy * np.sin(theta)
    v = -fx * np.sin(theta) + fy * np.cos(theta)
    radius = np.hypot(u, rng.uniform(1.0, 4.0) * v)
    radius[0, 0] = np.inf
    noise = np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) * radius ** -rng.uniform(1.0, 2.5)).real
    noise /= noise.std() + 1e-12
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    waves = np.zeros((size, size))
    for _ in range(rng.integers(1, 6)):
        freq, phi = rng.uniform(0.01, 0.2), rng.uniform(0.0, np.pi)
        phase = 2 * np.pi * freq * (xx * np.cos(phi) + yy * np.sin(phi)) + rng.uniform(0, 2 * np.pi)
        waves += rng.uniform(0.2, 1.0) * np.cos(phase)
    waves /= waves.std() + 1e-12
    w = rng.uniform(0.0, 1.0)
    img = w * noise + (1.0 - w) * waves
    if rng.uniform() < 0.25:
        img = np.tanh(rng.uniform(2.0, 8.0) * img / (img.std() + 1e-12))
    lo, hi = rng.uniform(0.0, 0.4), rng.uniform(0.6, 1.0)
    img = lo + (hi - lo) * (img - img.min()) / (img.max() - img.min() + 1e-12)
    return torch.from_numpy(img).float()[None, None]


def hvae_pool(seeds: Sequence[int], natural: Sequence[str] = HVAE_TRAIN_IMAGES) -> dict[str, list[torch.Tensor]]:
    """The images the ``hvae`` patches are cut from, by kind.

    Args:
        seeds: procedural seeds: ``coule_like(HVAE_PROCEDURAL_SIZE, s)`` and ``hvae_texture(HVAE_PROCEDURAL_SIZE, s)``
            for each ``s`` (below :data:`recon.phantoms.TEST_SEEDS`).
        natural: scikit-image names (:func:`hvae_image`).

    Returns:
        ``{"natural": [...], "coule": [...], "texture": [...]}``, lists of (1, 1, H, W) float32 images in [0, 1].
    """
    from recon.phantoms import coule_like  # noqa: PLC0415

    seeds = [int(s) for s in seeds]
    return {
        "natural": [hvae_image(n) for n in natural],
        "coule": [coule_like(HVAE_PROCEDURAL_SIZE, s) for s in seeds],
        "texture": [hvae_texture(HVAE_PROCEDURAL_SIZE, s) for s in seeds],
    }


def hvae_patches(pool: dict[str, list[torch.Tensor]], n: int, crop: int, gen: torch.Generator) -> torch.Tensor:
    r"""``n`` random augmented ``crop x crop`` training patches of the ``hvae`` pipeline.

    For each patch, drawn in this order from ``gen``: the kind (``natural``, ``coule``,
    ``texture`` with probabilities :data:`HVAE_MIX`), one image of that kind (uniformly), a
    scale :math:`s \sim U[`:data:`HVAE_MIN_SCALE`:math:`, 1]`, the corner of a square window of
    side ``min(round(crop / s), H, W)``, one of the 8 flips/rotations by multiples of 90 degrees;
    the window is resized to ``crop x crop`` (bilinear, antialiased; a downscaling, so detail
    gets finer, never blurred by upsampling).

    Args:
        pool: images by kind (:func:`hvae_pool`); every image at least ``crop`` pixels on each side.
        n: number of patches.
        crop: patch side.
        gen: the seeded generator of every draw.

    Returns:
        (n, 1, crop, crop) float32 patches in [0, 1].
    """
    from torch.nn import functional as F  # noqa: PLC0415

    kinds = list(HVAE_MIX)
    probs = torch.tensor([HVAE_MIX[k] for k in kinds], dtype=torch.float64)
    out = torch.empty(n, 1, crop, crop)
    for i in range(n):
        images = pool[kinds[int(torch.multinomial(probs, 1, generator=gen))]]
        img = images[int(torch.randint(len(images), (1,), generator=gen))]
        scale = HVAE_MIN_SCALE + (1.0 - HVAE_MIN_SCALE) * float(torch.rand((), generator=gen))
        side = min(round(crop / scale), img.shape[2], img.shape[3])
        top = int(torch.randint(img.shape[2] - side + 1, (1,), generator=gen))
        left = int(torch.randint(img.shape[3] - side + 1, (1,), generator=gen))
        k, flip = int(torch.randint(4, (1,), generator=gen)), bool(torch.randint(2, (1,), generator=gen))
        patch = img[:, :, top : top + side, left : left + side]
        if side != crop:
            patch = F.interpolate(patch, size=(crop, crop), mode="bilinear", antialias=True, align_corners=False)
        patch = torch.rot90(patch, k, dims=(2, 3))
        out[i] = (patch.flip(3) if flip else patch)[0].clamp(0.0, 1.0)
    return out


def natural_patches(seeds: Sequence[int], n: int, seed: int, side: int = DNCNN_NATURAL_PATCH) -> torch.Tensor:
    """The clean training set of ``dncnn_natural``: ``n`` patches of the ``hvae`` pool, drawn once.

    ``hvae_patches(hvae_pool(seeds), n, side, generator seeded with seed)``: the ``hvae`` mix of
    scikit-image photos (:data:`HVAE_TRAIN_IMAGES`, never the held-out ones), COULE-like images and
    textures, with its random downscaling and flips / rotations.

    Args:
        seeds: procedural seeds of the pool (below :data:`HVAE_VAL_FIRST_SEED`).
        n: number of patches.
        seed: seed of the patch generator.
        side: patch side.

    Returns:
        (n, 1, side, side) float32 patches in [0, 1].

    Example:
        >>> clean = natural_patches(range(16), 100, seed=1)
    """
    return hvae_patches(hvae_pool(seeds), n, side, torch.Generator().manual_seed(int(seed)))


def hvae_tiles(images: Sequence[torch.Tensor], crop: int = HVAE_CROP) -> torch.Tensor:
    """Every non-overlapping ``crop x crop`` tile (row-major, from the top-left corner) of each image.

    Args:
        images: (1, 1, H, W) images.
        crop: tile side.

    Returns:
        (n_tiles, 1, crop, crop), image-major.

    Example:
        >>> held_out = hvae_tiles([hvae_image(n) for n in HVAE_HELD_OUT_IMAGES])  # (216, 1, 64, 64)
    """
    tiles = []
    for img in images:
        h, w = (img.shape[2] // crop) * crop, (img.shape[3] // crop) * crop
        t = img[0, 0, :h, :w].reshape(h // crop, crop, w // crop, crop).permute(0, 2, 1, 3)
        tiles.append(t.reshape(-1, 1, crop, crop))
    return torch.cat(tiles)


@torch.no_grad()
def hvae_elbo_terms(
    model: torch.nn.Module, patches: torch.Tensor, seed: int = HVAE_EVAL_SEED, batch: int = 32
) -> dict[str, torch.Tensor]:
    """Per-patch negative ELBO terms in bits per dimension and reconstruction PSNR (see :func:`evaluate_hvae`).

    Returns:
        ``{"bits_per_dim": (n,), "recon_bits_per_dim": (n,), "kl_bits_per_dim": (n, L), "psnr_recon": (n,)}``.
    """
    from recon.metrics import psnr  # noqa: PLC0415

    model.eval()
    gen = torch.Generator().manual_seed(seed)
    d = patches[0].numel() * math.log(2)
    total, recon, kl, p = [], [], [], []
    for i in range(0, len(patches), batch):
        x = patches[i : i + batch]
        s = model.elbo(x, generator=gen)
        total.append(s["bits_per_dim"])
        recon.append(s["recon"] / d)
        kl.append(s["kl"] / d)
        p.append(psnr(model(x), x, 1.0))
    return {
        "bits_per_dim": torch.cat(total),
        "recon_bits_per_dim": torch.cat(recon),
        "kl_bits_per_dim": torch.cat(kl),
        "psnr_recon": torch.cat(p),
    }


def _mean_terms(terms: dict[str, torch.Tensor], sl: slice = slice(None)) -> dict:
    return {
        "bits_per_dim": float(terms["bits_per_dim"][sl].mean()),
        "recon_bits_per_dim": float(terms["recon_bits_per_dim"][sl].mean()),
        "kl_bits_per_dim": terms["kl_bits_per_dim"][sl].mean(0).tolist(),
        "psnr_recon": float(terms["psnr_recon"][sl].mean()),
    }


def evaluate_hvae(model: torch.nn.Module, patches: torch.Tensor, seed: int = HVAE_EVAL_SEED, batch: int = 32) -> dict:
    """Mean negative ELBO terms of ``patches`` in bits per dimension, and the reconstruction PSNR.

    One posterior sample per patch (:meth:`denoisers.hvae.HVAE.elbo`), drawn from one generator
    seeded with ``seed`` in patch order, ``batch`` patches per forward pass, eval mode, no gradient.

    Args:
        model: a :class:`denoisers.hvae.HVAE`.
        patches: (n, 1, h, w) images in [0, 1].
        seed: seed of the posterior noise.
        batch: patches per forward pass (the result depends on it only through floating-point rounding).

    Returns:
        ``{"bits_per_dim": float, "recon_bits_per_dim": float, "kl_bits_per_dim": [one per level],
        "psnr_recon": float}``: means over the patches; the KL and reconstruction terms are in bits
        per dimension without the ``log2(255)`` offset (``bits_per_dim`` = their sum + log2(255));
        ``psnr_recon`` is the mean PSNR (dB, data range 1) of the deterministic reconstruction
        ``model(x)`` (posterior means at every level).

    Example:
        >>> tiles = hvae_tiles([hvae_image(n) for n in HVAE_HELD_OUT_IMAGES])
        >>> evaluate_hvae(load("hvae"), tiles)["bits_per_dim"]   # the card's held_out.bits_per_dim
    """
    return _mean_terms(hvae_elbo_terms(model, patches, seed, batch))


# ----------------------------------------------------------------------------- registry


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """One trainable model: how to build it, its default hyperparameters and its training loop.

    ``build(**model_kwargs)`` returns the untrained module; ``train(args, log)`` trains it and
    returns ``(model, card_fields)``; ``defaults`` fill the command-line options (an option
    without a default here does not apply to this model). Training images use seeds
    ``0 .. n_train-1``, validation images ``val_first_seed .. val_first_seed+n_val-1``.
    """

    description: str
    build: Callable[..., torch.nn.Module]
    train: Callable[[argparse.Namespace, Callable[[str], None]], tuple[torch.nn.Module, dict]]
    defaults: dict
    val_first_seed: int


def _build_ct_unet(width: int = 16, levels: int = 4) -> torch.nn.Module:
    from denoisers.unet import CTUNet  # noqa: PLC0415

    return CTUNet(width=width, levels=levels)


def _train_ct_unet(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    size = 256
    train_seeds = range(0, args.n_train)
    val_seeds = range(CT_VAL_FIRST_SEED, CT_VAL_FIRST_SEED + args.n_val)
    t0 = time.perf_counter()
    x_in, x_gt = ct_pairs(train_seeds, size)
    v_in, v_gt = ct_pairs(val_seeds, size)
    log(f"data: {len(train_seeds)} train + {len(val_seeds)} val pairs at {size}x{size} in {time.perf_counter() - t0:.1f} s")

    torch.manual_seed(args.seed)
    model_kwargs = {"width": args.width, "levels": args.levels}
    net = _build_ct_unet(**model_kwargs)
    if args.crop % net.stride:
        raise ValueError(f"--crop: expected a multiple of {net.stride}, received {args.crop}")
    opt, sched = _adam_cosine(net, args, len(train_seeds))
    gen = torch.Generator().manual_seed(args.seed)
    n, c = len(train_seeds), args.crop
    history = []
    loss_epoch = float("nan")
    for epoch in range(1, args.epochs + 1):
        te = time.perf_counter()
        net.train()
        perm = torch.randperm(n, generator=gen)
        tops = torch.randint(0, size - c + 1, (n,), generator=gen)
        lefts = torch.randint(0, size - c + 1, (n,), generator=gen)

        def batches(perm=perm, tops=tops, lefts=lefts):
            for k in range(0, n, args.batch_size):
                idx = perm[k : k + args.batch_size].tolist()
                xb = torch.stack([x_in[i, :, tops[i] : tops[i] + c, lefts[i] : lefts[i] + c] for i in idx])
                gb = torch.stack([x_gt[i, :, tops[i] : tops[i] + c, lefts[i] : lefts[i] + c] for i in idx])
                yield (xb,), gb

        loss_epoch = _run_epoch(net, opt, sched, batches(), lambda out, gb: (out - gb).abs().mean())
        p_fbp, p_net = evaluate_ct_unet(net, v_in, v_gt)
        history.append({"epoch": epoch, "train_l1": loss_epoch, "val_psnr_net": p_net})
        log(
            f"epoch {epoch:3d}/{args.epochs}  train L1 {loss_epoch:.5f}  val PSNR net {p_net:.2f} dB "
            f"(FBP {p_fbp:.2f} dB)  lr {sched.get_last_lr()[0]:.2e}  {time.perf_counter() - te:.1f} s"
        )

    net.eval()
    p_fbp, p_net = evaluate_ct_unet(net, v_in, v_gt)
    v128_in, v128_gt = ct_pairs(val_seeds, 128)
    p128_fbp, p128_net = evaluate_ct_unet(net, v128_in, v128_gt)
    log(f"final: val PSNR at 256: FBP {p_fbp:.2f} dB, net {p_net:.2f} dB; at 128: FBP {p128_fbp:.2f} dB, net {p128_net:.2f} dB")
    card = {
        "model": {"class": "denoisers.unet.CTUNet", "kwargs": model_kwargs, "n_parameters": sum(p.numel() for p in net.parameters())},
        "task": "post-processing of parallel-beam CT FBP images (graphLa+Psi 'Net'): FBP image -> clean image",
        "data": {
            "phantom": "recon.phantoms.coule_like(size, seed)",
            "image_size": size,
            "geometry": f"ParallelBeamCT, {CT_N_VIEWS} views over [0, {CT_LAST_ANGLE_DEG:g}] deg (torch.linspace), "
            f"{CT_N_DETECTORS[size]} detector bins, numba backend",
            "noise": f"add_relative_noise(A x, {CT_NOISE_LEVEL}, seed=image seed): ||e|| = {CT_NOISE_LEVEL} ||A x||",
            "input": "ParallelBeamCT.fbp(y, filter='ram-lak'), float32",
            "target": "ground-truth image",
            "train_seeds": [train_seeds.start, train_seeds.stop - 1],
            "val_seeds": [val_seeds.start, val_seeds.stop - 1],
            "pipeline": "denoisers.train.ct_pairs(seeds, size)",
            "training_patches": f"one random {c}x{c} crop per training image per epoch (seeded generator)",
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
            "metric": "mean PSNR in dB over the held-out images, data_range 1, output not clipped (recon.metrics.psnr)",
            "seeds": [val_seeds.start, val_seeds.stop - 1],
            "psnr_fbp_256": p_fbp,
            "psnr_net_256": p_net,
            "psnr_fbp_128": p128_fbp,
            "psnr_net_128": p128_net,
            "note_128": f"same seeds at 128x128 with {CT_N_DETECTORS[128]} bins: generalisation of the net trained at 256",
        },
    }
    return net, card


def _build_mimo_unet3d(widths: Sequence[int] = (16, 32, 64)) -> torch.nn.Module:
    from denoisers.unet3d import UNet3D  # noqa: PLC0415

    return UNet3D(widths=widths)


def _train_mimo_unet3d(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    from recon.phantoms import MIMO_SCENE_SHAPE  # noqa: PLC0415

    shape = MIMO_SCENE_SHAPE
    torch.manual_seed(args.seed)
    model_kwargs = {"widths": list(args.widths)}
    net = _build_mimo_unet3d(**model_kwargs)
    crop = tuple(args.crop_shape)
    if any(c < net.stride or c > n or c % net.stride for c, n in zip(crop, shape)):
        raise ValueError(f"--crop-shape: expected 3 multiples of {net.stride} no larger than {shape}, received {crop}")

    train_seeds = range(0, args.n_train)
    val_seeds = range(MIMO_VAL_FIRST_SEED, MIMO_VAL_FIRST_SEED + args.n_val)
    t0 = time.perf_counter()
    x_gt = mimo_magnitudes(train_seeds, shape)
    v_gt = mimo_magnitudes(val_seeds, shape)
    log(f"data: {len(train_seeds)} train + {len(val_seeds)} val scenes of {shape} in {time.perf_counter() - t0:.1f} s")

    loss_epoch, history, p_val = _fit_denoiser(
        net, args, log, x_gt, crop, magnitude_noisy, lambda s: evaluate_mimo_unet3d(net, v_gt, s), MIMO_VAL_SIGMAS, True
    )
    card = {
        "model": {
            "class": "denoisers.unet3d.UNet3D",
            "kwargs": model_kwargs,
            "n_parameters": sum(p.numel() for p in net.parameters()),
        },
        "task": "denoising of Rician-noisy 3D magnitudes (deep prior of magnitude PnP MIMO imaging): (|x| + noise, sigma) -> |x|",
        "data": {
            "phantom": "|recon.phantoms.mimo_scene(shape, seed)|",
            "scene_shape": list(shape),
            "train_seeds": [train_seeds.start, train_seeds.stop - 1],
            "val_seeds": [val_seeds.start, val_seeds.stop - 1],
            "pipeline": "denoisers.train.mimo_magnitudes(seeds, shape)",
            "training_patches": f"one random {'x'.join(map(str, crop))} crop per training volume per epoch (seeded generator)",
            "noise": f"|clean + sigma (n1 + j n2) / sqrt 2| (Rician), sigma ~ U[0, {args.sigma_max:g}] per patch; the net gets sigma",
        },
        "training": _mse_training_card(args, loss_epoch, history, crop_shape=list(crop)),
        "validation": _sigma_validation_card(
            "volumes",
            val_seeds,
            f"denoisers.train.magnitude_noisy(clean, sigma, torch.Generator().manual_seed({MIMO_VAL_FIRST_SEED}))",
            "denoisers.train.evaluate_mimo_unet3d(net, mimo_magnitudes(seeds), sigma)",
            MIMO_VAL_SIGMAS,
            p_val,
        ),
    }
    return net, card


def _build_dncnn(width: int = 16, depth: int = 6) -> torch.nn.Module:
    from denoisers.dncnn import DnCNN  # noqa: PLC0415

    return DnCNN(width=width, depth=depth)


def _seeded_dncnn(args: argparse.Namespace, max_crop: int) -> tuple[torch.nn.Module, dict, int]:
    """Seed torch, build the DnCNN of ``--width`` / ``--depth`` and check ``--crop`` <= ``max_crop``."""
    torch.manual_seed(args.seed)
    model_kwargs = {"width": args.width, "depth": args.depth}
    c = args.crop
    if not 1 <= c <= max_crop:
        raise ValueError(f"--crop: expected a patch side in [1, {max_crop}], received {c}")
    return _build_dncnn(**model_kwargs), model_kwargs, c


def _train_ct_dncnn(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    net, model_kwargs, c = _seeded_dncnn(args, DNCNN_SIZE)

    train_seeds = range(0, args.n_train)
    val_seeds = range(DNCNN_VAL_FIRST_SEED, DNCNN_VAL_FIRST_SEED + args.n_val)
    t0 = time.perf_counter()
    x_gt = dynamic_frames(train_seeds)
    v_gt = dynamic_frames(val_seeds)
    log(f"data: {len(x_gt)} train + {len(v_gt)} val frames ({DNCNN_FRAMES} per object) in {time.perf_counter() - t0:.1f} s")

    loss_epoch, history, p_val = _fit_denoiser(
        net, args, log, x_gt, (c, c), gaussian_noisy, lambda s: evaluate_dncnn(net, v_gt, s), DNCNN_VAL_SIGMAS, False
    )
    card = {
        "model": {"class": "denoisers.dncnn.DnCNN", "kwargs": model_kwargs, "n_parameters": sum(p.numel() for p in net.parameters())},
        "task": "blind Gaussian denoising of single frames of dynamic objects (the RED denoiser of RED-PSM): frame + noise -> frame",
        "data": {
            "phantom": "recon.phantoms.dynamic_object(128, 8, seed, kind=DNCNN_KINDS[seed % 4]), "
            f"DNCNN_KINDS = {list(DNCNN_KINDS)}, every frame",
            "image_size": DNCNN_SIZE,
            "frames_per_object": DNCNN_FRAMES,
            "train_seeds": [train_seeds.start, train_seeds.stop - 1],
            "val_seeds": [val_seeds.start, val_seeds.stop - 1],
            "pipeline": "denoisers.train.dynamic_frames(seeds)",
            "training_patches": f"one random {c}x{c} crop per training frame per epoch (seeded generator)",
            "noise": f"clean + sigma N(0, 1), sigma ~ U[0, {args.sigma_max:g}] per patch; the net does not get sigma",
        },
        "training": _mse_training_card(args, loss_epoch, history, crop=c),
        "validation": _sigma_validation_card(
            "frames",
            val_seeds,
            f"denoisers.train.gaussian_noisy(clean, sigma, torch.Generator().manual_seed({DNCNN_VAL_FIRST_SEED}))",
            "denoisers.train.evaluate_dncnn(net, dynamic_frames(seeds), sigma)",
            DNCNN_VAL_SIGMAS,
            p_val,
        ),
    }
    return net, card


def _hvae_pool_card() -> dict:
    """The card entries describing the image pool of :func:`hvae_pool` (``hvae``, ``dncnn_natural``)."""
    return {
        "natural_images": f"skimage.data {list(HVAE_TRAIN_IMAGES)} via denoisers.train.hvae_image (gray, [0, 1])",
        "held_out_images": list(HVAE_HELD_OUT_IMAGES),
        "procedural": f"recon.phantoms.coule_like({HVAE_PROCEDURAL_SIZE}, seed) and "
        f"denoisers.train.hvae_texture({HVAE_PROCEDURAL_SIZE}, seed)",
    }


def _train_dncnn_natural(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    net, model_kwargs, c = _seeded_dncnn(args, DNCNN_NATURAL_PATCH)
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

    loss_epoch, history, p_val = _fit_denoiser(
        net, args, log, x_gt, (c, c), gaussian_noisy, lambda s: evaluate_dncnn(net, v_gt, s), DNCNN_VAL_SIGMAS, False
    )
    card = {
        "model": {"class": "denoisers.dncnn.DnCNN", "kwargs": model_kwargs, "n_parameters": sum(p.numel() for p in net.parameters())},
        "task": "blind Gaussian denoising of grayscale natural-like images (the PnP-ADMM / RED denoiser of the PnP-HVAE demo): "
        "image + noise -> image",
        "data": {
            **_hvae_pool_card(),
            "train_seeds": [train_seeds.start, train_seeds.stop - 1],
            "val_seeds": [val_seeds.start, val_seeds.stop - 1],
            "pipeline": f"denoisers.train.natural_patches(train_seeds, {args.patches}, seed={args.seed + 1})",
            "training_patches": f"one random {c}x{c} crop per {DNCNN_NATURAL_PATCH}x{DNCNN_NATURAL_PATCH} clean patch per epoch "
            "(seeded generator)",
            "noise": f"clean + sigma N(0, 1), sigma ~ U[0, {args.sigma_max:g}] per patch; the net does not get sigma",
        },
        "training": _mse_training_card(args, loss_epoch, history, crop=c, patches=args.patches),
        "validation": _sigma_validation_card(
            "validation tiles",
            val_seeds,
            f"denoisers.train.gaussian_noisy(clean, sigma, torch.Generator().manual_seed({DNCNN_VAL_FIRST_SEED}))",
            f"denoisers.train.evaluate_dncnn(net, hvae_tiles(coule + texture images of hvae_pool(seeds, natural=()), {HVAE_CROP}), sigma)",
            DNCNN_VAL_SIGMAS,
            p_val,
        ),
    }
    return net, card


def _build_hvae(
    widths: Sequence[int] = (32, 64, 96, 128),
    z_channels: int = 8,
    strides: Sequence[int] = (8, 4, 2),
    enc_blocks: int = 2,
    dec_blocks: int = 2,
    gamma: float = 5.0 / 255.0,
) -> torch.nn.Module:
    from denoisers.hvae import HVAE  # noqa: PLC0415

    return HVAE(widths=widths, z_channels=z_channels, strides=strides, enc_blocks=enc_blocks, dec_blocks=dec_blocks, gamma=gamma)


def _hvae_schedule(opt: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear learning-rate warm-up over ``min(HVAE_LR_WARMUP_STEPS, total_steps // 10)`` steps, then cosine decay to 0."""
    warm = max(1, min(HVAE_LR_WARMUP_STEPS, total_steps // 10))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _train_hvae(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    if not args.gamma > 0.0:
        raise ValueError(f"--gamma: expected a positive decoder std, received {args.gamma}")
    if args.patches < 1 or args.kl_warmup < 0:
        raise ValueError(f"--patches/--kl-warmup: expected >= 1 and >= 0, received {args.patches}, {args.kl_warmup}")
    torch.manual_seed(args.seed)
    model_kwargs = {
        "widths": list(args.widths),
        "z_channels": args.z_channels,
        "strides": list(HVAE_STRIDES),
        "enc_blocks": HVAE_ENC_BLOCKS,
        "dec_blocks": HVAE_DEC_BLOCKS,
        "gamma": args.gamma,
    }
    net = _build_hvae(**model_kwargs)
    c = args.crop
    if c % net.stride or not net.stride <= c <= HVAE_MAX_CROP:
        raise ValueError(f"--crop: expected a multiple of {net.stride} in [{net.stride}, {HVAE_MAX_CROP}], received {c}")
    n_params = sum(p.numel() for p in net.parameters())

    train_seeds = range(0, args.n_train)
    val_seeds = range(HVAE_VAL_FIRST_SEED, HVAE_VAL_FIRST_SEED + args.n_val)
    t0 = time.perf_counter()
    pool = hvae_pool(train_seeds)
    val_pool = hvae_pool(val_seeds, natural=())
    val_tiles = hvae_tiles(val_pool["coule"] + val_pool["texture"], c)
    held_out = {name: hvae_tiles([hvae_image(name)], c) for name in HVAE_HELD_OUT_IMAGES}
    held_tiles = torch.cat(list(held_out.values()))  # = hvae_tiles([hvae_image(n) for n in HVAE_HELD_OUT_IMAGES], c)
    log(
        f"data: {len(pool['natural'])} scikit-image + {len(train_seeds)} COULE-like + {len(train_seeds)} texture training "
        f"images, {len(val_tiles)} validation and {len(held_tiles)} held-out {c}x{c} tiles in {time.perf_counter() - t0:.1f} s; "
        f"{n_params} parameters"
    )

    d = c * c
    steps_per_epoch = math.ceil(args.patches / args.batch_size)
    total_steps = args.epochs * steps_per_epoch
    warm_steps = args.kl_warmup * steps_per_epoch
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = _hvae_schedule(opt, total_steps)
    gen = torch.Generator().manual_seed(args.seed)  # patches
    zgen = torch.Generator().manual_seed(args.seed + 1)  # posterior noise of the ELBO
    history = []
    step, skipped = 0, 0
    train_bpd = float("nan")
    for epoch in range(1, args.epochs + 1):
        te = time.perf_counter()
        net.train()
        patches = hvae_patches(pool, args.patches, c, gen)
        sums = {"bpd": 0.0, "loss": 0.0, "recon": 0.0, "kl": torch.zeros(net.n_levels, dtype=torch.float64)}
        norms = []
        for k in range(0, args.patches, args.batch_size):
            xb = patches[k : k + args.batch_size]
            kl_weight = min(1.0, (step + 1) / warm_steps) if warm_steps else 1.0
            s = net.elbo(xb, generator=zgen)
            loss = (s["recon"] + kl_weight * s["kl"].sum(1)).mean() / d  # nats per dim
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), HVAE_GRAD_CLIP))
            if math.isfinite(norm) and math.isfinite(loss.item()):
                opt.step()
                norms.append(norm)
            else:
                skipped += 1
            sched.step()
            step += 1
            b = len(xb)
            sums["bpd"] += float(s["bits_per_dim"].detach().sum())
            sums["loss"] += loss.item() * b
            sums["recon"] += float(s["recon"].detach().sum()) / (d * math.log(2))
            sums["kl"] += s["kl"].detach().double().sum(0) / (d * math.log(2))
        n = args.patches
        train_bpd = sums["bpd"] / n
        val = evaluate_hvae(net, val_tiles)
        entry = {
            "epoch": epoch,
            "train_bits_per_dim": train_bpd,
            "train_recon_bits_per_dim": sums["recon"] / n,
            "train_kl_bits_per_dim": (sums["kl"] / n).tolist(),
            "train_loss_nats_per_dim": sums["loss"] / n,
            "kl_weight": kl_weight,
            "grad_norm_median": float(torch.tensor(norms).median()) if norms else float("nan"),
            "skipped_steps": skipped,
            "val_bits_per_dim": val["bits_per_dim"],
            "val_psnr_recon": val["psnr_recon"],
        }
        history.append(entry)
        kl_txt = " ".join(f"{v:.3f}" for v in entry["train_kl_bits_per_dim"])
        log(
            f"epoch {epoch:3d}/{args.epochs}  train -ELBO {train_bpd:.4f} bits/dim (recon {entry['train_recon_bits_per_dim']:.4f} "
            f"+ KL [{kl_txt}])  loss {entry['train_loss_nats_per_dim']:.4f} nats/dim (KL weight {kl_weight:.2f})  "
            f"val {val['bits_per_dim']:.4f} bits/dim, recon PSNR {val['psnr_recon']:.2f} dB  |grad| {entry['grad_norm_median']:.1f}  "
            f"skipped {skipped}  lr {sched.get_last_lr()[0]:.2e}  {time.perf_counter() - te:.1f} s"
        )

    net.eval()
    val = evaluate_hvae(net, val_tiles)
    held_terms = hvae_elbo_terms(net, held_tiles)
    held = _mean_terms(held_terms)
    bounds = torch.cumsum(torch.tensor([0] + [len(t) for t in held_out.values()]), 0).tolist()
    per_image = {name: _mean_terms(held_terms, slice(a, b))["bits_per_dim"] for name, a, b in zip(held_out, bounds, bounds[1:])}
    log(
        f"final: held-out {held['bits_per_dim']:.4f} bits/dim (recon PSNR {held['psnr_recon']:.2f} dB; "
        + ", ".join(f"{k} {v:.3f}" for k, v in per_image.items())
        + f"), validation {val['bits_per_dim']:.4f} bits/dim"
    )
    card = {
        "model": {"class": "denoisers.hvae.HVAE", "kwargs": model_kwargs, "n_parameters": n_params},
        "task": "hierarchical VAE of grayscale images in [0, 1] (the prior of PnP-HVAE), Gaussian decoder of fixed std gamma",
        "data": {
            **_hvae_pool_card(),
            "train_seeds": [train_seeds.start, train_seeds.stop - 1],
            "val_seeds": [val_seeds.start, val_seeds.stop - 1],
            "mix": dict(HVAE_MIX),
            "pipeline": "denoisers.train.hvae_patches(hvae_pool(train_seeds), patches, crop, generator seeded with --seed)",
            "training_patches": f"{args.patches} fresh {c}x{c} patches per epoch: kind by HVAE_MIX, a uniform image of that kind, "
            f"a square window of side round({c} / s), s ~ U[{HVAE_MIN_SCALE}, 1], resized to {c}x{c} (bilinear, antialiased), "
            "one of the 8 flips / 90-degree rotations",
        },
        "training": {
            "loss": "negative ELBO in nats per dimension, recon + w * sum_l KL_l, one posterior sample, analytic KL; "
            "w rises linearly from 0 to 1 over the first kl_warmup_epochs (per step)",
            "optimizer": "Adam",
            "lr": args.lr,
            "lr_schedule": f"linear warm-up over min({HVAE_LR_WARMUP_STEPS}, steps // 10) steps, then cosine to 0 (per step)",
            "grad_clip": f"global norm {HVAE_GRAD_CLIP:g}; steps with a non-finite loss or gradient skipped",
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "crop": c,
            "patches_per_epoch": args.patches,
            "kl_warmup_epochs": args.kl_warmup,
            "skipped_steps": skipped,
            "final_train_bits_per_dim": train_bpd,
            "history": history,
        },
        "validation": {
            "metric": "mean -ELBO in bits per dimension (HVAE.elbo, + log2(255): per 8-bit pixel value) over the "
            f"non-overlapping {c}x{c} tiles of the COULE-like and texture images of the validation seeds",
            "pipeline": f"denoisers.train.evaluate_hvae(net, hvae_tiles(images, {c}), seed={HVAE_EVAL_SEED})",
            **val,
        },
        "held_out": {
            "images": list(HVAE_HELD_OUT_IMAGES),
            "metric": "mean -ELBO in bits per dimension (+ log2(255)) over every non-overlapping "
            f"{c}x{c} tile of the held-out scikit-image images at native size, one posterior sample per tile",
            "pipeline": f"denoisers.train.evaluate_hvae(net, hvae_tiles([hvae_image(n) for n in HVAE_HELD_OUT_IMAGES], {c}), "
            f"seed={HVAE_EVAL_SEED})",
            "tile": c,
            "n_tiles": len(held_tiles),
            **held,
            "bits_per_dim_per_image": per_image,
        },
    }
    return net, card


REGISTRY: dict[str, TrainSpec] = {
    "ct_unet": TrainSpec(
        description="residual U-Net post-processing of 256x256 parallel-beam FBP images, 2 % noise",
        build=_build_ct_unet,
        train=_train_ct_unet,
        defaults={
            "epochs": 36,
            "seed": 0,
            "batch_size": 8,
            "lr": 1e-3,
            "n_train": 400,
            "n_val": 8,
            "crop": 96,
            "width": 16,
            "levels": 4,
        },
        val_first_seed=CT_VAL_FIRST_SEED,
    ),
    "mimo_unet3d": TrainSpec(
        description="3D U-Net Gaussian denoiser of MIMO scene magnitudes (25x25x49), noise std in [0, 0.2]",
        build=_build_mimo_unet3d,
        train=_train_mimo_unet3d,
        defaults={
            "epochs": 24,
            "seed": 0,
            "batch_size": 16,
            "lr": 1e-3,
            "n_train": 2048,
            "n_val": 16,
            "crop_shape": (16, 16, 32),
            "sigma_max": 0.2,
            "widths": (16, 32, 64),
        },
        val_first_seed=MIMO_VAL_FIRST_SEED,
    ),
    "ct_dncnn": TrainSpec(
        description="DnCNN (6 hidden layers of 16 channels) blind Gaussian denoiser of 128x128 dynamic-object frames, noise std in [0, 0.1]",
        build=_build_dncnn,
        train=_train_ct_dncnn,
        defaults={
            "epochs": 20,
            "seed": 0,
            "batch_size": 16,
            "lr": 1e-3,
            "n_train": 1024,
            "n_val": 3,
            "crop": 64,
            "sigma_max": 0.1,
            "width": 16,
            "depth": 6,
        },
        val_first_seed=DNCNN_VAL_FIRST_SEED,
    ),
    "dncnn_natural": TrainSpec(
        description="DnCNN (8 hidden layers of 32 channels) blind Gaussian denoiser of grayscale natural-like images "
        "(the hvae patch pool, held-out images excluded), noise std in [0, 0.1]; the PnP-ADMM / RED denoiser of PnP-HVAE's demo",
        build=_build_dncnn,
        train=_train_dncnn_natural,
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
    ),
    "hvae": TrainSpec(
        description="hierarchical VAE (3 latent levels at strides 8, 4, 2; Gaussian decoder, gamma = 5/255) of "
        "64x64 grayscale patches: scikit-image photos, COULE-like images and textures; the PnP-HVAE prior",
        build=_build_hvae,
        train=_train_hvae,
        defaults={
            "epochs": 40,
            "seed": 0,
            "batch_size": 16,
            "lr": 1e-3,
            "n_train": 256,
            "n_val": 2,
            "crop": HVAE_CROP,
            "patches": 2000,
            "kl_warmup": 2,
            "widths": (32, 64, 96, 128),
            "z_channels": 8,
            "gamma": 5.0 / 255.0,
        },
        val_first_seed=HVAE_VAL_FIRST_SEED,
    ),
}


# ----------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m denoisers.train",
        description="Train a shipped network and write data/weights/NAME.pt and NAME.json. "
        "Defaults per name: " + "; ".join(f"{k}: {v.defaults}" for k, v in REGISTRY.items()),
    )
    p.add_argument("name", choices=sorted(REGISTRY), help="model to train")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--n-train", dest="n_train", type=int, help="number of training images or objects (seeds 0..n-1)")
    p.add_argument("--n-val", dest="n_val", type=int, help="number of validation images or objects")
    p.add_argument("--crop", type=int, help="training patch side")
    p.add_argument("--width", type=int, help="channels (U-Net: at the finest level)")
    p.add_argument("--levels", type=int, help="resolution levels")
    p.add_argument("--depth", type=int, help="hidden convolution layers")
    p.add_argument("--widths", type=int, nargs="+", help="channels per resolution level, finest first")
    p.add_argument("--crop-shape", dest="crop_shape", type=int, nargs=3, help="3D training patch (Nx Ny Nz)")
    p.add_argument("--sigma-max", dest="sigma_max", type=float, help="training noise std drawn from U[0, sigma_max]")
    p.add_argument("--patches", type=int, help="training patches per epoch (hvae); clean training patches (dncnn_natural)")
    p.add_argument("--kl-warmup", dest="kl_warmup", type=int, help="epochs of linear KL weight warm-up from 0 to 1 (hvae)")
    p.add_argument("--z-channels", dest="z_channels", type=int, help="channels of every latent level (hvae)")
    p.add_argument("--gamma", type=float, help="fixed std of the Gaussian decoder, image units (hvae)")
    p.add_argument("--threads", type=int, default=2, help="torch and numba threads (default 2; use 1 on a busy machine)")
    p.add_argument("--out-dir", dest="out_dir", type=Path, default=WEIGHTS_DIR, help="where NAME.pt/.json go")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    """Command-line entry point; returns the card that was written."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    spec = REGISTRY[args.name]
    not_applicable = [k for k, v in vars(args).items() if v is not None and k not in spec.defaults]
    not_applicable = [k for k in not_applicable if k not in ("name", "threads", "out_dir")]
    if not_applicable:
        options = ", ".join("--" + k.replace("_", "-") for k in not_applicable)
        parser.error(f"{options}: not an option of {args.name} (its options: {', '.join(spec.defaults)})")
    for key, value in spec.defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    from recon.phantoms import TEST_SEEDS  # noqa: PLC0415

    if "sigma_max" in spec.defaults and not args.sigma_max > 0.0:
        raise ValueError(f"--sigma-max: expected a positive noise level, received {args.sigma_max}")
    if args.n_train > spec.val_first_seed or spec.val_first_seed + args.n_val > TEST_SEEDS.start:
        raise ValueError(
            f"--n-train/--n-val: training seeds 0..n_train-1 must stay below the validation seeds "
            f"{spec.val_first_seed}.., and those below {TEST_SEEDS.start}; received {args.n_train}, {args.n_val}"
        )
    torch.set_num_threads(args.threads)
    try:
        import numba  # noqa: PLC0415  (the CT projector's threads)

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {args.name}: {msg}", flush=True)

    log(f"training with {json.dumps({k: getattr(args, k) for k in spec.defaults})}")
    t0 = time.perf_counter()
    net, fields = spec.train(args, log)
    wall = time.perf_counter() - t0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    pt = args.out_dir / f"{args.name}.pt"
    torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, pt)
    card = {
        "name": args.name,
        "description": spec.description,
        "command": "python -m denoisers.train " + " ".join(argv),
        "seed": args.seed,
        **fields,
        "weights_file": pt.name,
        "weights_bytes": pt.stat().st_size,
        "sha256": sha256_file(pt),
        "training_wall_time_s": round(wall, 1),
        "torch_threads": args.threads,
        "torch_version": torch.__version__,
        "python_version": sys.version.split()[0],
    }
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(card, indent=2) + "\n")
    log(f"wrote {pt} ({card['weights_bytes']} bytes, sha256 {card['sha256'][:12]}...) in {wall:.0f} s")
    return card


if __name__ == "__main__":
    main()
