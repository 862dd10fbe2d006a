r"""DnCNN: a plain residual CNN Gaussian denoiser (Zhang et al., IEEE TIP 2017), the RED prior of RED-PSM.

The network estimates the noise and subtracts it,

.. math::  D_\theta(x) = x - R_\theta(x), \qquad
           R_\theta = C_{\mathrm{out}} \circ (\mathrm{ReLU} \circ C_L) \circ \dots \circ (\mathrm{ReLU} \circ C_1),

with :math:`L` = ``depth`` hidden 3x3 convolutions of ``width`` channels (:math:`C_1` from the one
input channel) and a 3x3 output convolution :math:`C_{\mathrm{out}}` back to one channel; every
convolution has a bias and zero padding 1, so any image size works and the receptive field is
:math:`2L + 3` pixels. There is no batch normalisation: training and evaluation modes compute the
same function, and :math:`D_\theta` is a fixed map of its input alone, as RED's fixed-point step
:math:`f \leftarrow (\lambda D(f) + \beta v) / (\lambda + \beta)` assumes. The denoiser is blind:
one network for the whole noise range it was trained on (no noise-level input).

With ``scale`` :math:`s > 1` the residual network works at reduced resolution, as FFDNet does
(Zhang, Zuo and Zhang, IEEE TIP 2018): :math:`R_\theta = \mathcal S \circ R'_\theta \circ \mathcal S^{-1}`,
where :math:`\mathcal S^{-1}` (``pixel_unshuffle``) rearranges each :math:`s \times s` block of
pixels into :math:`s^2` channels (lossless; an image whose sides are not multiples of :math:`s` is
first extended by repeating its last row and column, and the residual cropped back) and
:math:`\mathcal S` (``pixel_shuffle``) puts them back. Each layer then costs :math:`1/s^2` as much
and the receptive field grows to :math:`s(2L + 3)` pixels. The shipped ``dncnn_natural`` uses
:math:`s = 2` (``data/weights/dncnn_natural.json``).

The shipped model ``ct_dncnn`` (``data/weights/ct_dncnn.json``, trained by
``python -m recon.training ct_dncnn``) has ``depth=6`` like the RED-PSM paper's but ``width=16``
instead of 64 (12 k parameters instead of 0.19 M): RED-PSM denoises every frame at every outer
iteration (201 x 128 frames of 128x128 in the full setting), and one 128x128 frame costs 0.4
GFLOP at width 16 against 6.1 at width 64 (measured on one loaded core: 20 ms against 160 ms per
frame, i.e. 2.6 s against 20 s per outer iteration at P = 128); only the narrow net fits a full
run into minutes on two cores.
"""

from __future__ import annotations

import torch
from torch import nn

from operators._validate import check_int, check_tensor

__all__ = ["DnCNN"]


class DnCNN(nn.Module):
    r"""Residual denoiser :math:`x \mapsto x - R_\theta(x)` for single-channel images.

    Args:
        width: channels of the hidden layers (>= 1).
        depth: number of hidden 3x3 convolution + ReLU layers L (>= 1).
        scale: pixel-unshuffle factor s (>= 1) of the residual branch; 1 is the plain DnCNN.

    Shapes: input and output (B, 1, H, W), any H, W; float32 (the weights' dtype).

    Example:
        >>> net = DnCNN(width=64, depth=6)
        >>> x_clean = net(x_noisy)  # x_noisy: (B, 1, 128, 128), images in [0, 1]
    """

    def __init__(self, width: int = 64, depth: int = 6, scale: int = 1):
        super().__init__()
        self.width = check_int("width", width)
        self.depth = check_int("depth", depth)
        self.scale = check_int("scale", scale)
        channels = scale * scale
        layers: list[nn.Module] = []
        for k in range(depth):
            layers += [nn.Conv2d(channels if k == 0 else width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.noise = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise.

        Args:
            x: noisy images (B, 1, H, W), real.

        Returns:
            ``x - R(x)``, same shape as ``x``.
        """
        check_tensor("x", x, ndim=4)
        if x.shape[1] != 1:
            raise ValueError(f"x: expected 1 channel (B, 1, H, W), received shape {tuple(x.shape)}")
        s = self.scale
        if s == 1:
            return x - self.noise(x)
        h, w = x.shape[2:]
        padded = nn.functional.pad(x, (0, -w % s, 0, -h % s), mode="replicate")
        residual = nn.functional.pixel_shuffle(self.noise(nn.functional.pixel_unshuffle(padded, s)), s)
        return x - residual[:, :, :h, :w]

    def extra_repr(self) -> str:
        return f"width={self.width}, depth={self.depth}, scale={self.scale}"
