"""regrecon's reconstructions: regularizers, solvers and the one-call methods.

Every method returns ``(x, info)``::

    import recon
    x, info = recon.tv(physics, y, noise_level=0.02)
"""

from recon.methods.classical import fbp, tikhonov, tv

__all__ = ["fbp", "tikhonov", "tv"]
