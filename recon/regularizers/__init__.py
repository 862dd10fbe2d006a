"""Regularizers: penalties, their gradients and proximal maps.

tv.py: isotropic TV; graph_laplacian.py: the data-dependent graph Laplacian of graphLa+Psi.
"""
