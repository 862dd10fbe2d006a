r"""Reconstruction with an analysis prior :math:`R(Lx)` by PDHG: the engine behind ``tv`` and ``graphla``.

Problems solved, for a linear operator :math:`A`, a regularization operator :math:`L` (finite
differences, a graph Laplacian, ...) and a norm-like :math:`R` whose conjugate's prox is a
projection:

.. math::
    \text{fixed } \alpha:&\quad \arg\min_x \tfrac12\|Ax - y\|^2 + \alpha R(Lx)
        &&[+\ \iota_{x \ge 0}]\\
    \text{discrepancy}:&\quad \arg\min_x R(Lx) \ \text{ s.t. }\ \|Ax - y\| \le \tau\|e\|
        &&[+\ \iota_{x \ge 0}]

The second is the penalised problem at the :math:`\alpha` the discrepancy principle picks; that
:math:`\alpha` is read from the dual :math:`q` of the data block at the end:
:math:`\alpha = s\|Ax - y\| / \|q\|`. Chambolle-Pock runs on :math:`K = [A / s;\ L]` with
:math:`s = \|A\| / \|L\|`, so one step pair fits both blocks. The noise norm :math:`\|e\|` is
:attr:`recon.noise.Noise.norm` (from ``noise_level`` or ``noise_std``, see :mod:`recon.noise`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from deepinv.physics import LinearPhysics

from operators._validate import check_positive, check_tensor
from operators.shapes import image_shape, measurement_shape
from recon.noise import Noise, resolve_noise
from recon.solvers import PDHG, History, op_norm

#: PDHG steps: tau = r c / ||K||, sigma = c / (r ||K||)
_STEP_SAFETY = 0.99


@dataclass(frozen=True)
class AnalysisPrior:
    """R(L x) described by what PDHG needs.

    Attributes:
        op: L, image (B, C, N, M) -> coefficients (any shape).
        adjoint: L^T, coefficients -> image.
        norm: an upper estimate of ||L||_2.
        project: ``project(p, radius)``: projection onto {p : R^*(p / radius) <= 0}, i.e. the prox of
            the conjugate of ``radius * R`` (pixel-wise l2 ball for isotropic TV, a box for l1).
        value: ``value(Lx) -> (B,)`` tensor, R per batch element, for the objective history.
    """

    op: Callable[[torch.Tensor], torch.Tensor]
    adjoint: Callable[[torch.Tensor], torch.Tensor]
    norm: float
    project: Callable[[torch.Tensor, float | torch.Tensor], torch.Tensor]
    value: Callable[[torch.Tensor], torch.Tensor]


def check_problem(physics: object, y: object) -> torch.Tensor:
    """Validate ``physics`` (a deepinv ``LinearPhysics``) and the measurements ``y``.

    ``y`` must be a real finite tensor; when ``physics`` declares its measurement shape
    (``meas_shape``, :func:`operators.shapes.measurement_shape`), ``y`` must be (B, *that shape*).

    Returns:
        ``y``.

    Raises:
        TypeError: ``physics`` is not a ``LinearPhysics``, or ``y`` not a real tensor.
        ValueError: ``y`` has NaN/Inf entries or another shape than the declared one.
    """
    if not isinstance(physics, LinearPhysics):
        raise TypeError(f"physics: expected a deepinv LinearPhysics, received {type(physics).__name__}")
    y = check_tensor("y", y)
    if getattr(physics, "meas_shape", None) is not None:
        expected = measurement_shape(physics)
        if tuple(y.shape[1:]) != expected:
            raise ValueError(
                f"y: expected measurements of shape (B, {', '.join(map(str, expected))}) for "
                f"{type(physics).__name__}, received {tuple(y.shape)}"
            )
    return y


def alpha_or_noise(
    physics: object, y: torch.Tensor, *, alpha: float | None, noise_level: float | None, noise_std: float | None
) -> Noise | None:
    """Exactly one of a fixed ``alpha`` and a noise estimate for the discrepancy principle.

    Args:
        physics: the forward operator (see :func:`recon.noise.resolve_noise`).
        y: measurements (B, ...).
        alpha: fixed regularization weight, or ``None``.
        noise_level: relative level ``||e|| / ||A x||``, or ``None``.
        noise_std: absolute std per measurement entry (units of ``y``), or ``None``.

    Returns:
        The resolved :class:`recon.noise.Noise`, or ``None`` when ``alpha`` is given.

    Raises:
        ValueError: not exactly one of ``alpha`` and (``noise_level`` or ``noise_std``), both noise
            words, or a value that is not a finite number > 0.
    """
    noise = resolve_noise(physics, y, noise_level=noise_level, noise_std=noise_std)
    if (alpha is None) == (noise is None):
        raise ValueError(
            "alpha / noise_level / noise_std: expected exactly one of alpha (fixed) and a noise estimate "
            "(noise_level or noise_std, for the discrepancy principle), received "
            f"alpha={alpha!r}, noise_level={noise_level!r}, noise_std={noise_std!r}"
        )
    if noise is not None and not bool((noise.norm > 0).all()):
        word, value = ("noise_level", noise_level) if noise_level is not None else ("noise_std", noise_std)
        raise ValueError(f"{word}: expected a value > 0 for the discrepancy principle, received {value!r}")
    return noise


def discrepancy_params(noise: Noise | None, tau: float) -> dict[str, object]:
    """The discrepancy principle's entries of ``info.params``: ``tau``, ``noise_level`` and
    ``noise_std`` (lists, one per batch element); empty when ``noise`` is ``None`` (fixed alpha)."""
    if noise is None:
        return {}
    return {"tau": tau, "noise_level": noise.level.tolist(), "noise_std": noise.std.tolist()}


def reconstruct(
    physics: LinearPhysics,
    y: torch.Tensor,
    prior: AnalysisPrior,
    *,
    alpha: float | None = None,
    noise: Noise | None = None,
    tau: float = 1.01,
    nonneg: bool = True,
    x0: torch.Tensor | None = None,
    step_ratio: float = 0.01,
    weights: torch.Tensor | None = None,
    **solver_options: object,
) -> tuple[torch.Tensor, list[float], History]:
    r"""Solve the fixed-alpha or the discrepancy problem of the module docstring by PDHG.

    Args:
        physics: :math:`A`, images (B, C, N, M) of the shape it declares
            (:func:`operators.shapes.image_shape`).
        y: measurements (B, ...), real (validated by the caller).
        prior: the analysis prior :math:`R(Lx)`.
        alpha: fixed weight :math:`\alpha > 0`; exactly one of ``alpha`` and ``noise``.
        noise: the noise of ``y`` (:func:`recon.noise.resolve_noise`, one entry per batch element):
            the discrepancy problem with radius :math:`\tau\,\|e\|` per batch element.
        tau: discrepancy safety factor (>= 1 in practice; dimensionless).
        nonneg: constrain :math:`x \ge 0`.
        x0: start (B, C, N, M) (default zeros of ``y``'s dtype).
        step_ratio: primal/dual step ratio r (tau = r c / ||K||, sigma = c / (r ||K||), c = 0.99).
        weights: optional non-negative weights on R's coefficients (shape of the projection's
            radius), giving :math:`R_w(Lx) = R(w \odot Lx)` for reweighting schemes.
        **solver_options: the keywords every solver takes (``max_iter`` (default 500 here),
            ``tol`` (1e-4 here: the relative change of the image and of the dual), ``progress``,
            ``reference``, ``callback``), passed to :class:`~recon.solvers.PDHG`, which checks them
            (:func:`~recon.solvers.base.solver_keywords`).

    Returns:
        ``(x, alphas, history)``: x of shape (B, C, N, M), one alpha per batch element (the given
        one, or the one the discrepancy principle picked), the PDHG :class:`~recon.solvers.History`.

    Example:
        >>> noise = resolve_noise(physics, y, noise_level=0.02, noise_std=None)
        >>> x, alphas, hist = reconstruct(physics, y, TV_PRIOR, noise=noise, max_iter=300)
    """
    if (alpha is None) == (noise is None):
        raise ValueError(f"alpha / noise: expected exactly one of them, received alpha={alpha!r}, noise={noise!r}")
    b = y.shape[0]
    shape_b = (b,) + (1,) * (y.ndim - 1)
    if x0 is None:
        x_init = torch.zeros((b, *image_shape(physics)), dtype=y.dtype, device=y.device)
    else:
        x_init = check_tensor("x0", x0)
    s = op_norm(physics, x0=x_init, max_iter=30, tol=1e-3) / prior.norm
    ys = y / s
    if alpha is not None:
        weight, radius = check_positive("alpha", alpha), None
    else:
        weight = 1.0
        radius = (check_positive("tau", tau) * noise.norm / s).reshape(shape_b)
    bound = weight if weights is None else weight * weights

    def prox_f_conj(dual: list[torch.Tensor], sigma: float) -> list[torch.Tensor]:
        q, p = dual
        w = q - sigma * ys
        if radius is None:  # f1 = s^2/2 ||. - y/s||^2  ->  prox of sigma f1*
            q = w / (1.0 + sigma / s**2)
        else:  # f1 = indicator of the ball of radius tau ||e|| / s  ->  vector soft threshold
            nw = w.reshape(b, -1).norm(dim=1).reshape(shape_b)
            q = w * torch.clamp(1.0 - sigma * radius / torch.clamp(nw, min=1e-30), min=0.0)
        return [q, prior.project(p, bound)]

    def K(x: torch.Tensor) -> list[torch.Tensor]:
        return [physics.A(x) / s, prior.op(x)]

    def K_adjoint(dual: list[torch.Tensor]) -> torch.Tensor:
        return physics.A_adjoint(dual[0]) / s + prior.adjoint(dual[1])

    def prox_g(v: torch.Tensor, step: float) -> torch.Tensor:
        return torch.clamp(v, min=0.0) if nonneg else v

    def objective(x: torch.Tensor) -> float:
        lx = prior.op(x)
        reg = float(prior.value(lx if weights is None else weights * lx).sum())
        return reg if radius is not None else 0.5 * float((physics.A(x) - y).pow(2).sum()) + weight * reg

    step = _STEP_SAFETY / (math.sqrt(2.0) * prior.norm)
    ratio = check_positive("step_ratio", step_ratio)
    solver = PDHG(
        K, K_adjoint, prox_g, prox_f_conj, tau=step * ratio, sigma=step / ratio, objective=objective,
        **({"max_iter": 500, "tol": 1e-4} | solver_options),
    )
    x, hist = solver.run(x_init)
    if radius is None:
        return x, [weight] * b, hist
    q = solver.last_dual[0]
    mis = (physics.A(x) - y).reshape(b, -1).norm(dim=1)
    return x, (s * mis / q.reshape(b, -1).norm(dim=1).clamp(min=1e-30)).tolist(), hist
