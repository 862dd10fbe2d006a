"""Offline loading of the shipped network weights, checked by sha256.

Each shipped model ``NAME`` is a pair of files in the package data :mod:`denoisers.weights`
(:data:`WEIGHTS_DIR`): ``NAME.pt`` (a ``state_dict``) and ``NAME.json`` (its card, written by
``python -m recon.training NAME``, which records the model's constructor arguments and the sha256
of ``NAME.pt``). Nothing is ever downloaded. In the repository the files live in ``data/weights``;
the build maps that folder to the package ``denoisers.weights`` (``pyproject.toml``), so the same
``importlib.resources`` lookup finds them in an editable install and in an installed wheel.

Example:
    >>> from denoisers import load
    >>> net = load("ct_unet")            # eval mode, on CPU
    >>> x_clean = net(physics.fbp(y))    # (B, 1, 256, 256) -> same shape
    >>> den = load("mimo_unet3d")
    >>> m_clean = den(m_noisy, sigma=0.1)  # (B, 1, 25, 25, 49) magnitudes -> same shape
    >>> red = load("ct_dncnn")             # blind DnCNN, the RED denoiser of RED-PSM
    >>> f_clean = red(frames.reshape(-1, 1, 128, 128))  # one frame per batch entry
    >>> den = load("dncnn_natural")        # blind DnCNN of natural-like images (PnP-ADMM / RED baselines)
    >>> vae = load("hvae")                 # hierarchical VAE prior of PnP-HVAE
    >>> bpd = vae.elbo(x)["bits_per_dim"]  # x: (B, 1, H, W) in [0, 1], H and W multiples of 8
"""

from __future__ import annotations

import hashlib
import json
from importlib.resources import files
from pathlib import Path

import torch

from denoisers.dncnn import DnCNN
from denoisers.hvae import HVAE
from denoisers.unet import CTUNet
from denoisers.unet3d import UNet3D

__all__ = ["load", "available", "card", "sha256_file", "WEIGHTS_DIR", "ARCHITECTURES"]

#: Folder of the shipped ``NAME.pt`` / ``NAME.json`` files: the package data ``denoisers.weights``.
WEIGHTS_DIR = Path(files("denoisers.weights"))

#: Network class of each shipped model; the card's ``model.kwargs`` are its constructor arguments.
ARCHITECTURES: dict[str, type[torch.nn.Module]] = {
    "ct_unet": CTUNet,
    "mimo_unet3d": UNet3D,
    "ct_dncnn": DnCNN,
    "dncnn_natural": DnCNN,
    "hvae": HVAE,
}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def available() -> tuple[str, ...]:
    """Names :func:`load` accepts."""
    return tuple(sorted(ARCHITECTURES))


def _check_name(name: object) -> str:
    if not isinstance(name, str) or name not in ARCHITECTURES:
        raise ValueError(f"name: expected one of {available()}, received {name!r}")
    return name


def _paths(name: str, weights_dir: Path) -> tuple[Path, Path]:
    pt, js = weights_dir / f"{name}.pt", weights_dir / f"{name}.json"
    for path in (js, pt):
        if not path.is_file():
            raise FileNotFoundError(
                f"{name}: shipped weights file {path} not found; reproduce it with `python -m recon.training {name}`"
            )
    return pt, js


def card(name: str, weights_dir: str | Path | None = None) -> dict:
    """The training card (parsed ``NAME.json``) of a shipped model.

    Args:
        name: model name, one of :func:`available`.
        weights_dir: folder holding ``NAME.pt``/``NAME.json``; default :data:`WEIGHTS_DIR`.

    Returns:
        The card as a dict.
    """
    name = _check_name(name)
    _, js = _paths(name, Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR)
    return json.loads(js.read_text())


def load(name: str, device: str | torch.device = "cpu", weights_dir: str | Path | None = None) -> torch.nn.Module:
    """Build a shipped network and load its weights, after checking their sha256 against the card.

    Args:
        name: model name, one of :func:`available` (e.g. ``"ct_unet"``).
        device: torch device to put the model on.
        weights_dir: folder holding ``NAME.pt``/``NAME.json``; default :data:`WEIGHTS_DIR`.

    Returns:
        The ``torch.nn.Module`` in eval mode with ``requires_grad`` left on (callers may
        differentiate through it).

    Raises:
        ValueError: unknown ``name``, or the ``.pt`` file's sha256 differs from the card's.
        FileNotFoundError: the weights or card are missing (the message says how to reproduce them).

    Example:
        >>> net = load("ct_unet")
        >>> with torch.no_grad():
        ...     x_clean = net(x_fbp)
    """
    name = _check_name(name)
    weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    pt, _ = _paths(name, weights_dir)
    info = card(name, weights_dir)
    digest = sha256_file(pt)
    if digest != info.get("sha256"):
        raise ValueError(
            f"{name}: sha256 of {pt} is {digest}, expected {info.get('sha256')} from its card; "
            f"the file is corrupt or stale, reproduce it with `python -m recon.training {name}`"
        )
    model = ARCHITECTURES[name](**info["model"]["kwargs"])
    state = torch.load(pt, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval()
