r"""RED-PSM: regularization by denoising of a partially separable model, for dynamic inverse problems.

Iskender, Klasky & Bresler, "RED-PSM: Regularization by Denoising of Partially Separable Models
for Dynamic Imaging", ICCV 2023 / IEEE TCI 2024. The object, P frames of N x N pixels, is the
spline-smooth partially separable model :math:`F = \Lambda \Psi^T`, :math:`\Psi = U Z`
(:mod:`recon.regularizers.psm`), and

.. math::
    \min_{\Lambda, Z, f}\ \sum_t \|A_t (\Lambda\Psi^T)_t - y_t\|^2 + \lambda \sum_t \rho(f_t)
        + \xi \|Z\|_F^2 + \chi \|\Lambda\|_F^2 \quad\text{s.t.}\quad f = \Lambda\Psi^T,

with the RED penalty :math:`\rho` of a frame denoiser :math:`D(\cdot, s)`
(:mod:`recon.regularizers.red`; :math:`\nabla\rho(f) = f - D(f, s)`). The scaled ADMM
(:class:`~recon.solvers.ADMM`, penalty :math:`\beta`, dual :math:`\gamma`), per outer iteration:

1. :math:`(\Lambda, Z)`: ``adam_steps`` Adam steps (learning rate ``lr``, moments kept across
   outer iterations) on the data misfit :math:`+ \frac{\beta}{2}\|\Lambda\Psi^T - f + \gamma\|^2`
   + the two Frobenius penalties, the frames projected (clipped >= 0, zero outside the circular
   field of view, each optional) before they enter any term;
2. :math:`f \leftarrow (\lambda D(f, s) + \beta(\Lambda\Psi^T + \gamma)) / (\lambda + \beta)`, one
   RED fixed-point step frame by frame;
3. :math:`\gamma \leftarrow \gamma + \Lambda\Psi^T - f`.

The result is the PSM :math:`\Lambda\Psi^T` (projected). Baselines through :func:`psm`: plain PSM
(:math:`\lambda = 0`: step 2 is then :math:`f = \Lambda\Psi^T + \gamma` and the dual stays 0, so
the loop is a proximal-point descent on the PSM objective), and PSM with a prior (step 2 the
prox of :math:`(\lambda/\beta) R` per frame, e.g. TV, or plug-and-play with a denoiser). :func:`sliding_window_fbp` (dynamic CT) and
:func:`view_sharing` (dynamic MRI) are the classical per-frame baselines.

Priors: ``prior=`` takes the three kinds of :mod:`recon.regularizers.prior` (a registered name,
a ``deepinv.optim.Prior``, a denoiser callable ``D(x, sigma)`` on (B, 1, N, N) frames), turned
into the one map :math:`D(x, \sigma)` by :func:`~recon.regularizers.prior.as_denoiser`, whose
strength :math:`\sigma` is a Gaussian noise std the step is taken to remove (the one strength rule
of :mod:`recon.regularizers.prior`: :math:`D_\sigma` for a denoiser prior,
:math:`\mathrm{prox}_{\sigma^2 R}` for an explicit prior :math:`R`). :func:`red_psm` takes
:math:`\sigma` = ``denoiser_sigma``; :func:`psm` has no strength of its own: its prox weight
:math:`\lambda/\beta` is :math:`\sigma^2`, so :math:`\sigma = \sqrt{\lambda/\beta}`. A blind
denoiser (the shipped ``ct_dncnn``) ignores :math:`\sigma`.

Physics: any linear operator that declares its image shape
(:func:`operators.shapes.image_shape`), either

* real frames on the channel axis, (P, N, N) per object: :class:`operators.DynamicCT`;
* complex frames, (2, P, N, N) (real and imaginary channels): deepinv's ``DynamicMRI`` or
  :class:`operators.SenseMRI` with one mask per frame; the object is taken real (the imaginary
  channel is zero), as for the magnitude phantoms here.

Units: the iteration runs on normalised data. The initial estimate's 99.5th percentile
:math:`s` sets the scale: ``y / s`` is reconstructed, so frames are of order one (the range the
denoiser was trained on) and the defaults of :math:`\lambda, \beta, \xi, \chi` and ``lr`` hold
for any data units; the result is scaled back by :math:`s` (``info.extra["data_scale"]``).

Initialisation (``init``): ``"svd"`` (default) from the data alone: sliding-window estimates
of the frames (:func:`sliding_window_fbp` for CT, :func:`view_sharing` for deepinv's
``DynamicMRI``, the zero-filled adjoint for other MRI operators), then the spline-PSM factors of their truncated SVD
(:func:`~recon.regularizers.psm.truncated_svd_factors`). ``"random"``: Gaussian latent samples
and a small random spatial basis (seeded). The paper initialises with a projection-domain PSM
estimate; the windowed estimate plays that role here.

Stopping: after ``n_iter`` outer iterations, or earlier when the relative change of the frames
between two outer iterations, :math:`\|F_k - F_{k-1}\| / \|F_k\|` (the history's residual),
falls below ``tol`` (0 disables); never by PSNR against a truth.

Weights: the ADMM does not reach its fixed point in the iteration budgets used, and a prior's effect
grows with weight x iterations, so ``lam="auto"`` (the default of :func:`red_psm`, an option of
:func:`psm` with ``prior="tv"``) sets the weight from the budget, :math:`\lambda = c / n_{iter}`
(:func:`auto_weight`, its tuning table there).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import deepinv
import torch
from deepinv.physics import DynamicMRI

from operators import DynamicCT, ParallelBeamCT
from operators._validate import check_int, check_option, check_positive, check_tensor
from operators.shapes import image_shape
from recon.regularizers.prior import Denoiser, TVPrior, as_denoiser, as_prior, prior_name
from recon.regularizers.psm import hermite_spline_matrix, psm_frames, truncated_svd_factors
from recon.regularizers.red import framewise, red_fixed_point_step
from recon.result import ReconInfo
from recon.solvers import ADMM

__all__ = [
    "BETA", "DEFAULTS", "DENOISER_SIGMA", "LAM", "RED_WEIGHT_BUDGET", "TV_WEIGHT_BUDGET", "auto_weight", "model_defaults", "psm",
    "red_psm",
    "sliding_window_fbp", "view_sharing",
]  # fmt: skip

#: Model sizes by number of frames: P -> (rank = K + 1, latent_size d, n_iter); a sequence uses the entry of
#: the smallest listed P >= its own (the largest beyond 256). 128 and 256: the paper's. 32: rank 5, tuned on
#: objects outside the robustness grid (dynamic CT 64x64, one view per frame, noise 0.5 and 2 %, cardiac seed
#: 500000 and coule seeds 500000-500001, 30 outer iterations, lam "auto"; PSNR dB, mean of the 6 runs):
#: rank 3 / 5 / 7: PSM 22.11 / 23.51 / 23.29 (rank 3 peaks after 1-4 iterations, then falls), PSM-TV
#: 25.28 / 25.23 / 24.37, RED-PSM 25.60 / 26.36 / 25.37; rank 5 is best or within 0.05 dB of it for every method.
DEFAULTS = {32: (5, 9, 201), 128: (7, 9, 201), 256: (11, 11, 101)}
#: RED weight of ``demos/ct_dynamic_red_psm.py`` (its ``--tune`` sweep at 100 outer iterations) and the default
#: ADMM penalty, normalised units (dynamic CT, sinograms in pixel units). The paper's lambda = beta = 2e-4 belong
#: to its data scaling: here they leave the prior without effect. Operators with a much weaker data term need
#: smaller weights (an orthonormal-FFT MRI operator: lambda 0.3-1, beta 1, ``demos/mri_dynamic_red_psm.py --tune``).
#: :func:`red_psm`'s default weight is ``"auto"`` (:func:`auto_weight`), not this constant.
LAM, BETA = 3.0, 3.0
#: :func:`auto_weight`: prior weight x outer iterations at which the PSNR peaks (dynamic CT, beta = 3), for RED
#: with ``ct_dncnn`` and for PSM-TV (tuning table in :func:`auto_weight`'s docstring).
RED_WEIGHT_BUDGET = 30.0
TV_WEIGHT_BUDGET = 2.0
#: RED-PSM's denoiser_sigma, the noise std its prior step removes, in normalised frame units: the middle
#: of the noise std range [0, 0.1] that the shipped ``ct_dncnn`` was trained on (a blind net, which ignores it).
DENOISER_SIGMA = 0.05
XI = CHI = 1e-6
ADAM_STEPS = 25
LR = 5e-3
TV_STEPS = 10
INITS = ("svd", "random")


# ----------------------------------------------------------------------------- the object layout


class _FrameModel:
    """Maps real frames (P, N, N) to the physics' object layout and measurements."""

    def __init__(self, physics: object, y: torch.Tensor):
        if not (hasattr(physics, "A") and hasattr(physics, "A_adjoint")):
            raise TypeError(
                f"physics: expected a linear operator (operators.DynamicCT, deepinv DynamicMRI, ...), received {type(physics).__name__}"
            )
        check_tensor("y", y)
        if y.shape[0] != 1:
            raise ValueError(f"y: expected one sequence (batch size 1), received shape {tuple(y.shape)}")
        self.physics = physics
        shape = image_shape(physics)
        if len(shape) == 3:
            self.complex = False
        elif len(shape) == 4 and shape[0] == 2:
            self.complex = True
            shape = shape[1:]
        else:
            raise ValueError(f"physics: expected objects of shape (P, N, N) or (2, P, N, N), it declares {shape}")
        if shape[-1] != shape[-2]:
            raise ValueError(f"physics: expected square frames, it declares frames of shape {shape[-2:]}")
        self.n_frames, self.n = shape[0], shape[-1]

    def to_object(self, frames: torch.Tensor) -> torch.Tensor:
        """(P, N, N) -> the physics' object layout (1, P, N, N) or (1, 2, P, N, N)."""
        if self.complex:
            return torch.stack([frames, torch.zeros_like(frames)])[None]
        return frames[None]

    def from_object(self, x: torch.Tensor) -> torch.Tensor:
        """The real frames (P, N, N) of an object."""
        return x[0, 0] if self.complex else x[0]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.physics.A(self.to_object(frames))


def _fov_mask(n: int, dtype: torch.dtype) -> torch.Tensor:
    """1 on pixels whose centre lies in the disc inscribed in the N x N image, else 0."""
    c = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    return ((c[:, None] ** 2 + c[None, :] ** 2) <= (n / 2) ** 2).to(dtype)


def _projection(n: int, dtype: torch.dtype, nonneg: bool, circular_fov: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    mask = _fov_mask(n, dtype) if circular_fov else None

    def project(f: torch.Tensor) -> torch.Tensor:
        if nonneg:
            f = torch.clamp(f, min=0.0)
        return f * mask if mask is not None else f

    return project


# ----------------------------------------------------------------------------- baselines / init


def _window(t: int, w: int, p: int) -> slice:
    """The ``w`` frames around frame ``t`` (from ``t - w // 2``), shifted inwards at the ends of ``0..p-1``."""
    start = min(max(t - w // 2, 0), p - w)
    return slice(start, start + w)


def sliding_window_fbp(
    physics: DynamicCT, y: torch.Tensor, *, window: int | None = None, filter: str = "hann"  # noqa: A002
) -> tuple[torch.Tensor, ReconInfo]:
    r"""Per-frame FBP from the views of a window of neighbouring frames (dynamic CT).

    Frame ``t`` is the FBP (:meth:`operators.ParallelBeamCT.fbp`) of all views of frames
    :math:`t - \lfloor w/2 \rfloor, \dots, t + \lceil w/2 \rceil - 1`, the window shifted inwards
    at the two ends of the sequence so it always holds ``w`` frames. Bit-reversal angles make
    every window cover [0, pi) nearly uniformly; a longer window has fewer streaks and more
    motion blur.

    Args:
        physics: an :class:`operators.DynamicCT` (P frames of N x N pixels).
        y: its sinograms, (B, P, n_views, n_detectors), in the units of ``physics.A`` (line
            integrals in pixel units).
        window: frames per window w, 1 <= w <= P; default ``min(P, 32)`` (32 views at one view
            per frame, the shortest window without strong streaks at N = 128 in the demo's
            tuning run).
        filter: FBP window (``"ram-lak"``, ``"shepp-logan"``, ``"cosine"``, ``"hann"``).

    Returns:
        ``(frames, info)``: frames (B, P, N, N) in image units; ``info`` a closed-form
        :class:`~recon.result.ReconInfo` (empty history, ``n_iter`` 0) with
        ``params = {"window": w, "filter": filter}``.

    Example:
        >>> physics = operators.DynamicCT(128, n_frames=128)
        >>> frames, info = recon.sliding_window_fbp(physics, y, window=32)
        >>> info.params["window"]
        32
    """
    t0 = time.perf_counter()
    if not isinstance(physics, DynamicCT):
        raise TypeError(f"physics: expected an operators.DynamicCT, received {type(physics).__name__}")
    physics._check_sinogram(y)
    p = physics.n_frames
    w = min(p, 32) if window is None else check_int("window", window)
    if w > p:
        raise ValueError(f"window: expected at most n_frames = {p} frames, received {w}")
    angles = physics.angles
    out = torch.empty(y.shape[0], p, physics.n, physics.n, dtype=y.dtype)
    for t in range(p):
        frames = _window(t, w, p)
        op = ParallelBeamCT(physics.n, angles[frames].reshape(-1), physics.n_detectors, physics.detector_spacing, backend="numba")
        sino = y[:, frames].reshape(y.shape[0], 1, -1, physics.n_detectors)
        out[:, t] = op.fbp(sino, filter=filter)[:, 0]
    return out, ReconInfo.closed_form(t0, {"window": w, "filter": filter})


def view_sharing(physics: DynamicMRI, y: torch.Tensor, *, window: int | None = None) -> tuple[torch.Tensor, ReconInfo]:
    r"""Dynamic MRI by view sharing: each frame's k-space pooled with its neighbours', zero-filled inverse.

    Frame ``t`` takes the k-space samples of frames :math:`t - \lfloor w/2 \rfloor, \dots, t +
    \lceil w/2 \rceil - 1` (the window shifted inwards at the ends), averaged where several
    frames sampled the same location, and is the centred inverse FFT of that pooled k-space (zero
    where no frame of the window sampled). With one sampling pattern shifted from frame to frame (a k-t lattice), a
    window of R frames at acceleration R fills k-space about once.

    Args:
        physics: a deepinv ``DynamicMRI`` (single coil, orthonormal centred FFT per frame).
        y: the measurements of one or more sequences, (B, 2, P, N, N) (real and imaginary
            channels), zero where not sampled.
        window: frames per window, 1 <= w <= P; default the acceleration
            :math:`\lceil P N^2 / \#\text{samples} \rceil`, capped at P.

    Returns:
        ``(x, info)``: x (B, 2, P, N, N) in image units; ``info`` a closed-form
        :class:`~recon.result.ReconInfo` with ``params = {"window": w}``.

    Example:
        >>> physics = deepinv.physics.DynamicMRI(mask=mask, img_size=(1, 2, 32, 64, 64))
        >>> x, info = recon.view_sharing(physics, physics.A(obj))
        >>> info.params["window"]   # the acceleration
        8
    """
    t0 = time.perf_counter()
    if not isinstance(physics, DynamicMRI):
        raise TypeError(f"physics: expected a deepinv.physics.DynamicMRI, received {type(physics).__name__}")
    check_tensor("y", y, ndim=5)
    p = y.shape[2]
    mask = (y.abs().sum(dim=1, keepdim=True) > 0).to(y.dtype)
    default = min(p, math.ceil(mask[0, 0].numel() / max(float(mask.sum()), 1.0)))
    w = default if window is None else check_int("window", window)
    if w > p:
        raise ValueError(f"window: expected at most n_frames = {p} frames, received {w}")
    pooled, counts = torch.zeros_like(y), torch.zeros_like(mask)
    for t in range(p):
        frames = _window(t, w, p)
        pooled[:, :, t] = y[:, :, frames].sum(dim=2)
        counts[:, :, t] = mask[:, :, frames].sum(dim=2)
    full = DynamicMRI(img_size=tuple(y.shape))  # all-ones mask: the plain centred inverse FFT of every frame
    return full.A_adjoint(pooled / counts.clamp(min=1.0)), ReconInfo.closed_form(t0, {"window": w})


def _windowed_estimate(model: _FrameModel, y: torch.Tensor) -> torch.Tensor:
    """Data-only frames (P, N, N) for the SVD initialisation and the scale."""
    if isinstance(model.physics, DynamicMRI):
        return model.from_object(view_sharing(model.physics, y)[0])
    if model.complex:  # another MRI operator: the zero-filled adjoint
        return model.from_object(model.physics.A_adjoint(y))
    return sliding_window_fbp(model.physics, y)[0][0]


# ----------------------------------------------------------------------------- the (Lambda, Z) step


class _FactorStep:
    """The ADMM x-step: Adam steps on the PSM factors; returns the projected frames."""

    def __init__(self, model, y, spline, spatial, latent, project, xi, chi, steps, lr):
        self.model, self.y, self.spline, self.project = model, y, spline, project
        self.spatial = spatial.clone().requires_grad_(True)
        self.latent = latent.clone().requires_grad_(True)
        self.xi, self.chi, self.steps = xi, chi, steps
        self.optimizer = torch.optim.Adam([self.spatial, self.latent], lr=lr)

    def frames(self) -> torch.Tensor:
        return self.project(psm_frames(self.spatial, self.latent, self.spline))

    def __call__(self, v: torch.Tensor, rho: float, x_prev: torch.Tensor) -> torch.Tensor:
        for _ in range(self.steps):
            self.optimizer.zero_grad(set_to_none=True)
            f = self.frames()
            loss = (
                torch.sum((self.model.forward(f) - self.y) ** 2)
                + 0.5 * rho * torch.sum((f - v) ** 2)
                + self.xi * torch.sum(self.latent**2)
                + self.chi * torch.sum(self.spatial**2)
            )
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            return self.frames()


class _REDStep:
    """The ADMM z-step of RED: one fixed-point step, the denoiser ``denoiser(frames)`` applied to the current f."""

    def __init__(self, denoiser: Callable[[torch.Tensor], torch.Tensor], lam: float, f0: torch.Tensor):
        self.denoise, self.lam, self.f = framewise(denoiser), lam, f0

    def __call__(self, v: torch.Tensor, rho: float) -> torch.Tensor:
        self.f = red_fixed_point_step(self.f, v, self.denoise, self.lam, rho)
        return self.f


class _PSMADMM(ADMM):
    r""":class:`~recon.solvers.ADMM` whose recorded residual is the relative change of the frames.

    Boyd's dual residual is relative to the scaled dual, which stays 0 for plain PSM (its z-step
    is the identity) and near 0 for weak priors; the change of the PSM frames,
    :math:`\|F_k - F_{k-1}\| / \|F_k\|`, is meaningful for every variant. A non-finite f (a
    denoiser that returned NaN) makes the residual NaN, so the run stops with
    :class:`~recon.solvers.NonFiniteError` before the NaN reaches the factors.
    """

    def step(self, state: dict) -> tuple[float, float]:
        prev = state["x"]
        objective, _ = super().step(state)
        if not bool(torch.isfinite(state["z"]).all()):
            return objective, float("nan")
        change = float(torch.linalg.vector_norm(state["x"] - prev))
        return objective, change / max(float(torch.linalg.vector_norm(state["x"])), state["tiny"])


# ----------------------------------------------------------------------------- the methods


def model_defaults(p: int) -> tuple[int, int, int]:
    """``(rank, latent_size, n_iter)`` of a sequence of ``p`` frames: the :data:`DEFAULTS` entry of the smallest listed
    P >= p (the largest beyond 256)."""
    key = min((k for k in DEFAULTS if k >= p), default=max(DEFAULTS))
    return DEFAULTS[key]


def _run_psm(
    physics, y: torch.Tensor, z_step_of: Callable, *, t0: float, lam: float | str, budget: float | None, beta: float,
    params: dict, rank: int | None,
    latent_size: int | None, n_iter: int | None, init: str, nonneg: bool, circular_fov: bool, tol: float, seed: int,
    progress: bool | None, reference: torch.Tensor | None,
) -> tuple[torch.Tensor, ReconInfo]:  # fmt: skip
    """The shared ADMM of :func:`red_psm` and :func:`psm`; ``z_step_of(f0, lam)`` builds step 2; ``lam="auto"``:
    :func:`auto_weight` ``(budget, n_iter)``."""
    model = _FrameModel(physics, y)
    p, n = model.n_frames, model.n
    estimate = _windowed_estimate(model, y)  # also checks y against the physics
    d_rank, d_latent, d_iter = model_defaults(p)
    rank = d_rank if rank is None else check_int("rank", rank)
    if rank > p:
        raise ValueError(f"rank: expected at most n_frames = {p} basis functions, received {rank}")
    latent_size = d_latent if latent_size is None else latent_size
    n_iter = d_iter if n_iter is None else check_int("n_iter", n_iter)
    check_option("init", init, INITS)
    lam = _weight(lam, budget, n_iter)
    beta = check_positive("beta", beta)
    spline = hermite_spline_matrix(p, latent_size, dtype=y.dtype)

    scale = float(torch.quantile(estimate.reshape(-1)[:: max(1, estimate.numel() // 2**20)].abs().float(), 0.995))
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError("y: the data give an all-zero initial estimate; expected measurements of a non-zero object")
    yn, estimate = y / scale, estimate / scale
    if init == "svd":
        spatial, latent = truncated_svd_factors(estimate, rank, spline)
    else:
        gen = torch.Generator().manual_seed(seed)
        latent = torch.randn(latent_size, rank, generator=gen, dtype=y.dtype)
        spatial = 0.01 * torch.randn(rank, n, n, generator=gen, dtype=y.dtype)
    project = _projection(n, y.dtype, nonneg, circular_fov)
    x_step = _FactorStep(model, yn, spline, spatial, latent, project, XI, CHI, ADAM_STEPS, LR)
    f0 = x_step.frames().detach()
    solver = _PSMADMM(
        x_step,
        z_step_of(f0, lam),
        rho=beta,
        max_iter=n_iter,
        tol=tol,
        progress=progress,
        reference=None if reference is None else model.from_object(reference) / scale,
    )
    frames, hist = solver.run(f0)
    info = ReconInfo.from_history(
        hist, t0, {**params, "lam": lam, "beta": beta, "rank": rank, "latent_size": latent_size, "n_iter": n_iter, "init": init},
        data_scale=scale, spatial=x_step.spatial.detach() * scale, temporal=(spline @ x_step.latent).detach(),
    )  # fmt: skip
    return model.to_object(frames * scale), info


def auto_weight(budget: float, n_iter: int) -> float:
    r"""The ``lam="auto"`` prior weight of :func:`red_psm` and :func:`psm`: :math:`\lambda = c / n_{iter}`.

    The ADMM does not reach its fixed point within the outer-iteration budgets used (30-201): the
    prior's effect grows with :math:`\lambda \times` iterations. For a fixed weight the PSNR
    rises, peaks at an iteration :math:`k^*(\lambda)` and then falls towards the over-smoothed
    minimiser (RED at :math:`\lambda = 3`: 29.13 dB at 15, 28.23 dB at 60 iterations), and
    :math:`\lambda k^*` is about constant, with the peak PSNR about the same along that curve.
    So the weight is set from the iteration budget, :math:`\lambda = c / n_{iter}`, with
    :math:`c` = :data:`RED_WEIGHT_BUDGET` (30) for RED with ``ct_dncnn`` and :data:`TV_WEIGHT_BUDGET`
    (2) for TV (:math:`\beta = 3`): 30 iterations give RED 1 and TV 0.067, 201 give RED 0.15 and
    TV 0.01. Truth-free: it uses the iteration count only.

    Tuning data (never a ranked object): 64x64, P = 32, one view per frame, relative noise 0.5 %
    and 2 %, ``dynamic_object`` kinds ``cardiac`` (seeds 500000-500002) and ``coule`` (500000-500002);
    PSNR (dB) at 15 / 30 / 60 outer iterations, and the iteration of the peak (sweeps of
    issue 20, ``beta = 3``):

    ========================  ==================  ==================  ==================
    weight                    cardiac 500000 0.5%  cardiac 500001 2 %  coule 500000 0.5 %
    ========================  ==================  ==================  ==================
    PSM (no prior)            27.75 27.75 27.72    27.69 27.64 27.58    20.09 20.07 20.03
    TV 0.01                   27.95 28.16 28.41    27.88 28.04 28.18    20.28 20.42 20.57
    TV 0.03 (peak ~65)        28.20 28.51 28.77    28.10 28.28 28.35    20.46 20.63 20.73
    TV 0.1 (peak ~20-25)      28.47 28.57 28.11    28.27 28.21 27.75    20.63 20.62 20.36
    TV 0.3 (peak <= 10)       27.69 26.49 24.47    27.23 25.83 23.97    20.30 19.84 19.09
    RED 0.3 (peak >= 60)      28.54 28.95 29.20    28.63 29.06 29.24    20.83 21.28 21.63
    RED 1 (peak ~25-35)       29.01 29.21 29.10    29.21 29.30 28.87    21.37 21.71 21.79
    RED 3 (peak ~15)          29.13 28.97 28.23    29.28 28.79 28.23    21.64 21.75 21.74
    RED 10 (peak ~9)          28.65 27.86 27.22    28.52 27.87 27.19    21.56 21.62 21.52
    ========================  ==================  ==================  ==================

    At 150 iterations (cardiac 500002, 0.5 %): TV 0.03 peaks at 65 (28.13) and ends at 27.77, TV
    0.01 is still rising (28.17), RED 0.1 still rising (29.19; PSM 27.47). The best weight did not
    depend on the noise level over 0.5-2 %: at these sizes the error is the undersampling (one view
    per frame), not the noise, so no noise-level term is in the rule.

    Args:
        budget: :math:`c > 0`, weight x iterations.
        n_iter: the outer-iteration budget (>= 1).

    Returns:
        :math:`c / n_{iter}`.
    """
    return check_positive("budget", budget) / check_int("n_iter", n_iter)


def _weight(lam: float | str, budget: float | None, n_iter: int) -> float:
    """``lam`` checked (>= 0), or :func:`auto_weight` ``(budget, n_iter)`` for ``"auto"`` (``budget`` None: no rule)."""
    if isinstance(lam, str):
        if lam != "auto" or budget is None:
            expected = 'a number >= 0 or "auto"' if budget is not None else 'a number (0 without a prior; "auto" only with prior="tv")'
            raise ValueError(f"lam: expected {expected}, received {lam!r}")
        return auto_weight(budget, n_iter)
    return check_positive("lam", lam, allow_zero=True)


def _prior_label(prior: object, resolved: deepinv.optim.Prior) -> str:
    """How ``info.params["prior"]`` reports a prior: the name it was given by, else its resolved name."""
    return prior if isinstance(prior, str) else prior_name(resolved)


def red_psm(
    physics,
    y: torch.Tensor,
    *,
    prior: str | deepinv.optim.Prior | Denoiser = "ct_dncnn",
    denoiser_sigma: float = DENOISER_SIGMA,
    lam: float | str = "auto",
    beta: float = BETA,
    rank: int | None = None,
    latent_size: int | None = None,
    n_iter: int | None = None,
    init: str = "svd",
    nonneg: bool = True,
    circular_fov: bool = False,
    tol: float = 0.0,
    seed: int = 0,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""RED-PSM reconstruction of a dynamic object (see the module docstring for the iteration).

    Step 2 of the ADMM is RED's fixed-point step with the gradient :math:`f - D(f, \sigma_d)`,
    :math:`D` = :func:`~recon.regularizers.prior.as_denoiser` of ``prior`` applied frame by
    frame at ``denoiser_sigma`` :math:`= \sigma_d` (module docstring: :math:`D_{\sigma_d}` for a
    denoiser, :math:`\mathrm{prox}_{\sigma_d^2 R}` for an explicit prior; a blind denoiser such
    as ``ct_dncnn`` ignores :math:`\sigma_d`).

    Args:
        physics: :class:`operators.DynamicCT` (objects (1, P, N, N)), or a dynamic MRI operator
            with objects (1, 2, P, N, N) (deepinv ``DynamicMRI``, :class:`operators.SenseMRI`);
            it must declare its image shape.
        y: measurements of one sequence (batch 1), in the physics' layout and units.
        prior: the frame prior, any of the three kinds of :mod:`recon.regularizers.prior`: a
            registered name (default ``"ct_dncnn"``, the paper's DnCNN trained on dynamic-object
            frames), a ``deepinv.optim.Prior``, or a denoiser callable ``D(x, sigma)`` on
            (B, 1, N, N) frames of values of order one.
        denoiser_sigma: :math:`\sigma_d > 0`, normalised frame units (frames of order one):
            the denoiser strength; for explicit priors the prox weight is ``denoiser_sigma**2``
            (:mod:`recon.regularizers.prior`). Default :data:`DENOISER_SIGMA` (0.05). Ignored by
            a blind denoiser.
        lam: RED weight :math:`\lambda` (>= 0), normalised units, or ``"auto"`` (default):
            :func:`auto_weight` :math:`= 30 / n_{iter}` (:data:`RED_WEIGHT_BUDGET`; 0.15 at the
            default 201 iterations, 1 at 30), set for the ``ct_dncnn`` prior and :math:`\beta = 3`.
        beta: ADMM penalty :math:`\beta` (> 0), normalised units; default :data:`BETA` (3).
        rank: basis functions r = K + 1 (<= P); default from :data:`DEFAULTS` (5 at P <= 32, the
            paper's 7 at P <= 128, 11 at P = 256).
        latent_size: latent samples d (2 <= d <= P); default from :data:`DEFAULTS` (9 at
            P <= 128, 11 at P = 256).
        n_iter: outer iterations at most; default from :data:`DEFAULTS` (201 at P <= 128).
        init: ``"svd"`` (windowed estimate, truncated SVD) or ``"random"`` (seeded).
        nonneg: clip the frames at 0.
        circular_fov: zero the frames outside the disc inscribed in the image.
        tol: stop when the relative change of the frames is <= tol (0: run all ``n_iter``).
        seed: seed of the random initialisation.
        progress: tqdm bar (default: when stderr is a terminal).
        reference: optional ground truth in the object layout, only to record PSNR per iteration.

    Returns:
        ``(x, info)``: x in the object layout ((1, P, N, N) for CT, (1, 2, P, N, N) for MRI with
        a zero imaginary channel), in the units of the image; ``info`` a
        :class:`~recon.result.ReconInfo` of the ADMM run (``history.residual``: the relative
        change of the frames, ``history.psnr`` with a ``reference``) with
        ``params = {"prior", "denoiser_sigma", "lam", "beta", "rank", "latent_size", "n_iter",
        "init"}`` (the values used, ``n_iter`` the cap) and ``extra = {"data_scale"`` (the
        normalisation :math:`s` of the module docstring), ``"spatial"`` (r, N, N) and
        ``"temporal"`` (P, r) factors ``}``, with ``x = clip(temporal @ spatial)``.

    Raises:
        ValueError, TypeError: bad input, naming the argument.
        recon.solvers.NonFiniteError: the denoiser returned NaN/Inf (carries the last finite frames).

    Example:
        >>> physics = operators.DynamicCT(128, n_frames=128)
        >>> frames, info = recon.red_psm(physics, y, prior="ct_dncnn", rank=7, latent_size=9)
        >>> info.params["lam"], info.n_iter, info.extra["temporal"].shape   # lam "auto": 30 / 201
        (0.14925373134328357, 201, torch.Size([128, 7]))
    """
    t0 = time.perf_counter()
    resolved = as_prior(prior, name="prior")
    denoise = as_denoiser(resolved)
    sd = check_positive("denoiser_sigma", denoiser_sigma)

    def frame_denoiser(frames: torch.Tensor) -> torch.Tensor:
        return denoise(frames, sd)

    return _run_psm(
        physics, y, lambda f0, lam_: _REDStep(frame_denoiser, lam_, f0), t0=t0, lam=lam, budget=RED_WEIGHT_BUDGET, beta=beta,
        params={"prior": _prior_label(prior, resolved), "denoiser_sigma": sd}, rank=rank, latent_size=latent_size,
        n_iter=n_iter, init=init, nonneg=nonneg, circular_fov=circular_fov, tol=tol, seed=seed, progress=progress,
        reference=reference,
    )  # fmt: skip


def psm(
    physics,
    y: torch.Tensor,
    *,
    prior: str | deepinv.optim.Prior | Denoiser | None = None,
    lam: float | str = 0.0,
    beta: float = BETA,
    rank: int | None = None,
    latent_size: int | None = None,
    n_iter: int | None = None,
    init: str = "svd",
    nonneg: bool = True,
    circular_fov: bool = False,
    tol: float = 0.0,
    seed: int = 0,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""The PSM baselines of RED-PSM: plain PSM (``prior=None``) or PSM with a frame prior (``prior="tv"``, ...).

    The same ADMM as :func:`red_psm` with step 2 replaced by the prox of
    :math:`(\lambda/\beta) R` on each frame,

    .. math::  f \leftarrow \mathrm{prox}_{(\lambda/\beta) R}(\Lambda\Psi^T + \gamma),

    through :math:`D(\cdot, \sqrt{\lambda/\beta})`, :math:`D` =
    :func:`~recon.regularizers.prior.as_denoiser` of ``prior`` (module docstring): an explicit
    prior's prox at weight :math:`\lambda/\beta` (``"tv"``: 10 warm-started primal-dual steps of
    deepinv's ``TVDenoiser``, :data:`TV_STEPS`; ``"l1"``: the soft threshold), a denoiser prior
    (plug-and-play) at the noise std :math:`\sqrt{\lambda/\beta}`. With
    ``prior=None`` step 2 is the identity :math:`f = \Lambda\Psi^T + \gamma` and ``lam`` must be 0.

    Args:
        physics, y: as in :func:`red_psm`.
        prior: ``None`` (plain PSM), or any of the three kinds of :mod:`recon.regularizers.prior`:
            a registered name (``"tv"``, ``"l1"``, ...), a ``deepinv.optim.Prior``, or a denoiser
            callable ``D(x, sigma)`` on (B, 1, N, N) frames.
        lam: prior weight :math:`\lambda` in normalised units: 0 with ``prior=None`` (the
            default), > 0 with a prior (no default: tune it; the demos' PSM-TV uses 0.02-0.03),
            or ``"auto"`` with ``prior="tv"``: :func:`auto_weight` :math:`= 2 / n_{iter}`
            (:data:`TV_WEIGHT_BUDGET`; 0.067 at 30 iterations, 0.01 at 201), set for dynamic CT and
            :math:`\beta = 3`.
        beta: ADMM penalty :math:`\beta` (> 0); default :data:`BETA` (3).
        rank, latent_size, n_iter, init, nonneg, circular_fov, tol, seed, progress, reference:
            as in :func:`red_psm`.

    Returns:
        ``(x, info)`` as in :func:`red_psm`; ``info.params`` holds ``"prior"`` (the name, or
        ``None``), ``"lam"``, ``"beta"``, ``"rank"``, ``"latent_size"``, ``"n_iter"``, ``"init"``.

    Example:
        >>> plain, info = recon.psm(physics, y)                        # plain PSM
        >>> tv, info = recon.psm(physics, y, prior="tv", lam=0.03)     # PSM + TV
        >>> tv, info = recon.psm(physics, y, prior="tv", lam="auto")   # weight 2 / n_iter
        >>> info.params["prior"], info.extra["data_scale"]
    """
    t0 = time.perf_counter()
    tv = isinstance(prior, str) and prior == "tv"
    if isinstance(lam, str):
        _weight(lam, TV_WEIGHT_BUDGET if tv else None, 1)  # "auto" with prior="tv", else a ValueError naming lam
    else:
        lam = check_positive("lam", lam, allow_zero=True)
    if (prior is None) != (lam == 0):
        raise ValueError(f"lam: expected 0 for prior=None and > 0 with a prior, received {lam!r} with prior={prior!r}")
    if prior is None:
        label = None

        def z_step_of(f0: torch.Tensor, lam_: float) -> Callable:
            return lambda v, rho: v

    else:
        resolved = as_prior(TVPrior(n_iter=TV_STEPS) if tv else prior, name="prior")
        denoise, label = as_denoiser(resolved), _prior_label(prior, resolved)

        def z_step_of(f0: torch.Tensor, lam_: float) -> Callable:
            return lambda v, rho: denoise(v[:, None], math.sqrt(lam_ / rho))[:, 0]

    return _run_psm(
        physics, y, z_step_of, t0=t0, lam=lam, budget=TV_WEIGHT_BUDGET if tv else None, beta=beta, params={"prior": label},
        rank=rank, latent_size=latent_size,
        n_iter=n_iter, init=init, nonneg=nonneg, circular_fov=circular_fov, tol=tol, seed=seed, progress=progress,
        reference=reference,
    )  # fmt: skip
