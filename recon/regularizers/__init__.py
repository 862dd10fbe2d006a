"""Regularizers: penalties, their gradients and proximal maps.

tv.py: isotropic TV; graph_laplacian.py: the data-dependent graph Laplacian of graphLa+Psi;
magnitude.py: priors on the magnitude of complex images (the magnitude prox, l1, 3D TV).
"""
