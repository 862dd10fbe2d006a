r"""Magnitude plug-and-play for near-field MIMO radar imaging, and its two classical baselines.

Oral & Oktem, "Plug-and-Play Regularization on Magnitude with Deep Priors for 3D Near-Field MIMO
Imaging", IEEE TCI 2024. The complex reflectivity :math:`x` has a random-like phase, so the prior
acts on the magnitude only:

.. math::
    \min_x\ R(|x|) \quad\text{s.t.}\quad \|y - Ax\|_2 \le \epsilon, \qquad
    \epsilon = \sqrt{M}\,\sigma_n,

solved by C-SALSA (:class:`~recon.solvers.CSALSA`: 5 warm-started CG steps in the x-step,
:math:`\kappa = 500`) whose prox step is the magnitude prox
:math:`D(|u|)\,e^{j\angle u}` (:mod:`recon.regularizers.magnitude`) with :math:`D` one of

* ``"l1"``: soft threshold of the magnitude (``strength`` = threshold per iteration);
* ``"tv"``: 10 Chambolle-Pock steps of 3D isotropic TV denoising (``strength`` = TV weight);
* ``"unet3d"``: the shipped 3D U-Net (``denoisers.zoo.load("mimo_unet3d")``, ``strength`` = the
  noise level it is told);
* any callable ``D(m) -> m'`` on real magnitudes (B, 1, Nx, Ny, Nz).

Scale: the iteration runs on a normalised problem. The back-projection :math:`A^H y`, scaled by
least squares to the data (:math:`\beta = \mathrm{Re}\langle A A^H y, y\rangle / \|A A^H y\|^2`),
has its peak magnitude :math:`s`; the solver works on :math:`y / s`, :math:`\epsilon / s`, so
magnitudes are of order one whatever the units of ``y``, and the result is scaled back by
:math:`s`. The ``strength`` defaults therefore hold for any data scale. For l1 and TV the
constrained minimiser does not depend on ``strength`` (it only sets the ADMM step); for the
network it is the denoiser's noise level.

Stopping: relative change of :math:`|x|` below ``tol`` (5e-4) or ``max_iter`` (30 for the
network, as in the paper; 150 for l1 / TV, where the paper allows 1e4: a cost we cannot afford
on 2 cores, so l1 / TV may stop before the tolerance is met; the demo reports the iterations).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from operators._validate import check_positive, check_tensor
from recon.metrics import magnitude_psnr
from recon.regularizers.magnitude import magnitude_prox, soft_threshold
from recon.regularizers.tv import tv_denoiser
from recon.solvers import CSALSA

PRIORS = ("unet3d", "tv", "l1")
#: per prior: (strength, max_iter). Strengths from `demos/mimo_magnitude_pnp.py --tune` on training-seed scenes:
#: unet3d on the full 25x25x49 grid (sigma 0.1-0.5: best 0.2), l1 and tv on the quick 13x13x25 grid
DEFAULTS = {"unet3d": (0.2, 30), "tv": (0.01, 150), "l1": (0.2, 150)}
KAPPA = 500.0
TV_STEPS = 10


def _check_physics_data(physics: object, y: object) -> torch.Tensor:
    if not (hasattr(physics, "A") and hasattr(physics, "A_adjoint")):
        raise TypeError(f"physics: expected a LinearPhysics (e.g. operators.NearFieldMIMO), received {type(physics).__name__}")
    check_tensor("y", y, real=False)
    if not y.is_complex():
        raise TypeError(f"y: expected complex measurements (complex64 or complex128), received {y.dtype}")
    return y


def backprojection(physics, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
    r"""Matched filter :math:`A^H y` (B, 1, Nx, Ny, Nz); ``info`` is empty."""
    return physics.A_adjoint(_check_physics_data(physics, y)), {}


def kirchhoff_migration(physics, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
    r"""Kirchhoff migration (amplitude- and obliquity-compensated back-projection).

    See :meth:`operators.NearFieldMIMO.kirchhoff` for the formula; ``info`` is empty.
    """
    _check_physics_data(physics, y)
    if not hasattr(physics, "kirchhoff"):
        raise TypeError(f"physics: expected an operator with a kirchhoff() method (NearFieldMIMO), received {type(physics).__name__}")
    return physics.kirchhoff(y), {}


def _magnitude_denoiser(prior: str | Callable, strength: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The real map D(m) of the prior at the given strength."""
    if callable(prior):
        return prior
    if prior == "l1":
        return lambda m: soft_threshold(m, strength)
    if prior == "tv":
        tv = tv_denoiser(TV_STEPS)
        return lambda m: tv(m, strength)
    from denoisers.zoo import load  # noqa: PLC0415  (torch model, loaded on demand)

    net = load("mimo_unet3d")

    def unet(m: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net.to(m.device)(m, strength).to(m.dtype)

    return unet


def magnitude_pnp(
    physics,
    y: torch.Tensor,
    prior: str | Callable[[torch.Tensor], torch.Tensor] = "unet3d",
    noise_level: float | None = None,
    *,
    epsilon: float | None = None,
    strength: float | None = None,
    kappa: float = KAPPA,
    cg_iter: int = 5,
    max_iter: int | None = None,
    tol: float = 5e-4,
    progress: bool | None = None,
    x_true: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    r"""Reconstruct a complex reflectivity with a prior on its magnitude (see the module docstring).

    Args:
        physics: the forward operator, e.g. :class:`operators.NearFieldMIMO`.
        y: complex measurements (B, 1, F, T, R).
        prior: ``"unet3d"``, ``"tv"``, ``"l1"`` or a callable ``D(m) -> m'`` on magnitudes.
        noise_level: standard deviation :math:`\sigma_n` of the complex noise per measurement
            (:math:`E|n|^2 = \sigma_n^2`, units of ``y``); gives :math:`\epsilon = \sqrt{M}\sigma_n`
            with M the number of entries of ``y``. Exactly one of ``noise_level`` / ``epsilon``.
        epsilon: the data-ball radius directly (units of ``y``).
        strength: the prior's parameter on the normalised scale (threshold, TV weight or
            the network's noise level); default from :data:`DEFAULTS`.
        kappa: C-SALSA's :math:`\kappa` (the paper's 500, for the operator in metres).
        cg_iter: CG steps per x-step.
        max_iter: outer iterations (default from :data:`DEFAULTS`).
        tol: stop when the relative change of :math:`|x|` is below it.
        progress: tqdm bar (default: only on a terminal).
        x_true: optional ground truth, used ONLY to record the magnitude PSNR per iteration in
            ``info["history"].psnr`` for plots (never for stopping or selection).

    Returns:
        ``(x, info)``: ``x`` complex (B, 1, Nx, Ny, Nz) in the units of the model; ``info`` has
        ``history`` (:class:`~recon.solvers.History`), ``iterations``, ``epsilon``, ``scale``
        (the normalisation :math:`s`), ``strength`` and ``prior``.

    Example:
        >>> x, info = recon.magnitude_pnp(physics, y, prior="tv", noise_level=sigma_n)
    """
    _check_physics_data(physics, y)
    if not callable(prior) and prior not in PRIORS:
        raise ValueError(f"prior: expected one of {PRIORS} or a callable, received {prior!r}")
    if (noise_level is None) == (epsilon is None):
        raise ValueError(
            f"noise_level / epsilon: expected exactly one of them, received noise_level={noise_level!r}, epsilon={epsilon!r}"
        )
    eps = (
        check_positive("epsilon", epsilon, allow_zero=True)
        if epsilon is not None
        else math.sqrt(y.numel()) * check_positive("noise_level", noise_level, allow_zero=True)
    )
    name = "callable" if callable(prior) else prior
    default_strength, default_iter = DEFAULTS.get(name, (0.0, 30))
    strength = default_strength if strength is None else check_positive("strength", strength, allow_zero=True)
    max_iter = default_iter if max_iter is None else max_iter

    bp = physics.A_adjoint(y)
    a_bp = physics.A(bp)
    beta = float(torch.vdot(a_bp.flatten(), y.flatten()).real) / max(float(torch.vdot(a_bp.flatten(), a_bp.flatten()).real), 1e-300)
    scale = abs(beta) * float(bp.abs().max())
    if not scale > 0:
        raise ValueError("y: expected measurements with a non-zero back-projection, received A^H y = 0")
    x0 = bp / float(bp.abs().max())
    reference = None if x_true is None else check_tensor("x_true", x_true, real=False)
    prox = magnitude_prox(_magnitude_denoiser(prior, strength))
    psnrs: list[float] = []  # magnitude PSNR per iterate, for reporting only

    def record(iteration: int, x: torch.Tensor) -> None:
        psnrs.append(float(magnitude_psnr(x, reference).mean()))

    solver = CSALSA(
        physics, y / scale, eps / scale, prox, kappa=kappa, cg_iter=cg_iter, max_iter=max_iter, tol=tol,
        progress=progress, callback=None if reference is None else record,
    )
    x, hist = solver.run(x0)
    if reference is not None:
        hist.psnr = psnrs
    info = {"history": hist, "iterations": hist.iterations, "epsilon": eps, "scale": scale, "strength": strength, "prior": name}
    return x * scale, info
