r"""2D constant-density acoustic waves: shot gathers from a velocity model, differentiable by autograd.

The pressure field :math:`u(x, z, t)` of a point source at :math:`x_s` with source time function
:math:`w(t)` solves

.. math::  u_{tt} + \sigma(x)\, u_t = c(x)^2 \big(\Delta u + w(t)\, \delta(x - x_s)\big),
           \qquad u = u_t = 0 \text{ at } t = 0,

i.e. :math:`c^{-2}(u_{tt} + \sigma u_t) = \Delta u + w\,\delta_{x_s}`: the source is a volume
injection, so its amplitude in :math:`u` scales with :math:`c(x_s)^2`. This form makes the
discrete Green's function symmetric (source-receiver reciprocity, also with the sponge). The
damping :math:`\sigma` (1/s) is zero in the model and grows quadratically in a sponge of
``n_absorb`` cells padded around all four sides (absorbing top: no free surface, hence no
surface ghosts or multiples).

Discretisation, on a grid of spacing :math:`h` = ``dx`` (m), time step :math:`\tau` = ``dt`` (s):

* space: the fourth-order centred Laplacian :math:`L = D_{xx} + D_{zz}`,
  :math:`D_{xx}u_j = (-u_{j-2} + 16u_{j-1} - 30u_j + 16u_{j+1} - u_{j+2}) / (12h^2)`, with
  :math:`u = 0` on the two cells outside the padded grid (a rigid, Dirichlet boundary; without
  a sponge, ``n_absorb=0``, waves reflect there). :math:`L` is symmetric negative definite.
* time: second-order leapfrog with the damping centred,

  .. math::  (1 + a)\,u^{n+1} = 2u^n - (1 - a)\,u^{n-1} + \tau^2 c^2 (L u^n + w^n \delta_h),
             \qquad a = \sigma\tau/2,

  :math:`\delta_h` = 1/h² in the source cell. Recorded traces are :math:`u^n` at the receiver
  cells for :math:`t_n = n\tau`, :math:`n = 0..n_t-1` (:math:`u^0 = 0`). Inside the sponge the
  velocity continues the model's edge values, so an edge cell's gradient collects the
  sensitivity of the sponge cells beyond it.
* stability (CFL): the largest eigenvalue of :math:`-L` is :math:`(32/3)/h^2` (16/3 per axis),
  so leapfrog is stable iff :math:`c_{\max}\tau/h \le \sqrt{3/8} \approx 0.612` (:data:`CFL_LIMIT`).
* accuracy: about 5 cells per shortest wavelength :math:`\lambda_{\min} = c_{\min}/(2.5 f_{peak})`
  keep the phase error of the fourth-order stencil small (a rule of thumb, not checked).
* energy: without sponge and source the leapfrog energy
  :math:`E^{n+1/2} = \tfrac12 \sum c^{-2} ((u^{n+1}-u^n)/\tau)^2 - \tfrac12 \sum u^{n+1} L u^n`
  (times :math:`h^2`) is conserved exactly (:meth:`AcousticWave2D.energy`), and positive under CFL.

Autograd: each leapfrog step is a small autograd function with its hand-written backward (the
Laplacian is symmetric, so the backward of a step costs one Laplacian, like the forward); the
time loop around it is plain torch, so the traces are differentiable w.r.t. the velocity (the
sponge extension and the coefficients are ordinary autograd). Memory: one wavefield per time
step is kept for the backward pass (n_sources x padded grid x n_t values; 390 MB in float32 for
8 sources, 104 x 168 cells, 700 steps). Plain autograd over the same loop gave the same gradient,
but its temporaries (fresh memory every step) made the forward pass 1.5-5 times slower here; one
forward + backward of that size takes about 1 s on one core in float32 (2 s in float64).

Shapes and units: velocity (nz, nx) in m/s, row = depth (z down), column = x; sources and
receivers are (row, column) cell indices into that grid; traces (n_sources, n_t, n_receivers).
All sources of a survey run as one batch through one time loop. The operator maps one model (no
batch or channel axis), so its ``img_shape`` is ``(nz, nx)`` and its ``meas_shape``
``(n_sources, n_t, n_receivers)``: exactly the shapes of :meth:`AcousticWave2D.A`'s input and output.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from deepinv.physics import Physics

from operators._validate import check_int, check_positive, check_shape, check_tensor

__all__ = ["CFL_LIMIT", "AcousticWave2D", "ricker"]

#: Stability limit of c_max * dt / dx for the 4th-order Laplacian with leapfrog in 2D: sqrt(3/8).
CFL_LIMIT = math.sqrt(3.0 / 8.0)
#: Default peak damping of the sponge, in units of the peak angular frequency 2 pi f_peak.
SPONGE_STRENGTH = 2.0
# Fourth-order stencil weights (times 1/h^2): centre (per axis), first and second neighbours.
_C0, _C1, _C2 = -5.0 / 2.0, 4.0 / 3.0, -1.0 / 12.0


def ricker(n_t: int, dt: float, f_peak: float, delay: float | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Ricker wavelet :math:`w(t) = (1 - 2\pi^2 f^2 (t - t_0)^2)\, e^{-\pi^2 f^2 (t - t_0)^2}`.

    Args:
        n_t: number of samples (>= 1), at :math:`t_n = n\,dt`.
        dt: sampling interval in s (> 0).
        f_peak: peak frequency :math:`f` in Hz (> 0).
        delay: time shift :math:`t_0` in s (>= 0); default :math:`1.5 / f` (the wavelet starts
            at about 1e-8 of its peak).
        dtype: float32 or float64.

    Returns:
        The wavelet, shape (n_t,), peak 1 at :math:`t_0`; its integral over the real line is zero.

    Example:
        >>> w = ricker(500, 1e-3, 10.0)   # 10 Hz, peak at 0.15 s
    """
    n_t = check_int("n_t", n_t)
    dt, f_peak = check_positive("dt", dt), check_positive("f_peak", f_peak)
    t0 = 1.5 / f_peak if delay is None else check_positive("delay", delay, allow_zero=True)
    arg = (math.pi * f_peak * (torch.arange(n_t, dtype=torch.float64) * dt - t0)) ** 2
    return ((1.0 - 2.0 * arg) * torch.exp(-arg)).to(dtype)


def _laplacian_stencil(u: torch.Tensor) -> torch.Tensor:
    """:math:`h^2 L u` on the last two axes, with u = 0 on the two cells outside the grid."""
    out = u * (2.0 * _C0)
    for shift, weight in ((1, _C1), (2, _C2)):
        out[..., shift:, :].add_(u[..., :-shift, :], alpha=weight)
        out[..., :-shift, :].add_(u[..., shift:, :], alpha=weight)
        out[..., shift:].add_(u[..., :-shift], alpha=weight)
        out[..., :-shift].add_(u[..., shift:], alpha=weight)
    return out


class _LeapfrogStep(torch.autograd.Function):
    r"""One step :math:`u^{n+1} = k_1 u^n - k_2 u^{n-1} + k_L (h^2 L u^n + s^n)`, all products pointwise.

    :math:`k_1 = 2/(1+a)`, :math:`k_2 = (1-a)/(1+a)`, :math:`k_L = (c\tau/h)^2/(1+a)` on the
    padded grid, :math:`s^n` the wavelet sample added in the source cells. With :math:`g` the
    gradient w.r.t. :math:`u^{n+1}` and :math:`L` symmetric, the backward pass is
    :math:`\partial u^n = k_1 g + h^2 L (k_L g)`, :math:`\partial u^{n-1} = -k_2 g` and
    :math:`\partial k_L = \sum_{\text{sources}} g\,(h^2 L u^n + s^n)`; only the last factor is
    stored (one wavefield per step), and no temporaries are allocated beyond it and the output.
    """

    @staticmethod
    def forward(ctx, u, u_prev, k_lap, k_now, k_prev, source_cells, source_values):
        rhs = _laplacian_stencil(u).index_put_(source_cells, source_values, accumulate=True)
        ctx.save_for_backward(rhs, k_lap, k_now, k_prev)
        out = k_now * u
        return out.addcmul_(k_prev, u_prev, value=-1.0).addcmul_(k_lap, rhs)

    @staticmethod
    def backward(ctx, grad):
        rhs, k_lap, k_now, k_prev = ctx.saved_tensors
        grad_u = _laplacian_stencil(k_lap * grad).addcmul_(k_now, grad)
        return grad_u, -k_prev * grad, (grad * rhs).sum(dim=0), None, None, None, None


def _check_positions(name: str, value: object, shape: tuple[int, int]) -> torch.Tensor:
    """(row, column) cell indices as a long tensor (n, 2), every one inside ``shape``."""
    try:
        pos = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name}: expected (row, column) integer pairs, received {type(value).__name__}") from err
    if pos.dtype.is_floating_point or pos.is_complex() or pos.dtype == torch.bool:
        raise TypeError(f"{name}: expected integer (row, column) indices, received dtype {str(pos.dtype).replace('torch.', '')}")
    if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] < 1:
        raise ValueError(f"{name}: expected shape (n >= 1, 2) of (row, column) pairs, received shape {tuple(pos.shape)}")
    limits = torch.tensor(shape)
    off = ((pos < 0) | (pos >= limits)).any(dim=1)
    if bool(off.any()):
        raise ValueError(
            f"{name}: expected cells inside the {shape[0]} x {shape[1]} grid (0 <= row < {shape[0]}, "
            f"0 <= column < {shape[1]}), received {pos[off].tolist()}"
        )
    return pos.long()


def _cfl_error(name: str, c_max: float, dt: float, dx: float) -> ValueError:
    return ValueError(
        f"{name}: CFL condition violated: c_max * dt / dx = {c_max:g} * {dt:g} / {dx:g} = {c_max * dt / dx:.4f} "
        f"exceeds the stability limit sqrt(3/8) = {CFL_LIMIT:.4f} of the scheme (4th-order space, leapfrog, 2D); "
        f"expected c_max <= {CFL_LIMIT * dx / dt:.1f} m/s or dt <= {CFL_LIMIT * dx / c_max:.3g} s"
    )


class AcousticWave2D(Physics):
    r"""Shot gathers of the 2D acoustic wave equation (see the module docstring for the scheme).

    :meth:`A` (and ``forward``/calling the object, deepinv's noisy forward with its default zero
    noise) maps a velocity model to the traces of every source, differentiably.

    Args:
        shape: model grid (nz, nx), each >= 1; rows are depth.
        dx: grid spacing in m (> 0), the same in x and z.
        dt: time step in s (> 0), also the trace sampling interval.
        n_t: number of time samples per trace (>= 1); record length (n_t - 1) * dt.
        sources: source cells, (n_sources, 2) integer (row, column) pairs inside ``shape``.
        receivers: receiver cells, (n_receivers, 2) integer (row, column) pairs inside ``shape``;
            the same receivers record every source.
        f_peak: peak frequency of the Ricker source wavelet in Hz (> 0).
        n_absorb: sponge width in cells (>= 0) padded on each side; 0 gives no damping and a
            rigid (u = 0) boundary two cells outside the model.
        damping: peak damping :math:`\sigma_{\max}` of the sponge in 1/s (> 0); the profile is
            :math:`\sigma = \sigma_{\max}((d_z/n)^2 + (d_x/n)^2)` with :math:`d` the depth in
            cells into the sponge. Default ``SPONGE_STRENGTH * 2 pi f_peak`` (about 2 % of the
            peak amplitude comes back from 20 cells at 10 Hz, 10 m, 2000 m/s).
        delay: wavelet delay in s (>= 0), default 1.5 / f_peak.
        c_max: optional largest velocity in m/s the operator will see; if given, the CFL
            condition is checked here too (it is always checked in :meth:`A`).

    Example:
        >>> wave = AcousticWave2D((64, 128), 10.0, 1.5e-3, 700, [(1, 8), (1, 64)], [(1, j) for j in range(128)])
        >>> traces = wave.A(torch.full((64, 128), 2000.0))     # (2, 700, 128)
    """

    def __init__(
        self,
        shape: Sequence[int],
        dx: float,
        dt: float,
        n_t: int,
        sources: Sequence[Sequence[int]] | torch.Tensor,
        receivers: Sequence[Sequence[int]] | torch.Tensor,
        f_peak: float = 10.0,
        n_absorb: int = 20,
        damping: float | None = None,
        delay: float | None = None,
        c_max: float | None = None,
    ):
        super().__init__()
        if not isinstance(shape, Sequence) or len(shape) != 2:
            raise ValueError(f"shape: expected (nz, nx), received {shape!r}")
        self.shape = (check_int("shape[0]", shape[0]), check_int("shape[1]", shape[1]))
        self.dx, self.dt = check_positive("dx", dx), check_positive("dt", dt)
        self.n_t = check_int("n_t", n_t)
        self.sources = _check_positions("sources", sources, self.shape)
        self.receivers = _check_positions("receivers", receivers, self.shape)
        self.f_peak = check_positive("f_peak", f_peak)
        self.n_absorb = check_int("n_absorb", n_absorb, minimum=0)
        sigma_max = SPONGE_STRENGTH * 2.0 * math.pi * self.f_peak if damping is None else check_positive("damping", damping)
        if c_max is not None and check_positive("c_max", c_max) * self.dt / self.dx > CFL_LIMIT:
            raise _cfl_error("c_max", c_max, self.dt, self.dx)
        self.wavelet = ricker(self.n_t, self.dt, self.f_peak, delay, dtype=torch.float64)
        self.half_damping = 0.5 * self.dt * self._sponge(sigma_max)  # a = sigma dt / 2, padded grid

    @property
    def img_shape(self) -> tuple[int, int]:
        """The shape ``(nz, nx)`` of the velocity model :meth:`A` takes (one model: no batch or channel axis)."""
        return self.shape

    @property
    def meas_shape(self) -> tuple[int, int, int]:
        """The shape ``(n_sources, n_t, n_receivers)`` of the traces :meth:`A` returns."""
        return (self.sources.shape[0], self.n_t, self.receivers.shape[0])

    def _sponge(self, sigma_max: float) -> torch.Tensor:
        """Damping sigma (1/s) on the padded grid, shape (nz + 2 n, nx + 2 n), float64."""
        n = self.n_absorb

        def ramp(size: int) -> torch.Tensor:
            idx = torch.arange(size + 2 * n, dtype=torch.float64)
            depth = torch.clamp(n - idx, min=0) + torch.clamp(idx - (size + n - 1), min=0)
            return (depth / max(n, 1)) ** 2

        return sigma_max * (ramp(self.shape[0])[:, None] + ramp(self.shape[1])[None, :])

    # -- validation -------------------------------------------------------------------------------
    def check_velocity(self, velocity: torch.Tensor) -> torch.Tensor:
        """Validate a model: real (nz, nx), finite, > 0 m/s, and within the CFL limit."""
        check_shape("velocity", check_tensor("velocity", velocity), self.shape)
        c_min, c_max = float(velocity.detach().min()), float(velocity.detach().max())
        if c_min <= 0:
            raise ValueError(f"velocity: expected values > 0 m/s, received minimum {c_min:g}")
        if c_max * self.dt / self.dx > CFL_LIMIT:
            raise _cfl_error("velocity", c_max, self.dt, self.dx)
        return velocity

    # -- time stepping ----------------------------------------------------------------------------
    def _pad(self, velocity: torch.Tensor) -> torch.Tensor:
        """Velocity extended into the sponge by its edge values, (nz + 2n, nx + 2n)."""
        n = self.n_absorb
        return F.pad(velocity[None, None], (n, n, n, n), mode="replicate")[0, 0] if n else velocity

    def _steps(self, velocity: torch.Tensor, n_steps: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        r"""Yield :math:`(u^{n-1}, u^n)` for :math:`n = 1..` ``n_steps``, each (n_sources, Hp, Wp)."""
        a = self.half_damping.to(velocity)
        k_now, k_prev = 2.0 / (1.0 + a), (1.0 - a) / (1.0 + a)
        k_lap = (self.dt / self.dx * self._pad(velocity)) ** 2 / (1.0 + a)
        n_src = self.sources.shape[0]
        batch = torch.arange(n_src, device=velocity.device)
        rows, cols = (self.sources + self.n_absorb).to(velocity.device).unbind(1)
        wavelet = self.wavelet.to(velocity)
        u_prev = torch.zeros(n_src, *k_lap.shape, dtype=velocity.dtype, device=velocity.device)
        u = u_prev
        for n in range(n_steps):
            u_prev, u = u, _LeapfrogStep.apply(u, u_prev, k_lap, k_now, k_prev, (batch, rows, cols), wavelet[n].expand(n_src))
            yield u_prev, u

    def A(self, velocity: torch.Tensor, **kwargs) -> torch.Tensor:
        """Traces of every source: (n_sources, n_t, n_receivers), the dtype of ``velocity``.

        Args:
            velocity: the model in m/s, (nz, nx), float32 or float64; may require grad.
        """
        self.check_velocity(velocity)
        rows, cols = (self.receivers + self.n_absorb).to(velocity.device).unbind(1)
        first = velocity.new_zeros(self.sources.shape[0], rows.numel())
        traces = [first] + [u[:, rows, cols] for _, u in self._steps(velocity, self.n_t - 1)]
        return torch.stack(traces, dim=1)

    def wavefield(self, velocity: torch.Tensor, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The last two time levels :math:`(u^{n-1}, u^n)` after :math:`n` = ``n_steps`` steps.

        Args:
            velocity: the model in m/s, (nz, nx).
            n_steps: number of time steps, 1 <= n_steps < n_t (the wavelet has n_t samples).

        Returns:
            Two tensors (n_sources, nz + 2 n_absorb, nx + 2 n_absorb) on the padded grid.
        """
        self.check_velocity(velocity)
        n_steps = check_int("n_steps", n_steps)
        if n_steps >= self.n_t:
            raise ValueError(f"n_steps: expected 1 <= n_steps < n_t = {self.n_t}, received {n_steps}")
        return deque(self._steps(velocity, n_steps), maxlen=1)[0]

    def energy(self, velocity: torch.Tensor, u_prev: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        r"""Leapfrog energy :math:`E^{n-1/2}` of the states :math:`(u^{n-1}, u^n)`, per source (n_sources,).

        .. math::  E = \tfrac{h^2}{2} \sum c^{-2} \big((u^n - u^{n-1})/\tau\big)^2
                       - \tfrac{h^2}{2} \sum u^n L u^{n-1}

        Conserved exactly by the undamped scheme (``n_absorb=0``) once the source is silent.

        Args:
            velocity: the model in m/s, (nz, nx).
            u_prev, u: consecutive states on the padded grid, as returned by :meth:`wavefield`.
        """
        inv_c2 = self._pad(self.check_velocity(velocity)) ** -2
        padded = (None, *inv_c2.shape)
        check_shape("u_prev", check_tensor("u_prev", u_prev), padded)
        check_shape("u", check_tensor("u", u), padded)
        kinetic = (inv_c2 * ((u - u_prev) / self.dt) ** 2).sum(dim=(-2, -1))
        potential = -(u * _laplacian_stencil(u_prev)).sum(dim=(-2, -1))
        return 0.5 * self.dx**2 * kinetic + 0.5 * potential
