"""One-call reconstruction methods, one module per paper.

classical.py: FBP, Tikhonov, TV; graphla.py: graphLa+Psi; analysis_prior.py: the PDHG engine for
R(Lx) priors that tv and graphla share; magnitude_pnp.py: magnitude plug-and-play for near-field
MIMO radar, with back-projection and Kirchhoff migration; qmri.py: the quantitative-MRI
baselines (SENSE + pixel fit, subspace, model-based NLCG); nlcg_net.py: NLCG-Net; pnp_hvae.py:
PnP-HVAE (a hierarchical VAE prior), with its baselines in pnp_baselines.py (PnP-ADMM and RED with a
denoiser, Wiener deconvolution) and the exact / CG data step they share in _data_term.py.
"""
