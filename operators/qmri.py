r"""Quantitative MRI: the nonlinear forward model :math:`y = P F C\, M(x)` for T2 and T1 mapping.

Unknowns per pixel: :math:`x = (\mathrm{Re}\,M_0, \mathrm{Im}\,M_0, R)`, the complex proton
density and a relaxation rate :math:`R` in 1/s (:math:`R_2 = 1/T_2`, :math:`R_1 = 1/T_1`).
Signal models at the sampling times :math:`t_e` (echo times TE or inversion times TI, given in
milliseconds, converted to seconds inside), both of the form :math:`S_e = M_0\, a(t_e, R)`:

* ``"t2"`` multi-echo spin echo: :math:`a = e^{-t R_2}`, :math:`\partial_R a = -t\,e^{-t R_2}`;
* ``"t1"`` inversion recovery: :math:`a = 1 - 2e^{-t R_1}`, :math:`\partial_R a = 2t\,e^{-t R_1}`.

The signal of every echo goes through the multi-coil Cartesian operator of
:class:`~operators.mri.SenseMRI` (coil maps, centred orthonormal FFT, one mask per echo).

Derivatives (all analytic, checked against autograd in the tests): with :math:`r_e` a
signal-domain residual (complex), the Jacobian is :math:`J\,\delta x = E\,[a\,(\delta_{Re} +
i\,\delta_{Im}) + M_0\,\partial_R a\,\delta_R]` and its adjoint (the real gradient of
:math:`\tfrac12\|A(x)-y\|^2` when :math:`r = E^H(A(x) - y)`) is

.. math::
    g_{Re} = \sum_e a_e \mathrm{Re}\,r_e,\quad g_{Im} = \sum_e a_e \mathrm{Im}\,r_e,\quad
    g_R = \sum_e \partial_R a_e\, \mathrm{Re}(\overline{M_0}\, r_e).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from deepinv.physics import Physics

from operators._validate import check_option, check_shape, check_tensor
from operators.mri import SenseMRI

__all__ = ["MODELS", "QuantitativeMRI"]

MODELS = ("t2", "t1")


def check_times(times: object, n_echoes: int, model: str) -> torch.Tensor:
    """Sampling times in ms as a float64 tensor (E,): finite, > 0, strictly increasing, length ``n_echoes``."""
    name = "echo_times" if model == "t2" else "inversion_times"
    t = torch.as_tensor(times.detach().cpu() if isinstance(times, torch.Tensor) else times, dtype=torch.float64)
    if t.ndim != 1 or t.numel() != n_echoes:
        raise ValueError(f"{name}: expected {n_echoes} times in ms (one per echo of the mask), received shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()) or bool((t[1:] <= t[:-1]).any()):
        raise ValueError(f"{name}: expected finite, positive, strictly increasing times in ms, received {t.tolist()}")
    return t


def _gradient(m0: torch.Tensor, a: torch.Tensor, da: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """(g_Re, g_Im, g_R) of the module docstring from the signal-domain residual ``r`` (B, E, H, W)."""
    g_m0 = (a * r).sum(1, keepdim=True)
    g_rate = (da * (m0.conj() * r).real).sum(1, keepdim=True)
    return torch.cat([g_m0.real, g_m0.imag, g_rate], dim=1)


class QuantitativeMRI(Physics):
    r"""Nonlinear qMRI forward model :math:`A(x) = P F C\,M(x)` (see the module docstring).

    Shapes: ``x`` real ``(B, 3, H, W)`` holding (Re M0, Im M0, R [1/s]); signals complex
    ``(B, E, H, W)``; measurements complex ``(B, N, E, H, W)`` (``N`` coils, ``E`` echoes);
    :attr:`img_shape` and :attr:`meas_shape` are those of ``x`` and the measurements without ``B``.

    Args:
        sense: the multi-coil operator (mask per echo, coil maps); its ``n_echoes`` must equal
            ``len(times)``.
        model: ``"t2"`` (multi-echo, times are TE) or ``"t1"`` (inversion recovery, times are TI).
        times: sampling times in milliseconds, strictly increasing, one per echo.

    Example:
        >>> phys = QuantitativeMRI(sense, "t2", [23.0 * k for k in range(1, 9)])  # doctest: +SKIP
        >>> y = phys.A(x)  # (B, N, 8, H, W) complex
    """

    def __init__(self, sense: SenseMRI, model: str, times: Sequence[float] | torch.Tensor):
        if not isinstance(sense, SenseMRI):
            raise TypeError(f"sense: expected an operators.mri.SenseMRI, received {type(sense).__name__}")
        super().__init__()
        self.sense = sense
        self.model = check_option("model", model, MODELS)
        self.times_ms = check_times(times, sense.n_echoes, self.model)
        self.x_shape = (3, *sense.x_shape[1:])

    @property
    def img_shape(self) -> tuple[int, int, int]:
        """One parameter map without the batch axis, ``(3, H, W)`` (real)."""
        return self.x_shape

    @property
    def meas_shape(self) -> tuple[int, int, int, int]:
        """One measurement without the batch axis, ``(N, E, H, W)`` (complex k-space)."""
        return (self.sense.n_coils, *self.sense.x_shape)

    # -- signal model ---------------------------------------------------------------------------
    def _t(self, like: torch.Tensor) -> torch.Tensor:
        """Times in seconds shaped (E, 1, 1) for broadcasting against (B, 1, H, W) rates."""
        return (self.times_ms / 1000.0).to(like.device, like.dtype)[:, None, None]

    def basis(self, rate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`a(t_e, R)` and :math:`\partial_R a(t_e, R)` for rates ``(..., 1, H, W)`` -> ``(..., E, H, W)``."""
        t = self._t(rate)
        decay = torch.exp(-t * rate)
        if self.model == "t2":
            return decay, -t * decay
        return 1.0 - 2.0 * decay, 2.0 * t * decay

    def atoms(self, rates: torch.Tensor) -> torch.Tensor:
        """Dictionary of normalised-free signal curves :math:`a(t, R)`, real ``(len(rates), E)``."""
        a, _ = self.basis(rates.reshape(-1, 1, 1, 1))
        return a[..., 0, 0]

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.complex(x[:, 0:1], x[:, 1:2]), x[:, 2:3]

    def signal(self, x: torch.Tensor) -> torch.Tensor:
        """Noise-free images per echo :math:`M_0 a(t_e, R)`, complex ``(B, E, H, W)``."""
        self.check_x(x)
        m0, rate = self._split(x)
        return m0 * self.basis(rate)[0]

    def check_x(self, x: torch.Tensor) -> torch.Tensor:
        """Validate parameter maps: real ``(B, 3, H, W)``, finite."""
        return check_shape("x", check_tensor("x", x), (None, *self.x_shape))

    # -- forward, Jacobian, gradient ------------------------------------------------------------
    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Noise-free measurements, complex ``(B, N, E, H, W)``."""
        return self.sense.A_complex(self.signal(x))

    def jvp(self, x: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        r"""Jacobian-vector product :math:`J(x)\,\delta x`, complex ``(B, N, E, H, W)``."""
        self.check_x(x)
        check_shape("dx", check_tensor("dx", dx), tuple(x.shape))
        m0, rate = self._split(x)
        dm0, drate = self._split(dx)
        a, da = self.basis(rate)
        return self.sense.apply(a * dm0 + m0 * da * drate)

    def vjp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        r"""Adjoint Jacobian :math:`J(x)^H v` (real part, as a real gradient) for ``v`` (B, N, E, H, W)."""
        self.check_x(x)
        m0, rate = self._split(x)
        return _gradient(m0, *self.basis(rate), self.sense.A_adjoint_complex(v))

    def data_fit(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Value and analytic gradient of :math:`f(x) = \tfrac12\|A(x) - y\|_2^2`.

        Returns:
            ``(f, g)``: a 0-d real tensor and the real gradient ``(B, 3, H, W)``. Both stay on
            torch's autograd graph when ``x`` or ``y`` require grad (NLCG-Net backpropagates
            through them). ``x`` and ``y`` are not validated here: call :meth:`check_x` and
            :meth:`check_y` once at the edge.
        """
        m0, rate = self._split(x)
        a, da = self.basis(rate)
        res = self.sense.apply(m0 * a) - y
        f = 0.5 * (res.real.square().sum() + res.imag.square().sum())
        return f, _gradient(m0, a, da, self.sense.apply_adjoint(res))

    def check_y(self, y: object) -> torch.Tensor:
        """Validate measurements: complex ``(B, N, E, H, W)``, finite."""
        if isinstance(y, torch.Tensor) and not y.is_complex():
            raise TypeError(
                f"y: expected complex k-space (complex64/complex128), received real dtype {str(y.dtype).replace('torch.', '')}"
            )
        return check_shape("y", check_tensor("y", y, real=False), (None, self.sense.n_coils, *self.sense.x_shape))
