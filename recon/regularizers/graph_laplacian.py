"""Data-dependent graph Laplacian of an image (graphLa+Psi, Bianchi et al. 2023).

From a preliminary reconstruction ``x~`` (N x M, pixel ``p_i``, value ``x~_i``) build the graph

    w_ij = exp(-(x~_i - x~_j)^2 / sigma)   for i != j with ||p_i - p_j||_inf <= R - 1,

(no spatial term; a (2R - 1) x (2R - 1) window clipped at the border, no padding), normalise
``W <- W / ||W||_F`` and take the combinatorial Laplacian

    L = D - W,   D = diag(W 1).

**The weight scale** ``sigma`` (intensity units squared, images on [0, 1]) is the paper's fixed
``SIGMA_0 = 1e-3`` when given as a number. ``sigma="auto"`` (the default) keeps the graph from
encoding the pixel noise of a noisy ``x~`` (an FBP image above all; TV, Tikhonov and the U-Net
carry little pixel noise, their errors are blur and structure, which no noise estimate sees):
with white noise of std ``delta`` in ``x~`` a difference ``x~_i - x~_j`` inside a flat region has
variance ``2 delta^2``, which for an FBP image (``delta`` 0.02-0.15 at 1-4 % noise, 128^2 / 120
views) dwarfs ``SIGMA_0`` and cuts the graph into noise. :func:`graph_scale` applies the rule

    delta  = median(|HH|) / 0.6745            (Donoho's estimate, :func:`image_noise_std`; HH the
                                               finest diagonal Haar detail of x~)
    s      = 0                                  if c delta^2 <= SIGMA_0   (then the paper's graph)
           = min(S_MAX, s*),  c delta^2 g(s*)^2 = SIGMA_0               otherwise
    x~     <- G_s * x~                          (Gaussian smoothing of std s pixels)
    sigma  = max(SIGMA_0, c delta^2 g(s)^2)

with ``g(s)^2 = sum_k G_s[k]^2`` the variance gain of the (discrete, 2D) Gaussian on white noise
(about ``1 / (4 pi s^2)`` for ``s >= 0.7``), ``c = NOISE_FACTOR = 4`` and ``S_MAX = MAX_SMOOTH = 1``
pixel: smooth until the noise left in the graph image is below the weight scale, at most one
pixel, and widen ``sigma`` by the rest. A clean image (``delta`` about 0) gets exactly the paper's
graph. See :func:`graph_scale` for the measurements that chose ``c`` and ``S_MAX``.

``L`` is symmetric, positive semidefinite, its rows sum to zero and ``||W||_F = 1``. The
regulariser of graphLa+Psi is ``R(x) = ||L x||_1`` (:meth:`GraphLaplacian.lq_value` with ``q = 1``).
:class:`GraphLaplacian` is that regulariser as a ``deepinv.optim.Prior`` (so deepinv's solvers and
every ``prior=`` of :mod:`recon.regularizers.prior` accept it): ``fn`` is ``R``, ``grad`` the
subgradient ``L sign(L x)`` and ``prox`` an inexact ``prox_{gamma R}`` (projected gradient on the
dual).

The matrix is built once on the CPU (numba kernel :mod:`operators.kernels.graph_weights`) as a
``scipy.sparse`` CSR matrix; :meth:`GraphLaplacian.to_torch` gives a torch sparse CSR copy on any
device, and :meth:`GraphLaplacian.apply` applies ``L`` to (B, C, N, M) tensors on their own device
(with autograd: the gradient of ``<g, L x>`` is ``L g`` since ``L = L^T``).
Calling the object, ``lap(x)``, is the prior's value ``R(x)``, as for any deepinv ``Prior``.

Example::

    >>> import torch
    >>> from recon.regularizers.graph_laplacian import build_graph_laplacian
    >>> lap = build_graph_laplacian(torch.rand(64, 64), R=5, sigma=1e-3)
    >>> lap.matrix.shape, lap.nnz
    ((4096, 4096), 309136)
    >>> lap.apply(torch.ones(2, 1, 64, 64)).abs().max() < 1e-6   # constants are in the kernel
    tensor(True)
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import deepinv
import numpy as np
import scipy.sparse as sp
import torch
from scipy.ndimage import gaussian_filter

from operators._validate import check_positive, check_tensor
from operators.kernels.graph_weights import laplacian_csr_fill, window_nnz, window_row_counts

__all__ = [
    "MAX_SMOOTH", "NOISE_FACTOR", "SIGMA_0", "GraphLaplacian", "GraphScale", "build_graph_laplacian", "check_sigma",
    "graph_scale", "image_noise_std",
]  # fmt: skip

#: the paper's weight scale (intensity units squared, images on [0, 1]); ``sigma="auto"`` never goes below it
SIGMA_0 = 1e-3
#: ``c`` of the auto rule: the graph image's noise variance ``delta_s^2`` is brought to ``c delta_s^2 <= sigma``
NOISE_FACTOR = 4.0
#: largest Gaussian smoothing (std, pixels) of the graph image under ``sigma="auto"``
MAX_SMOOTH = 1.0


def _image_to_numpy(image: object) -> np.ndarray:
    """Validate ``image`` ((N, M) numpy/torch or (1, 1, N, M) torch, real, finite) -> (N, M) float64."""
    if isinstance(image, torch.Tensor):
        check_tensor("image", image)
        if image.ndim == 4 and image.shape[:2] == (1, 1):
            image = image[0, 0]
        elif image.ndim != 2:
            raise ValueError(f"image: expected shape (N, M) or (1, 1, N, M), received {tuple(image.shape)}")
        arr = image.detach().to("cpu", torch.float64).numpy()
    elif isinstance(image, np.ndarray):
        if image.dtype.kind not in "fiu":
            raise TypeError(f"image: expected a real numeric numpy array, received dtype {image.dtype}")
        if image.ndim != 2:
            raise ValueError(f"image: expected shape (N, M), received {image.shape}")
        arr = image.astype(np.float64)
        if not np.isfinite(arr).all():
            n_bad = int((~np.isfinite(arr)).sum())
            raise ValueError(f"image: expected finite values, received {n_bad} NaN/Inf entries")
    else:
        raise TypeError(f"image: expected a numpy array or torch.Tensor, received {type(image).__name__}")
    if arr.size == 0:
        raise ValueError(f"image: expected a non-empty image, received shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _check_radius(R: object) -> int:
    if isinstance(R, bool) or not isinstance(R, numbers.Integral):
        raise TypeError(f"R: expected an integer >= 2, received {type(R).__name__} {R!r}")
    if int(R) < 2:
        raise ValueError(f"R: expected an integer >= 2 (window (2R-1) x (2R-1)), received {R!r}")
    return int(R)


def check_sigma(sigma: object) -> float | str:
    """Validate a graph weight scale: a finite number > 0 or ``"auto"`` (ValueError / TypeError naming ``sigma``)."""
    if isinstance(sigma, str):
        if sigma != "auto":
            raise ValueError(f"sigma: expected a number > 0 or 'auto', received {sigma!r}")
        return sigma
    return check_positive("sigma", sigma)


def _haar_noise_std(img: np.ndarray) -> float:
    """Donoho's estimate on an (N, M) float64 array (see :func:`image_noise_std`); 0 below 2 x 2."""
    n, m = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    if n == 0 or m == 0:
        return 0.0
    hh = 0.5 * (img[0:n:2, 0:m:2] - img[0:n:2, 1:m:2] - img[1:n:2, 0:m:2] + img[1:n:2, 1:m:2])
    return float(np.median(np.abs(hh))) / 0.6745


def image_noise_std(image: object) -> float:
    r"""Donoho's estimate of the std of white noise in an image (intensity units).

    :math:`\hat\delta = \mathrm{median}(|HH|) / 0.6745`, with :math:`HH = (a - b - c + d) / 2` the
    finest diagonal Haar detail of each 2 x 2 block :math:`\begin{smallmatrix} a & b \\ c & d
    \end{smallmatrix}` (an odd last row / column is dropped). For white Gaussian noise of std
    :math:`\delta` the coefficients are :math:`N(0, \delta^2)` and their median absolute value is
    :math:`0.6745\,\delta`; a piecewise-smooth image adds few large coefficients, which the
    median ignores. Correlated or structured errors (blur, a network's artefacts) are mostly not
    seen: this measures the pixel-scale noise only.

    Args:
        image: (N, M) numpy array or torch tensor, or a (1, 1, N, M) tensor; real and finite.

    Returns:
        :math:`\hat\delta \ge 0` (0 for an image smaller than 2 x 2).

    Example::

        >>> img = 0.5 + 0.05 * torch.randn(128, 128)
        >>> round(image_noise_std(img), 2)
        0.05
    """
    return _haar_noise_std(_image_to_numpy(image))


def _smoothing_gain(s: float) -> float:
    """``g(s) = sum_k h_k^2``: white-noise std after the 2D ``gaussian_filter(., s, truncate=4)`` over before."""
    if s <= 0.0:
        return 1.0
    radius = int(4.0 * s + 0.5)
    h = np.exp(-0.5 * (np.arange(-radius, radius + 1) / s) ** 2)
    h /= h.sum()
    return float(np.sum(h * h))  # 2D: g^2 = (sum_k h_k^2)^2 for the separable kernel


@dataclass(frozen=True)
class GraphScale:
    """How the graph of an image is weighted (:func:`graph_scale`).

    Attributes:
        sigma: the weight scale of ``exp(-(x~_i - x~_j)^2 / sigma)`` (intensity units squared).
        smooth: std (pixels) of the Gaussian applied to the image before the weights (0: none).
        delta: :func:`image_noise_std` of the image (intensity units), estimated in either mode.
    """

    sigma: float
    smooth: float
    delta: float


def graph_scale(
    image: object, *, sigma_0: float = SIGMA_0, factor: float = NOISE_FACTOR, max_smooth: float = MAX_SMOOTH
) -> GraphScale:
    r"""The ``sigma="auto"`` rule: a Gaussian smoothing and a weight scale tied to the image's noise.

    With :math:`\hat\delta` = :func:`image_noise_std` and :math:`c` = ``factor``:
    :math:`s = 0,\ \sigma = \sigma_0` when :math:`c\hat\delta^2 \le \sigma_0` (a clean image gets
    the paper's graph); otherwise :math:`s = \min(s_{\max}, s^*)` with
    :math:`c\hat\delta^2 g(s^*)^2 = \sigma_0` (bisection) and
    :math:`\sigma = \max(\sigma_0, c\hat\delta^2 g(s)^2)`, where :math:`g(s)^2 = \sum_k G_s[k]^2`
    is the variance gain of the discrete 2D Gaussian of std :math:`s` (truncated at :math:`4s`) on
    white noise. The pair differences inside a flat region of the smoothed image then have
    variance :math:`2\hat\delta^2 g(s)^2 \le 2\sigma / c`: their weights stay near 1.

    Chosen on COULE-like training-family images only (``coule_like`` seeds 600000-600002, never a
    network's training or validation seed; 128 x 128, 120 views over [0, 179] deg, relative noise,
    400 PDHG iterations, alpha by the discrepancy principle), mean PSNR (dB) of La+FBP:

    =================================================  =====  =====  =====
    rule (FBP itself: 27.70 / 24.49 / 19.83 dB)          1 %    2 %    4 %
    =================================================  =====  =====  =====
    sigma = 1e-3, no smoothing (the paper)               36.94  29.10  23.62
    sigma = max(1e-3, c delta^2), no smoothing, c = 1    37.74  31.65  26.78
    same, c = 2                                          38.31  32.64  27.31
    same, c = 4                                          38.74  33.02  27.21
    same, c = 16                                         37.05  31.14  25.71
    Gaussian s = 0.7 always, sigma = 1e-3                39.32  33.60  27.46
    this rule, c = 4, s_max = 0.7                        39.46  34.46  29.83
    this rule, c = 2, s_max = 1                          39.30  34.03  30.24
    this rule, c = 3, s_max = 1                          39.41  34.25  30.22
    this rule, c = 6, s_max = 1                          38.74  34.19  29.90
    this rule, c = 4, s_max = 1.25                       39.21  33.90  30.14
    **this rule, c = 4, s_max = 1 (chosen)**             39.21  34.26  30.12
    =================================================  =====  =====  =====

    ``c`` has a flat optimum at 2-4 with or without smoothing; ``s_max = 1`` is best at 4 %, where
    La+FBP is weakest. Checked on three more unseen training-family seeds (600003-600005): La+FBP
    36.95 / 29.11 / 22.51 dB with the paper's graph, 39.20 / 33.69 / 29.77 with this rule.
    On all six images TV, Tikhonov and the U-Net have :math:`\hat\delta \le 0.013` (their errors
    are blur and structure, not pixel noise: :math:`c\hat\delta^2 < \sigma_0`), so the rule leaves
    their graphs and the oracle's as the paper builds them; smoothing every
    :math:`\tilde x` by 0.7 pixel would cost La+TV 0.9-3.0 dB and La+True 10-15 dB.

    Args:
        image: (N, M) numpy array or torch tensor, or a (1, 1, N, M) tensor; real, finite, on [0, 1].
        sigma_0: the weight scale of a clean image, > 0.
        factor: :math:`c > 0`.
        max_smooth: :math:`s_{\max} \ge 0` in pixels (0: never smooth, only widen sigma).

    Returns:
        :class:`GraphScale` ``(sigma, smooth, delta)``.

    Example::

        >>> graph_scale(fbp_image)   # doctest: +SKIP
        GraphScale(sigma=0.0044, smooth=1.0, delta=0.118)
    """
    delta = image_noise_std(image)
    sigma_0 = check_positive("sigma_0", sigma_0)
    factor = check_positive("factor", factor)
    max_smooth = check_positive("max_smooth", max_smooth, allow_zero=True)
    noise_var = factor * delta * delta
    if noise_var <= sigma_0:
        return GraphScale(sigma_0, 0.0, delta)
    if noise_var * _smoothing_gain(max_smooth) ** 2 >= sigma_0:
        return GraphScale(max(sigma_0, noise_var * _smoothing_gain(max_smooth) ** 2), max_smooth, delta)
    lo, hi = 0.0, max_smooth  # g decreases with s: noise_var g(lo)^2 > sigma_0 >= noise_var g(hi)^2
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if noise_var * _smoothing_gain(mid) ** 2 > sigma_0 else (lo, mid)
    return GraphScale(sigma_0, hi, delta)


class _SymmetricSparseMatmul(torch.autograd.Function):
    """``Y = L X`` for a symmetric sparse ``L``; the backward pass is ``L G`` (no transpose needed).

    ``lap._matmul`` dispatches by device: scipy's CSR product on CPU (measured 1.5 ms against
    torch's sparse CSR 15 ms for a 128^2 image, R = 5), torch sparse CSR on GPU.
    """

    @staticmethod
    def forward(ctx, lap: GraphLaplacian, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.lap = lap
        return lap._matmul(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return None, ctx.lap._matmul(grad)


class GraphLaplacian(deepinv.optim.Prior):
    """Graph Laplacian ``L = D - W`` of an N x M image (``||W||_F = 1``), see the module docstring.

    Build it with :func:`build_graph_laplacian`. As a ``deepinv.optim.Prior`` it is the explicit
    prior ``R(x) = ||L x||_1`` (:meth:`fn`, :meth:`grad`, :meth:`prox`); :meth:`apply` is ``L``.

    Attributes:
        matrix: ``scipy.sparse.csr_matrix``, (N*M, N*M) float64, row-major pixel order,
            column indices sorted; the window's full pattern including the diagonal (weights that
            underflow to 0 are stored as explicit zeros).
        image_shape: (N, M).
        R: window parameter (neighbours within ``||p_i - p_j||_inf <= R - 1``).
        scale: the :class:`GraphScale` the weights were built with (``sigma``, ``smooth``, ``delta``).
        sigma: the weight scale used, ``scale.sigma``.
        w_fro: ``||W||_F`` before normalisation.
    """

    def __init__(self, matrix: sp.csr_matrix, image_shape: tuple[int, int], R: int, scale: GraphScale, w_fro: float):
        super().__init__()
        self.explicit_prior = True
        self.matrix = matrix
        self.image_shape = image_shape
        self.R = R
        self.scale = scale
        self.sigma = scale.sigma
        self.w_fro = w_fro
        self._torch_cache: dict[tuple, object] = {}  # torch CSR per (dtype, device), scipy per dtype

    @property
    def shape(self) -> tuple[int, int]:
        """(N*M, N*M)."""
        return self.matrix.shape

    @property
    def nnz(self) -> int:
        """Stored entries of :attr:`matrix` (diagonal included)."""
        return int(self.matrix.nnz)

    @property
    def T(self) -> GraphLaplacian:  # noqa: N802
        """The transpose, which is ``self`` (``L`` is symmetric)."""
        return self

    def __repr__(self) -> str:
        n, m = self.image_shape
        return (
            f"GraphLaplacian(image_shape=({n}, {m}), R={self.R}, sigma={self.sigma:g}, smooth={self.scale.smooth:.3g}, "
            f"nnz={self.nnz})"
        )

    def to_torch(self, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.Tensor:
        """``L`` as a torch sparse CSR tensor (N*M, N*M) of ``dtype`` (float32/float64) on ``device``.

        The result is cached per (dtype, device) and reused by :meth:`apply`.

        Example::

            >>> Lt = lap.to_torch(torch.float64, "cuda")  # doctest: +SKIP
        """
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype: expected torch.float32 or torch.float64, received {dtype}")
        device = torch.device(device)
        key = (dtype, device)
        if key not in self._torch_cache:
            m = self.matrix
            with warnings.catch_warnings():  # "sparse CSR support is in beta": not actionable here
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
                self._torch_cache[key] = torch.sparse_csr_tensor(
                    torch.from_numpy(m.indptr.astype(np.int64)),
                    torch.from_numpy(m.indices.astype(np.int64)),
                    torch.from_numpy(m.data).to(dtype),
                    size=m.shape,
                    check_invariants=False,  # built sorted and in range by construction
                ).to(device)
        return self._torch_cache[key]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``L`` applied to every (N, M) image of ``x`` (same graph for each batch element and channel).

        Args:
            x: (B, C, N, M) float32/float64 tensor on any device.

        Returns:
            (B, C, N, M) tensor of the dtype and device of ``x``; differentiable in ``x``.

        Example::

            >>> y = lap.apply(torch.rand(4, 1, *lap.image_shape))
        """
        check_tensor("x", x, ndim=4)
        n, m = self.image_shape
        if tuple(x.shape[2:]) != (n, m):
            raise ValueError(f"x: expected shape (B, C, {n}, {m}), received {tuple(x.shape)}")
        b, c = x.shape[:2]
        cols = x.reshape(b * c, n * m).T.contiguous()  # (N*M, B*C)
        out = _SymmetricSparseMatmul.apply(self, cols)
        return out.T.reshape(b, c, n, m)

    def _matmul(self, cols: torch.Tensor) -> torch.Tensor:
        """``L @ cols`` for (N*M, K) ``cols``: scipy on CPU, torch sparse CSR elsewhere."""
        if cols.device.type != "cpu":
            return self.to_torch(cols.dtype, cols.device) @ cols
        key = ("scipy", cols.dtype)
        if key not in self._torch_cache:
            self._torch_cache[key] = self.matrix.astype(np.float32 if cols.dtype == torch.float32 else np.float64)
        return torch.from_numpy(np.asarray(self._torch_cache[key] @ cols.detach().numpy()))

    def lq_value(self, x: torch.Tensor, q: float = 1.0) -> torch.Tensor:
        """``||L x||_q^q`` per batch element (sum over channels and pixels).

        Args:
            x: (B, C, N, M) float tensor.
            q: exponent > 0 (graphLa+Psi uses ``q = 1``).

        Returns:
            (B,) tensor.
        """
        q = check_positive("q", q)
        lx = self.apply(x)
        return lx.abs().pow(q).reshape(x.shape[0], -1).sum(dim=1)

    def fn(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """The prior's value ``R(x) = ||L x||_1`` per batch element, (B,); extra arguments are ignored."""
        return self.lq_value(x, q=1.0)

    def grad(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """The subgradient ``L sign(L x)`` of ``R`` at ``x`` (B, C, N, M) (autograd's gradient of :meth:`fn`)."""
        return self.apply(torch.sign(self.apply(x)))

    def prox(self, x: torch.Tensor, *args, gamma: float | torch.Tensor = 1.0, n_iter: int = 100, **kwargs) -> torch.Tensor:
        r"""Inexact :math:`\mathrm{prox}_{\gamma R}(x) = \arg\min_z \tfrac12\|z - x\|^2 + \gamma\|Lz\|_1`.

        Projected gradient on the dual, :math:`z = x - L p` with :math:`\|p\|_\infty \le \gamma`:
        :math:`p \leftarrow \mathrm{clip}_{[-\gamma, \gamma]}(p + \tau L(x - L p))`, step
        :math:`\tau = 1/(2 d_{\max})^2 \le 1/\|L\|^2` (Gershgorin: :math:`\|L\| \le 2 d_{\max}`,
        :math:`d_{\max}` the largest degree), ``n_iter`` steps from :math:`p = 0`.

        Args:
            x: (B, C, N, M) images.
            gamma: the prox weight :math:`\gamma \ge 0`, a number or a (B,) tensor.
            n_iter: dual steps (>= 1).

        Returns:
            (B, C, N, M), the dtype and device of ``x``.
        """
        bound = torch.as_tensor(gamma, dtype=x.dtype, device=x.device)
        if bound.ndim == 1:
            bound = bound.reshape(-1, *([1] * (x.ndim - 1)))
        tau = 1.0 / (2.0 * float(self.matrix.diagonal().max())) ** 2
        p = torch.zeros_like(x)
        for _ in range(n_iter):
            p = torch.clamp(p + tau * self.apply(x - self.apply(p)), -bound, bound)
        return x - self.apply(p)


def build_graph_laplacian(image: object, *, R: int = 5, sigma: float | str = "auto") -> GraphLaplacian:
    """Build the graph Laplacian ``L = D - W`` of ``image`` (module docstring for the math).

    Args:
        image: preliminary reconstruction ``x~``: (N, M) numpy array or torch tensor, or a
            (1, 1, N, M) torch tensor; real and finite (values on [0, 1] for ``SIGMA_0``).
        R: window parameter, integer >= 2; neighbours within ``||p_i - p_j||_inf <= R - 1``
            (R = 5: 9x9 window, 80 neighbours away from the border).
        sigma: the weight scale in ``exp(-(x~_i - x~_j)^2 / sigma)`` (intensity units squared, not a
            noise level): a number > 0 (the paper: 1e-3, 2e-4 on clinical data) used as given on
            the unsmoothed image, or ``"auto"``: :func:`graph_scale` smooths a noisy ``image`` and
            sets ``sigma >= SIGMA_0`` from its estimated noise (a clean image gets ``SIGMA_0``).

    Returns:
        :class:`GraphLaplacian` with a CSR ``matrix`` of ``S(N) S(M)`` entries,
        ``S(K) = K (2k + 1) - k (k + 1)``, ``k = min(R - 1, K - 1)`` (5.2 M for 256^2, R = 5), and
        the :class:`GraphScale` it used as ``scale``.

    Raises:
        TypeError / ValueError naming ``image``, ``R`` or ``sigma`` on bad input, and ``image`` when
        the graph has no nonzero weight (no neighbours, or all weights underflow: raise ``sigma``).

    Example::

        >>> lap = build_graph_laplacian(torch.rand(1, 1, 32, 32), R=3, sigma=1e-2)
        >>> lap.shape
        (1024, 1024)
    """
    img = _image_to_numpy(image)
    R = _check_radius(R)
    sigma = check_sigma(sigma)
    if sigma == "auto":
        scale = graph_scale(img)
        if scale.smooth > 0.0:
            img = gaussian_filter(img, scale.smooth, mode="nearest", truncate=4.0)
    else:
        scale = GraphScale(sigma, 0.0, _haar_noise_std(img))
    n, m = img.shape
    r = R - 1
    counts = window_row_counts(n, m, r)
    indptr = np.zeros(n * m + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    assert nnz == window_nnz(n, m, r)
    idx_dtype = np.int32 if max(nnz, n * m) < np.iinfo(np.int32).max else np.int64
    indptr = indptr.astype(idx_dtype)
    indices = np.empty(nnz, dtype=idx_dtype)
    data = np.empty(nnz, dtype=np.float64)
    w_fro = float(laplacian_csr_fill(img, r, scale.sigma, indptr, indices, data))
    if w_fro == 0.0:
        raise ValueError(
            f"image: the graph has no nonzero weight (shape {img.shape}, R={R}, sigma={scale.sigma:g}); "
            "expected an image with at least one neighbour pair within reach of exp(-d^2/sigma) > 0"
        )
    matrix = sp.csr_matrix((data, indices, indptr), shape=(n * m, n * m))
    matrix.has_sorted_indices = True
    return GraphLaplacian(matrix, (n, m), R, scale, w_fro)
