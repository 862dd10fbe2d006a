r"""Quantitative MRI baselines: SENSE + pixel-wise fit, subspace reconstruction, model-based NLCG.

All three take a :class:`~operators.qmri.QuantitativeMRI` physics and its multi-coil k-space
``y`` (complex ``(B, N, E, H, W)``: batch, coils, echoes, rows, columns) and return parameter
maps ``(B, 3, H, W)`` = (Re M0, Im M0, R [1/s]; M0 in the units of the images :math:`A^H y`) with a
:class:`~recon.result.ReconInfo`. None of them takes a noise estimate. NLCG-Net (:mod:`recon.methods.nlcg_net`) builds on
:func:`nlcg_maps`.

* :func:`qmri_fit`: per-echo SENSE, :math:`\min_{x_e}\|P_e F C x_e - y_e\|^2` by CG, then
  :func:`dictionary_fit` per pixel.
* :func:`subspace_recon`: the echo images are constrained to a rank-``K`` temporal subspace,
  :math:`x_e = \sum_k \Phi_{ek} c_k`, :math:`\Phi` the first ``K`` right singular vectors of a
  dictionary of signal curves :math:`a(t, R)` over a grid of rates; the coefficient images
  :math:`c` solve :math:`\min_c \|A\Phi c - y\|^2` by CG; then :func:`dictionary_fit`.
* :func:`nlcg_maps`: :math:`\min_x \tfrac12\|A(x) - y\|^2` over the maps directly, by projected
  NLCG (Dai-Yuan, secant line search; :class:`~recon.solvers.NLCG`) on scaled variables
  :math:`v = x / s`, :math:`s = (s_M, s_M, s_R)`, projecting onto :math:`R \ge R_{\min}`.

Scaling: every method first divides ``y`` by the scalar :math:`\gamma` = the 99th percentile of
the per-echo coil-combined zero-filled image magnitude of the first echo (so :math:`|M_0|` is
about 1), and multiplies M0 back by :math:`\gamma` at the end. ``info.extra["data_scale"]`` holds
:math:`\gamma`. Nothing here looks at a ground truth.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from operators._validate import check_int, check_option, check_positive
from operators.mri import SenseMRI
from operators.qmri import MODELS, QuantitativeMRI
from recon.result import ReconInfo
from recon.solvers import CG, NLCG

__all__ = ["DEFAULT_RATES", "as_qmri", "dictionary_fit", "nlcg_maps", "prepare", "qmri_fit", "subspace_recon"]

#: Rate grids of the dictionaries, 1/s: T2 from 10 ms to 3 s, T1 from 50 ms to 6 s (log-spaced).
DEFAULT_RATES = {
    "t2": (1000.0 / 3000.0, 1000.0 / 10.0),
    "t1": (1000.0 / 6000.0, 1000.0 / 50.0),
}
#: Scale of the rate in NLCG's variables (1/s) and the lower bound of the rate (1/s), per model.
RATE_SCALE = {"t2": 10.0, "t1": 1.0}
RATE_MIN = {"t2": 1e-4, "t1": 0.0}
#: Initial rate of NLCG's start (1/s): T2 = 100 ms, T1 = 1 s.
RATE_INIT = {"t2": 10.0, "t1": 1.0}


def as_qmri(
    physics: QuantitativeMRI | SenseMRI,
    *,
    model: str | None = None,
    echo_times: Sequence[float] | None = None,
    inversion_times: Sequence[float] | None = None,
) -> QuantitativeMRI:
    """The qMRI model from a ``QuantitativeMRI`` (then no other argument) or a ``SenseMRI`` plus model and times.

    ``echo_times`` (TE, ms) go with ``model="t2"``, ``inversion_times`` (TI, ms) with ``"t1"``.

    Example:
        >>> physics = as_qmri(sense, model="t2", echo_times=[23.0 * k for k in range(1, 9)])
    """
    if isinstance(physics, QuantitativeMRI):
        extra = {"model": model, "echo_times": echo_times, "inversion_times": inversion_times}
        given = [k for k, v in extra.items() if v is not None and not (k == "model" and v == physics.model)]
        if given:
            raise ValueError(f"{given[0]}: expected None with a QuantitativeMRI physics (it holds its model and times)")
        return physics
    if not isinstance(physics, SenseMRI):
        raise TypeError(
            f"physics: expected an operators.qmri.QuantitativeMRI or operators.mri.SenseMRI, received {type(physics).__name__}"
        )
    model = check_option("model", model, MODELS)
    times, other = (echo_times, "inversion_times") if model == "t2" else (inversion_times, "echo_times")
    name = "echo_times" if model == "t2" else "inversion_times"
    if (inversion_times if model == "t2" else echo_times) is not None:
        raise ValueError(f"{other}: expected None for model={model!r} (it takes {name})")
    if times is None:
        raise ValueError(f"{name}: expected the sampling times in ms for model={model!r}, received None")
    return QuantitativeMRI(physics, model, times)


def prepare(physics: QuantitativeMRI, y: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Validate ``physics`` and ``y``; return ``(y / gamma, gamma)`` (see the module docstring)."""
    if not isinstance(physics, QuantitativeMRI):
        raise TypeError(f"physics: expected an operators.qmri.QuantitativeMRI, received {type(physics).__name__}")
    physics.check_y(y)
    first = physics.sense.A_adjoint_complex(y)[:, 0].abs()
    gamma = float(torch.quantile(first.flatten().double(), 0.99))
    if gamma <= 0:
        raise ValueError("y: expected non-zero measurements, received all-zero k-space")
    return y / gamma, gamma


def rescale_m0(maps: torch.Tensor, factor: float) -> torch.Tensor:
    """Multiply the (Re M0, Im M0) channels of ``maps`` (B, 3, H, W) by ``factor``, keep R.

    ``factor = gamma`` takes maps from data units to physical units, ``1 / gamma`` back.
    """
    return torch.cat([maps[:, :2] * factor, maps[:, 2:]], dim=1)


def rate_grid(model: str, n_rates: int = 400, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Log-spaced rates (1/s) spanning :data:`DEFAULT_RATES` for ``model``."""
    lo, hi = DEFAULT_RATES[model]
    return torch.logspace(math.log10(lo), math.log10(hi), n_rates, dtype=dtype)


def dictionary_fit(physics: QuantitativeMRI, images: torch.Tensor, n_rates: int = 400) -> torch.Tensor:
    r"""Pixel-wise least-squares fit of :math:`S_e = M_0 a(t_e, R)` by dictionary matching.

    For each pixel, :math:`R` maximises :math:`|\langle a_R, s\rangle|^2/\|a_R\|^2` over
    ``n_rates`` log-spaced rates (:data:`DEFAULT_RATES`; spacing about 1.5 % at 400) and
    :math:`M_0 = \langle a_R, s\rangle/\|a_R\|^2` (exact least squares given :math:`R`).

    Args:
        physics: the qMRI model (its times and signal model).
        images: complex echo images ``(B, E, H, W)``.
        n_rates: size of the rate grid.

    Returns:
        Maps ``(B, 3, H, W)`` (Re M0, Im M0, R [1/s]) in the real dtype of ``images``.
    """
    rates = rate_grid(physics.model, n_rates, images.real.dtype).to(images.device)
    atoms = physics.atoms(rates)  # (R, E) real
    sq = (atoms * atoms).sum(1)  # (R,)
    b, e, h, w = images.shape
    s = images.movedim(1, -1).reshape(-1, e)  # (P, E)
    corr = s @ atoms.T.to(s.dtype)  # (P, R): <a_R, s> (a real)
    best = (corr.abs().square() / sq).argmax(1)
    m0 = corr.gather(1, best[:, None])[:, 0] / sq[best]
    maps = torch.stack([m0.real, m0.imag, rates[best]], dim=1)  # (P, 3)
    return maps.reshape(b, h, w, 3).movedim(-1, 1).contiguous()


def qmri_fit(
    physics: QuantitativeMRI | SenseMRI,
    y: torch.Tensor,
    *,
    model: str | None = None,
    echo_times: Sequence[float] | None = None,
    inversion_times: Sequence[float] | None = None,
    max_iter: int = 30,
    tol: float = 1e-3,
    progress: bool | None = None,
) -> tuple[torch.Tensor, dict]:
    r"""SENSE per echo by CG, then the pixel-wise dictionary fit.

    The echo images solve :math:`\min_{x_e}\|P_e F C x_e - y_e\|^2` (normal equations by CG, all
    echoes at once: the system is block diagonal), then :func:`dictionary_fit` gives
    :math:`(M_0, R)` per pixel.

    Args:
        physics: the qMRI model, or a ``SenseMRI`` with ``model`` and ``echo_times`` (T2, TE in
            ms) or ``inversion_times`` (T1, TI in ms); see :func:`as_qmri`.
        y: k-space ``(B, N, E, H, W)`` complex.
        model, echo_times, inversion_times: with a ``SenseMRI`` only (:func:`as_qmri`).
        max_iter: CG iterations per SENSE solve (>= 1).
        tol: CG relative residual tolerance (> 0).
        progress: tqdm bar (None: only on a terminal).

    Returns:
        ``(maps, info)``: maps ``(B, 3, H, W)`` = (Re M0, Im M0, R [1/s]); ``info`` a
        :class:`~recon.result.ReconInfo` of the CG run (residual in data units) with
        ``params = {"model", "max_iter", "tol"}`` and ``extra = {"images"`` (the SENSE echo
        images ``(B, E, H, W)``, physical units), ``"data_scale"`` (:math:`\gamma`) ``}``.

    Example:
        >>> maps, info = recon.qmri_fit(physics, y)  # doctest: +SKIP
        >>> t2_ms = 1000.0 / maps[:, 2]; info.n_iter, info.extra["images"].shape
    """
    t0 = time.perf_counter()
    physics = as_qmri(physics, model=model, echo_times=echo_times, inversion_times=inversion_times)
    yn, gamma = prepare(physics, y)
    check_int("max_iter", max_iter)
    sense = physics.sense
    rhs = sense.A_adjoint_complex(yn)
    images, hist = CG(
        lambda x: sense.apply_adjoint(sense.apply(x)), rhs, max_iter=max_iter, tol=check_positive("tol", tol),
        progress=progress,
    ).run()  # fmt: skip
    maps = rescale_m0(dictionary_fit(physics, images), gamma)
    params = {"model": physics.model, "max_iter": max_iter, "tol": tol}
    return maps, ReconInfo.from_history(hist, t0, params, images=images * gamma, data_scale=gamma)


def subspace_basis(physics: QuantitativeMRI, rank: int, n_rates: int = 400) -> torch.Tensor:
    """The first ``rank`` right singular vectors of the normalised dictionary, real ``(E, rank)`` (float64)."""
    atoms = physics.atoms(rate_grid(physics.model, n_rates))
    atoms = atoms / atoms.norm(dim=1, keepdim=True)
    return torch.linalg.svd(atoms, full_matrices=False).Vh[:rank].T.contiguous()


def subspace_recon(
    physics: QuantitativeMRI | SenseMRI,
    y: torch.Tensor,
    *,
    model: str | None = None,
    echo_times: Sequence[float] | None = None,
    inversion_times: Sequence[float] | None = None,
    rank: int = 4,
    max_iter: int = 30,
    tol: float = 1e-3,
    progress: bool | None = None,
) -> tuple[torch.Tensor, dict]:
    r"""Rank-``K`` subspace reconstruction, then the pixel-wise dictionary fit (module docstring).

    Args:
        physics: the qMRI model, or a ``SenseMRI`` with ``model`` and ``echo_times`` (T2, TE in
            ms) or ``inversion_times`` (T1, TI in ms); see :func:`as_qmri`.
        y: k-space ``(B, N, E, H, W)`` complex.
        model, echo_times, inversion_times: with a ``SenseMRI`` only (:func:`as_qmri`).
        rank: subspace dimension ``K``, at most the number of echoes; default 4 (the paper's
            3-4).
        max_iter, tol: CG on the coefficient images (normal equations): iterations (>= 1) and
            relative residual tolerance (> 0).
        progress: tqdm bar (None: only on a terminal).

    Returns:
        ``(maps, info)``: maps ``(B, 3, H, W)`` = (Re M0, Im M0, R [1/s]); ``info`` a
        :class:`~recon.result.ReconInfo` of the CG run with ``params = {"model", "rank",
        "max_iter", "tol"}`` and ``extra = {"images"`` (echo images :math:`\Phi c`
        ``(B, E, H, W)``, physical units), ``"basis"`` (:math:`\Phi`, ``(E, K)``),
        ``"data_scale"`` ``}``.

    Example:
        >>> maps, info = recon.subspace_recon(physics, y, rank=4)  # doctest: +SKIP
        >>> info.extra["basis"].shape
        torch.Size([8, 4])
    """
    t0 = time.perf_counter()
    physics = as_qmri(physics, model=model, echo_times=echo_times, inversion_times=inversion_times)
    yn, gamma = prepare(physics, y)
    check_int("rank", rank)
    if rank > physics.sense.n_echoes:
        raise ValueError(f"rank: expected at most the number of echoes {physics.sense.n_echoes}, received {rank}")
    sense = physics.sense
    phi = subspace_basis(physics, rank).to(yn.real.dtype).to(yn.device)  # (E, K)

    def expand(c: torch.Tensor) -> torch.Tensor:  # (B, K, H, W) -> (B, E, H, W)
        return torch.einsum("ek,bkhw->behw", phi.to(c.dtype), c)

    def project(x: torch.Tensor) -> torch.Tensor:  # adjoint of expand
        return torch.einsum("ek,behw->bkhw", phi.to(x.dtype), x)

    rhs = project(sense.A_adjoint_complex(yn))
    coef, hist = CG(
        lambda c: project(sense.apply_adjoint(sense.apply(expand(c)))), rhs, max_iter=max_iter,
        tol=check_positive("tol", tol), progress=progress,
    ).run()  # fmt: skip
    images = expand(coef)
    maps = rescale_m0(dictionary_fit(physics, images), gamma)
    params = {"model": physics.model, "rank": rank, "max_iter": max_iter, "tol": tol}
    return maps, ReconInfo.from_history(hist, t0, params, images=images * gamma, basis=phi, data_scale=gamma)


def scales(physics: QuantitativeMRI, like: torch.Tensor) -> torch.Tensor:
    """Variable scales :math:`s = (1, 1, s_R)` shaped (1, 3, 1, 1) in the dtype/device of ``like``."""
    return torch.tensor([1.0, 1.0, RATE_SCALE[physics.model]], dtype=like.dtype, device=like.device)[None, :, None, None]


def initial_maps(physics: QuantitativeMRI, yn: torch.Tensor) -> torch.Tensor:
    r"""NLCG's start: :math:`R = R_0` everywhere (:data:`RATE_INIT`) and :math:`M_0 = \hat x_1 / a(t_1, R_0)`.

    :math:`\hat x_1` is the coil-combined zero-filled image of the first echo (:math:`A^H y`),
    in data units. Shape ``(B, 3, H, W)``.
    """
    first = physics.sense.A_adjoint_complex(yn)[:, :1]
    rate = torch.full_like(first.real, RATE_INIT[physics.model])
    m0 = first / physics.basis(rate)[0][:, :1]
    return torch.cat([m0.real, m0.imag, rate], dim=1)


def nlcg_maps(
    physics: QuantitativeMRI | SenseMRI,
    y: torch.Tensor,
    *,
    model: str | None = None,
    echo_times: Sequence[float] | None = None,
    inversion_times: Sequence[float] | None = None,
    x0: torch.Tensor | None = None,
    max_iter: int = 800,
    tol: float = 1e-6,
    progress: bool | None = None,
) -> tuple[torch.Tensor, dict]:
    r"""Model-based reconstruction :math:`\min_x \tfrac12\|A(x) - y\|^2` by projected NLCG.

    Dai-Yuan directions, secant line search (at most 20 evaluations), projection onto
    :math:`R \ge R_{\min}` (:data:`RATE_MIN`: 1e-4 1/s for T2, 0 for T1), on the scaled variables
    of the module docstring (:data:`RATE_SCALE`: R2 / 10, R1 / 1); stops after ``max_iter``
    iterations or when the relative projected-gradient norm is below ``tol``.

    Args:
        physics: the qMRI model, or a ``SenseMRI`` with ``model`` and ``echo_times`` (T2, TE in
            ms) or ``inversion_times`` (T1, TI in ms); see :func:`as_qmri`.
        y: k-space ``(B, N, E, H, W)`` complex.
        model, echo_times, inversion_times: with a ``SenseMRI`` only (:func:`as_qmri`).
        x0: start ``(B, 3, H, W)`` in physical units, default :func:`initial_maps`.
        max_iter: NLCG iterations (>= 1; 800 in the paper, the default).
        tol: tolerance on the relative projected-gradient norm (> 0).
        progress: tqdm bar (None: only on a terminal).

    Returns:
        ``(maps, info)``: maps ``(B, 3, H, W)`` = (Re M0, Im M0, R [1/s]); ``info`` a
        :class:`~recon.result.ReconInfo` of the NLCG run (objective
        :math:`\tfrac12\|A(x) - y/\gamma\|^2` in data units) with ``params = {"model",
        "max_iter", "tol"}`` and ``extra = {"data_scale"}``.

    Example:
        >>> maps, info = recon.nlcg_maps(physics, y, max_iter=800)  # doctest: +SKIP
        >>> info.history.objective[-1], info.stop_reason
    """
    t0 = time.perf_counter()
    physics = as_qmri(physics, model=model, echo_times=echo_times, inversion_times=inversion_times)
    yn, gamma = prepare(physics, y)
    check_int("max_iter", max_iter)
    if x0 is None:
        x0 = initial_maps(physics, yn)
    else:
        physics.check_x(x0)
        x0 = rescale_m0(x0, 1.0 / gamma)
    s = scales(physics, x0)
    solver = NLCG(
        data_consistency(physics, yn, s), beta="DY", line_search="secant", projection=rate_projection(physics, s),
        max_ls=20, max_iter=max_iter, tol=check_positive("tol", tol), progress=progress,
    )  # fmt: skip
    v, hist = solver.run(x0 / s)
    params = {"model": physics.model, "max_iter": max_iter, "tol": tol}
    return rescale_m0(v * s, gamma), ReconInfo.from_history(hist, t0, params, data_scale=gamma)


def data_consistency(physics: QuantitativeMRI, yn: torch.Tensor, s: torch.Tensor, *, lam=None, z=None):
    r"""``f_and_grad(v)`` for :math:`\tfrac12\|A(s v) - y\|^2 + \tfrac\lambda2\|v - z\|^2` in scaled variables.

    Without ``lam`` the prior term is absent. The gradient stays on torch's autograd graph
    (NLCG-Net backpropagates through NLCG steps); the value is returned detached.
    """

    def f_and_grad(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, g = physics.data_fit(v * s, yn)
        g = g * s
        if lam is not None:
            d = v - z
            f = f + 0.5 * lam * d.square().sum()
            g = g + lam * d
        return f.detach(), g

    return f_and_grad


def rate_projection(physics: QuantitativeMRI, s: torch.Tensor):
    """Projection of scaled maps onto :math:`R \\ge R_{\\min}` (the rate channel only)."""
    low = RATE_MIN[physics.model] / float(s[0, 2, 0, 0])

    def project(v: torch.Tensor) -> torch.Tensor:
        return torch.cat([v[:, :2], v[:, 2:].clamp_min(low)], dim=1)

    return project
