"""One-call reconstruction methods, one module per paper.

classical.py: FBP, Tikhonov, TV; graphla.py: graphLa+Psi; analysis_prior.py: the PDHG engine for
R(Lx) priors that tv and graphla share; magnitude_pnp.py: magnitude plug-and-play for near-field
MIMO radar, with back-projection and Kirchhoff migration; qmri.py: the quantitative-MRI
baselines (SENSE + pixel fit, subspace, model-based NLCG); nlcg_net.py: NLCG-Net; pnp_hvae.py:
PnP-HVAE (a hierarchical VAE prior), with its baselines in pnp_baselines.py (PnP-ADMM and RED with a
denoiser, Wiener deconvolution) and the exact / CG data step they share in _data_term.py; fwi.py:
full-waveform inversion with an H^s trace misfit.
"""

from collections.abc import Callable

#: the one-call methods that take ``(physics, y, **params)`` and return ``(x, info)``, by name
METHOD_NAMES = (
    "backprojection", "fbp", "fwi", "graphla", "kirchhoff_migration", "magnitude_pnp", "nlcg_maps", "nlcg_net",
    "pnp_hvae", "psm", "qmri_fit", "red_psm", "sliding_window_fbp", "sobolev_fit", "subspace_recon",
    "tikhonov", "tv", "view_sharing",
)  # fmt: skip


def get_method(name: object) -> Callable:
    """The method ``recon.<name>`` for a name in :data:`METHOD_NAMES`.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: ``name`` is not one of :data:`METHOD_NAMES` (the message lists them).
    """
    import recon  # noqa: PLC0415  (recon imports this package while it loads)

    if not isinstance(name, str):
        raise TypeError(f"method: expected a method name (str), received {type(name).__name__}")
    if name not in METHOD_NAMES:
        raise ValueError(f"method: unknown method {name!r}; expected one of {', '.join(METHOD_NAMES)}")
    return getattr(recon, name)
