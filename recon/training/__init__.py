"""Training recipes of the shipped networks: ``python -m recon.training NAME [options]``.

Each shipped model ``NAME`` of :mod:`denoisers.zoo` has one recipe module here, a
:class:`~recon.training.loop.TrainSpec` in :data:`REGISTRY` (the network class, its default
hyperparameters and a ``train`` function); running the package trains it on procedural data with a
fixed seed and writes ``NAME.pt`` (the ``state_dict``) and ``NAME.json`` (the card: command line,
seed, data, epochs, loss, validation PSNRs, sha256 of the ``.pt`` file, wall time, torch version) to
the shipped weights folder, where :func:`denoisers.zoo.load` reads both.

Modules:

* :mod:`recon.training.data`: the data pipelines (phantom families, patch pools, noise models) and
  the seed ranges that split training, validation and test data.
* :mod:`recon.training.loop`: the shared training loop and card sections.
* one recipe per model: :mod:`recon.training.ct_unet` (CT post-processing U-Net),
  :mod:`recon.training.mimo_unet3d` (3D U-Net magnitude denoiser), :mod:`recon.training.ct_dncnn`
  (DnCNN of dynamic-object frames, RED-PSM), :mod:`recon.training.dncnn_natural` (DnCNN of
  natural-like images, the PnP-HVAE baselines) and :mod:`recon.training.hvae` (the hierarchical VAE
  prior of PnP-HVAE).
* :mod:`recon.training.cli`: the command line (:func:`main`).

Training is seeded and deterministic on CPU (``torch.manual_seed``,
``torch.use_deterministic_algorithms(True)``, a fixed data order from a seeded generator), so
re-running the command reproduces the card's numbers up to floating-point differences between
machines.

Example:
    $ python -m recon.training ct_unet --epochs 36 --seed 0
    $ python -m recon.training mimo_unet3d --threads 1
    $ python -m recon.training ct_dncnn --threads 1
    $ python -m recon.training hvae
    $ python -m recon.training dncnn_natural
"""

from recon.training.cli import main
from recon.training.loop import TrainSpec
from recon.training.registry import REGISTRY

__all__ = ["REGISTRY", "TrainSpec", "main"]
