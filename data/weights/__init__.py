"""The shipped network weights as package data: ``NAME.pt`` (a ``state_dict``) and ``NAME.json`` (its card).

This folder is the package ``denoisers.weights`` (``pyproject.toml`` maps it there at build time);
:mod:`denoisers.zoo` finds the files with ``importlib.resources``. ``python -m recon.training NAME``
reproduces each pair.
"""
