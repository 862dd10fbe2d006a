r"""The ``ct_unet`` recipe: :class:`denoisers.unet.CTUNet` post-processing of parallel-beam FBP images
(graphLa+Psi "Net"). Data: COULE-like images (:func:`recon.phantoms.coule_like`) of side 256,
parallel-beam sinograms with 120 views over [0, 179] degrees and 362 detector bins, 2 % relative
Gaussian noise (:func:`recon.noise.add_relative_noise`, noise seed = image seed), ram-lak FBP input
-> ground-truth target. Training pairs use image seeds ``0 .. n_train-1``, validation pairs seeds
``100000 .. 100000+n_val-1`` (both far below :data:`recon.phantoms.TEST_SEEDS`). The net is trained
on random ``crop x crop`` patches of the 256x256 pairs (it is fully convolutional) with the L1 loss
and Adam (lr 1e-3, cosine decay to 0), and validated on the full 256x256 images.

Example:
    $ python -m recon.training ct_unet --epochs 36 --seed 0
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from denoisers.unet import CTUNet
from operators.ct import CT_LAST_ANGLE_DEG, CT_N_DETECTORS, CT_N_VIEWS
from recon.training.data import CT_NOISE_LEVEL, CT_VAL_FIRST_SEED, ct_pairs
from recon.training.loop import SHARED_DEFAULTS, TrainSpec, adam_cosine, model_card, psnr_before_after, run_epoch

__all__ = ["SPEC", "evaluate_ct_unet", "train"]


@torch.no_grad()
def evaluate_ct_unet(net: torch.nn.Module, x_fbp: torch.Tensor, x_true: torch.Tensor, batch: int = 4) -> tuple[float, float]:
    """Mean PSNR (dB, data range 1, no clipping) of FBP and of ``net(FBP)`` against the truth."""
    net.eval()
    return psnr_before_after(net, x_fbp, x_true, batch)


def train(args: argparse.Namespace, log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """Train ``ct_unet`` as the module docstring says (the :attr:`~recon.training.loop.TrainSpec.train` protocol)."""
    size = 256
    train_seeds = range(0, args.n_train)
    val_seeds = range(CT_VAL_FIRST_SEED, CT_VAL_FIRST_SEED + args.n_val)
    t0 = time.perf_counter()
    x_in, x_gt = ct_pairs(train_seeds, size)
    v_in, v_gt = ct_pairs(val_seeds, size)
    log(f"data: {len(train_seeds)} train + {len(val_seeds)} val pairs at {size}x{size} in {time.perf_counter() - t0:.1f} s")

    torch.manual_seed(args.seed)
    model_kwargs = {"width": args.width, "levels": args.levels}
    net = CTUNet(**model_kwargs)
    if args.crop % net.stride:
        raise ValueError(f"--crop: expected a multiple of {net.stride}, received {args.crop}")
    opt, sched = adam_cosine(net, args, len(train_seeds))
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

        loss_epoch = run_epoch(net, opt, sched, batches(), lambda out, gb: (out - gb).abs().mean())
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
        "model": model_card(net, model_kwargs),
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
            "pipeline": "recon.training.data.ct_pairs(seeds, size)",
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


SPEC = TrainSpec(
    description="residual U-Net post-processing of 256x256 parallel-beam FBP images, 2 % noise",
    build=CTUNet,
    train=train,
    defaults={
        **SHARED_DEFAULTS,
        "epochs": 36,
        "batch_size": 8,
        "n_train": 400,
        "n_val": 8,
        "crop": 96,
        "width": 16,
        "levels": 4,
    },
    val_first_seed=CT_VAL_FIRST_SEED,
)
