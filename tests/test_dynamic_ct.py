"""Tests of operators.DynamicCT and bit_reversal_angles (adjoint, linearity, dtypes, autograd: the
generic registry tests in test_operators.py)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import operators.ct as ct_module
from operators import DynamicCT, ParallelBeamCT
from operators.ct import bit_reversal_angles


def _frames(b: int, p: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, p, n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"views_per_frame": 3, "n_detectors": 19, "detector_spacing": 1.4}, {"views_per_frame": 2, "mirrored": True}],
)
def test_each_frame_is_a_parallel_beam_scan_at_its_angles(kwargs):
    n, p = 14, 6
    op = DynamicCT(n, p, **kwargs)
    x = _frames(2, p, n)
    y = op.A(x)
    v = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x_back = op.A_adjoint(v)
    assert y.shape == (2, p, op.n_views, op.n_detectors) and x_back.shape == x.shape
    for t in range(p):
        static = ParallelBeamCT(
            n, op.angles[t], n_detectors=op.n_detectors, detector_spacing=op.detector_spacing, backend="numba"
        )
        torch.testing.assert_close(y[:, t : t + 1], static.A(x[:, t : t + 1]), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(x_back[:, t : t + 1], static.A_adjoint(v[:, t : t + 1]), rtol=1e-12, atol=1e-12)


def _bit_reverse(k: int, bits: int) -> int:
    return int(format(k, f"0{bits}b")[::-1], 2)


@pytest.mark.parametrize("p", [8, 32])
def test_default_angles_in_bit_reversal_order(p):
    op = DynamicCT(16, p)
    expected = torch.tensor([[_bit_reverse(t, int(math.log2(p))) * math.pi / p] for t in range(p)], dtype=torch.float64)
    torch.testing.assert_close(op.angles, expected, rtol=0, atol=1e-15)
    if p == 8:
        assert (op.angles[:, 0] * 8 / math.pi).round().long().tolist() == [0, 4, 2, 6, 1, 5, 3, 7]


def test_bit_reversal_for_several_views_and_other_lengths():
    # V views per frame take consecutive entries of the sequence over P * V angles
    op = DynamicCT(16, 4, views_per_frame=2)
    torch.testing.assert_close(op.angles.reshape(-1), bit_reversal_angles(8))
    assert (op.angles[:, 1] - op.angles[:, 0]).tolist() == pytest.approx([math.pi / 2] * 4)  # 2 views 90 deg apart
    # not a power of two: the pruned bit reversal, a permutation of the regular grid
    assert (bit_reversal_angles(6) * 6 / math.pi).round().long().tolist() == [0, 4, 2, 1, 5, 3]
    for n in (1, 5, 12, 33):
        k = (bit_reversal_angles(n) * n / math.pi).round().long()
        assert sorted(k.tolist()) == list(range(n))
        bits = max(1, (n - 1).bit_length())
        assert k.tolist() == [r for r in (_bit_reverse(j, bits) for j in range(1 << bits)) if r < n]


def test_mirrored_views_are_the_flipped_projections():
    # parallel beam: y(theta + pi, u) = y(theta, -u), and the detector cells are symmetric about 0
    op = DynamicCT(20, 5, views_per_frame=2, mirrored=True)
    assert op.n_views == 4
    torch.testing.assert_close(op.angles[:, 2:], op.angles[:, :2] + math.pi)
    y = op.A(_frames(1, 5, 20))
    torch.testing.assert_close(y[:, :, 2:], y[:, :, :2].flip(-1), rtol=1e-10, atol=1e-10)


def test_explicit_angles_accept_p_or_p_by_v():
    angles = np.array([0.3, 2.0, 1.1])
    a = DynamicCT(10, 3, angles=angles)
    b = DynamicCT(10, 3, angles=torch.from_numpy(angles)[:, None])
    torch.testing.assert_close(a.angles, b.angles)
    x = _frames(1, 3, 10)
    torch.testing.assert_close(a.A(x), b.A(x))


def test_default_detector_count_and_shapes():
    op = DynamicCT(128, 4)
    assert op.n_detectors == 182 and op.sinogram_shape == (1, 182) and op.image_shape == (128, 128)
    y = op.A(torch.rand(1, 4, 128, 128))
    assert y.shape == (1, 4, 1, 182) and y.dtype == torch.float32


def test_all_frames_in_one_kernel_call_per_batch_element(monkeypatch):
    calls = {"forward": 0, "adjoint": 0}
    kernels = ct_module.joseph
    forward, adjoint = kernels.joseph_forward, kernels.joseph_adjoint

    def count(name, kernel):
        def wrapped(*args):
            calls[name] += 1
            return kernel(*args)

        return wrapped

    monkeypatch.setattr(kernels, "joseph_forward", count("forward", forward))
    monkeypatch.setattr(kernels, "joseph_adjoint", count("adjoint", adjoint))
    op = DynamicCT(16, 12, views_per_frame=2)
    op.A_adjoint(op.A(torch.rand(2, 12, 16, 16)))
    assert calls == {"forward": 2, "adjoint": 2}


def test_deepcopy_keeps_the_frames():
    op = DynamicCT(10, 3, mirrored=True)
    x = _frames(1, 3, 10)
    y = op.A(x)
    twin = copy.deepcopy(op)
    assert twin.n_frames == 3 and twin.img_size == (3, 10, 10)
    torch.testing.assert_close(twin.A(x), y)


def test_sqnorm_is_the_largest_frame_norm():
    # A is block diagonal over frames: ||A||^2 = max_t ||A_t||^2
    op = DynamicCT(12, 3, views_per_frame=2)
    per_frame = [ParallelBeamCT(12, op.angles[t], backend="numba").sqnorm(max_iter=300, tol=1e-8, dtype=torch.float64) for t in range(3)]
    assert op.sqnorm(max_iter=300, tol=1e-8, dtype=torch.float64) == pytest.approx(max(per_frame), rel=1e-3)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda op: op.A(torch.zeros(1, 4, 10, 10)), ValueError, r"x: expected shape \(\*, 5, 10, 10\)"),
        (lambda op: op.A(torch.zeros(5, 10, 10)), ValueError, "x: expected a 4-D tensor"),
        (lambda op: op.A(torch.zeros(1, 5, 10, 10, dtype=torch.complex64)), TypeError, "x: expected dtype"),
        (lambda op: op.A_adjoint(torch.zeros(1, 5, 2, 15)), ValueError, r"y: expected shape \(\*, 5, 1, 15\)"),
        (lambda op: op.A_adjoint(torch.zeros(1, 6, 1, 15)), ValueError, "y: expected shape"),
    ],
)
def test_bad_data_names_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call(DynamicCT(10, 5))


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"angles": [0.1, 0.2, 0.3]}, ValueError, r"angles: expected shape \(5, 1\) or \(5,\)"),
        ({"angles": np.zeros((5, 2))}, ValueError, r"angles: expected shape \(5, 1\) or \(5,\)"),
        ({"angles": np.zeros(5), "views_per_frame": 2}, ValueError, r"angles: expected shape \(5, 2\) \(frames"),
        ({"angles": [0.0, 1.0, np.nan, 2.0, 3.0]}, ValueError, "angles: expected finite"),
        ({"angles": ["a"] * 5}, TypeError, "angles"),
        ({"n_frames": 0}, ValueError, "n_frames: expected an integer >= 1"),
        ({"n_frames": 2.0}, TypeError, "n_frames: expected an int"),
        ({"views_per_frame": 0}, ValueError, "views_per_frame"),
        ({"mirrored": 1}, TypeError, "mirrored: expected a bool"),
        ({"backend": "astra"}, ValueError, r"backend: expected one of \('numba',\)"),
        ({"n_detectors": 0}, ValueError, "n_detectors"),
        ({"detector_spacing": -1.0}, ValueError, "detector_spacing"),
    ],
)
def test_bad_construction_names_the_argument(kwargs, exc, match):
    kwargs = {"n_frames": 5, **kwargs}
    with pytest.raises(exc, match=match):
        DynamicCT(10, **kwargs)


def test_bit_reversal_angles_rejects_bad_length():
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        bit_reversal_angles(0)
