r"""The ``hvae`` recipe: :class:`denoisers.hvae.HVAE`, the hierarchical VAE prior of PnP-HVAE (3 latent
levels at strides 8, 4, 2 of 8 channels each, widths (32, 64, 96, 128), Gaussian decoder of fixed
std gamma = 5/255), trained on photographs.

Data: the ``train400`` photographs (the BSD400 training set of the DnCNN paper, gray 180x180) under
``--data-dir`` (default :data:`recon.training.data.DATASETS_DIR`), the first ``n_train`` in
file-name order. Each epoch draws ``patches`` fresh random ``crop x crop`` patches
(:func:`~recon.training.data.hvae_patches` with the one kind ``"photo"``): a uniform image, a
square window of side ``round(crop / s)``, ``s ~ U[0.5, 1]``, resized to ``crop x crop``
(bilinear, antialiased) and one of the 8 flips / 90-degree rotations. Loss: the negative ELBO
(:meth:`denoisers.hvae.HVAE.elbo`, nats per dimension, one posterior sample) with the KL weight
rising linearly from 0 to 1 over the first ``kl_warmup`` epochs; Adam (lr 1e-3, linear warm-up
over 100 steps, cosine decay to 0), gradient norm clipped at 200, non-finite steps skipped; one
seeded generator draws the patches and the posterior noise. Checkpointed every few minutes
(:class:`~recon.training.loop.Checkpoint`; ``--resume`` continues a run). Logged per epoch: the
train -ELBO in bits/dim with its reconstruction and per-level KL terms, and the -ELBO and the
encode-decode PSNR on the 64x64 tiles of the first ``n_val`` ``bsd68`` images. At the end the
card's ``test`` section gives the -ELBO (bits/dim) and the encode-decode PSNR at temperature 0
(``model(x)``: posterior means at every level, the ceiling of any estimate that is a decoder
mean) over every non-overlapping 64x64 tile of all 68 ``bsd68`` images (:func:`evaluate_hvae`,
posterior noise seeded with 0). BSD68 is never trained on.

Example:
    $ nohup python -m recon.training hvae --threads 1 > hvae.log 2>&1 &
    $ python -m recon.training hvae --threads 1 --resume    # after an interruption
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
    DATASETS_DIR,
    HVAE_CROP,
    HVAE_MIN_SCALE,
    file_list_sha256,
    hvae_patches,
    hvae_tiles,
    photo_set,
)
from recon.training.loop import SHARED_DEFAULTS, Checkpoint, TrainSpec, model_card

__all__ = ["SPEC", "evaluate_hvae", "hvae_elbo_terms", "train"]

HVAE_EVAL_SEED = 0
HVAE_GRAD_CLIP = 200.0
HVAE_LR_WARMUP_STEPS = 100
HVAE_STRIDES = (8, 4, 2)
HVAE_ENC_BLOCKS = 2
HVAE_DEC_BLOCKS = 2
HVAE_MAX_CROP = 160  # a window of side up to crop / 0.5 must fit (about) the 180 x 180 train400 images


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
    if not 1 <= args.n_train <= 400 or not 1 <= args.n_val <= 68:
        raise ValueError(f"--n-train/--n-val: expected 1..400 train400 and 1..68 bsd68 images, received {args.n_train}, {args.n_val}")
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

    t0 = time.perf_counter()
    train_images, train_files = photo_set("train400", args.data_dir)
    test_images, test_files = photo_set("bsd68", args.data_dir)
    train_images, train_files = train_images[: args.n_train], train_files[: args.n_train]
    pool = {"photo": train_images}
    val_tiles = hvae_tiles(test_images[: args.n_val], c)
    test_tiles = hvae_tiles(test_images, c)
    log(f"data: {len(train_files)} train400 images, {len(val_tiles)} validation and {len(test_tiles)} test {c}x{c} bsd68 tiles "
        f"in {time.perf_counter() - t0:.1f} s; {sum(p.numel() for p in net.parameters())} parameters")  # fmt: skip

    d = c * c
    steps_per_epoch = math.ceil(args.patches / args.batch_size)
    warm_steps = args.kl_warmup * steps_per_epoch
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = _hvae_schedule(opt, args.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)  # patches and posterior noise
    ckpt = Checkpoint(args.checkpoint, net, opt, sched, gen, args)
    history = ckpt.load() if args.resume else []
    if history:
        log(f"resumed from {ckpt.path} after epoch {len(history)}")
    skipped = history[-1]["skipped_steps"] if history else 0
    for epoch in range(len(history) + 1, args.epochs + 1):
        te = time.perf_counter()
        net.train()
        patches = hvae_patches(pool, args.patches, c, gen, mix={"photo": 1.0})
        sums = {"bpd": 0.0, "loss": 0.0, "recon": 0.0, "kl": torch.zeros(net.n_levels, dtype=torch.float64)}
        norms = []
        for k in range(0, args.patches, args.batch_size):
            step = (epoch - 1) * steps_per_epoch + k // args.batch_size
            xb = patches[k : k + args.batch_size]
            kl_weight = min(1.0, (step + 1) / warm_steps) if warm_steps else 1.0
            s = net.elbo(xb, generator=gen)
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
            b = len(xb)
            sums["bpd"] += float(s["bits_per_dim"].detach().sum())
            sums["loss"] += loss.item() * b
            sums["recon"] += float(s["recon"].detach().sum()) / (d * math.log(2))
            sums["kl"] += s["kl"].detach().double().sum(0) / (d * math.log(2))
        n = args.patches
        val = evaluate_hvae(net, val_tiles)
        entry = {
            "epoch": epoch,
            "train_bits_per_dim": sums["bpd"] / n,
            "train_recon_bits_per_dim": sums["recon"] / n,
            "train_kl_bits_per_dim": (sums["kl"] / n).tolist(),
            "train_loss_nats_per_dim": sums["loss"] / n,
            "kl_weight": kl_weight,
            "grad_norm_median": float(torch.tensor(norms).median()) if norms else float("nan"),
            "skipped_steps": skipped,
            "val_bits_per_dim": val["bits_per_dim"],
            "val_psnr_recon": val["psnr_recon"],
            "seconds": round(time.perf_counter() - te, 1),
        }
        history.append(entry)
        kl_txt = " ".join(f"{v:.3f}" for v in entry["train_kl_bits_per_dim"])
        log(
            f"epoch {epoch:3d}/{args.epochs}  train -ELBO {entry['train_bits_per_dim']:.4f} bits/dim (recon "
            f"{entry['train_recon_bits_per_dim']:.4f} + KL [{kl_txt}])  loss {entry['train_loss_nats_per_dim']:.4f} nats/dim "
            f"(KL weight {kl_weight:.2f})  val {val['bits_per_dim']:.4f} bits/dim, recon PSNR {val['psnr_recon']:.2f} dB  "
            f"|grad| {entry['grad_norm_median']:.1f}  skipped {skipped}  lr {sched.get_last_lr()[0]:.2e}  {entry['seconds']:.1f} s"
        )
        ckpt.save(history, final=epoch == args.epochs)

    net.eval()
    test = evaluate_hvae(net, test_tiles)
    log(f"final: bsd68 test -ELBO {test['bits_per_dim']:.4f} bits/dim, encode-decode PSNR {test['psnr_recon']:.2f} dB")
    card = {
        "model": model_card(net, model_kwargs),
        "task": "hierarchical VAE of grayscale photographs in [0, 1] (the prior of PnP-HVAE), Gaussian decoder of fixed std gamma",
        "data": {
            "dataset": f"train400 (the BSD400 training set of the DnCNN paper), first {len(train_files)} files in name order",
            "file_list_sha256": file_list_sha256(train_files),
            "file_list_sha256_rule": "recon.training.data.file_list_sha256: sha256 of the lines '<name> <sha256 of bytes>'",
            "pipeline": "recon.training.data.hvae_patches({'photo': images}, patches, crop, generator seeded with --seed, "
            "mix={'photo': 1.0})",
            "training_patches": f"{args.patches} fresh {c}x{c} patches per epoch: a uniform image, a square window of side "
            f"round({c} / s), s ~ U[{HVAE_MIN_SCALE}, 1], resized to {c}x{c} (bilinear, antialiased), "
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
            "final_train_bits_per_dim": history[-1]["train_bits_per_dim"],
            "history": history,
        },
        "validation": {
            "metric": "mean -ELBO in bits per dimension (HVAE.elbo, + log2(255): per 8-bit pixel value) and encode-decode PSNR "
            f"over the non-overlapping {c}x{c} tiles of the first {args.n_val} bsd68 images",
            "images": [f.name for f in test_files[: args.n_val]],
            "pipeline": f"recon.training.hvae.evaluate_hvae(net, hvae_tiles(images, {c}), seed={HVAE_EVAL_SEED})",
            "bits_per_dim": history[-1]["val_bits_per_dim"],
            "psnr_recon": history[-1]["val_psnr_recon"],
        },
        "test": {
            "images": f"all {len(test_files)} bsd68 images",
            "file_list_sha256": file_list_sha256(test_files),
            "metric": "mean -ELBO in bits per dimension (+ log2(255)) and encode-decode PSNR at temperature 0 (dB, data range "
            f"1, model(x)) over every non-overlapping {c}x{c} tile, one posterior sample per tile",
            "pipeline": f"recon.training.hvae.evaluate_hvae(net, hvae_tiles(bsd68 images, {c}), seed={HVAE_EVAL_SEED})",
            "tile": c,
            "n_tiles": len(test_tiles),
            **test,
        },
    }
    return net, card


SPEC = TrainSpec(
    description="hierarchical VAE (3 latent levels at strides 8, 4, 2; Gaussian decoder, gamma = 5/255) of "
    "64x64 patches of the train400 photographs; the PnP-HVAE prior",
    build=HVAE,
    train=train,
    defaults={
        **SHARED_DEFAULTS,
        "epochs": 60,
        "batch_size": 16,
        "n_train": 400,
        "n_val": 4,
        "crop": HVAE_CROP,
        "patches": 2000,
        "kl_warmup": 2,
        "widths": (32, 64, 96, 128),
        "z_channels": 8,
        "gamma": 5.0 / 255.0,
        "data_dir": DATASETS_DIR,
    },
    val_first_seed=None,
)
