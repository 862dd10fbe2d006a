r"""NLCG-Net: model-based zero-shot learning for undersampled quantitative MRI (Jiang et al., 2024).

Warm start: plain model-based NLCG (:func:`~recon.methods.qmri.nlcg_maps`, 800 iterations).
Then ``n_blocks`` unrolled blocks, in the scaled variables :math:`v = x / s` of
:mod:`recon.methods.qmri`:

.. math::
    z_k = \mathrm{CNN}_\theta(v_k),\qquad
    v_{k+1} = \mathrm{NLCG}^{(n_{dc})}_{\text{start } v_k}\Big[\tfrac12\|A_\Theta(s v) - y_\Theta\|^2
    + \tfrac{\lambda}2\|v - z_k\|^2\Big],

``n_dc`` = 10 NLCG steps (Dai-Yuan, secant line search, projection :math:`R \ge R_{\min}`) per
block, one CNN (:class:`~denoisers.resnet.ResNet2D`, identity at initialisation) shared by all
blocks, :math:`\lambda > 0` learnable (initial 0.05; trained as :math:`\log\lambda`).

Zero-shot self-supervised training on the scan's own k-space (nothing uses a ground truth):
the acquired samples :math:`\Omega` (per echo; a small central block always stays in the
data-consistency set) are split once into a validation set :math:`\Gamma` (20 %) and the rest
:math:`T`; ``n_splits`` random splits of :math:`T` into a data-consistency set :math:`\Theta` and
a loss set :math:`\Lambda` (:math:`|\Lambda| = \rho|T|`, :math:`\rho = 0.4`). Each epoch takes
one Adam step per split on the normalised L1 + L2 k-space loss

.. math::
    \mathcal L = \frac{\|A_\Lambda(x) - y_\Lambda\|_1}{\|y_\Lambda\|_1}
    + \frac{\|A_\Lambda(x) - y_\Lambda\|_2}{\|y_\Lambda\|_2},

with the network run with data consistency on :math:`\Theta`; the validation loss runs the
network with data consistency on :math:`T` and scores :math:`\Gamma`. The network's input is
always a warm start computed from its own data-consistency set only (one plain NLCG run per
split, one on :math:`T`, and the final one on :math:`\Omega`): a warm start fitted to all of
:math:`\Omega` would already have fitted the noise of :math:`\Lambda` and :math:`\Gamma`, and the
k-space losses would then reward reproducing that noise (measured: the all-data NLCG maps score a
lower validation loss than the true maps). Training stops after
``max_epochs`` or when the validation loss has not improved for ``patience`` epochs; the weights
with the lowest validation loss are kept. The final maps run the network with data consistency
on all of :math:`\Omega`. Gradients flow through the NLCG steps (the line-search step sizes are
treated as constants).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from denoisers.resnet import ResNet2D
from operators._validate import check_int, check_positive
from operators.mri import SenseMRI
from operators.qmri import QuantitativeMRI
from recon.methods.qmri import as_qmri, data_consistency, nlcg_maps, prepare, rate_projection, rescale_m0, scales
from recon.result import ReconInfo
from recon.solvers import NLCG, History

__all__ = ["nlcg_net", "split_samples"]

#: Side of the central k-space block (pixels) that always stays in the data-consistency set.
CENTRE_BLOCK = 4


def _check_fraction(name: str, value: object) -> float:
    v = check_positive(name, value)
    if v >= 1.0:
        raise ValueError(f"{name}: expected a fraction in (0, 1), received {value!r}")
    return v


def split_samples(mask: torch.Tensor, fraction: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the sampled points of ``mask`` (E, H, W) into ``(keep, taken)``, ``taken`` about ``fraction``.

    Per echo, ``round(fraction * n)`` of its ``n`` sampled points outside the central
    :data:`CENTRE_BLOCK` x :data:`CENTRE_BLOCK` block are drawn uniformly without replacement into
    ``taken``; everything else sampled stays in ``keep``. ``keep + taken == mask``.
    """
    _, h, w = mask.shape
    eligible = mask.clone()
    c0, c1 = h // 2 - CENTRE_BLOCK // 2, w // 2 - CENTRE_BLOCK // 2
    eligible[:, c0 : c0 + CENTRE_BLOCK, c1 : c1 + CENTRE_BLOCK] = 0
    taken = torch.zeros_like(mask)
    for e in range(mask.shape[0]):
        idx = torch.nonzero(eligible[e].flatten())[:, 0]
        pick = idx[torch.randperm(idx.numel(), generator=gen)[: round(fraction * idx.numel())]]
        taken[e].view(-1)[pick] = 1
    return mask - taken, taken


def _kspace_loss(k: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    d = k - y
    return d.abs().sum() / y.abs().sum() + torch.linalg.vector_norm(d) / torch.linalg.vector_norm(y)


class _Unrolled:
    """The unrolled network: ``n_blocks`` x {shared CNN, ``dc_iter`` NLCG steps}, learnable lambda."""

    def __init__(self, physics: QuantitativeMRI, s: torch.Tensor, n_blocks: int, dc_iter: int, lam0: float, width: int, depth: int):
        self.physics, self.s, self.n_blocks, self.dc_iter = physics, s, n_blocks, dc_iter
        self.cnn = ResNet2D(3, width=width, n_blocks=depth).to(s.dtype)
        self.log_lam = torch.nn.Parameter(torch.tensor(math.log(lam0), dtype=s.dtype))
        self.project = rate_projection(physics, s)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [*self.cnn.parameters(), self.log_lam]

    def state(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.parameters()]

    def load(self, state: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, saved in zip(self.parameters(), state, strict=True):
                p.copy_(saved)

    def __call__(self, v: torch.Tensor, sense: SenseMRI, y: torch.Tensor) -> torch.Tensor:
        phys = QuantitativeMRI(sense, self.physics.model, self.physics.times_ms)
        lam = self.log_lam.exp()
        for _ in range(self.n_blocks):
            z = self.cnn(v)
            solver = NLCG(
                data_consistency(phys, y, self.s, lam=lam, z=z), beta="DY", line_search="secant", projection=self.project,
                max_ls=20, max_iter=self.dc_iter, tol=0.0, progress=False,
            )  # fmt: skip
            v, _ = solver.run(v)
        return v


def nlcg_net(
    physics: QuantitativeMRI | SenseMRI,
    y: torch.Tensor,
    *,
    model: str | None = None,
    echo_times: Sequence[float] | None = None,
    inversion_times: Sequence[float] | None = None,
    warm_iter: int = 800,
    n_blocks: int = 6,
    dc_iter: int = 10,
    lam: float = 0.05,
    n_splits: int = 25,
    rho: float = 0.4,
    val_fraction: float = 0.2,
    lr: float = 1e-4,
    lr_lambda: float = 0.01,
    grad_clip: float = math.inf,
    max_epochs: int = 250,
    patience: int = 25,
    width: int = 32,
    depth: int = 4,
    seed: int = 0,
    warm_start: torch.Tensor | None = None,
    progress: bool | None = None,
) -> tuple[torch.Tensor, ReconInfo]:
    r"""T2 / T1 and M0 maps by NLCG-Net (module docstring), trained zero-shot on ``y`` itself.

    Every default is the paper's (Jiang et al. 2024) unless said otherwise.

    Args:
        physics: a :class:`~operators.qmri.QuantitativeMRI`, or a
            :class:`~operators.mri.SenseMRI` together with ``model`` and its times.
        y: multi-coil k-space, complex ``(1, N, E, H, W)`` (one scan: coils, echoes, rows, columns).
        model: ``"t2"`` or ``"t1"`` (needed with a ``SenseMRI``; must match a ``QuantitativeMRI``).
        echo_times: TE in ms for ``"t2"``; inversion_times: TI in ms for ``"t1"``.
        warm_iter: plain NLCG iterations of every warm start (800 in the paper).
        n_blocks: unrolled blocks (6 in the paper).
        dc_iter: NLCG steps per block (10).
        lam: initial :math:`\lambda` (> 0; 0.05), the weight of :math:`\tfrac{\lambda}2\|v - z_k\|^2`
            in scaled variables; learnt.
        n_splits: random data-consistency / loss splits per epoch (25).
        rho: loss-set fraction of the non-validation samples (0.4).
        val_fraction: validation fraction of the acquired samples (0.2).
        lr: Adam learning rate of the CNN (1e-4).
        lr_lambda: Adam learning rate of :math:`\log\lambda` (0.01; Adam moves a parameter by
            about its learning rate per step whatever the gradient's scale, so :math:`\lambda` is
            learnt in the log domain to change by a factor, not by an amount).
        grad_clip: clip the gradient's global norm to this value before each Adam step
            (``math.inf``: no clipping; the norms before clipping are in ``info.extra["grad_norm"]``).
        max_epochs: epochs at most (250); patience: early-stopping patience in epochs (25).
        width, depth: channels and residual blocks of the CNN.
        seed: seeds the splits and the network initialisation.
        warm_start: precomputed warm-start maps ``(1, 3, H, W)`` (physical units), e.g. from
            :func:`~recon.methods.qmri.nlcg_maps` on all of ``y``, for the final pass (the training warm
            starts are always computed here, from their own subsets).
        progress: tqdm bars (None: only on a terminal).

    Returns:
        ``(maps, info)``: maps ``(1, 3, H, W)`` = (Re M0, Im M0, R [1/s]); ``info`` a
        :class:`~recon.result.ReconInfo` whose ``history`` holds one record per training epoch
        (``objective``: the mean training loss over the splits, ``residual``: the validation
        loss, the early-stopping quantity; ``n_iter`` = epochs run, ``converged`` True and
        ``stop_reason`` ``"patience"`` when the validation loss stopped improving, else
        ``"max_epochs"``); ``params``: the arguments above by name plus ``"model"``, with
        ``"lam"`` the learnt :math:`\lambda` of the final maps and ``"lam_init"`` the given
        one; ``extra``: ``"warm_start"`` (maps), ``"warm_history"`` (the warm start's NLCG
        :class:`~recon.solvers.History`, ``None`` when ``warm_start`` was given),
        ``"train_loss"`` and ``"val_loss"`` per epoch, ``"grad_norm"`` per step,
        ``"best_epoch"`` (the weights kept) and ``"data_scale"``.

    Example:
        >>> maps, info = recon.nlcg_net(sense, y, model="t2", echo_times=[23.0 * k for k in range(1, 9)])  # doctest: +SKIP
        >>> t2_ms = 1000.0 / maps[:, 2]
        >>> info.params["lam"], info.n_iter, info.extra["best_epoch"]
    """
    t0 = time.perf_counter()
    physics = as_qmri(physics, model=model, echo_times=echo_times, inversion_times=inversion_times)
    yn, gamma = prepare(physics, y)
    if yn.shape[0] != 1:
        raise ValueError(f"y: expected one scan (batch 1), received batch {yn.shape[0]}")
    for name, val in (("warm_iter", warm_iter), ("n_blocks", n_blocks), ("dc_iter", dc_iter), ("n_splits", n_splits),
                      ("max_epochs", max_epochs), ("patience", patience)):  # fmt: skip
        check_int(name, val)
    check_positive("lam", lam)
    check_positive("lr", lr)
    check_positive("lr_lambda", lr_lambda)
    if not (isinstance(grad_clip, (int, float)) and grad_clip > 0):
        raise ValueError(f"grad_clip: expected a number > 0 (math.inf for none), received {grad_clip!r}")
    rho, val_fraction = _check_fraction("rho", rho), _check_fraction("val_fraction", val_fraction)
    if warm_start is None:
        warm_start, warm_info = nlcg_maps(physics, y, max_iter=warm_iter, progress=progress)
        warm_history = warm_info.history
    else:
        physics.check_x(warm_start)
        warm_history = None
    s = scales(physics, warm_start)
    v0 = rescale_m0(warm_start, 1.0 / gamma) / s

    bar_on = sys.stderr.isatty() if progress is None else bool(progress)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the CNN's initialisation
    omega = physics.sense.sampling_mask()
    rest, val = split_samples(omega, val_fraction, gen)
    net = _Unrolled(physics, s, n_blocks, dc_iter, lam, width, depth)
    opt = torch.optim.Adam([{"params": list(net.cnn.parameters()), "lr": lr}, {"params": [net.log_lam], "lr": lr_lambda}])

    def subset(m: torch.Tensor, start: bool) -> tuple[SenseMRI, torch.Tensor, torch.Tensor | None]:
        """Operator and data restricted to the samples of ``m`` and, if ``start``, NLCG's warm start from them."""
        sense_m = physics.sense.with_mask(m)
        if not start:
            return sense_m, yn * m, None
        maps_m, _ = nlcg_maps(QuantitativeMRI(sense_m, physics.model, physics.times_ms), y * m, max_iter=warm_iter, progress=False)
        return sense_m, yn * m, rescale_m0(maps_m, 1.0 / gamma) / s

    splits = [split_samples(rest, rho, gen) for _ in range(n_splits)]
    splits = [(subset(dc, True), subset(loss, False)) for dc, loss in tqdm(splits, desc="NLCG-Net warm starts", disable=not bar_on)]
    sense_rest, y_rest, v_rest = subset(rest, True)
    sense_val, y_val, _ = subset(val, False)

    def loss_on(v: torch.Tensor, sense_loss: SenseMRI, y_loss: torch.Tensor) -> torch.Tensor:
        return _kspace_loss(sense_loss.apply(physics.signal(v * s)), y_loss)

    best = (math.inf, 0, net.state())
    hist, grad_norms, t_train = History(stop_reason="max_epochs"), [], time.perf_counter()
    bar = tqdm(range(max_epochs), desc="NLCG-Net epochs", disable=not bar_on, leave=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
        for epoch in bar:
            total = 0.0
            for (sense_dc, y_dc, v_dc), (sense_loss, y_loss, _) in splits:
                opt.zero_grad()
                loss = loss_on(net(v_dc, sense_dc, y_dc), sense_loss, y_loss)
                loss.backward()
                grad_norms.append(float(torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)))
                opt.step()
                total += float(loss)
            with torch.no_grad():
                val_loss = float(loss_on(net(v_rest, sense_rest, y_rest), sense_val, y_val))
            hist.objective.append(total / n_splits)
            hist.residual.append(val_loss)
            hist.time.append(time.perf_counter() - t_train)
            hist.iterations += 1
            bar.set_postfix(val=f"{val_loss:.4f}")
            if val_loss < best[0]:
                best = (val_loss, epoch, net.state())
            elif epoch - best[1] >= patience:
                hist.converged, hist.stop_reason = True, "patience"
                break
        net.load(best[2])
        with torch.no_grad():
            v = net(v0, physics.sense, yn)
    maps = rescale_m0(v * s, gamma)
    params = {
        "model": physics.model, "lam": float(net.log_lam.exp()), "lam_init": lam, "warm_iter": warm_iter, "n_blocks": n_blocks,
        "dc_iter": dc_iter, "n_splits": n_splits, "rho": rho, "val_fraction": val_fraction, "lr": lr, "lr_lambda": lr_lambda,
        "grad_clip": grad_clip, "max_epochs": max_epochs, "patience": patience, "width": width, "depth": depth, "seed": seed,
    }  # fmt: skip
    return maps, ReconInfo.from_history(
        hist, t0, params, warm_start=warm_start, warm_history=warm_history, train_loss=list(hist.objective),
        val_loss=list(hist.residual), grad_norm=grad_norms, best_epoch=best[1], data_scale=gamma,
    )  # fmt: skip
