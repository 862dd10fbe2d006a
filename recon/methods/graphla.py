"""graphLa+Psi: CT reconstruction regularized by a data-dependent graph Laplacian.

Bianchi, Evangelista, Aleotti, Donatelli, Loli Piccolomini, Li, "A data-dependent regularization
method based on the graph Laplacian" (2023). From a preliminary reconstruction x~ = Psi(y) the
graph Laplacian L = L(x~) is built (:mod:`recon.regularizers.graph_laplacian`; window R, weight
scale sigma), then

    x* = argmin_x 1/2 ||A x - y||^2 + alpha ||L x||_q^q        [x >= 0 by default]

with alpha fixed or chosen by the discrepancy principle ||A x - y|| = tau ||e|| (tau = 1.01).
The paper solves it by MM-GKS; here the q = 1 problem is solved exactly in its constrained form
by PDHG (:mod:`recon.methods.analysis_prior`), which is the discrepancy principle itself, and
0 < q < 1 by majorization-minimization: a few reweighted l1 problems with weights
q (|L x_k| + eps)^(q - 1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from deepinv.physics import LinearPhysics

from operators._validate import check_option, check_positive, check_tensor
from recon.methods.analysis_prior import AnalysisPrior, check_exclusive, check_problem, reconstruct
from recon.methods.classical import fbp, tikhonov, tv
from recon.regularizers.graph_laplacian import GraphLaplacian, build_graph_laplacian
from recon.solvers import op_norm

PSI_NAMES = ("fbp", "tikhonov", "tv", "net", "true")


def _box_projection(p: torch.Tensor, bound: float | torch.Tensor) -> torch.Tensor:
    """Prox of the conjugate of bound * ||.||_1: clamp each coefficient to [-bound, bound]."""
    return torch.maximum(torch.minimum(p, torch.as_tensor(bound, dtype=p.dtype)), -torch.as_tensor(bound, dtype=p.dtype))


def graph_prior(lap: GraphLaplacian, like: torch.Tensor) -> AnalysisPrior:
    """||L x||_1 as an :class:`AnalysisPrior` (L symmetric, ||L|| by power iteration)."""
    norm = op_norm(lap.apply, lap.apply, like[:1], max_iter=50, tol=1e-4)
    return AnalysisPrior(
        op=lap.apply, adjoint=lap.apply, norm=norm * 1.01, project=_box_projection,
        value=lambda c: c.abs().reshape(c.shape[0], -1).sum(dim=1),
    )


def preliminary(
    physics: LinearPhysics, y: torch.Tensor, psi: str | Callable | torch.Tensor, noise_level: float | None,
    x_true: torch.Tensor | None,
) -> torch.Tensor:
    """The preliminary reconstruction x~ = Psi(y), shape (B, C, N, M).

    ``psi``: "fbp" (ram-lak), "tikhonov" (discrepancy principle, or GCV without ``noise_level``),
    "tv" (discrepancy principle; needs ``noise_level``), "net" (the shipped CT U-Net on FBP,
    ``denoisers.zoo.load("ct_unet")``), "true" (the oracle ``x_true``), a callable
    ``psi(physics, y) -> image`` or a precomputed image tensor.
    """
    x_like = physics.A_adjoint(y)
    if isinstance(psi, torch.Tensor):
        check_tensor("psi", psi)
        if psi.shape != x_like.shape:
            raise ValueError(f"psi: expected an image of shape {tuple(x_like.shape)}, received {tuple(psi.shape)}")
        return psi
    if callable(psi):
        return preliminary(physics, y, psi(physics, y), noise_level, x_true)
    check_option("psi", psi, PSI_NAMES)
    if psi == "fbp":
        return fbp(physics, y)[0]
    if psi == "tikhonov":
        return tikhonov(physics, y, noise_level=noise_level, rule="gcv" if noise_level is None else "discrepancy")[0]
    if psi == "tv":
        if noise_level is None:
            raise ValueError("noise_level: expected a relative noise level with psi='tv', received None")
        return tv(physics, y, noise_level=noise_level, max_iter=1500, tol=2e-4)[0]
    if psi == "net":
        from denoisers.zoo import load  # noqa: PLC0415  (torch network only when asked for)

        net = load("ct_unet", device=y.device)
        with torch.no_grad():
            return net(fbp(physics, y)[0])
    if x_true is None:
        raise ValueError("x_true: expected the ground-truth image with psi='true' (the oracle graph), received None")
    return preliminary(physics, y, x_true, noise_level, None)


def graphla(
    physics: LinearPhysics,
    y: torch.Tensor,
    psi: str | Callable | torch.Tensor = "tv",
    noise_level: float | None = None,
    alpha: float | None = None,
    R: int = 5,
    sigma: float = 1e-3,
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
) -> tuple[torch.Tensor, dict]:
    """graphLa+Psi reconstruction (see the module docstring for the model).

    Args:
        physics: linear operator A (e.g. ``ParallelBeamCT``), images (B, C, N, M).
        y: measurements (B, C, ...), real.
        psi: preliminary reconstruction: "fbp", "tikhonov", "tv", "net", "true", a callable
            ``psi(physics, y)`` or a precomputed image (B, C, N, M); see :func:`preliminary`.
        noise_level: relative noise ||e|| / ||A x||: alpha by the discrepancy principle.
        alpha: fixed weight of ||L x||_q^q instead (exactly one of ``alpha``, ``noise_level``).
        R: graph window: neighbours with ||p_i - p_j||_inf <= R - 1 (R = 5: 9 x 9 window).
        sigma: weight scale in exp(-(x~_i - x~_j)^2 / sigma), for images in [0, 1].
        q: exponent of ||L x||_q^q, 0 < q <= 1 (1 in the paper's experiments).
        tau: discrepancy safety factor.
        nonneg: constrain x >= 0.
        max_iter: PDHG iterations per l1 solve.
        tol: PDHG relative-change tolerance.
        n_reweight: l1 solves for q < 1 (ignored for q = 1).
        eps: smoothing in the q < 1 weights, in units of L x.
        step_ratio: PDHG primal/dual step ratio (see :func:`recon.tv`).
        x_true: ground truth, only for ``psi="true"`` (the oracle upper bound).
        progress: tqdm bar (default: when attached to a terminal).
        reference: ground truth used ONLY to record PSNR in the history.

    Returns:
        ``(x, info)`` with ``info["alpha"]`` (one per batch element), ``info["iterations"]``,
        ``info["history"]`` (one :class:`recon.solvers.History` per batch element and l1 solve),
        ``info["psi_image"]`` (x~) and ``info["nnz"]`` (non-zeros of each L).

    Example:
        >>> x, info = recon.graphla(physics, y, psi="tv", noise_level=0.02, R=5, sigma=1e-3)
    """
    y = check_problem(physics, y)
    check_exclusive(alpha, noise_level)
    check_positive("sigma", sigma)
    q = check_positive("q", q)
    if q > 1.0:
        raise ValueError(f"q: expected 0 < q <= 1, received {q!r}")
    x_psi = preliminary(physics, y, psi, noise_level, x_true)
    outs, alphas, hists, iters, nnz = [], [], [], [], []
    for b in range(y.shape[0]):
        yb, psi_b = y[b : b + 1], x_psi[b : b + 1]
        lap = build_graph_laplacian(psi_b[0, 0], R=R, sigma=sigma)
        prior = graph_prior(lap, psi_b)
        ref_b = None if reference is None else reference[b : b + 1]
        weights, x_b = None, None
        for _ in range(1 if q == 1.0 else n_reweight):
            x_b, a_b, hist = reconstruct(
                physics, yb, prior, alpha, noise_level, tau, nonneg, max_iter, tol, x_b, step_ratio, progress, ref_b,
                weights=weights,
            )
            hists.append(hist)
            weights = q * (prior.op(x_b).abs() + eps) ** (q - 1.0)
        outs.append(x_b)
        alphas.append(a_b[0])
        iters.append(sum(h.iterations for h in hists[-(1 if q == 1.0 else n_reweight):]))
        nnz.append(lap.nnz)
    info = {"alpha": alphas, "iterations": iters, "history": hists, "psi_image": x_psi, "nnz": nnz}
    return torch.cat(outs), info
