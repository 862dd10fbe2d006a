"""Hot loops of the operators: small pure numba functions (CPU), one module per loop.

The rest of the package calls them through the operator classes (which handle dtype, layout,
devices and autograd) and never sees numba directly.

* :mod:`operators.kernels.joseph`: ray-driven Joseph projector and its exact transpose (2D CT,
  parallel and fan beam share the kernels through a (point, direction) ray description).
* :mod:`operators.kernels.graph_weights`: the graphLa+Psi window-graph Laplacian written straight
  into CSR arrays, parallel over pixels.
* :mod:`operators.kernels.mimo`: near-field MIMO radar forward model and adjoint (separable
  transmitter/receiver factors, frequency recurrence), parallel over voxels.
* :mod:`operators.kernels.threads`: numba's thread pool, started without changing torch's thread
  count, and per-thread limits (every parallel kernel above goes through it).
"""

from operators.kernels import graph_weights, joseph, mimo, threads

__all__ = ["graph_weights", "joseph", "mimo", "threads"]
