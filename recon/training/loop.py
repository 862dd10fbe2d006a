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
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from recon.metrics import psnr

__all__ = [
    "SHARED_DEFAULTS",
    "TrainSpec",
    "adam_cosine",
    "run_epoch",
    "noisy_patch_batches",
    "dihedral",
    "psnr_before_after",
    "fit_denoiser",
    "Checkpoint",
    "CHECKPOINT_EVERY_S",
    "model_card",
    "mse_training_card",
    "sigma_validation_card",
]


SHARED_DEFAULTS = {"seed": 0, "lr": 1e-3}
"""Defaults every recipe shares: the seed of every draw and Adam's initial learning rate."""


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """One trainable model: how to build it, its default hyperparameters and its training loop.

    ``build(**model_kwargs)`` returns the untrained module; ``train(args, log)`` trains it, where
    ``args`` are the parsed options of ``python -m recon.training NAME`` with every default filled
    in and ``log`` prints progress, and returns ``(model, card_fields)``, the card sections the
    recipe adds (model, task, data, training, validation, ...); ``defaults`` fill the command-line options (an option
    without a default here does not apply to this model). Training images use seeds
    ``0 .. n_train-1``, validation images ``val_first_seed .. val_first_seed+n_val-1``; a recipe
    that reads image sets instead of seeds has ``val_first_seed=None`` (``n_train``/``n_val`` then count images).
    """

    description: str
    build: Callable[..., torch.nn.Module]
    train: Callable[[argparse.Namespace, Callable[[str], None]], tuple[torch.nn.Module, dict]]
    defaults: dict
    val_first_seed: int | None


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
    clean: torch.Tensor,
    crop: Sequence[int],
    batch_size: int,
    sigma_max: float,
    gen: torch.Generator,
    noisy_fn: Callable,
    *,
    augment: bool = False,
) -> Iterator[tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """One epoch of denoiser training batches: a random crop and noise level per clean sample.

    Draws, in this order from ``gen``: the sample order, one crop corner per sample, one
    ``sigma ~ U[0, sigma_max]`` per sample, with ``augment`` one of the 8 flips / rotations by
    multiples of 90 degrees per sample (2D square crops only); then, batch by batch (lazily), the noise of
    ``noisy_fn(patches, sigma, gen)`` with ``sigma`` shaped to broadcast over each patch.

    Args:
        clean: clean samples (n, 1, *spatial).
        crop: patch shape, one size per spatial axis.
        batch_size: patches per batch.
        sigma_max: largest noise standard deviation.
        gen: the seeded generator of every draw.
        noisy_fn: ``(clean, sigma, gen) -> noisy``, e.g. :func:`recon.training.data.gaussian_noisy`.
        augment: draw a random flip / rotation per patch (the patches must be square 2D crops).

    Yields:
        ``(noisy, sigma), clean_patches``: (b, 1, *crop), (b,) and (b, 1, *crop).
    """
    n = len(clean)
    perm = torch.randperm(n, generator=gen)
    corners = torch.stack([torch.randint(0, s - c + 1, (n,), generator=gen) for s, c in zip(clean.shape[2:], crop)], dim=1)
    sigmas = sigma_max * torch.rand(n, generator=gen)
    if augment and (len(crop) != 2 or crop[0] != crop[1]):
        raise ValueError(f"crop: augmentation needs a square 2D crop, received {tuple(crop)}")
    moves = torch.randint(0, 8, (n,), generator=gen) if augment else torch.zeros(n, dtype=torch.long)
    for k in range(0, n, batch_size):
        idx = perm[k : k + batch_size].tolist()
        boxes = zip(idx, corners[idx].tolist())
        patches = torch.stack([clean[(i, slice(None), *(slice(a, a + c) for a, c in zip(box, crop)))] for i, box in boxes])
        if augment:
            patches = torch.stack([dihedral(p, int(m)) for p, m in zip(patches, moves[idx])])
        sig = sigmas[idx]
        yield (noisy_fn(patches, sig.reshape(-1, *[1] * (patches.ndim - 1)), gen), sig), patches


def dihedral(patch: torch.Tensor, move: int) -> torch.Tensor:
    """One of the 8 symmetries of the square: rotation by ``move % 4`` quarter turns, then a left-right flip if ``move >= 4``."""
    out = torch.rot90(patch, move % 4, dims=(-2, -1))
    return out.flip(-1) if move >= 4 else out


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
    *,
    augment: bool = False,
) -> tuple[float, list[dict], list[tuple[float, float]]]:
    """The MSE training loop of the denoisers trained on noisy patches (``mimo_unet3d``, ``ct_dncnn``, ``dncnn_natural``).

    Adam with cosine decay (:func:`adam_cosine`) over ``args.epochs`` epochs of
    :func:`noisy_patch_batches` (generator seeded with ``args.seed``); after each epoch
    ``evaluate(sigma)`` gives the validation ``(psnr_noisy, psnr_net)`` at every ``sigmas``.

    With ``args.checkpoint`` set (a path), the whole state (network, optimizer, scheduler,
    generator, history, the hyperparameters) is written there after an epoch once
    :data:`CHECKPOINT_EVERY_S` seconds have passed since the last write, and after the last
    epoch; with ``args.resume`` the loop first loads it and continues, so an interrupted run
    ends with the same weights as an uninterrupted one.

    Args:
        net: the untrained network; called as ``net(noisy, sigma)`` when ``gets_sigma``, else ``net(noisy)``.
        args: parsed options (epochs, seed, batch_size, lr, sigma_max; optional checkpoint, resume).
        log: progress printer.
        clean: clean training samples (n, 1, *spatial).
        crop: training patch shape.
        noisy_fn: ``(clean, sigma, gen) -> noisy``.
        evaluate: validation at one noise level.
        sigmas: validation noise levels.
        gets_sigma: whether the network takes the noise level.
        augment: random flips / rotations of the patches (:func:`noisy_patch_batches`).

    Returns:
        ``(final_train_mse, history, p_val)``: the last epoch's mean loss, one dict per epoch and
        the final ``(psnr_noisy, psnr_net)`` per validation sigma.

    Raises:
        ValueError: ``args.resume`` without a checkpoint file, or a checkpoint of other hyperparameters.
    """
    opt, sched = adam_cosine(net, args, len(clean))
    gen = torch.Generator().manual_seed(args.seed)
    ckpt = Checkpoint(getattr(args, "checkpoint", None), net, opt, sched, gen, args)
    history = ckpt.load() if getattr(args, "resume", False) else []
    if history:
        log(f"resumed from {ckpt.path} after epoch {len(history)}")
    loss_epoch = history[-1]["train_mse"] if history else float("nan")
    for epoch in range(len(history) + 1, args.epochs + 1):
        te = time.perf_counter()
        net.train()
        batches = noisy_patch_batches(clean, crop, args.batch_size, args.sigma_max, gen, noisy_fn, augment=augment)
        if not gets_sigma:
            batches = (((noisy,), target) for (noisy, _), target in batches)
        loss_epoch = run_epoch(net, opt, sched, batches, lambda out, target: (out - target).square().mean())
        p_val = [evaluate(s) for s in sigmas]
        seconds = time.perf_counter() - te
        history.append({"epoch": epoch, "train_mse": loss_epoch, "val_psnr_net": [p for _, p in p_val], "seconds": round(seconds, 1)})
        scores = ", ".join(f"sigma {s:g}: {p:.2f} dB (noisy {q:.2f})" for s, (q, p) in zip(sigmas, p_val))
        log(f"epoch {epoch:3d}/{args.epochs}  train MSE {loss_epoch:.2e}  val PSNR net {scores}  lr {sched.get_last_lr()[0]:.2e}  {seconds:.1f} s")
        ckpt.save(history, final=epoch == args.epochs)
    p_val = [evaluate(s) for s in sigmas]
    scores = ", ".join(f"sigma {s:g}: noisy {q:.2f} dB, net {p:.2f} dB" for s, (q, p) in zip(sigmas, p_val))
    log(f"final: val PSNR {scores}")
    return loss_epoch, history, p_val


CHECKPOINT_EVERY_S = 180.0
"""Seconds between two checkpoint writes of :func:`fit_denoiser` (the last epoch is always written)."""


class Checkpoint:
    """The resumable state of one :func:`fit_denoiser` run, written atomically to ``path`` (``None``: never written).

    Holds the network, optimizer, scheduler and generator states, the epoch history and the
    hyperparameters ``args`` of the run, which a resumed run must match.
    """

    def __init__(self, path, net, opt, sched, gen: torch.Generator, args: argparse.Namespace):
        self.path = None if path is None else Path(path)
        self.net, self.opt, self.sched, self.gen = net, opt, sched, gen
        self.config = {k: v for k, v in sorted(vars(args).items()) if k not in _RUN_OPTIONS}
        self.last = time.perf_counter()

    def save(self, history: list[dict], *, final: bool) -> None:
        """Write the state if :data:`CHECKPOINT_EVERY_S` have passed since the last write, or when ``final``."""
        if self.path is None or not (final or time.perf_counter() - self.last >= CHECKPOINT_EVERY_S):
            return
        state = {
            "config": self.config,
            "history": history,
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "gen": self.gen.get_state(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".part")
        torch.save(state, tmp)
        os.replace(tmp, self.path)
        self.last = time.perf_counter()

    def load(self) -> list[dict]:
        """Restore the state from ``path``; returns the history of the epochs done."""
        if self.path is None or not self.path.is_file():
            raise ValueError(f"--resume: expected a checkpoint file at --checkpoint, received {self.path}")
        state = torch.load(self.path, weights_only=False)
        # An option the checkpoint does not name was added to the CLI later: it matches when unset (None).
        diff = {k: (state["config"].get(k), self.config.get(k)) for k in {*state["config"], *self.config}}
        diff = {k: pair for k, pair in diff.items() if pair[0] != pair[1]}
        if diff:
            raise ValueError(f"--resume: the checkpoint {self.path} was written with other options (checkpoint, now): {diff}")
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.gen.set_state(state["gen"])
        return state["history"]


_RUN_OPTIONS = ("checkpoint", "resume", "threads", "out_dir")
"""Options that may differ between a run and its resumption."""


def model_card(net: torch.nn.Module, model_kwargs: dict, **extra: object) -> dict:
    """The ``model`` section of a card: the class path, its keyword arguments, the parameter count and ``extra`` entries."""
    cls = type(net)
    n_parameters = sum(p.numel() for p in net.parameters())
    return {"class": f"{cls.__module__}.{cls.__name__}", "kwargs": model_kwargs, "n_parameters": n_parameters, **extra}


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
