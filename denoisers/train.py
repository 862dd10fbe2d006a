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

Training is seeded and deterministic on CPU (``torch.manual_seed``,
``torch.use_deterministic_algorithms(True)``, a fixed data order from a seeded generator), so
re-running the command reproduces the card's numbers up to floating-point differences between
machines.

Example:
    $ python -m denoisers.train ct_unet --epochs 36 --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from denoisers.zoo import WEIGHTS_DIR, sha256_file

__all__ = ["REGISTRY", "TrainSpec", "WEIGHTS_DIR", "ct_pairs", "ct_geometry", "evaluate_ct_unet", "sha256_file", "main"]


CT_N_VIEWS = 120
CT_LAST_ANGLE_DEG = 179.0
CT_N_DETECTORS = {128: 182, 256: 362}
CT_NOISE_LEVEL = 0.02
CT_VAL_FIRST_SEED = 100_000


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


@torch.no_grad()
def evaluate_ct_unet(net: torch.nn.Module, x_fbp: torch.Tensor, x_true: torch.Tensor, batch: int = 4) -> tuple[float, float]:
    """Mean PSNR (dB, data range 1, no clipping) of FBP and of ``net(FBP)`` against the truth."""
    from recon.metrics import psnr  # noqa: PLC0415

    net.eval()
    out = torch.cat([net(x_fbp[i : i + batch]) for i in range(0, len(x_fbp), batch)])
    return float(psnr(x_fbp, x_true, 1.0).mean()), float(psnr(out, x_true, 1.0).mean())


# ----------------------------------------------------------------------------- registry


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """One trainable model: how to build it, its default hyperparameters and its training loop.

    ``build(**model_kwargs)`` returns the untrained module; ``train(args, log)`` trains it and
    returns ``(model, card_fields)``; ``defaults`` fill the command-line options.
    """

    description: str
    build: Callable[..., torch.nn.Module]
    train: Callable[[argparse.Namespace, Callable[[str], None]], tuple[torch.nn.Module, dict]]
    defaults: dict


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
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(len(train_seeds) / args.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)
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
        total, count = 0.0, 0
        for k in range(0, n, args.batch_size):
            idx = perm[k : k + args.batch_size]
            xb = torch.stack([x_in[i, :, tops[i] : tops[i] + c, lefts[i] : lefts[i] + c] for i in idx.tolist()])
            gb = torch.stack([x_gt[i, :, tops[i] : tops[i] + c, lefts[i] : lefts[i] + c] for i in idx.tolist()])
            loss = (net(xb) - gb).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            count += len(idx)
        loss_epoch = total / count
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
    p.add_argument("--n-train", dest="n_train", type=int, help="number of training images (seeds 0..n-1)")
    p.add_argument("--n-val", dest="n_val", type=int, help="number of validation images")
    p.add_argument("--crop", type=int, help="training patch side")
    p.add_argument("--width", type=int, help="channels at the finest level")
    p.add_argument("--levels", type=int, help="resolution levels")
    p.add_argument("--threads", type=int, default=2, help="torch and numba threads (default 2; use 1 on a busy machine)")
    p.add_argument("--out-dir", dest="out_dir", type=Path, default=WEIGHTS_DIR, help="where NAME.pt/.json go")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    """Command-line entry point; returns the card that was written."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    spec = REGISTRY[args.name]
    for key, value in spec.defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    from recon.phantoms import TEST_SEEDS  # noqa: PLC0415

    if args.n_train > TEST_SEEDS.start or CT_VAL_FIRST_SEED + args.n_val > TEST_SEEDS.start:
        raise ValueError(f"--n-train/--n-val: training and validation seeds must stay below {TEST_SEEDS.start}")
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
