"""``python -m recon.training NAME [options]``: train a shipped network (see :mod:`recon.training.cli`)."""

from recon.training.cli import main

main()
