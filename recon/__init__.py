"""regrecon's reconstructions: regularizers, solvers and the one-call methods.

Every method returns ``(x, info)``::

    import recon
    x, info = recon.tv(physics, y, noise_level=0.02)

Sub-packages: ``recon.solvers`` (generic iterative solvers), ``recon.regularizers`` (penalties
and their proxes), ``recon.methods`` (one module per paper); modules ``recon.phantoms``,
``recon.metrics``, ``recon.noise`` and ``recon.parameter_choice``. Scanner files: ``recon.readers``
(DICOM, NIfTI, TIFF projections, fastMRI / ISMRMRD k-space), ``recon.writers`` (NIfTI, DICOM,
HDF5), and from a file to a reconstruction in one call, ``recon.ct_from_file`` and
``recon.mri_from_file``.
"""

from recon import metrics, noise, phantoms, readers, writers
from recon.from_file import ct_from_file, mri_from_file
from recon.methods import METHOD_NAMES
from recon.methods.classical import fbp, tikhonov, tv
from recon.methods.fwi import fwi
from recon.methods.graphla import graphla
from recon.methods.magnitude_pnp import backprojection, kirchhoff_migration, magnitude_pnp
from recon.methods.nlcg_net import nlcg_net
from recon.methods.pnp_hvae import pnp_hvae
from recon.methods.qmri import nlcg_maps, qmri_fit, subspace_recon
from recon.methods.red_psm import psm, red_psm, sliding_window_fbp, view_sharing
from recon.methods.sobolev_fit import sobolev_fit

__all__ = [*METHOD_NAMES, "ct_from_file", "metrics", "mri_from_file", "noise", "phantoms", "readers", "writers"]
