r"""Magnitude plug-and-play for near-field MIMO radar imaging, and its two classical baselines.

Oral & Oktem, "Plug-and-Play Regularization on Magnitude with Deep Priors for 3D Near-Field MIMO
Imaging", IEEE TCI 2024. The complex reflectivity :math:`x` has a random-like phase, so the prior
acts on the magnitude only:

.. math::
    \min_x\ R(|x|) \quad\text{s.t.}\quad \|y - Ax\|_2 \le \epsilon, \qquad
    \epsilon = \|e\| = \sigma_n\sqrt{M},

with :math:`\sigma_n` the noise std per complex entry (:math:`E|e_i|^2 = \sigma_n^2`, the
``noise_std``) and M the number of entries of ``y`` (:attr:`recon.noise.Noise.norm`; from a
relative ``noise_level`` r, :math:`\epsilon \approx r\|y\|/\sqrt{1 + r^2}`). It is solved by
C-SALSA (:class:`~recon.solvers.CSALSA`: 5 warm-started CG steps in the x-step,
:math:`\kappa = 500`) whose prox step is the magnitude prox :math:`D(|u|, \sigma_d)\,e^{j\angle u}`
(:mod:`recon.regularizers.magnitude`) with :math:`D = ` :func:`recon.regularizers.prior.as_denoiser`
of the prior, one of the three kinds of :mod:`recon.regularizers.prior`:

* ``"l1"``: soft threshold of the magnitude (threshold :math:`\sigma_d^2` per iteration);
* ``"tv"``: ``TV_STEPS`` = 10 Chambolle-Pock steps of 3D isotropic TV denoising
  (:class:`~recon.regularizers.prior.TVPrior`, TV weight :math:`\sigma_d^2`);
* ``"mimo_unet3d"``: the shipped 3D U-Net (``denoisers.zoo.load("mimo_unet3d")``, told the noise
  std :math:`\sigma_d`, its ``sigma``);
* a ``deepinv.optim.Prior`` (its prox with ``gamma`` :math:`= \sigma_d^2`, or its denoiser at :math:`\sigma_d`)
  or a denoiser callable ``D(m, sigma)`` on real magnitudes (B, 1, Nx, Ny, Nz), called with
  ``sigma`` :math:`= \sigma_d`,

all at the one strength :math:`\sigma_d` = ``denoiser_sigma`` of :mod:`recon.regularizers.prior`.

Scale: the iteration runs on a normalised problem. The back-projection :math:`A^H y`, scaled by
least squares to the data (:math:`\beta = \mathrm{Re}\langle A A^H y, y\rangle / \|A A^H y\|^2`),
has its peak magnitude :math:`s`; the solver works on :math:`y / s`, :math:`\epsilon / s`, so
magnitudes are of order one whatever the units of ``y``, and the result is scaled back by
:math:`s`. The ``denoiser_sigma`` defaults therefore hold for any data scale. For l1 and TV the
constrained minimiser does not depend on ``denoiser_sigma`` (it only sets the ADMM step); for the
network it is the denoiser's noise level. A batch is one problem: one scale and one data ball
:math:`\|y - Ax\| \le \epsilon` over all its elements.

Stopping: relative change of :math:`|x|` below ``tol`` (5e-4) or ``max_iter`` (30 for the
network, as in the paper; 150 for l1 / TV, where the paper allows 1e4: a cost we cannot afford
on 2 cores, so l1 / TV may stop before the tolerance is met; the demo reports the iterations).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import deepinv
import torch

from operators._validate import check_positive, check_tensor
from recon.metrics import magnitude_psnr
from recon.noise import require_noise
from recon.regularizers.magnitude import magnitude_prox
from recon.regularizers.prior import TVPrior, as_denoiser, as_prior, prior_name
from recon.result import ReconInfo
from recon.solvers import CSALSA

#: per registered prior name: (denoiser_sigma, max_iter). Strengths from `demos/mimo_magnitude_pnp.py --tune` on
#: training-seed scenes: mimo_unet3d on the full 25x25x49 grid (sigma 0.1-0.5: best 0.2), l1 and tv on the quick
#: 13x13x25 grid (prox weights denoiser_sigma**2: l1 threshold 0.2, TV weight 0.01)
DEFAULTS = {"mimo_unet3d": (0.2, 30), "tv": (0.1, 150), "l1": (math.sqrt(0.2), 150)}
#: the registered prior names for 3D magnitudes
PRIORS = tuple(DEFAULTS)
#: max_iter for a prior given as an object or callable: as the network's for a denoiser, as l1 / TV's for an explicit prior
OBJECT_MAX_ITER = {"denoiser": 30, "explicit": 150}
KAPPA = 500.0
TV_STEPS = 10


def _check_physics_data(physics: object, y: object) -> torch.Tensor:
    if not (hasattr(physics, "A") and hasattr(physics, "A_adjoint")):
        raise TypeError(f"physics: expected a LinearPhysics (e.g. operators.NearFieldMIMO), received {type(physics).__name__}")
    check_tensor("y", y, real=False)
    if not y.is_complex():
        raise TypeError(f"y: expected complex measurements (complex64 or complex128), received {y.dtype}")
    return y


def backprojection(physics, y: torch.Tensor) -> tuple[torch.Tensor, ReconInfo]:
    r"""Matched filter :math:`x = A^H y`.

    Args:
        physics: the forward operator, e.g. :class:`operators.NearFieldMIMO`.
        y: complex measurements (B, 1, F, T, R), units of the echoes.

    Returns:
        ``(x, info)``: x complex (B, 1, Nx, Ny, Nz); ``info`` a closed-form
        :class:`~recon.result.ReconInfo` (empty ``params``).

    Example:
        >>> x, info = recon.backprojection(physics, y)
    """
    t0 = time.perf_counter()
    return physics.A_adjoint(_check_physics_data(physics, y)), ReconInfo.closed_form(t0)


def kirchhoff_migration(physics, y: torch.Tensor) -> tuple[torch.Tensor, ReconInfo]:
    r"""Kirchhoff migration (amplitude- and obliquity-compensated back-projection).

    See :meth:`operators.NearFieldMIMO.kirchhoff` for the formula. Takes and returns what
    :func:`backprojection` does, with ``physics`` an operator that has a ``kirchhoff`` method
    (:class:`operators.NearFieldMIMO`).

    Example:
        >>> x, info = recon.kirchhoff_migration(physics, y)
    """
    t0 = time.perf_counter()
    _check_physics_data(physics, y)
    if not hasattr(physics, "kirchhoff"):
        raise TypeError(f"physics: expected an operator with a kirchhoff() method (NearFieldMIMO), received {type(physics).__name__}")
    return physics.kirchhoff(y), ReconInfo.closed_form(t0)


def _magnitude_prior(prior: object) -> tuple[deepinv.optim.Prior, str]:
    """The resolved prior and its reported name; names other than :data:`PRIORS` are refused."""
    if isinstance(prior, str):
        if prior not in PRIORS:
            raise ValueError(
                f"prior: expected one of {PRIORS} (the registered priors for 3D magnitudes), a deepinv.optim.Prior "
                f"or a denoiser callable D(x, sigma), received {prior!r}"
            )
        return (TVPrior(n_iter=TV_STEPS) if prior == "tv" else as_prior(prior)), prior
    resolved = as_prior(prior)
    return resolved, prior_name(resolved)


def magnitude_pnp(
    physics,
    y: torch.Tensor,
    *,
    prior: str | deepinv.optim.Prior | Callable = "mimo_unet3d",
    noise_level: float | None = None,
    noise_std: float | None = None,
    epsilon: float | None = None,
    denoiser_sigma: float | None = None,
    kappa: float = KAPPA,
    cg_iter: int = 5,
    max_iter: int | None = None,
    tol: float = 5e-4,
    progress: bool | None = None,
    x_true: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""Reconstruct a complex reflectivity with a prior on its magnitude (see the module docstring).

    Args:
        physics: the forward operator, e.g. :class:`operators.NearFieldMIMO`.
        y: complex measurements (B, 1, F, T, R), units of the echoes.
        prior: ``"mimo_unet3d"``, ``"tv"``, ``"l1"``, a ``deepinv.optim.Prior`` or a denoiser
            callable ``D(m, sigma) -> m'`` on real magnitudes (:mod:`recon.regularizers.prior`).
        noise_level: relative noise level :math:`\|e\| / \|Ax\|`, gives :math:`\epsilon \approx
            r\|y\|/\sqrt{1 + r^2}`. Exactly one of ``noise_level`` / ``noise_std`` / ``epsilon``.
        noise_std: absolute std :math:`\sigma_n` of the complex noise per entry
            (:math:`E|e_i|^2 = \sigma_n^2`, units of ``y``), gives :math:`\epsilon = \sigma_n\sqrt{M}`.
        epsilon: the data-ball radius directly (units of ``y``).
        denoiser_sigma: :math:`\sigma_d`, on the normalised scale: the denoiser strength; for explicit
            priors the prox weight is ``denoiser_sigma**2`` (l1 threshold, TV weight;
            :mod:`recon.regularizers.prior`). Default from :data:`DEFAULTS` for a registered
            name, required for a prior object or callable.
        kappa: C-SALSA's :math:`\kappa` (the paper's 500, for the operator in metres).
        cg_iter: CG steps per x-step.
        max_iter: outer iterations (default from :data:`DEFAULTS`; for a prior object or callable
            from :data:`OBJECT_MAX_ITER`: 30 for a denoiser, 150 for an explicit prior).
        tol: stop when the relative change of :math:`|x|` is below it.
        progress: tqdm bar (default: only on a terminal).
        x_true: optional ground truth, used ONLY to record the magnitude PSNR per iteration in
            ``info.history.psnr`` for plots (never for stopping or selection).

    Returns:
        ``(x, info)``: ``x`` complex (B, 1, Nx, Ny, Nz) in the units of the model; ``info`` a
        :class:`~recon.result.ReconInfo` with the C-SALSA ``history`` (relative change of
        :math:`|x|`; magnitude PSNR with ``x_true``), ``n_iter``, ``converged``, ``stop_reason``,
        ``seconds``, ``params``: ``prior`` (its name), ``denoiser_sigma``, ``max_iter``, ``kappa``,
        ``epsilon`` (units of ``y``) and, when given as such, ``noise_level`` and ``noise_std``
        (lists, per batch element); ``extra["scale"]``: the normalisation :math:`s`.

    Example:
        >>> x, info = recon.magnitude_pnp(physics, y, prior="tv", noise_std=sigma_n)
        >>> info.params["epsilon"], info.n_iter
    """
    t0 = time.perf_counter()
    _check_physics_data(physics, y)
    resolved, name = _magnitude_prior(prior)
    given = {"noise_level": noise_level, "noise_std": noise_std, "epsilon": epsilon}
    if sum(v is not None for v in given.values()) != 1:
        raise ValueError(
            "noise_level / noise_std / epsilon: expected exactly one of them (the relative level ||e|| / ||Ax||, the "
            "absolute std per entry, or the data-ball radius), received "
            + ", ".join(f"{k}={v!r}" for k, v in given.items())
        )
    params: dict[str, object] = {"prior": name}
    if epsilon is not None:
        eps = check_positive("epsilon", epsilon, allow_zero=True)
    else:
        noise = require_noise(physics, y, noise_level=noise_level, noise_std=noise_std)
        eps = math.sqrt(sum(float(n) ** 2 for n in noise.norm))  # one ball over the batch
        params |= {"noise_level": noise.level.tolist(), "noise_std": noise.std.tolist()}
    if isinstance(prior, str):
        default_sigma, default_iter = DEFAULTS[prior]
    elif denoiser_sigma is None:
        raise ValueError(
            f"denoiser_sigma: expected a value (the prior's strength on the normalised scale) for prior {name!r}, received None"
        )
    else:
        kind = "explicit" if getattr(resolved, "explicit_prior", False) else "denoiser"
        default_sigma, default_iter = None, OBJECT_MAX_ITER[kind]
    sd = default_sigma if denoiser_sigma is None else check_positive("denoiser_sigma", denoiser_sigma, allow_zero=True)
    max_iter = default_iter if max_iter is None else max_iter
    params |= {"denoiser_sigma": sd, "max_iter": max_iter, "kappa": kappa, "epsilon": eps}

    bp = physics.A_adjoint(y)
    a_bp = physics.A(bp)
    beta = float(torch.vdot(a_bp.flatten(), y.flatten()).real) / max(float(torch.vdot(a_bp.flatten(), a_bp.flatten()).real), 1e-300)
    scale = abs(beta) * float(bp.abs().max())
    if not scale > 0:
        raise ValueError("y: expected measurements with a non-zero back-projection, received A^H y = 0")
    x0 = bp / float(bp.abs().max())
    reference = None if x_true is None else check_tensor("x_true", x_true, real=False)
    lifted = magnitude_prox(as_denoiser(resolved))
    psnrs: list[float] = []  # magnitude PSNR per iterate, for reporting only

    def prox(v: torch.Tensor) -> torch.Tensor:
        return lifted(v, sd)

    def record(iteration: int, x: torch.Tensor) -> None:
        psnrs.append(float(magnitude_psnr(x, reference).mean()))

    solver = CSALSA(
        physics, y / scale, eps / scale, prox, kappa=kappa, cg_iter=cg_iter, max_iter=max_iter, tol=tol,
        progress=progress, callback=None if reference is None else record,
    )
    x, hist = solver.run(x0)
    if reference is not None:
        hist.psnr = psnrs
    return x * scale, ReconInfo.from_history(hist, t0, params, scale=scale)
