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

Training is seeded and deterministic on CPU (``torch.manual_seed``,
``torch.use_deterministic_algorithms(True)``, a fixed data order from a seeded generator), so
re-running the command reproduces the card's numbers up to floating-point differences between
machines.

Example:
    $ python -m denoisers.train ct_unet --epochs 36 --seed 0
    $ python -m denoisers.train mimo_unet3d --threads 1
    $ python -m denoisers.train ct_dncnn --threads 1
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


def _build_ct_dncnn(width: int = 16, depth: int = 6) -> torch.nn.Module:
    from denoisers.dncnn import DnCNN  # noqa: PLC0415

    return DnCNN(width=width, depth=depth)


def _train_ct_dncnn(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(args.seed)
    model_kwargs = {"width": args.width, "depth": args.depth}
    net = _build_ct_dncnn(**model_kwargs)
    c = args.crop
    if not 1 <= c <= DNCNN_SIZE:
        raise ValueError(f"--crop: expected a patch side in [1, {DNCNN_SIZE}], received {c}")

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
        build=_build_ct_dncnn,
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
