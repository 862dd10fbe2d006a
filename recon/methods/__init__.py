"""One-call reconstruction methods, one module per paper.

classical.py: FBP, Tikhonov, TV; graphla.py: graphLa+Psi; analysis_prior.py: the PDHG engine for
R(Lx) priors that tv and graphla share.
"""
