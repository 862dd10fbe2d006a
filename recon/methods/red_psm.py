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

__all__ = ["BETA", "DEFAULTS", "DENOISER_SIGMA", "LAM", "psm", "red_psm", "sliding_window_fbp", "view_sharing"]

#: The paper's model sizes by number of frames: P -> (rank = K + 1, latent_size d, n_iter); a
#: sequence uses the entry of the smallest listed P >= its own (the largest beyond 256).
DEFAULTS = {128: (7, 9, 201), 256: (11, 11, 101)}
#: Default RED weight and ADMM penalty in normalised units, from ``demos/ct_dynamic_red_psm.py --tune``
#: (dynamic CT, sinograms in pixel units). The paper's lambda = beta = 2e-4 belong to its data scaling:
#: here they leave the prior without effect. Operators with a much weaker data term need smaller
#: weights (an orthonormal-FFT MRI operator: lambda 0.3-1, beta 1, ``demos/mri_dynamic_red_psm.py --tune``).
LAM, BETA = 3.0, 3.0
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


def _defaults(p: int) -> tuple:
    key = min((k for k in DEFAULTS if k >= p), default=max(DEFAULTS))
    return DEFAULTS[key]


def _run_psm(
    physics, y: torch.Tensor, z_step_of: Callable, *, t0: float, lam: float, beta: float, params: dict, rank: int | None,
    latent_size: int | None, n_iter: int | None, init: str, nonneg: bool, circular_fov: bool, tol: float, seed: int,
    progress: bool | None, reference: torch.Tensor | None,
) -> tuple[torch.Tensor, ReconInfo]:  # fmt: skip
    """The shared ADMM of :func:`red_psm` and :func:`psm`; ``z_step_of(f0, lam)`` builds step 2."""
    model = _FrameModel(physics, y)
    p, n = model.n_frames, model.n
    estimate = _windowed_estimate(model, y)  # also checks y against the physics
    d_rank, d_latent, d_iter = _defaults(p)
    rank = d_rank if rank is None else check_int("rank", rank)
    if rank > p:
        raise ValueError(f"rank: expected at most n_frames = {p} basis functions, received {rank}")
    latent_size = d_latent if latent_size is None else latent_size
    n_iter = d_iter if n_iter is None else check_int("n_iter", n_iter)
    check_option("init", init, INITS)
    lam = check_positive("lam", lam, allow_zero=True)
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


def _prior_label(prior: object, resolved: deepinv.optim.Prior) -> str:
    """How ``info.params["prior"]`` reports a prior: the name it was given by, else its resolved name."""
    return prior if isinstance(prior, str) else prior_name(resolved)


def red_psm(
    physics,
    y: torch.Tensor,
    *,
    prior: str | deepinv.optim.Prior | Denoiser = "ct_dncnn",
    denoiser_sigma: float = DENOISER_SIGMA,
    lam: float = LAM,
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
        lam: RED weight :math:`\lambda` (>= 0), normalised units; default :data:`LAM` (3).
        beta: ADMM penalty :math:`\beta` (> 0), normalised units; default :data:`BETA` (3).
        rank: basis functions r = K + 1 (<= P); default from :data:`DEFAULTS` (the paper's 7 at
            P <= 128, 11 at P = 256).
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
        >>> info.params["lam"], info.n_iter, info.extra["temporal"].shape
        (3.0, 201, torch.Size([128, 7]))
    """
    t0 = time.perf_counter()
    resolved = as_prior(prior, name="prior")
    denoise = as_denoiser(resolved)
    sd = check_positive("denoiser_sigma", denoiser_sigma)

    def frame_denoiser(frames: torch.Tensor) -> torch.Tensor:
        return denoise(frames, sd)

    return _run_psm(
        physics, y, lambda f0, lam_: _REDStep(frame_denoiser, lam_, f0), t0=t0, lam=lam, beta=beta,
        params={"prior": _prior_label(prior, resolved), "denoiser_sigma": sd}, rank=rank, latent_size=latent_size,
        n_iter=n_iter, init=init, nonneg=nonneg, circular_fov=circular_fov, tol=tol, seed=seed, progress=progress,
        reference=reference,
    )  # fmt: skip


def psm(
    physics,
    y: torch.Tensor,
    *,
    prior: str | deepinv.optim.Prior | Denoiser | None = None,
    lam: float = 0.0,
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
            default), > 0 with a prior (no default: tune it; the demos' PSM-TV uses 0.02-0.03).
        beta: ADMM penalty :math:`\beta` (> 0); default :data:`BETA` (3).
        rank, latent_size, n_iter, init, nonneg, circular_fov, tol, seed, progress, reference:
            as in :func:`red_psm`.

    Returns:
        ``(x, info)`` as in :func:`red_psm`; ``info.params`` holds ``"prior"`` (the name, or
        ``None``), ``"lam"``, ``"beta"``, ``"rank"``, ``"latent_size"``, ``"n_iter"``, ``"init"``.

    Example:
        >>> plain, info = recon.psm(physics, y)                        # plain PSM
        >>> tv, info = recon.psm(physics, y, prior="tv", lam=0.03)     # PSM + TV
        >>> info.params["prior"], info.extra["data_scale"]
    """
    t0 = time.perf_counter()
    lam = check_positive("lam", lam, allow_zero=True)
    if (prior is None) != (lam == 0):
        raise ValueError(f"lam: expected 0 for prior=None and > 0 with a prior, received {lam!r} with prior={prior!r}")
    if prior is None:
        label = None

        def z_step_of(f0: torch.Tensor, lam_: float) -> Callable:
            return lambda v, rho: v

    else:
        resolved = as_prior(TVPrior(n_iter=TV_STEPS) if isinstance(prior, str) and prior == "tv" else prior, name="prior")
        denoise, label = as_denoiser(resolved), _prior_label(prior, resolved)

        def z_step_of(f0: torch.Tensor, lam_: float) -> Callable:
            return lambda v, rho: denoise(v[:, None], math.sqrt(lam_ / rho))[:, 0]

    return _run_psm(
        physics, y, z_step_of, t0=t0, lam=lam, beta=beta, params={"prior": label}, rank=rank, latent_size=latent_size,
        n_iter=n_iter, init=init, nonneg=nonneg, circular_fov=circular_fov, tol=tol, seed=seed, progress=progress,
        reference=reference,
    )  # fmt: skip
