r"""The one prior protocol: what every method's ``prior=`` accepts.

A method that takes a prior accepts exactly three kinds, and nothing else:

1. **a registered name** (:data:`PRIOR_NAMES`): ``"tv"`` (isotropic TV, :class:`TVPrior`),
   ``"l1"`` (:class:`L1Prior`), or the name of a shipped denoiser of :mod:`denoisers.zoo`
   (``"ct_dncnn"``, ``"dncnn_natural"``, ``"mimo_unet3d"``), loaded offline on first use;
2. **a** ``deepinv.optim.Prior``: ours (:class:`TVPrior`, :class:`L1Prior`,
   :class:`DenoiserPrior`) subclass it, so deepinv's own solvers accept ours, and deepinv's
   (``TVPrior``, ``WaveletPrior``, ``PnP``, ``RED``, ...) work in our methods;
3. **a denoiser callable** ``D(x, sigma) -> x'``: ``x`` of shape (B, C, *spatial), ``sigma`` the
   denoiser's strength (the noise std it removes, units of ``x``; a blind denoiser ignores it).

:func:`as_prior` turns any of the three into a ``deepinv.optim.Prior``; :func:`as_denoiser`
turns that into the one map a method applies, :math:`D(x, s)`:

* for a denoiser prior (``DenoiserPrior``, deepinv's ``PnP`` / ``RED`` / ``ScorePrior``): the
  denoiser itself, :math:`D(x, s) = D_s(x)`;
* for an explicit prior :math:`R` (a ``prox``): :math:`D(x, s) = \mathrm{prox}_{s^2 R}(x)`, the
  MAP denoiser of Gaussian noise of std :math:`s` under the density :math:`e^{-R}` (as in
  plug-and-play theory): the prox weight :math:`\gamma` (a TV weight, an l1 threshold) is
  :math:`s^2`.

In both cases ``s`` is a noise std in the units of ``x``. Every method that takes a prior takes
this one strength as ``denoiser_sigma``: *the denoiser strength; for explicit priors the prox
weight is* ``denoiser_sigma**2``. A blind denoiser ignores it. A plug-and-play method uses
:math:`D` as its prox; a RED method uses :math:`x - D(x, s)` as the gradient of its penalty.

Example:
    >>> prior = as_prior("tv")                      # a TVPrior
    >>> prior = as_prior(lambda x, sigma: x)        # a DenoiserPrior around the callable
    >>> denoise = as_denoiser(as_prior("l1"))
    >>> denoise(torch.tensor([[0.5, -2.0]]), 0.5)   # soft threshold at 0.5**2
    tensor([[ 0.2500, -1.7500]])
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import deepinv
import torch

from denoisers.zoo import load
from recon.regularizers.tv import tv_denoiser, tv_value

__all__ = ["PRIOR_NAMES", "DenoiserPrior", "L1Prior", "TVPrior", "as_denoiser", "as_prior"]

Denoiser = Callable[[torch.Tensor, float | torch.Tensor], torch.Tensor]

#: shipped denoisers of :mod:`denoisers.zoo` that a prior name may refer to
DENOISER_NAMES = ("ct_dncnn", "dncnn_natural", "mimo_unet3d")
#: every name :func:`as_prior` accepts
PRIOR_NAMES = ("tv", "l1", *DENOISER_NAMES)


class TVPrior(deepinv.optim.Prior):
    r"""Isotropic total variation :math:`R(x) = \sum_{\rm pixels} \|(Dx)_p\|_2` (2D or 3D).

    ``prox(x, gamma=g)`` is :math:`\arg\min_z \frac12\|z - x\|^2 + g\,TV(z)`, computed inexactly by
    ``n_iter`` warm-started primal-dual steps (:func:`recon.regularizers.tv.tv_denoiser`): enough
    inside an outer ADMM loop.

    Args:
        n_iter: primal-dual steps per prox call (>= 1).
    """

    def __init__(self, n_iter: int = 10):
        super().__init__()
        self.explicit_prior = True
        self.n_iter = n_iter
        self._denoise = tv_denoiser(n_iter)

    def fn(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """TV of each batch element, shape (B,)."""
        return tv_value(x)

    def prox(self, x: torch.Tensor, *args, gamma: float | torch.Tensor = 1.0, **kwargs) -> torch.Tensor:
        """The (inexact) prox of ``gamma * TV`` at ``x``."""
        return self._denoise(x, gamma)


class L1Prior(deepinv.optim.Prior):
    r""":math:`R(x) = \|x\|_1`; ``prox(x, gamma=g)`` is the soft threshold :math:`\mathrm{sign}(x)\max(|x| - g, 0)`."""

    def __init__(self):
        super().__init__()
        self.explicit_prior = True

    def fn(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """The l1 norm of each batch element, shape (B,)."""
        return x.abs().reshape(x.shape[0], -1).sum(dim=1)

    def prox(self, x: torch.Tensor, *args, gamma: float | torch.Tensor = 1.0, **kwargs) -> torch.Tensor:
        """Soft threshold at ``gamma``."""
        return torch.sign(x) * torch.clamp(x.abs() - gamma, min=0.0)


class DenoiserPrior(deepinv.optim.Prior):
    r"""The implicit prior of a denoiser :math:`D(x, \sigma)`.

    ``prox(x, sigma)`` is :math:`D(x, \sigma)` (plug-and-play) and ``grad(x, sigma)`` is
    :math:`x - D(x, \sigma)` (RED), as deepinv's ``PnP`` and ``RED`` define them.

    Args:
        denoiser: ``D(x, sigma) -> x'`` on (B, C, *spatial) tensors.
        name: how the prior is reported in a method's ``info.params`` (default: the callable's name).
    """

    def __init__(self, denoiser: Denoiser, name: str | None = None):
        super().__init__()
        if not callable(denoiser):
            raise TypeError(f"denoiser: expected a callable D(x, sigma), received {type(denoiser).__name__}")
        self.explicit_prior = False
        self.denoiser = denoiser
        self.name = name or getattr(denoiser, "__name__", type(denoiser).__name__)

    def prox(self, x: torch.Tensor, sigma: float | torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """:math:`D(x, \\sigma)`."""
        return self.denoiser(x, sigma)

    def grad(self, x: torch.Tensor, sigma: float | torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """RED's gradient :math:`x - D(x, \\sigma)`."""
        return x - self.denoiser(x, sigma)


def _takes_sigma(net: torch.nn.Module) -> bool:
    params = list(inspect.signature(net.forward).parameters.values())
    return len(params) >= 2


def _zoo_denoiser(name: str) -> DenoiserPrior:
    net = load(name)
    with_sigma = _takes_sigma(net)

    def denoise(x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            model = net.to(x.device)
            out = model(x.to(torch.float32), sigma) if with_sigma else model(x.to(torch.float32))
        return out.to(x.dtype)

    return DenoiserPrior(denoise, name=name)


def as_prior(prior: object, *, name: str = "prior") -> deepinv.optim.Prior:
    """Resolve a registered name, a ``deepinv.optim.Prior`` or a denoiser callable ``D(x, sigma)``.

    Args:
        prior: one of the three kinds of the module docstring.
        name: the argument's name in error messages (``"prior"``, ``"denoiser"``).

    Returns:
        A ``deepinv.optim.Prior`` (the argument itself when it already is one).

    Raises:
        ValueError: an unknown name (the message lists :data:`PRIOR_NAMES`).
        TypeError: anything else.
    """
    if isinstance(prior, deepinv.optim.Prior):
        return prior
    if isinstance(prior, str):
        if prior == "tv":
            return TVPrior()
        if prior == "l1":
            return L1Prior()
        if prior in DENOISER_NAMES:
            return _zoo_denoiser(prior)
        raise ValueError(f"{name}: unknown prior {prior!r}; expected one of {PRIOR_NAMES}, a deepinv.optim.Prior or a callable D(x, sigma)")
    if callable(prior):
        return DenoiserPrior(prior)
    raise TypeError(
        f"{name}: expected a prior name ({', '.join(PRIOR_NAMES)}), a deepinv.optim.Prior or a callable D(x, sigma), "
        f"received {type(prior).__name__}"
    )


def prior_name(prior: deepinv.optim.Prior) -> str:
    """How a resolved prior is reported: its registered or given name, else its class name."""
    return getattr(prior, "name", None) or type(prior).__name__


def as_denoiser(prior: deepinv.optim.Prior) -> Denoiser:
    r"""The map :math:`D(x, s)` a method applies at the strength ``s`` = ``denoiser_sigma``.

    The one place where the strength rule of the module docstring is applied: a denoiser prior's
    own denoiser :math:`D_s`, an explicit prior's :math:`\mathrm{prox}_{s^2 R}`.

    Args:
        prior: a resolved prior (:func:`as_prior`).

    Returns:
        ``D(x, s) -> x'`` on tensors of the prior's shape, ``s`` a noise std (units of ``x``).
    """
    denoiser = getattr(prior, "denoiser", None)
    if not getattr(prior, "explicit_prior", True) and callable(denoiser):
        return denoiser

    def prox(x: torch.Tensor, s: float | torch.Tensor) -> torch.Tensor:
        return prior.prox(x, gamma=s**2)

    return prox
