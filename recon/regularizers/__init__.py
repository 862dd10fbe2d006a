"""Regularizers: penalties, their gradients and proximal maps (tv.py: isotropic TV)."""
