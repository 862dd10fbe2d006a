"""Tests of operators.ct (the generic properties of every registered operator: test_operators.py)."""

from __future__ import annotations

import copy
import math
import warnings

import deepinv as dinv
import numpy as np
import pytest
import torch
from skimage.data import shepp_logan_phantom
from skimage.filters import gaussian
from skimage.transform import resize

import operators.ct as ct_module
from operators import FanBeamCT, ParallelBeamCT

# ============================================================================ CT specifics


def _inner(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() * b.double()).sum())


def _phantom(n: int) -> np.ndarray:
    return resize(shepp_logan_phantom(), (n, n), anti_aliasing=True)


def _psnr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((ref - est) ** 2)))  # data range 1 (phantom in [0, 1])


def test_gradcheck_numba_float64():
    op = ParallelBeamCT(6, torch.tensor([0.1, 0.9, 2.0, 4.0]), n_detectors=9, backend="numba")
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op.A, (x,))
    y = torch.randn(1, 1, 4, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op.A_adjoint, (y,))
    fan = FanBeamCT(5, torch.tensor([0.3, 2.5, 4.4]), 7, source_origin=9.0, origin_detector=3.0, backend="numba")
    xf = torch.randn(1, 1, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fan.A, (xf,), fast_mode=True)
    assert torch.autograd.gradgradcheck(fan.A, (xf,), fast_mode=True)


def test_gradcheck_astra_loose():
    # astra computes in float32: finite differences with a large step and float32-sized tolerances
    op = ParallelBeamCT(6, torch.tensor([0.1, 0.9, 2.0, 4.0]), n_detectors=9, backend="astra")
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op.A, (x,), eps=1e-2, atol=1e-4, rtol=1e-3)


def test_astra_and_numba_agree_parallel():
    # Both backends are Joseph's method in the same geometry: measured relative difference 2.4e-6
    # (float32 rounding), on irregular angles, non-unit spacing and a non-default detector count.
    angles = torch.sort(torch.rand(23, generator=torch.Generator().manual_seed(7)) * 2 * math.pi).values
    x = torch.from_numpy(_phantom(48)).float()[None, None]
    ys = [ParallelBeamCT(48, angles, 57, detector_spacing=1.3, backend=b).A(x) for b in ("astra", "numba")]
    assert torch.linalg.norm(ys[0] - ys[1]) / torch.linalg.norm(ys[0]) < 2e-5


def test_astra_and_numba_agree_fan():
    # astra's line_fanflat (exact intersection lengths) vs Joseph, measured relative differences:
    # 0.40 % on this smoothed phantom, 2.1 % on the sharp one (0.25 % / 0.77 % at 256^2, 360 views).
    # Thresholds 1 % / 4 %; a geometry mismatch (mirrored angles or detector) gives 23-24 %.
    n = 64
    angles = torch.linspace(0, 2 * math.pi, 91)[:-1]
    sharp = _phantom(n)
    diffs = []
    for img in (gaussian(sharp, 2), sharp):
        x = torch.from_numpy(img).float()[None, None]
        ys = [FanBeamCT(n, angles, 100, 130.0, 60.0, detector_spacing=1.1, backend=b).A(x) for b in ("astra", "numba")]
        diffs.append(float(torch.linalg.norm(ys[0] - ys[1]) / torch.linalg.norm(ys[0])))
    assert diffs[0] < 0.01
    assert diffs[1] < 0.04


def test_geometry_orientation():
    # A single bright pixel right of centre and above it: at theta = 0 the detector axis is +x, so
    # the spike lands on a cell right of the detector centre; at theta = pi/2 the axis is +y.
    n = 16
    x = torch.zeros(1, 1, n, n)
    x[0, 0, 4, 12] = 1.0  # centre at (x, y) = (12 - 7.5, 7.5 - 4) = (4.5, 3.5)
    for backend in ("astra", "numba"):
        y = ParallelBeamCT(n, torch.tensor([0.0, math.pi / 2]), n_detectors=24, backend=backend).A(x)[0, 0]
        # cell k centred at k - 11.5: x = 4.5 -> k = 16; y = 3.5 -> k = 15
        assert int(y[0].argmax()) == 16
        assert int(y[1].argmax()) == 15


# Measured PSNR (dB) of FBP on the 256^2 Shepp-Logan (skimage phantom resized), 180 views over
# [0, pi), noiseless: ours astra/numba 30.58 / 29.95 / 28.31 / 26.95 (ram-lak / shepp-logan /
# cosine / hann); skimage iradon(radon) 30.52 / 29.76 / 28.16 / 26.84. Thresholds: measured - 0.3.
FBP_PSNR_MIN = {"ram-lak": 30.28, "shepp-logan": 29.65, "cosine": 28.0, "hann": 26.65}


@pytest.mark.parametrize("backend", ["astra", "numba"])
def test_fbp_parallel_shepp_logan(backend):
    n = 256
    img = _phantom(n)
    op = ParallelBeamCT(n, torch.linspace(0, math.pi, 181, dtype=torch.float64)[:-1], backend=backend)
    y = op.A(torch.from_numpy(img)[None, None])
    for name, threshold in FBP_PSNR_MIN.items():
        rec = op.fbp(y, filter=name)
        assert rec.shape == (1, 1, n, n) and rec.dtype == torch.float64
        assert _psnr(img, rec[0, 0].numpy()) > threshold, name


# Measured PSNR (dB) of fan FBP on the 128^2 Shepp-Logan, 360 views over a full turn, source 256
# and detector 128 pixels from the centre, 320 cells (covers the magnified image): ram-lak /
# shepp-logan / cosine / hann = 34.69 / 33.11 / 30.58 / 28.65 (numba data), 34.78 / 35.11 /
# 32.02 / 29.50 (astra data). Thresholds: measured - 0.5.
FAN_PSNR_MIN = {
    ("numba", "ram-lak"): 34.19,
    ("numba", "hann"): 28.15,
    ("astra", "ram-lak"): 34.28,
    ("astra", "hann"): 29.0,
}


@pytest.mark.parametrize("backend", ["astra", "numba"])
def test_fbp_fan_shepp_logan(backend):
    n = 128
    img = _phantom(n)
    x = torch.from_numpy(img).float()[None, None]
    op = FanBeamCT(n, torch.linspace(0, 2 * math.pi, 361)[:-1], 320, 256.0, 128.0, backend=backend)
    y = op.A(x)
    for name in ("ram-lak", "hann"):
        rec = op.fbp(y, filter=name)
        assert rec.shape == (1, 1, n, n) and rec.dtype == torch.float32
        assert _psnr(img, rec[0, 0].double().numpy()) > FAN_PSNR_MIN[backend, name], name


def test_fbp_short_scan_warns():
    op = FanBeamCT(16, torch.linspace(0, math.pi, 30), 32, 40.0, 10.0, backend="numba")
    with pytest.warns(UserWarning, match="full turn"):
        x = op.fbp(torch.zeros(1, 1, 30, 32))
    assert x.shape == (1, 1, 16, 16)


def test_fbp_is_differentiable():
    op = ParallelBeamCT(12, torch.linspace(0, math.pi, 9)[:-1], backend="numba")
    y = torch.rand(1, 1, 8, op.n_detectors, dtype=torch.float64, requires_grad=True)
    op.fbp(y, filter="hann").sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()


def test_default_detector_count_covers_diagonal():
    op = ParallelBeamCT(256, torch.zeros(3), backend="numba")
    assert op.n_detectors == math.ceil(256 * math.sqrt(2)) == 363
    assert op.sinogram_shape == (3, 363) and op.image_shape == (256, 256)


def test_deepinv_integration():
    op = ParallelBeamCT(16, torch.linspace(0, math.pi, 25)[:-1], backend="numba")
    x0 = torch.zeros(1, 1, 16, 16)
    sq = float(op.compute_sqnorm(x0, max_iter=200, tol=1e-7, verbose=False))
    assert abs(sq - op.sqnorm(max_iter=200, tol=1e-7)) < 1e-3 * sq
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    z = op.A_adjoint(op.A(x))
    assert _inner(z, x) <= sq * _inner(x, x) * (1 + 1e-3)  # ||A x||^2 <= ||A||^2 ||x||^2
    y = op(x)  # LinearPhysics.forward: A then (zero) noise
    x_ls = op.A_dagger(y)
    assert torch.linalg.norm(op.A(x_ls) - y) < 1e-2 * torch.linalg.norm(y)
    blur = dinv.physics.Blur(filter=dinv.physics.functional.blur.gaussian_blur(sigma=(1.0, 1.0)), padding="circular")
    composed = op * blur  # x -> A(blur(x)), deepinv's composition
    x32 = x.float()
    torch.testing.assert_close(composed.A(x32), op.A(blur.A(x32)))
    torch.manual_seed(0)
    assert float(composed.adjointness_test(x32, num_samples=8)) < 1e-5  # RMS over 8 pairs: no heavy tail


def test_deepcopy_rebuilds_caches():
    op = ParallelBeamCT(16, torch.linspace(0, math.pi, 10), backend="astra")
    x = torch.rand(1, 1, 16, 16)
    y = op.A(x)
    twin = copy.deepcopy(op)
    assert twin._caches == {}
    torch.testing.assert_close(twin.A(x), y)
    del op
    torch.testing.assert_close(twin.A(x), y)


def test_astra_missing_falls_back_to_numba(monkeypatch):
    monkeypatch.setattr(ct_module, "_ASTRA", False)
    with pytest.warns(RuntimeWarning, match="numba"):
        op = ParallelBeamCT(8, torch.zeros(2), backend="astra")
    assert op.backend == "numba"


def test_no_warning_with_astra_available():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ParallelBeamCT(8, torch.zeros(2), backend="astra").backend == "astra"


# ---------------------------------------------------------------------------- bad input

_N = 8
_ANGLES = torch.linspace(0, math.pi, 5)


def _par(**kw):
    args = {"img_size": _N, "angles": _ANGLES, "backend": "numba"} | kw
    return ParallelBeamCT(**args)


def _fan(**kw):
    args = {"img_size": _N, "angles": _ANGLES, "n_detectors": 12, "source_origin": 20.0, "origin_detector": 5.0} | kw
    return FanBeamCT(backend="numba", **args)


_OP = _par()
_GOOD_Y = torch.zeros(1, 1, 5, _OP.n_detectors)

BAD_CALLS = [
    ("img_size-nonsquare", lambda: _par(img_size=(8, 10)), ValueError, "img_size"),
    ("img_size-zero", lambda: _par(img_size=0), ValueError, "img_size"),
    ("img_size-float", lambda: _par(img_size=8.0), TypeError, "img_size"),
    ("img_size-triple", lambda: _par(img_size=(8, 8, 8)), ValueError, "img_size"),
    ("angles-2d", lambda: _par(angles=torch.zeros(3, 2)), ValueError, "angles"),
    ("angles-empty", lambda: _par(angles=[]), ValueError, "angles"),
    ("angles-nan", lambda: _par(angles=[0.0, float("nan")]), ValueError, "angles"),
    ("angles-str", lambda: _par(angles="0 1 2"), TypeError, "angles"),
    ("angles-complex", lambda: _par(angles=torch.zeros(3, dtype=torch.complex64)), TypeError, "angles"),
    ("n_detectors-zero", lambda: _par(n_detectors=0), ValueError, "n_detectors"),
    ("n_detectors-float", lambda: _par(n_detectors=12.0), TypeError, "n_detectors"),
    ("detector_spacing-negative", lambda: _par(detector_spacing=-1.0), ValueError, "detector_spacing"),
    ("backend-unknown", lambda: _par(backend="cuda"), ValueError, "backend"),
    ("source_origin-inside", lambda: _fan(source_origin=5.0), ValueError, "source_origin"),
    ("origin_detector-negative", lambda: _fan(origin_detector=-1.0), ValueError, "origin_detector"),
    ("x-3d", lambda: _OP.A(torch.zeros(1, _N, _N)), ValueError, "x"),
    ("x-size", lambda: _OP.A(torch.zeros(1, 1, _N + 1, _N + 1)), ValueError, "x"),
    ("x-nonsquare", lambda: _OP.A(torch.zeros(1, 1, _N, _N + 2)), ValueError, "x"),
    ("x-nan", lambda: _OP.A(torch.full((1, 1, _N, _N), float("nan"))), ValueError, "x"),
    ("x-inf", lambda: _OP.A(torch.full((1, 1, _N, _N), float("inf"))), ValueError, "x"),
    ("x-int", lambda: _OP.A(torch.zeros(1, 1, _N, _N, dtype=torch.int64)), TypeError, "x"),
    ("x-complex", lambda: _OP.A(torch.zeros(1, 1, _N, _N, dtype=torch.complex64)), TypeError, "x"),
    ("x-numpy", lambda: _OP.A(np.zeros((1, 1, _N, _N))), TypeError, "x"),
    ("y-angles", lambda: _OP.A_adjoint(torch.zeros(1, 1, 4, _OP.n_detectors)), ValueError, "y"),
    ("y-detectors", lambda: _OP.A_adjoint(torch.zeros(1, 1, 5, 3)), ValueError, "y"),
    ("y-nan", lambda: _OP.A_adjoint(torch.full_like(_GOOD_Y, float("nan"))), ValueError, "y"),
    ("y-half", lambda: _OP.A_adjoint(_GOOD_Y.half()), TypeError, "y"),
    ("fbp-y-shape", lambda: _OP.fbp(torch.zeros(1, 5, _OP.n_detectors)), ValueError, "y"),
    ("fbp-y-inf", lambda: _OP.fbp(torch.full_like(_GOOD_Y, float("inf"))), ValueError, "y"),
    ("fbp-filter", lambda: _OP.fbp(_GOOD_Y, filter="ramp"), ValueError, "filter"),
    ("fan-fbp-filter", lambda: _fan(angles=torch.linspace(0, 6.2, 5)).fbp(torch.zeros(1, 1, 5, 12), "hamming"),
     ValueError, "filter"),
]


@pytest.mark.parametrize("call,exc,name", [pytest.param(c, e, n, id=i) for i, c, e, n in BAD_CALLS])
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=rf"^{name}: expected"):
        call()


def test_astra_angle_blocks_equal_one_block(monkeypatch):
    # Large astra problems run one angle block per core in threads; the operator must not change.
    angles = torch.linspace(0, math.pi, 61)[:-1]
    x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(8))
    y = torch.rand(2, 1, 60, 91, generator=torch.Generator().manual_seed(9))
    results = []
    for cores, serial_work in ((2, None), (3, None), (1, 1 << 40)):
        monkeypatch.setattr(ct_module, "_n_cores", lambda cores=cores: cores)
        monkeypatch.setattr(ct_module, "_POOL", None)
        if serial_work is not None:
            monkeypatch.setattr(ct_module, "_SERIAL_WORK", serial_work)
        op = ParallelBeamCT(64, angles, backend="astra")
        results.append((op.A(x), op.A_adjoint(y)))
        assert len(op._astra_parts(False)) == cores
    for fwd, adj in results[:2]:
        torch.testing.assert_close(fwd, results[2][0], rtol=0, atol=0)
        torch.testing.assert_close(adj, results[2][1], rtol=1e-6, atol=1e-5)
