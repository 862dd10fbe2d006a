"""The training loop shared by the recipes of :mod:`recon.training`, and the card sections it fills.

A recipe is a :class:`TrainSpec`: the network class, default hyperparameters and a ``train(args,
log)`` function. The denoisers trained on noisy patches (``mimo_unet3d``, ``ct_dncnn``,
``dncnn_natural``) share :func:`fit_denoiser`: Adam with a per-step cosine decay to 0
(:func:`adam_cosine`) over epochs of :func:`noisy_patch_batches` (one random crop and one noise
level ``sigma ~ U[0, sigma_max]`` per clean sample, every draw from one seeded generator), with the
MSE loss; :func:`mse_training_card` and :func:`sigma_validation_card` write the matching card
sections.

Example:
    >>> loss, history, p_val = fit_denoiser(net, args, print, clean, (32, 32), gaussian_noisy,
    ...                                     lambda s: evaluate_dncnn(net, v_clean, s), (0.05,), False)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence

import torch

from recon.metrics import psnr

__all__ = [
    "TrainSpec",
    "adam_cosine",
    "run_epoch",
    "noisy_patch_batches",
    "psnr_before_after",
    "fit_denoiser",
    "mse_training_card",
    "sigma_validation_card",
]


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


def adam_cosine(net: torch.nn.Module, args: argparse.Namespace, n_train: int) -> tuple:
    """Adam at ``args.lr`` with a per-step cosine decay to 0 over all ``args.epochs`` epochs."""
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(n_train / args.batch_size)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)


def run_epoch(net: torch.nn.Module, opt, sched, batches, loss_fn: Callable) -> float:
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


def noisy_patch_batches(
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
        noisy_fn: ``(clean, sigma, gen) -> noisy``, e.g. :func:`recon.training.data.gaussian_noisy`.

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
def psnr_before_after(denoise: Callable, degraded: torch.Tensor, clean: torch.Tensor, batch: int) -> tuple[float, float]:
    """Mean PSNR (dB, data range 1, no clipping) of ``degraded`` and of ``denoise(degraded)``, in chunks of ``batch``."""
    out = torch.cat([denoise(degraded[i : i + batch]) for i in range(0, len(degraded), batch)])
    return float(psnr(degraded, clean, 1.0).mean()), float(psnr(out, clean, 1.0).mean())


def fit_denoiser(
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

    Adam with cosine decay (:func:`adam_cosine`) over ``args.epochs`` epochs of
    :func:`noisy_patch_batches` (generator seeded with ``args.seed``); after each epoch
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
    opt, sched = adam_cosine(net, args, len(clean))
    gen = torch.Generator().manual_seed(args.seed)
    history = []
    loss_epoch = float("nan")
    for epoch in range(1, args.epochs + 1):
        te = time.perf_counter()
        net.train()
        batches = noisy_patch_batches(clean, crop, args.batch_size, args.sigma_max, gen, noisy_fn)
        if not gets_sigma:
            batches = (((noisy,), target) for (noisy, _), target in batches)
        loss_epoch = run_epoch(net, opt, sched, batches, lambda out, target: (out - target).square().mean())
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


def mse_training_card(args: argparse.Namespace, final_mse: float, history: list[dict], **patch: object) -> dict:
    """The ``training`` section of the card of a :func:`fit_denoiser` model (``patch``: its crop entry)."""
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


def sigma_validation_card(
    samples: str, seeds: range, noise: str, pipeline: str, sigmas: Sequence[float], p_val: Sequence[tuple[float, float]]
) -> dict:
    """The ``validation`` section of the card of a :func:`fit_denoiser` model (``samples``: "volumes", "frames")."""
    return {
        "metric": f"mean PSNR in dB over the held-out {samples}, data_range 1, output not clipped (recon.metrics.psnr)",
        "seeds": [seeds.start, seeds.stop - 1],
        "noise": noise,
        "pipeline": pipeline,
        "sigmas": list(sigmas),
        "psnr_noisy": [q for q, _ in p_val],
        "psnr_net": [p for _, p in p_val],
    }
