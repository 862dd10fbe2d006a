"""Regularizers: penalties, their gradients and proximal maps.

tv.py: isotropic TV and its prox; graph_laplacian.py: the data-dependent graph Laplacian of
graphLa+Psi; magnitude.py: priors on the magnitude of complex images (the magnitude prox, l1);
psm.py: spline partially separable models of dynamic objects; red.py: regularization by denoising;
sobolev.py: H^s norms on periodic grids (the weights, W_s = (I - Laplacian)^s, the H^s misfit).
"""
