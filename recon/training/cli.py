"""Command line of :mod:`recon.training`: ``python -m recon.training NAME [options]``.

Trains the recipe ``NAME`` of :data:`~recon.training.registry.REGISTRY` and writes ``NAME.pt`` (the
``state_dict``) and ``NAME.json`` (its card) to ``--out-dir``, by default the shipped weights folder
:data:`denoisers.zoo.WEIGHTS_DIR`.

Example:
    $ python -m recon.training ct_dncnn --threads 1
    >>> card = main(["ct_dncnn", "--epochs", "1", "--out-dir", "weights_out"])
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numba
import torch

from denoisers.zoo import WEIGHTS_DIR, sha256_file
from operators.kernels import threads
from recon.phantoms import TEST_SEEDS
from recon.training.registry import REGISTRY

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m recon.training",
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
    p.add_argument("--scale", type=int, help="pixel-unshuffle factor of the residual branch (dncnn_natural)")
    p.add_argument("--data-dir", dest="data_dir", type=Path, help="folder of the photograph sets train400/ and bsd68/")
    p.add_argument("--n-photos", dest="n_photos", type=int, help="train400 photographs used as CT objects (ct_unet)")
    p.add_argument("--n-noise", dest="n_noise", type=int, help="white noise sinograms drawn once and reused (ct_unet)")
    p.add_argument("--noise-min", dest="noise_min", type=float, help="lowest relative training noise level (ct_unet)")
    p.add_argument("--sizes", type=int, nargs="+", help="image sides the objects are trained at (ct_unet: 256 and / or 128)")
    p.add_argument("--noise-max", dest="noise_max", type=float, help="highest relative training noise level (ct_unet)")
    p.add_argument(
        "--checkpoint", type=Path, help="resumable training state, rewritten every few minutes (default: OUT_DIR/NAME.ckpt)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint (same options)")
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
    not_applicable = [k for k in not_applicable if k not in ("name", "threads", "out_dir", "checkpoint", "resume")]
    if not_applicable:
        options = ", ".join("--" + k.replace("_", "-") for k in not_applicable)
        parser.error(f"{options}: not an option of {args.name} (its options: {', '.join(spec.defaults)})")
    for key, value in spec.defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if "sigma_max" in spec.defaults and not args.sigma_max > 0.0:
        raise ValueError(f"--sigma-max: expected a positive noise level, received {args.sigma_max}")
    if args.checkpoint is None:
        args.checkpoint = args.out_dir / f"{args.name}.ckpt"
    if spec.val_first_seed is not None and (args.n_train > spec.val_first_seed or spec.val_first_seed + args.n_val > TEST_SEEDS.start):
        raise ValueError(
            f"--n-train/--n-val: training seeds 0..n_train-1 must stay below the validation seeds "
            f"{spec.val_first_seed}.., and those below {TEST_SEEDS.start}; received {args.n_train}, {args.n_val}"
        )
    saved = torch.get_num_threads(), threads.num_threads(), torch.are_deterministic_algorithms_enabled()
    threads.set_num_threads(args.threads)  # torch's and the CT projector's (numba) threads
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    try:
        return _train_and_write(args, argv, spec)
    finally:  # a call from Python (a test) leaves the process's thread settings as it found them
        numba.set_num_threads(saved[1])
        torch.set_num_threads(saved[0])  # last: numba's set-up must not be the last word on torch's count
        torch.use_deterministic_algorithms(saved[2])


def _train_and_write(args: argparse.Namespace, argv: list[str], spec) -> dict:
    """Train ``spec`` with ``args``; write NAME.pt and its card NAME.json, each under a temporary name then renamed."""

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {args.name}: {msg}", flush=True)

    log(f"training with {json.dumps({k: getattr(args, k) for k in spec.defaults}, default=str)}")
    t0 = time.perf_counter()
    net, fields = spec.train(args, log)
    wall = time.perf_counter() - t0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    pt = args.out_dir / f"{args.name}.pt"
    tmp = pt.with_name(pt.name + ".part")
    torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, tmp)
    os.replace(tmp, pt)
    card = {
        "name": args.name,
        "description": spec.description,
        "command": "python -m recon.training " + " ".join(argv),
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
    js = args.out_dir / f"{args.name}.json"
    js.with_name(js.name + ".part").write_text(json.dumps(card, indent=2) + "\n")
    os.replace(js.with_name(js.name + ".part"), js)
    log(f"wrote {pt} ({card['weights_bytes']} bytes, sha256 {card['sha256'][:12]}...) in {wall:.0f} s")
    return card
