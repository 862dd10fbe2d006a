"""Graph Laplacian of graphLa+Psi: structure, exactness against a slow reference, torch apply, errors."""

import deepinv
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from scipy.ndimage import gaussian_filter

from operators.kernels.graph_weights import window_nnz
from recon.methods.graphla import graph_prior
from recon.phantoms import TEST_SEEDS, coule_like
from recon.regularizers.graph_laplacian import (
    MAX_SMOOTH,
    NOISE_FACTOR,
    SIGMA_0,
    GraphLaplacian,
    build_graph_laplacian,
    graph_scale,
    image_noise_std,
)
from recon.regularizers.prior import as_denoiser, as_prior


def _reference_dense(img: np.ndarray, R: int, sigma: float) -> np.ndarray:
    """Slow pure-python definition: every pair of pixels, then W / ||W||_F and D - W."""
    n, m = img.shape
    pix = [(a, b) for a in range(n) for b in range(m)]
    w = np.zeros((n * m, n * m))
    for i, (a, b) in enumerate(pix):
        for j, (c, d) in enumerate(pix):
            if i != j and max(abs(a - c), abs(b - d)) <= R - 1:
                w[i, j] = np.exp(-((img[a, b] - img[c, d]) ** 2) / sigma)
    w /= np.linalg.norm(w, "fro")
    return np.diag(w.sum(axis=1)) - w


@pytest.fixture(scope="module")
def smooth_image() -> np.ndarray:
    """A 24 x 20 image on [0, 1] with smooth parts and an edge, so weights span many magnitudes."""
    a, b = np.meshgrid(np.linspace(0, 1, 24), np.linspace(0, 1, 20), indexing="ij")
    return 0.3 * a + 0.1 * np.sin(6 * b) + 0.5 * (a + b > 1.0)


def test_matches_slow_reference():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (7, 6))
    lap = build_graph_laplacian(img, R=3, sigma=0.05)
    ref = _reference_dense(img, 3, 0.05)
    assert np.abs(lap.matrix.toarray() - ref).max() < 1e-12
    assert lap.matrix.has_sorted_indices and lap.matrix.dtype == np.float64


@pytest.mark.parametrize("R", [2, 5])
def test_symmetric_zero_rows_unit_frobenius(smooth_image, R):
    lap = build_graph_laplacian(smooth_image, R=R, sigma=1e-3)
    L = lap.matrix
    assert abs(L - L.T).max() == 0.0  # exactly symmetric: (a - b)^2 == (b - a)^2
    assert np.abs(np.asarray(L.sum(axis=1))).max() < 1e-14
    w = -(L - sp.diags(L.diagonal()))
    assert abs(sp.linalg.norm(w, "fro") - 1.0) < 1e-12
    assert w.min() >= 0.0
    assert lap.T is lap


def test_positive_semidefinite(smooth_image):
    small = build_graph_laplacian(smooth_image[:8, :7], R=3, sigma=1e-2).matrix.toarray()
    assert np.linalg.eigvalsh(small).min() >= -1e-10
    L = build_graph_laplacian(smooth_image, R=5, sigma=1e-3).matrix
    x = np.random.default_rng(1).standard_normal((L.shape[0], 16))
    assert (np.einsum("ik,ik->k", x, L @ x) >= -1e-12).all()


def test_constant_image_is_uniform_window_graph():
    lap = build_graph_laplacian(np.full((9, 11), 0.7), R=3)
    L = lap.matrix.tocoo()
    off = L.data[L.row != L.col]
    n_edges = off.size
    assert n_edges == window_nnz(9, 11, 2) - 99
    assert np.allclose(off, -1.0 / np.sqrt(n_edges), rtol=0, atol=1e-15)
    # pattern: exactly the pairs with ||p_i - p_j||_inf <= R - 1
    ra, rb = np.divmod(L.row, 11)
    ca, cb = np.divmod(L.col, 11)
    assert np.maximum(abs(ra - ca), abs(rb - cb)).max() == 2


@pytest.mark.parametrize("n, m, r", [(1, 1, 1), (3, 2, 1), (5, 7, 2), (4, 9, 4), (6, 6, 10)])
def test_nnz_closed_form(n, m, r):
    a, b = np.divmod(np.arange(n * m), m)
    brute = int((np.maximum(abs(a[:, None] - a[None]), abs(b[:, None] - b[None])) <= r).sum())
    assert window_nnz(n, m, r) == brute
    if n * m > 1:
        assert build_graph_laplacian(np.zeros((n, m)), R=r + 1).nnz == brute


def test_nnz_256_default_window():
    assert window_nnz(256, 256, 4) == 2284**2 == 5_216_656


def test_input_forms_agree(smooth_image):
    ref = build_graph_laplacian(smooth_image).matrix
    for img in (torch.from_numpy(smooth_image), torch.from_numpy(smooth_image)[None, None], smooth_image.astype(np.float32)):
        other = build_graph_laplacian(img).matrix
        tol = 0.0 if getattr(img, "dtype", None) != np.float32 else 1e-3
        assert abs(other - ref).max() <= tol


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_torch_apply_equals_scipy(smooth_image, dtype, tol):
    lap = build_graph_laplacian(smooth_image, R=4, sigma=1e-2)
    x = torch.randn(2, 3, 24, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = lap.apply(x.to(dtype))
    assert y.shape == x.shape and y.dtype == dtype
    ref = (lap.matrix @ x.reshape(6, -1).numpy().T).T.reshape(x.shape)
    assert np.abs(y.double().numpy() - ref).max() < tol * np.abs(ref).max()
    torch.testing.assert_close(lap(x.to(dtype)), y.abs().sum(dim=(1, 2, 3)))  # calling a deepinv Prior is its value ||Lx||_1
    assert lap.to_torch(dtype).layout == torch.sparse_csr


def test_apply_autograd_and_lq_value(smooth_image):
    lap = build_graph_laplacian(smooth_image, R=3, sigma=1e-2)
    x = torch.randn(2, 1, 24, 20, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 1, 24, 20, dtype=torch.float64)
    (lap.apply(x) * g).sum().backward()
    assert torch.allclose(x.grad, lap.apply(g), atol=1e-14)
    lx = lap.apply(x.detach())
    assert torch.allclose(lap.lq_value(x.detach(), q=1), lx.abs().sum(dim=(1, 2, 3)))
    assert torch.allclose(lap.lq_value(x.detach(), q=2), lx.pow(2).sum(dim=(1, 2, 3)))


def test_is_a_deepinv_prior_agreeing_with_graphlas_analysis_prior(smooth_image):
    """R(x) = ||Lx||_1 as a deepinv Prior: its value is graphla's AnalysisPrior objective, its grad autograd's."""
    lap = build_graph_laplacian(smooth_image, R=3, sigma=1e-2)
    assert isinstance(lap, deepinv.optim.Prior) and lap.explicit_prior and as_prior(lap) is lap
    x = torch.randn(2, 1, 24, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    analysis = graph_prior(lap, x)
    torch.testing.assert_close(lap.fn(x), analysis.value(analysis.op(x)), rtol=1e-12, atol=0)
    torch.testing.assert_close(lap(x), lap.lq_value(x, q=1))
    torch.testing.assert_close(lap.grad(x), deepinv.optim.Prior.grad(lap, x), rtol=1e-12, atol=1e-12)


def test_prox_closes_the_duality_gap(smooth_image):
    """prox_{gamma R}(v): the primal value at z = v - Lp meets the dual value at the feasible p (gap -> 0)."""
    lap = build_graph_laplacian(smooth_image, R=3, sigma=1e-2)
    v = torch.as_tensor(smooth_image)[None, None] + 0.05 * torch.randn(1, 1, 24, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    gaps = []
    for n_iter in (20, 2000):
        z = lap.prox(v, gamma=0.05, n_iter=n_iter)
        primal = 0.5 * float((z - v).pow(2).sum()) + 0.05 * float(lap.fn(z))
        dual = 0.5 * float(v.pow(2).sum()) - 0.5 * float(z.pow(2).sum())  # z = v - Lp, |p| <= gamma
        gaps.append((primal - dual) / primal)
    assert gaps[0] > 0 and 0 <= gaps[1] < 1e-3 * gaps[0] and gaps[1] < 1e-4
    assert float(lap.fn(z)) < float(lap.fn(v))
    torch.testing.assert_close(as_denoiser(lap)(v, 0.05**0.5), lap.prox(v, gamma=0.05))  # prox weight denoiser_sigma**2


@pytest.fixture(scope="module")
def phantom() -> np.ndarray:
    """A clean piecewise-constant 96 x 96 COULE-like image (float64)."""
    return coule_like(96, seed=TEST_SEEDS[60], dtype=torch.float64)[0, 0].numpy()


@pytest.mark.parametrize("delta", [0.005, 0.02, 0.05, 0.1])
def test_noise_estimator_recovers_a_known_noise_std(phantom, delta):
    """Donoho's Haar estimate on a piecewise-constant image plus white noise of known std: within 10 %.

    (The phantom's many thin lines bias it up by up to 8 % over 6 noise draws; on a flat image it is within 3 %.)
    """
    noisy = phantom + delta * np.random.default_rng(int(1e4 * delta)).standard_normal(phantom.shape)
    assert image_noise_std(noisy) == pytest.approx(delta, rel=0.1)
    flat = 0.5 + delta * np.random.default_rng(int(1e4 * delta)).standard_normal(phantom.shape)
    assert image_noise_std(flat) == pytest.approx(delta, rel=0.03)
    assert image_noise_std(torch.from_numpy(noisy)[None, None]) == image_noise_std(noisy)


def test_noise_estimator_is_zero_on_clean_and_tiny_images(phantom):
    assert image_noise_std(phantom) == 0.0  # edges touch few 2 x 2 blocks: the median ignores them
    assert image_noise_std(np.full((5, 7), 0.3)) == 0.0
    assert image_noise_std(np.ones((1, 9))) == 0.0  # no 2 x 2 block


def test_auto_scale_reproduces_sigma_0_on_a_clean_image(phantom):
    scale = graph_scale(phantom)
    assert scale.sigma == SIGMA_0 and scale.smooth == 0.0 and scale.delta == 0.0
    auto = build_graph_laplacian(phantom, sigma="auto")
    assert auto.scale == scale and auto.sigma == SIGMA_0
    assert abs(auto.matrix - build_graph_laplacian(phantom, sigma=SIGMA_0).matrix).max() == 0.0


def test_auto_scale_on_noisy_images(phantom):
    """Mild noise: smooth by s < MAX_SMOOTH until c delta^2 g(s)^2 = SIGMA_0; strong: s = MAX_SMOOTH, sigma widened."""
    rng = np.random.default_rng(5)
    mild = graph_scale(phantom + 0.03 * rng.standard_normal(phantom.shape))
    assert NOISE_FACTOR * mild.delta**2 > SIGMA_0 and 0.0 < mild.smooth < MAX_SMOOTH and mild.sigma == SIGMA_0
    white = gaussian_filter(np.pad(np.ones((1, 1)), 20), mild.smooth, mode="constant", truncate=4.0)
    residual = NOISE_FACTOR * mild.delta**2 * float(np.sum(white**2))  # g(s)^2 of the discrete Gaussian
    assert residual == pytest.approx(SIGMA_0, rel=1e-6)
    noisy = phantom + 0.15 * rng.standard_normal(phantom.shape)
    strong = graph_scale(noisy)
    white = gaussian_filter(np.pad(np.ones((1, 1)), 20), MAX_SMOOTH, mode="constant", truncate=4.0)
    assert strong.smooth == MAX_SMOOTH
    assert strong.sigma == pytest.approx(NOISE_FACTOR * strong.delta**2 * float(np.sum(white**2)), rel=1e-12)
    assert strong.sigma > SIGMA_0
    # the auto graph is the fixed-sigma graph of the smoothed image
    auto = build_graph_laplacian(noisy, sigma="auto")
    ref = build_graph_laplacian(gaussian_filter(noisy, MAX_SMOOTH, mode="nearest"), sigma=strong.sigma)
    assert auto.scale == strong and abs(auto.matrix - ref.matrix).max() == 0.0
    assert graph_scale(noisy, max_smooth=0.0) == type(strong)(NOISE_FACTOR * strong.delta**2, 0.0, strong.delta)


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(sigma_0=0.0), ValueError, "sigma_0"),
        (dict(factor=-1.0), ValueError, "factor"),
        (dict(max_smooth=float("inf")), ValueError, "max_smooth"),
        (dict(max_smooth="1"), TypeError, "max_smooth"),
        (dict(image=np.zeros((2, 2, 2))), ValueError, "image"),
    ],
)
def test_graph_scale_bad_input(kwargs, exc, name):
    args = dict(image=np.zeros((4, 5))) | kwargs
    with pytest.raises(exc, match=rf"^{name}:"):
        graph_scale(**args)


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(sigma=0.0), ValueError, "sigma"),
        (dict(sigma=-1e-3), ValueError, "sigma"),
        (dict(sigma=float("nan")), ValueError, "sigma"),
        (dict(sigma="Auto"), ValueError, "sigma"),
        (dict(sigma=None), TypeError, "sigma"),
        (dict(R=1), ValueError, "R"),
        (dict(R=2.5), TypeError, "R"),
        (dict(R=True), TypeError, "R"),
        (dict(image=np.zeros((4, 4, 4))), ValueError, "image"),
        (dict(image=torch.zeros(2, 1, 4, 4)), ValueError, "image"),
        (dict(image=np.array([[0.0, np.nan], [1.0, 1.0]])), ValueError, "image"),
        (dict(image=torch.tensor([[0.0, float("inf")], [1.0, 1.0]])), ValueError, "image"),
        (dict(image=np.zeros((4, 4), dtype=complex)), TypeError, "image"),
        (dict(image=[[0.0, 1.0]]), TypeError, "image"),
        (dict(image=np.zeros((1, 1))), ValueError, "image"),  # no edges at all
        (dict(image=np.array([[0.0, 1.0]]), sigma=1e-4), ValueError, "image"),  # every weight underflows
    ],
)
def test_bad_input_errors(kwargs, exc, name):
    args = dict(image=np.zeros((4, 5)), R=5, sigma=1e-3) | kwargs
    with pytest.raises(exc, match=rf"^{name}:"):
        build_graph_laplacian(**args)


def test_window_and_scale_are_keyword_only():
    with pytest.raises(TypeError):
        build_graph_laplacian(np.zeros((4, 5)), 5, 1e-3)


def test_apply_bad_input(smooth_image):
    lap = build_graph_laplacian(smooth_image, R=2)
    assert isinstance(lap, GraphLaplacian)
    with pytest.raises(ValueError, match="^x:"):
        lap.apply(torch.zeros(1, 1, 20, 24))
    with pytest.raises(ValueError, match="^x:"):
        lap.apply(torch.zeros(24, 20))
    with pytest.raises(TypeError, match="^dtype:"):
        lap.to_torch(torch.int64)
    with pytest.raises(ValueError, match="^q:"):
        lap.lq_value(torch.zeros(1, 1, 24, 20), q=0)
