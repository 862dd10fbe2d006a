"""Forward models: what the measurement does (no priors, no solvers).

Conventions, written once for the whole package:

* **Tensors** are torch tensors shaped ``(B, C, *spatial)``: batch, channels, then the spatial
  axes (``(B, C, N, N)`` for 2D images). Measurements keep the leading ``(B, C)`` (a CT sinogram
  is ``(B, C, n_angles, n_detectors)``).
* **Dtypes**: real data are float32 by default; float64 is accepted everywhere and an operator
  returns the dtype it was given. Complex data (our own MIMO and qMRI operators) use torch complex
  dtypes; deepinv's MRI classes keep their two-channel real layout. The one rule at that boundary:
  a complex tensor ``(B, *rest)`` corresponds to the real tensor ``(B, 2, *rest)`` holding (real,
  imaginary) on dim 1; :func:`operators.mri.to_channels` and :func:`operators.mri.to_complex`
  convert, and nothing else crosses the boundary. Nothing casts complex to real silently,
  broadcasts or truncates.
* **Units**: lengths in pixels unless an operator says otherwise; angles in radians.
* **Operators** subclass :class:`deepinv.physics.LinearPhysics` (``Physics`` when nonlinear), have
  an exact adjoint (checked by a dot-product test in the suite) and validate their inputs once, at
  the edge, raising ``ValueError``/``TypeError`` that name the argument.
* **Shapes**: every operator declares ``img_shape`` and ``meas_shape``, one image and one
  measurement without the batch axis; :mod:`operators.shapes` reads them (and deepinv's
  ``img_size``) so that no caller applies an adjoint to learn a shape.
* **Devices**: CPU everywhere; CUDA tensors are dispatched by device inside each operator.
* **Threads**: no operator changes a process-wide thread setting; numba's pool is started and
  limited per calling thread by :mod:`operators.kernels.threads`, leaving torch's count alone.

Modules:

* :mod:`operators.ct`: :class:`ParallelBeamCT`, :class:`FanBeamCT` (2D CT; astra-toolbox or
  numba Joseph backends; FBP) and :class:`DynamicCT` (parallel-beam dynamic CT: frames
  ``(B, P, N, N)`` on the channel axis, one or a few views per frame, bit-reversal angles by
  default, all frames in one numba kernel call).
* :mod:`operators.mimo`: :class:`NearFieldMIMO` (3D near-field MIMO radar on complex
  reflectivities; numba kernels on CPU, a torch twin on CUDA); arrays, frequencies and voxel
  grids in :mod:`operators.mimo_geometry`.
* :mod:`operators.mri`: :class:`SenseMRI` (multi-coil, multi-echo Cartesian MRI on deepinv's
  ``MultiCoilMRI``; deepinv's ``MRI`` and ``DynamicMRI`` re-exported), with k-space masks in
  :mod:`operators.kspace_masks` and coil maps (simulation, estimation from the ACS) in
  :mod:`operators.coil_maps`.
* :mod:`operators.qmri`: :class:`QuantitativeMRI`, the nonlinear T2 / T1 mapping model
  :math:`y = P F C M(x)` with analytic Jacobians.
* :mod:`operators.wave`: :class:`AcousticWave2D`, the nonlinear map from a 2D velocity model
  (m/s) to shot gathers of the constant-density acoustic wave equation (4th-order finite
  differences, leapfrog, sponge), differentiable by autograd; :func:`operators.wave.ricker`.
"""

from operators import mimo_geometry
from operators.ct import DynamicCT, FanBeamCT, ParallelBeamCT
from operators.mimo import NearFieldMIMO
from operators.mri import SenseMRI
from operators.qmri import QuantitativeMRI
from operators.wave import AcousticWave2D

__all__ = [
    "AcousticWave2D",
    "DynamicCT",
    "FanBeamCT",
    "NearFieldMIMO",
    "ParallelBeamCT",
    "QuantitativeMRI",
    "SenseMRI",
    "mimo_geometry",
]
