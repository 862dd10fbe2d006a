r"""The ``hvae`` recipe: :class:`denoisers.hvae.HVAE`, the hierarchical VAE prior of PnP-HVAE (3 latent
levels at strides 8, 4, 2 of 8 channels each, widths (32, 64, 96, 128), Gaussian decoder of fixed
std gamma = 5/255). Data (:func:`~recon.training.data.hvae_pool`,
:func:`~recon.training.data.hvae_patches`): each epoch draws ``patches`` fresh random ``crop x
crop`` patches, 60 % from the scikit-image photos :data:`~recon.training.data.HVAE_TRAIN_IMAGES`
(gray, [0, 1]), 20 % from COULE-like images (:func:`recon.phantoms.coule_like`, side 256) and 20 %
from procedural textures (:func:`~recon.training.data.hvae_texture`, side 256) of training seeds ``0
.. n_train-1``; a random downscaling by a factor in [1, 2] and one of the 8 flips / 90-degree
rotations augment every patch. The scikit-image images
:data:`~recon.training.data.HVAE_HELD_OUT_IMAGES` (camera, astronaut, moon, coins: the test images
of the PnP-HVAE and deblurring demos) are never trained on. Loss: the negative ELBO
(:meth:`denoisers.hvae.HVAE.elbo`, nats per dimension, one posterior sample) with the KL weight
rising linearly from 0 to 1 over the first ``kl_warmup`` epochs; Adam (lr 1e-3, linear warm-up over
100 steps, cosine decay to 0), gradient norm clipped at 200, non-finite steps skipped. Logged per
epoch: the train -ELBO in bits/dim with its reconstruction and per-level KL terms, and the
validation -ELBO on the 64x64 tiles of the COULE-like and texture images of seeds ``400000 ..
400000+n_val-1``. At the end the card gets the held-out -ELBO (bits/dim) over every non-overlapping
64x64 tile of the held-out images (:func:`evaluate_hvae`, posterior noise seeded with 0), per image
too. Cost of the default run: 40 epochs of 2000 patches = 5000 Adam steps of 16 64x64 patches at
about 0.66 s of CPU time each on one core (measured as process time), i.e. about 35-40 min with
``--threads 2`` on two otherwise idle cores and about 55 min with ``--threads 1``. ``brick`` (a
training image here) is only the tuning image of the deblurring demo, never one of its test images.

Example:
    $ python -m recon.training hvae
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch

from denoisers.hvae import HVAE
from recon.metrics import psnr
from recon.training.data import (
    HVAE_CROP,
    HVAE_HELD_OUT_IMAGES,
    HVAE_MIN_SCALE,
    HVAE_MIX,
    HVAE_VAL_FIRST_SEED,
    hvae_image,
    hvae_patches,
    hvae_pool,
    hvae_pool_card,
    hvae_tiles,
)
from recon.training.loop import SHARED_DEFAULTS, TrainSpec, model_card

__all__ = ["SPEC", "evaluate_hvae", "hvae_elbo_terms", "train"]

HVAE_EVAL_SEED = 0
HVAE_GRAD_CLIP = 200.0
HVAE_LR_WARMUP_STEPS = 100
HVAE_STRIDES = (8, 4, 2)
HVAE_ENC_BLOCKS = 2
HVAE_DEC_BLOCKS = 2
HVAE_MAX_CROP = 160  # largest multiple of the stride 8 that fits the smallest training image (text, 172 x 448)


@torch.no_grad()
def hvae_elbo_terms(
    model: torch.nn.Module, patches: torch.Tensor, seed: int = HVAE_EVAL_SEED, batch: int = 32
) -> dict[str, torch.Tensor]:
    """Per-patch negative ELBO terms in bits per dimension and reconstruction PSNR (see :func:`evaluate_hvae`).

    Returns:
        ``{"bits_per_dim": (n,), "recon_bits_per_dim": (n,), "kl_bits_per_dim": (n, L), "psnr_recon": (n,)}``.
    """
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


def _hvae_schedule(opt: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear learning-rate warm-up over ``min(HVAE_LR_WARMUP_STEPS, total_steps // 10)`` steps, then cosine decay to 0."""
    warm = max(1, min(HVAE_LR_WARMUP_STEPS, total_steps // 10))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """Train ``hvae`` as the module docstring says (the :attr:`~recon.training.loop.TrainSpec.train` protocol)."""
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
    net = HVAE(**model_kwargs)
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
        "model": model_card(net, model_kwargs),
        "task": "hierarchical VAE of grayscale images in [0, 1] (the prior of PnP-HVAE), Gaussian decoder of fixed std gamma",
        "data": {
            **hvae_pool_card(),
            "train_seeds": [train_seeds.start, train_seeds.stop - 1],
            "val_seeds": [val_seeds.start, val_seeds.stop - 1],
            "mix": dict(HVAE_MIX),
            "pipeline": "recon.training.data.hvae_patches(hvae_pool(train_seeds), patches, crop, generator seeded with --seed)",
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
            "pipeline": f"recon.training.hvae.evaluate_hvae(net, hvae_tiles(images, {c}), seed={HVAE_EVAL_SEED})",
            **val,
        },
        "held_out": {
            "images": list(HVAE_HELD_OUT_IMAGES),
            "metric": "mean -ELBO in bits per dimension (+ log2(255)) over every non-overlapping "
            f"{c}x{c} tile of the held-out scikit-image images at native size, one posterior sample per tile",
            "pipeline": f"recon.training.hvae.evaluate_hvae(net, hvae_tiles([hvae_image(n) for n in HVAE_HELD_OUT_IMAGES], {c}), "
            f"seed={HVAE_EVAL_SEED})",
            "tile": c,
            "n_tiles": len(held_tiles),
            **held,
            "bits_per_dim_per_image": per_image,
        },
    }
    return net, card


SPEC = TrainSpec(
    description="hierarchical VAE (3 latent levels at strides 8, 4, 2; Gaussian decoder, gamma = 5/255) of "
    "64x64 grayscale patches: scikit-image photos, COULE-like images and textures; the PnP-HVAE prior",
    build=HVAE,
    train=train,
    defaults={
        **SHARED_DEFAULTS,
        "epochs": 40,
        "batch_size": 16,
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
)
