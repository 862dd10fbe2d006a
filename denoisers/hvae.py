r"""A small fully convolutional hierarchical VAE of grayscale images: the prior of PnP-HVAE.

PnP-HVAE (Prost, Houdard, Almansa, Papadakis, ICCV 2023) regularises an inverse problem with a
hierarchical VAE (HVAE) trained on clean images. This module is that HVAE, VDVAE-like
(Child, ICLR 2021) but small enough to train on two CPU cores (``python -m recon.training hvae``)
and fully convolutional (any image size divisible by its total stride).

**Generative model.** Latents :math:`z = (z_1, \dots, z_L)` from coarse to fine, level :math:`l`
of shape (B, ``z_channels``, H / s_l, W / s_l) with strides ``strides`` = (s_1 >= ... >= s_L),
default (8, 4, 2). A top-down state :math:`h` starts at stride :math:`s_1` from a learned
constant and, level by level,

.. math::
    p_\theta(z_l \mid z_{<l}) = \mathcal N(\mu_l(h_l), \operatorname{diag}\sigma_l(h_l)^2), \qquad
    h_{l}^+ = R\big(h_l + f_l(h_l) + P_l z_l\big),

where :math:`(\mu_l, \sigma_l, f_l)` come from a residual block and a 1x1 convolution of
:math:`h_l` (``sigma = softplus(.)``), :math:`P_l` is a 1x1 convolution and :math:`R` a residual
block; between levels of different strides the state goes down one resolution at a time (a 1x1
convolution to that resolution's width, nearest-neighbour 2x upsampling, a residual block). After
the last level it is brought to full resolution the same way and mapped by residual blocks and a
3x3 convolution to the decoder mean :math:`\mu_\theta(z)` (B, 1, H, W), not clipped. The
decoder is Gaussian with a **fixed** standard deviation :math:`\gamma` (``gamma``, default 5/255,
in the paper's 3/255 .. 10/255 range; a reconstruction error of std 5/255 is 34 dB PSNR):

.. math::  p_\theta(x \mid z) = \mathcal N(\mu_\theta(z), \gamma^2 I).

The **top level** has no parent latent: its state :math:`h_1` is a learned constant (one vector of
``widths[-1]`` channels repeated over the positions), so :math:`p(z_1)` is a learned Gaussian, the
same per channel at every position (i.i.d. over positions, not N(0, I)).

**Inference model.** A bottom-up encoder (3x3 stem, residual blocks, 2x2 average pooling and a
1x1 convolution to the next width) gives
features :math:`e_s(x)` at every latent stride :math:`s`; the posterior follows the prior's
top-down order,

.. math::  q_\phi(z_l \mid z_{<l}, x) = \mathcal N(\nu_l, \operatorname{diag}\tau_l^2),
           \qquad (\nu_l, \tau_l) = g_l([h_l, e_{s_l}(x)]),

with :math:`g_l` a 1x1 convolution, a residual block and a 1x1 convolution (``tau = softplus(.)``).

**ELBO** (per image, in nats; :math:`D = HW`):

.. math::
    -\mathrm{ELBO}(x) = \mathbb E_q\Big[\tfrac{1}{2\gamma^2}\|x - \mu_\theta(z)\|^2\Big]
        + \tfrac D2 \log(2\pi\gamma^2)
        + \sum_l \mathbb E_q\, \mathrm{KL}\big(q(z_l \mid z_{<l}, x) \,\|\, p(z_l \mid z_{<l})\big),

with one reparameterised sample of :math:`z` and the analytic Gaussian KL of each level given
the sampled parents (as VDVAE). Bits per dimension are :math:`-\mathrm{ELBO} / (D \ln 2) +
\log_2 255`: the density of the 8-bit pixel values :math:`255 x` (images in [0, 1] are
``uint8 / 255``), so the numbers read like the discrete bits/dim of the literature (8 for a
uniform model of the pixel values).

**Residual blocks** are VDVAE's bottleneck: ``x + conv1x1(GELU(conv3x3(GELU(conv3x3(GELU(
conv1x1(GELU(x))))))))`` with ``max(min(width, 16), width // 4)`` hidden channels, the last convolution scaled down at
initialisation; the outputs of the prior and posterior heads start at zero so that at
initialisation :math:`p = q = \mathcal N(0, 1)` and every KL is 0.

**Temperatures.** :meth:`HVAE.encode` and :meth:`HVAE.sample` take one temperature
:math:`T_l \ge 0` per level: :math:`z_l = \nu_l + T_l \tau_l \varepsilon` (posterior) or
:math:`z_l = \mu_l + T_l \sigma_l \varepsilon` (prior), :math:`\varepsilon \sim \mathcal N(0, I)`;
:math:`T_l = 0` takes the mean (deterministic).

**Default / shipped size** (``python -m recon.training hvae``): widths (32, 64, 96, 128) at
resolutions 1, 1/2, 1/4, 1/8; 3 levels of 8 latent channels at strides 8, 4, 2 (a 64x64 patch has
latents of 8x8, 16x16 and 32x32); 2 encoder blocks per resolution and 2 full-resolution decoder
blocks; 438 017 parameters (1.8 MB of float32 weights). A deterministic reconstruction of a
128x128 image takes about 0.1 s on one CPU core.

**The PnP-HVAE z-step** runs :meth:`HVAE.top_down` with a callback that picks each
:math:`z_l` from the posterior :math:`(\nu, \tau)` and the prior :math:`(\mu, \sigma)` at that level,

.. math::  z_l = \frac{\beta \nu / \tau^2 + b\, \mu / (T_l\sigma)^2}{\beta / \tau^2 + b / (T_l\sigma)^2},
           \qquad b = 1 - \beta T_l^2,

see ``recon.methods.pnp_hvae``.

Example:
    >>> from denoisers import load
    >>> vae = load("hvae")                             # shipped weights, eval mode
    >>> stats = vae.elbo(x)                            # x: (B, 1, 128, 128) in [0, 1]
    >>> stats["bits_per_dim"]                          # (B,)
    >>> z = vae.encode(x, temperatures=[0.0] * vae.n_levels)
    >>> x_rec = vae.decode(z)                          # (B, 1, 128, 128)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from operators._validate import check_int, check_positive, check_tensor

__all__ = ["HVAE", "ResBlock", "gaussian_kl", "ChooseFn"]

#: The callback of :meth:`HVAE.top_down`: ``choose(level, nu, tau, mu, sigma) -> z_level``.
ChooseFn = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

_SOFTPLUS_ONE = math.log(math.e - 1.0)  # softplus(_SOFTPLUS_ONE) = 1
_MIN_STD = 1e-4


def gaussian_kl(nu: torch.Tensor, tau: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    r"""Element-wise :math:`\mathrm{KL}(\mathcal N(\nu, \tau^2) \,\|\, \mathcal N(\mu, \sigma^2))`, in nats.

    .. math:: \log\frac{\sigma}{\tau} + \frac{\tau^2 + (\nu - \mu)^2}{2\sigma^2} - \frac12 \;\ge 0.

    Args:
        nu, tau: mean and standard deviation (> 0) of the first Gaussian, any broadcastable shapes.
        mu, sigma: mean and standard deviation (> 0) of the second.

    Returns:
        The broadcast shape of the inputs.
    """
    return torch.log(sigma / tau) + 0.5 * (tau.square() + (nu - mu).square()) / sigma.square() - 0.5


def _std(raw: torch.Tensor) -> torch.Tensor:
    """Standard deviation from a head output: ``softplus(raw + softplus^{-1}(1)) + 1e-4`` (1 at raw = 0)."""
    return F.softplus(raw + _SOFTPLUS_ONE) + _MIN_STD


class ResBlock(nn.Module):
    """VDVAE bottleneck residual block ``x + c4(g(c3(g(c2(g(c1(g(x))))))))``, ``g`` = GELU.

    ``c1``/``c4`` are 1x1 convolutions ``c_in -> mid -> c_out``, ``c2``/``c3`` 3x3 ones (padding 1);
    the skip is the identity when ``c_in == c_out`` (a 1x1 convolution otherwise, unused here).
    ``c4``'s initial weights are scaled by ``out_scale``.

    Args:
        c_in: input channels.
        mid: bottleneck channels.
        c_out: output channels (default ``c_in``).
        out_scale: initial scale of the last convolution (``1 / sqrt(number of blocks)`` in the model).

    Shapes: (B, c_in, H, W) -> (B, c_out, H, W).
    """

    def __init__(self, c_in: int, mid: int, c_out: int | None = None, out_scale: float = 1.0):
        super().__init__()
        c_out = c_in if c_out is None else c_out
        self.c1 = nn.Conv2d(c_in, mid, 1)
        self.c2 = nn.Conv2d(mid, mid, 3, padding=1)
        self.c3 = nn.Conv2d(mid, mid, 3, padding=1)
        self.c4 = nn.Conv2d(mid, c_out, 1)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)
        with torch.no_grad():
            self.c4.weight.mul_(out_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c1(F.gelu(x))
        y = self.c2(F.gelu(y))
        y = self.c3(F.gelu(y))
        y = self.c4(F.gelu(y))
        return self.skip(x) + y


def _zero_conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class _Level(nn.Module):
    """One latent level of the top-down path: prior head, posterior head, merge of z into the state."""

    def __init__(self, width: int, mid: int, z_channels: int, out_scale: float):
        super().__init__()
        self.z_channels = z_channels
        self.prior_block = ResBlock(width, mid, out_scale=out_scale)
        self.prior_head = _zero_conv(width, 2 * z_channels + width)  # (mu, raw sigma, feature f_l)
        self.post_in = nn.Conv2d(2 * width, width, 1)
        self.post_block = ResBlock(width, mid, out_scale=out_scale)
        self.post_head = _zero_conv(width, 2 * z_channels)  # (nu, raw tau)
        self.z_proj = nn.Conv2d(z_channels, width, 1)
        with torch.no_grad():
            self.z_proj.weight.mul_(out_scale)
        self.merge = ResBlock(width, mid, out_scale=out_scale)

    def prior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.prior_head(self.prior_block(h))
        zc = self.z_channels
        return out[:, :zc], _std(out[:, zc : 2 * zc]), out[:, 2 * zc :]

    def posterior(self, h: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.post_head(self.post_block(self.post_in(torch.cat([h, e], dim=1))))
        zc = self.z_channels
        return out[:, :zc], _std(out[:, zc:])

    def update(self, h: torch.Tensor, feature: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.merge(h + feature + self.z_proj(z))


class HVAE(nn.Module):
    r"""Hierarchical VAE of (B, 1, H, W) images in [0, 1], H and W multiples of ``max(strides)``.

    See the module docstring for the model, its ELBO and the temperature convention.

    Args:
        widths: channels of the feature maps at resolutions 1, 2, 4, ..., ``max(strides)`` (finest
            first; encoder, top-down state and latent heads at that resolution), or one int for
            all; the residual blocks' bottleneck has ``max(min(width, 16), width // 4)`` channels. Default
            (32, 64, 96, 128).
        z_channels: channels of every latent level.
        strides: stride of each latent level, coarse to fine (non-increasing powers of two, the
            first >= 2); ``len(strides)`` is the number of levels L. Default (8, 4, 2).
        enc_blocks: residual blocks of the encoder at each resolution 1, 2, 4, ..., max(strides).
        dec_blocks: residual blocks of the decoder at full resolution (after the last level).
        gamma: fixed standard deviation of the Gaussian decoder (image units, [0, 1] range),
            default 5/255.

    Attributes:
        n_levels: L. stride: total stride ``max(strides)``. gamma: the decoder std.

    Example:
        >>> vae = HVAE(widths=(16, 32, 32, 32), z_channels=8, strides=(8, 4, 2))
        >>> stats = vae.elbo(torch.rand(4, 1, 64, 64))
        >>> stats["total"].mean().backward()
    """

    def __init__(
        self,
        widths: Sequence[int] | int = (32, 64, 96, 128),
        z_channels: int = 8,
        strides: Sequence[int] = (8, 4, 2),
        enc_blocks: int = 2,
        dec_blocks: int = 2,
        gamma: float = 5.0 / 255.0,
    ):
        super().__init__()
        self.z_channels = check_int("z_channels", z_channels)
        self.enc_blocks = check_int("enc_blocks", enc_blocks)
        self.dec_blocks = check_int("dec_blocks", dec_blocks, minimum=0)
        self.gamma = check_positive("gamma", gamma)
        if isinstance(strides, (str, bytes)) or not isinstance(strides, Sequence) or len(strides) < 1:
            raise ValueError(f"strides: expected a non-empty sequence of ints, received {strides!r}")
        strides = tuple(check_int("strides", s, minimum=2) for s in strides)
        if any(s & (s - 1) for s in strides) or any(a < b for a, b in zip(strides, strides[1:])):
            raise ValueError(f"strides: expected non-increasing powers of two >= 2, received {strides}")
        self.strides = strides
        self.n_levels = len(strides)
        self.stride = strides[0]
        n_res = int(math.log2(self.stride)) + 1  # resolutions 1, 2, 4, ..., stride
        if isinstance(widths, (int, np.integer)) and not isinstance(widths, bool):
            widths = (int(widths),) * n_res
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) != n_res:
            raise ValueError(f"widths: expected an int or {n_res} ints (resolutions 1 .. {self.stride}), received {widths!r}")
        self.widths = tuple(check_int("widths", w) for w in widths)
        w, mid = self.widths, [max(min(c, 16), c // 4) for c in self.widths]
        n_blocks = n_res * enc_blocks + 3 * self.n_levels + (n_res - 1) + dec_blocks
        scale = 1.0 / math.sqrt(n_blocks)

        self.stem = nn.Conv2d(1, w[0], 3, padding=1)
        # encoder: at resolution 2^k (k > 0) a 1x1 convolution w[k-1] -> w[k] after the 2x2 pooling
        self.enc_in = nn.ModuleList(nn.Conv2d(w[k - 1], w[k], 1) for k in range(1, n_res))
        self.enc = nn.ModuleList(
            nn.Sequential(*[ResBlock(w[k], mid[k], out_scale=scale) for _ in range(enc_blocks)]) for k in range(n_res)
        )
        k_of = {2**k: k for k in range(n_res)}
        self.h_top = nn.Parameter(torch.zeros(1, w[-1], 1, 1))
        self.levels = nn.ModuleList(_Level(w[k_of[s]], mid[k_of[s]], z_channels, scale) for s in strides)
        # top-down upsampling from resolution 2^k to 2^(k-1): 1x1 convolution w[k] -> w[k-1],
        # nearest-neighbour 2x upsampling, residual block
        self.up_in = nn.ModuleList(nn.Conv2d(w[k], w[k - 1], 1) for k in range(1, n_res))
        self.up = nn.ModuleList(ResBlock(w[k - 1], mid[k - 1], out_scale=scale) for k in range(1, n_res))
        self.dec = nn.Sequential(*[ResBlock(w[0], mid[0], out_scale=scale) for _ in range(dec_blocks)])
        self.out = nn.Conv2d(w[0], 1, 3, padding=1)
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.fill_(0.5)

    # ------------------------------------------------------------------ validation

    def _check_x(self, x: object, name: str = "x") -> torch.Tensor:
        check_tensor(name, x, ndim=4)
        if x.shape[1] != 1:
            raise ValueError(f"{name}: expected 1 channel (B, 1, H, W), received shape {tuple(x.shape)}")
        if x.shape[2] % self.stride or x.shape[3] % self.stride or x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(
                f"{name}: expected H and W positive and divisible by {self.stride}, received {tuple(x.shape)}"
            )
        return x.to(self.out.weight.dtype)

    def _check_temperatures(self, temperatures: object) -> list[float]:
        if isinstance(temperatures, numbers.Real) and not isinstance(temperatures, bool):
            temperatures = [temperatures] * self.n_levels
        if isinstance(temperatures, (torch.Tensor, np.ndarray)):
            temperatures = temperatures.tolist()
        if isinstance(temperatures, (str, bytes)) or not isinstance(temperatures, Sequence):
            raise TypeError(
                f"temperatures: expected a sequence of {self.n_levels} numbers, received {type(temperatures).__name__}"
            )
        if len(temperatures) != self.n_levels:
            raise ValueError(f"temperatures: expected {self.n_levels} values (one per level), received {len(temperatures)}")
        out = []
        for t in temperatures:
            if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t) or t < 0:
                raise ValueError(f"temperatures: expected finite numbers >= 0, received {list(temperatures)}")
            out.append(float(t))
        return out

    def _check_z(self, z: object, name: str = "z") -> list[torch.Tensor]:
        if isinstance(z, torch.Tensor) or not isinstance(z, Sequence) or len(z) != self.n_levels:
            got = f"length {len(z)}" if isinstance(z, Sequence) and not isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"{name}: expected a list of {self.n_levels} latent tensors (one per level), received {got}")
        z = [check_tensor(f"{name}[{l}]", zl, ndim=4) for l, zl in enumerate(z)]
        b, _, hh, ww = z[0].shape
        H, W = hh * self.strides[0], ww * self.strides[0]
        for l, (zl, s) in enumerate(zip(z, self.strides)):
            expected = (b, self.z_channels, H // s, W // s)
            if tuple(zl.shape) != expected:
                raise ValueError(f"{name}[{l}]: expected shape {expected}, received {tuple(zl.shape)}")
        return [zl.to(self.out.weight.dtype) for zl in z]

    # ------------------------------------------------------------------ the two passes

    def bottom_up(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Encoder features at every latent stride.

        Args:
            x: images (B, 1, H, W), H and W divisible by :attr:`stride`.

        Returns:
            ``{s: e_s}`` for each ``s`` in :attr:`strides`, ``e_s`` of shape (B, widths[log2 s], H/s, W/s).
        """
        x = self._check_x(x)
        return self._bottom_up(x)

    def _bottom_up(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        h = self.stem(x - 0.5)
        feats = {}
        for k, blocks in enumerate(self.enc):
            if k:
                h = self.enc_in[k - 1](F.avg_pool2d(h, 2))
            h = blocks(h)
            if 2**k in self.strides:
                feats[2**k] = h
        return feats

    def _top_down(
        self, shape: tuple[int, int, int], feats: dict[int, torch.Tensor] | None, choose: ChooseFn
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Shared top-down pass; ``feats is None`` gives posterior tensors ``nu = tau = None``."""
        b, H, W = shape
        s0 = self.strides[0]
        h = self.h_top.expand(b, -1, H // s0, W // s0)
        k = len(self.widths) - 1  # current resolution 2^k
        zs = []
        for l, (level, s) in enumerate(zip(self.levels, self.strides)):
            while 2**k > s:
                h = self._upsample(h, k)
                k -= 1
            mu, sigma, feature = level.prior(h)
            nu = tau = None
            if feats is not None:
                nu, tau = level.posterior(h, feats[s])
            z = choose(l, nu, tau, mu, sigma)
            if not isinstance(z, torch.Tensor) or z.shape != mu.shape:
                got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
                raise ValueError(f"choose: expected a tensor of shape {tuple(mu.shape)} at level {l}, received {got}")
            zs.append(z)
            h = level.update(h, feature, z.to(h.dtype))
        while k > 0:
            h = self._upsample(h, k)
            k -= 1
        return zs, self.out(self.dec(h))

    def _upsample(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Top-down state from resolution 2^k to 2^(k-1)."""
        return self.up[k - 1](F.interpolate(self.up_in[k - 1](h), scale_factor=2.0, mode="nearest"))

    def top_down(self, x: torch.Tensor, choose: ChooseFn) -> tuple[list[torch.Tensor], torch.Tensor]:
        r"""Top-down pass through posterior and prior, the caller choosing every :math:`z_l`.

        Level by level, coarse to fine, the model computes the prior
        :math:`p(z_l \mid z_{<l}) = \mathcal N(\mu, \sigma^2)` and the posterior
        :math:`q(z_l \mid z_{<l}, x) = \mathcal N(\nu, \tau^2)` from the top-down state (which
        depends on the :math:`z_{<l}` already chosen) and calls ``choose(l, nu, tau, mu, sigma)``;
        its return value is the :math:`z_l` the pass continues with.

        Args:
            x: images (B, 1, H, W), H and W divisible by :attr:`stride`; float64 is computed in
                the weights' dtype (float32).
            choose: ``choose(level, nu, tau, mu, sigma) -> z_level``; ``level`` in ``0 .. L-1``
                (0 = coarsest), the four tensors and the result of shape
                (B, z_channels, H / strides[level], W / strides[level]), ``tau, sigma > 0``.

        Returns:
            ``(z, mean)``: the list of the L chosen latents and the decoder mean
            :math:`\mu_\theta(z)` (B, 1, H, W) in the input's dtype.

        Raises:
            ValueError: bad ``x`` (names ``x``), or ``choose`` returned a wrong shape (names ``choose``).

        Example:
            The PnP-HVAE z-step with ``beta`` and per-level temperatures ``T``:

            >>> def choose(l, nu, tau, mu, sigma):
            ...     b, pt = 1 - beta * T[l] ** 2, (T[l] * sigma) ** 2
            ...     return (beta * nu / tau**2 + b * mu / pt) / (beta / tau**2 + b / pt)
            >>> z, mean = vae.top_down(x, choose)
        """
        dtype = x.dtype if isinstance(x, torch.Tensor) else None
        x = self._check_x(x)
        zs, mean = self._top_down((x.shape[0], x.shape[2], x.shape[3]), self._bottom_up(x), choose)
        return zs, mean.to(dtype)

    # ------------------------------------------------------------------ public API

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        r"""Terms of the negative ELBO of each image, one reparameterised sample of :math:`z \sim q`.

        Args:
            x: images (B, 1, H, W) in [0, 1], H and W divisible by :attr:`stride`.
            generator: source of the posterior noise (default: torch's global generator).

        Returns:
            A dict of tensors (nats unless stated):

            * ``"recon"`` (B,): :math:`\frac{1}{2\gamma^2}\|x - \mu_\theta(z)\|^2 + \frac D2 \log(2\pi\gamma^2)`;
            * ``"kl"`` (B, L): analytic :math:`\mathrm{KL}(q(z_l|z_{<l},x) \| p(z_l|z_{<l}))` per level, >= 0;
            * ``"total"`` (B,): ``recon + kl.sum(1)`` = :math:`-\mathrm{ELBO}`;
            * ``"bits_per_dim"`` (B,): ``total / (D ln 2) + log2(255)`` (bits per 8-bit pixel value);
            * ``"mean"`` (B, 1, H, W): the decoder mean :math:`\mu_\theta(z)` of the sample.

        Example:
            >>> s = vae.elbo(x)
            >>> loss = (s["recon"] + s["kl"].sum(1)).mean() / x[0].numel()   # nats per dim
        """
        x = self._check_x(x)
        kls = []

        def choose(l, nu, tau, mu, sigma):
            kls.append(gaussian_kl(nu, tau, mu, sigma).flatten(1).sum(1))
            eps = torch.randn(nu.shape, generator=generator, dtype=nu.dtype, device=nu.device)
            return nu + tau * eps

        _, mean = self._top_down((x.shape[0], x.shape[2], x.shape[3]), self._bottom_up(x), choose)
        d = x[0].numel()
        recon = (x - mean).square().flatten(1).sum(1) / (2 * self.gamma**2) + 0.5 * d * math.log(2 * math.pi * self.gamma**2)
        kl = torch.stack(kls, dim=1)
        total = recon + kl.sum(1)
        return {
            "recon": recon,
            "kl": kl,
            "total": total,
            "bits_per_dim": total / (d * math.log(2)) + math.log2(255),
            "mean": mean,
        }

    def encode(
        self, x: torch.Tensor, temperatures: Sequence[float] | float, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        r"""Latents drawn top-down from the posterior, :math:`z_l = \nu_l + T_l \tau_l \varepsilon_l`.

        Args:
            x: images (B, 1, H, W), H and W divisible by :attr:`stride`.
            temperatures: :math:`T_l \ge 0`, one per level (a sequence of length L, coarse to
                fine; a single number is used for every level). :math:`T_l = 0` takes the
                posterior mean :math:`\nu_l` (all zeros: deterministic), 1 samples the posterior.
            generator: source of :math:`\varepsilon` (default: torch's global generator).

        Returns:
            The L latents, level l of shape (B, z_channels, H / strides[l], W / strides[l]).

        Raises:
            ValueError: ``temperatures`` of the wrong length, negative or non-finite; bad ``x``.

        Example:
            >>> z = vae.encode(x, [0.0, 0.0, 0.0])
            >>> x_hat = vae.decode(z)
        """
        temps = self._check_temperatures(temperatures)
        x = self._check_x(x)

        def choose(l, nu, tau, mu, sigma):
            if temps[l] == 0.0:
                return nu
            return nu + temps[l] * tau * torch.randn(nu.shape, generator=generator, dtype=nu.dtype, device=nu.device)

        zs, _ = self._top_down((x.shape[0], x.shape[2], x.shape[3]), self._bottom_up(x), choose)
        return zs

    def decode(self, z: Sequence[torch.Tensor]) -> torch.Tensor:
        r"""Decoder mean :math:`\mu_\theta(z)` of given latents.

        Args:
            z: the L latents, level l of shape (B, z_channels, H / strides[l], W / strides[l]).

        Returns:
            (B, 1, H, W) decoder mean (not clipped).
        """
        z = self._check_z(z)
        b, _, hh, ww = z[0].shape
        s0 = self.strides[0]
        _, mean = self._top_down((b, hh * s0, ww * s0), None, lambda l, nu, tau, mu, sigma: z[l])
        return mean

    def log_prior(self, z: Sequence[torch.Tensor], temperatures: Sequence[float] | float = 1.0) -> torch.Tensor:
        r"""Log-density of latents under the tempered prior, :math:`\sum_l \log \mathcal N(z_l; \mu_l, T_l^2 \sigma_l^2)`.

        Args:
            z: the L latents (see :meth:`decode`).
            temperatures: :math:`T_l > 0`, one per level, or one number for all.

        Returns:
            (B,) log-densities in nats (the :math:`-\sum_l \log p_{T_l}(z_l|z_{<l})` term of the
            PnP-HVAE objective is its negative).
        """
        temps = self._check_temperatures(temperatures)
        if min(temps) <= 0:
            raise ValueError(f"temperatures: expected numbers > 0 for a density, received {temps}")
        z = self._check_z(z)
        b, _, hh, ww = z[0].shape
        s0 = self.strides[0]
        terms = []

        def choose(l, nu, tau, mu, sigma):
            std = temps[l] * sigma
            r = (z[l] - mu) / std
            terms.append((-0.5 * r.square() - torch.log(std) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1))
            return z[l]

        self._top_down((b, hh * s0, ww * s0), None, choose)
        return torch.stack(terms, dim=1).sum(1)

    def sample(
        self,
        n: int,
        size: int | tuple[int, int],
        temperature: Sequence[float] | float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        r"""Images from the prior: :math:`z_l = \mu_l + T_l \sigma_l \varepsilon_l` top-down, then the decoder mean.

        Args:
            n: number of images.
            size: H = W, or (H, W), multiples of :attr:`stride`.
            temperature: :math:`T_l \ge 0`, one per level, or one number for all.
            generator: source of :math:`\varepsilon`.

        Returns:
            (n, 1, H, W) decoder means (not clipped, no decoder noise added).

        Example:
            >>> imgs = vae.sample(4, 64, temperature=0.8)
        """
        n = check_int("n", n)
        hw = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
        if not isinstance(hw, (tuple, list)) or len(hw) != 2 or any(
            isinstance(s, bool) or not isinstance(s, int) or s <= 0 or s % self.stride for s in hw
        ):
            raise ValueError(f"size: expected a positive int or (H, W) divisible by {self.stride}, received {size!r}")
        temps = self._check_temperatures(temperature)
        w = self.out.weight

        def choose(l, nu, tau, mu, sigma):
            eps = torch.randn(mu.shape, generator=generator, dtype=w.dtype, device=w.device)
            return mu + temps[l] * sigma * eps

        _, mean = self._top_down((n, hw[0], hw[1]), None, choose)
        return mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction ``decode(encode(x, 0))`` (B, 1, H, W), via the posterior means."""
        dtype = x.dtype if isinstance(x, torch.Tensor) else None
        _, mean = self.top_down(x, lambda l, nu, tau, mu, sigma: nu)
        return mean.to(dtype)

    def extra_repr(self) -> str:
        return (
            f"widths={self.widths}, z_channels={self.z_channels}, strides={self.strides}, "
            f"enc_blocks={self.enc_blocks}, dec_blocks={self.dec_blocks}, gamma={self.gamma:.5g}"
        )
