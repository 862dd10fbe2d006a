r"""graphLa+Psi: CT reconstruction regularized by a data-dependent graph Laplacian.

Bianchi, Evangelista, Aleotti, Donatelli, Loli Piccolomini, Li, "A data-dependent regularization
method based on the graph Laplacian" (2023). From a preliminary reconstruction
:math:`\tilde x = \Psi(y)` the graph Laplacian :math:`L = L(\tilde x)` is built
(:mod:`recon.regularizers.graph_laplacian`; window ``R``, weight scale ``sigma``; by default
``sigma="auto"``: a noisy :math:`\tilde x` is smoothed and ``sigma`` widened by its estimated
noise, see :func:`~recon.regularizers.graph_laplacian.graph_scale`), then

.. math::
    x^* = \arg\min_x \tfrac12\|Ax - y\|^2 + \alpha\|Lx\|_q^q \qquad [x \ge 0 \text{ by default}]

with :math:`\alpha` fixed or chosen by the discrepancy principle :math:`\|Ax - y\| = \tau\|e\|`
(:math:`\tau = 1.01`; :math:`\|e\|` from ``noise_level`` or ``noise_std``, :mod:`recon.noise`).
The paper solves it by MM-GKS; here the :math:`q = 1` problem is solved exactly in its
constrained form by PDHG (:mod:`recon.methods.analysis_prior`), which is the discrepancy
principle itself, and :math:`0 < q < 1` by majorization-minimization: a few reweighted
:math:`\ell_1` problems with weights :math:`q(|Lx_k| + \varepsilon)^{q - 1}`.

``psi`` is not a prior in the sense of :mod:`recon.regularizers.prior`: it names the
preliminary reconstruction :math:`\Psi` whose image defines the graph (:func:`preliminary`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from deepinv.physics import LinearPhysics

from denoisers.zoo import load
from operators._validate import check_option, check_positive, check_tensor
from operators.shapes import image_shape
from recon.methods.analysis_prior import (
    AnalysisPrior,
    alpha_or_noise,
    check_problem,
    discrepancy_params,
    reconstruct,
)
from recon.methods.classical import fbp, tikhonov, tv
from recon.noise import Noise
from recon.regularizers.graph_laplacian import GraphLaplacian, build_graph_laplacian, check_sigma
from recon.result import ReconInfo
from recon.solvers import op_norm

#: the named preliminary reconstructions :math:`\Psi` (:func:`preliminary`)
PSI_NAMES = ("fbp", "tikhonov", "tv", "net", "true")


def _box_projection(p: torch.Tensor, bound: float | torch.Tensor) -> torch.Tensor:
    """Prox of the conjugate of bound * ||.||_1: clamp each coefficient to [-bound, bound]."""
    return torch.maximum(torch.minimum(p, torch.as_tensor(bound, dtype=p.dtype)), -torch.as_tensor(bound, dtype=p.dtype))


def graph_prior(lap: GraphLaplacian, like: torch.Tensor) -> AnalysisPrior:
    r""":math:`\|Lx\|_1` as an :class:`AnalysisPrior` (L symmetric, :math:`\|L\|` by power iteration).

    Args:
        lap: the graph Laplacian of an (N, M) image.
        like: a (B, C, N, M) tensor giving the dtype and device of the power iteration.
    """
    norm = op_norm(lap.apply, lap.apply, like[:1], max_iter=50, tol=1e-4)
    return AnalysisPrior(
        op=lap.apply, adjoint=lap.apply, norm=norm * 1.01, project=_box_projection,
        value=lambda c: c.abs().reshape(c.shape[0], -1).sum(dim=1),
    )


def preliminary(
    physics: LinearPhysics,
    y: torch.Tensor,
    psi: str | Callable | torch.Tensor,
    *,
    noise_level: float | None = None,
    noise_std: float | None = None,
    x_true: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The preliminary reconstruction :math:`\tilde x = \Psi(y)` whose graph regularizes graphLa+Psi.

    Args:
        physics: linear operator A, images (B, C, N, M) (the shape it declares).
        y: measurements (B, ...), real.
        psi: ``"fbp"`` (ram-lak), ``"tikhonov"`` (discrepancy principle, or GCV without a noise
            estimate), ``"tv"`` (discrepancy principle; needs a noise estimate), ``"net"`` (the
            shipped CT U-Net on FBP, ``denoisers.zoo.load("ct_unet")``), ``"true"`` (the oracle
            ``x_true``), a callable ``psi(physics, y) -> image`` or a precomputed image tensor
            (B, C, N, M).
        noise_level: relative noise :math:`\|e\| / \|Ax\|`, passed to Tikhonov / TV.
        noise_std: absolute noise std per entry of ``y`` (units of ``y``), instead of ``noise_level``.
        x_true: the ground truth, only for ``psi="true"``.

    Returns:
        The image :math:`\tilde x`, shape (B, C, N, M).

    Example:
        >>> x_psi = preliminary(physics, y, "tikhonov", noise_level=0.02)
    """
    if isinstance(psi, torch.Tensor):
        check_tensor("psi", psi)
        expected = (y.shape[0], *image_shape(physics))
        if tuple(psi.shape) != expected:
            raise ValueError(f"psi: expected an image of shape {expected}, received {tuple(psi.shape)}")
        return psi
    if callable(psi):
        return preliminary(physics, y, psi(physics, y))
    check_option("psi", psi, PSI_NAMES)
    noise = {"noise_level": noise_level, "noise_std": noise_std}
    if psi == "fbp":
        return fbp(physics, y)[0]
    if psi == "tikhonov":
        no_noise = noise_level is None and noise_std is None
        return tikhonov(physics, y, **noise, rule="gcv" if no_noise else "discrepancy")[0]
    if psi == "tv":
        if noise_level is None and noise_std is None:
            raise ValueError("noise_level / noise_std: expected a noise estimate with psi='tv', received neither")
        return tv(physics, y, **noise, max_iter=1500, tol=2e-4)[0]
    if psi == "net":
        net = load("ct_unet", device=y.device)
        with torch.no_grad():
            return net(fbp(physics, y)[0])
    if x_true is None:
        raise ValueError("x_true: expected the ground-truth image with psi='true' (the oracle graph), received None")
    return preliminary(physics, y, x_true)


def _psi_name(psi: object) -> str:
    """How ``psi`` is reported in ``info.params``."""
    if isinstance(psi, str):
        return psi
    if isinstance(psi, torch.Tensor):
        return "image"
    return getattr(psi, "__name__", type(psi).__name__)


def graphla(
    physics: LinearPhysics,
    y: torch.Tensor,
    *,
    psi: str | Callable | torch.Tensor = "tv",
    alpha: float | None = None,
    noise_level: float | None = None,
    noise_std: float | None = None,
    R: int = 5,
    sigma: float | str = "auto",
    q: float = 1.0,
    tau: float = 1.01,
    nonneg: bool = True,
    max_iter: int = 1500,
    tol: float = 2e-4,
    n_reweight: int = 5,
    eps: float = 1e-3,
    step_ratio: float = 0.01,
    x_true: torch.Tensor | None = None,
    progress: bool | None = None,
    reference: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""graphLa+Psi reconstruction (see the module docstring for the model).

    Each batch element gets its own graph (from its own preliminary image) and its own alpha.

    Args:
        physics: linear operator A (e.g. ``ParallelBeamCT``), images (B, C, N, M) (the shape it
            declares).
        y: measurements (B, C, ...), real.
        psi: the preliminary reconstruction :math:`\Psi` that defines the graph (not a prior):
            ``"fbp"``, ``"tikhonov"``, ``"tv"``, ``"net"``, ``"true"``, a callable
            ``psi(physics, y) -> image`` or a precomputed image (B, C, N, M); see
            :func:`preliminary`.
        alpha: fixed weight of :math:`\|Lx\|_q^q`; exactly one of ``alpha`` and a noise estimate.
        noise_level: relative noise :math:`\|e\| / \|Ax\|`: alpha by the discrepancy principle.
        noise_std: absolute noise std per entry of ``y`` (units of ``y``), instead of ``noise_level``.
        R: graph window: neighbours with :math:`\|p_i - p_j\|_\infty \le R - 1` (R = 5: 9 x 9 window).
        sigma: the weight scale in :math:`\exp(-(\tilde x_i - \tilde x_j)^2 / \sigma)` (intensity
            units squared, for images in [0, 1]; not a noise level). ``"auto"`` (default): from the
            noise of :math:`\tilde x`, :math:`\hat\delta` (Donoho's Haar estimate), smooth
            :math:`\tilde x` by a Gaussian of std :math:`s \le 1` pixel and set
            :math:`\sigma = \max(10^{-3}, 4\hat\delta^2 g(s)^2)` (:math:`g(s)^2` the Gaussian's
            white-noise variance gain); a clean :math:`\tilde x` (:math:`4\hat\delta^2 \le
            10^{-3}`: TV, Tikhonov, the U-Net, the oracle on COULE-like images) keeps the paper's
            graph, an FBP image is smoothed (La+FBP +2.3 / +4.6 / +7.3 dB at 1 / 2 / 4 % noise on
            unseen training-family images, 128^2 / 120 views;
            :func:`~recon.regularizers.graph_laplacian.graph_scale` has the rule and the numbers).
            A number: that scale on the unsmoothed :math:`\tilde x` (the paper: 1e-3).
        q: exponent of :math:`\|Lx\|_q^q`, :math:`0 < q \le 1` (1 in the paper's experiments).
        tau: discrepancy safety factor.
        nonneg: constrain :math:`x \ge 0`.
        max_iter: PDHG iterations per l1 solve.
        tol: PDHG relative-change tolerance.
        n_reweight: l1 solves for q < 1 (ignored for q = 1).
        eps: smoothing :math:`\varepsilon` in the q < 1 weights, in units of :math:`Lx`.
        step_ratio: PDHG primal/dual step ratio (see :func:`recon.tv`).
        x_true: ground truth, only for ``psi="true"`` (the oracle upper bound).
        progress: tqdm bar (default: when attached to a terminal).
        reference: ground truth used ONLY to record PSNR in the history.

    Returns:
        ``(x, info)``: x of shape (B, C, N, M); ``info`` a :class:`~recon.result.ReconInfo` whose
        ``history`` concatenates the PDHG runs (per batch element, and per l1 solve when q < 1),
        ``n_iter`` their total, and

        * ``params``: ``psi`` (its name, ``"image"`` or the callable's name), ``alpha`` (one per
          batch element), ``R``, ``sigma`` (the scale used, one per batch element), ``smooth``
          (the Gaussian std in pixels applied to :math:`\tilde x` for the weights, per element; 0
          with a number ``sigma``), ``q``, ``nonneg``, with q < 1 ``n_reweight`` and ``eps``, with a
          noise estimate ``tau``, ``noise_level`` and ``noise_std`` (per element);
        * ``extra``: ``psi_image`` (:math:`\tilde x`, (B, C, N, M), unsmoothed), ``psi_noise``
          (:math:`\hat\delta` of each :math:`\tilde x`, intensity units), ``nnz`` (stored entries
          of each L) and ``n_iter_per_element`` (PDHG iterations per batch element).

    Example:
        >>> x, info = recon.graphla(physics, y, psi="fbp", noise_level=0.02)
        >>> info.params["sigma"], info.params["smooth"], info.extra["psi_noise"]
    """
    t0 = time.perf_counter()
    y = check_problem(physics, y)
    noise = alpha_or_noise(physics, y, alpha=alpha, noise_level=noise_level, noise_std=noise_std)
    sigma = check_sigma(sigma)
    q = check_positive("q", q)
    if q > 1.0:
        raise ValueError(f"q: expected 0 < q <= 1, received {q!r}")
    x_psi = preliminary(physics, y, psi, noise_level=noise_level, noise_std=noise_std, x_true=x_true)
    n_solves = 1 if q == 1.0 else n_reweight
    outs, alphas, hists, iters, nnz, scales = [], [], [], [], [], []
    for b in range(y.shape[0]):
        yb, psi_b = y[b : b + 1], x_psi[b : b + 1]
        noise_b = None if noise is None else Noise(noise.level[b : b + 1], noise.std[b : b + 1], noise.norm[b : b + 1])
        lap = build_graph_laplacian(psi_b[0, 0], R=R, sigma=sigma)
        prior = graph_prior(lap, psi_b)
        ref_b = None if reference is None else reference[b : b + 1]
        weights, x_b = None, None
        for _ in range(n_solves):
            x_b, a_b, hist = reconstruct(
                physics, yb, prior, alpha=alpha, noise=noise_b, tau=tau, nonneg=nonneg, max_iter=max_iter, tol=tol,
                x0=x_b, step_ratio=step_ratio, progress=progress, reference=ref_b, weights=weights,
            )
            hists.append(hist)
            weights = q * (prior.op(x_b).abs() + eps) ** (q - 1.0)
        outs.append(x_b)
        alphas.append(a_b[0])
        iters.append(sum(h.iterations for h in hists[-n_solves:]))
        nnz.append(lap.nnz)
        scales.append(lap.scale)
    params = {
        "psi": _psi_name(psi), "alpha": alphas, "R": R, "sigma": [g.sigma for g in scales],
        "smooth": [g.smooth for g in scales], "q": q, "nonneg": nonneg,
    }  # fmt: skip
    if q < 1.0:
        params |= {"n_reweight": n_reweight, "eps": eps}
    params |= discrepancy_params(noise, tau)
    return torch.cat(outs), ReconInfo.from_history(
        hists, t0, params, psi_image=x_psi, psi_noise=[g.delta for g in scales], nnz=nnz, n_iter_per_element=iters
    )
