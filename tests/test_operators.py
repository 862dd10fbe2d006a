"""Generic properties of every operator in the registry (real and complex): adjoint, linearity,
batching, dtypes and autograd. Operator-specific tests live in test_ct.py, test_mimo.py, ..."""

from __future__ import annotations

import pytest
import torch
from deepinv.physics import BlurFFT, Inpainting, MultiCoilMRI
from operator_registry import operator_params

from operators import AcousticWave2D, QuantitativeMRI, SenseMRI
from operators.shapes import image_shape, measurement_shape


def _data_like(op, x: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """A standard-normal tensor of the shape and dtype of ``op.A(x)`` (complex when ``x`` is)."""
    y_shape = op.A(x).shape
    return torch.randn(y_shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)


def _vdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-batch inner product sum(conj(a) b), shape (B,)."""
    return (a.conj() * b).flatten(1).sum(1)


@pytest.mark.parametrize("case", operator_params())
def test_adjoint_dot_product_float64(case):
    # Relative dot-test error over 8 random pairs (u_i, v_i), the RMS estimator of
    # ||A - B^H||_F / ||A||_F that deepinv's adjointness_test uses: a single pair's ratio
    # |<Au, v> - <u, Bv>| / |<Au, v>| has a heavy tail (small denominators; astra's float32 gave
    # up to 2e-4 in 1 of 100 draws), the 8-sample RMS stayed below 6e-7 in 100 draws.
    # Measured medians: astra 1.1e-7 - 1.8e-7 (float32 inside), numba CT 3e-16, MIMO 4e-16.
    op = case.build()
    x = case.random_input(batch=8, dtype=torch.float64)
    y = _data_like(op, x)
    lhs, rhs = _vdot(op.A(x), y), _vdot(x, op.A_adjoint(y))
    assert float(torch.sqrt((lhs - rhs).abs().square().mean() / lhs.abs().square().mean())) < 1e-5
    if not case.complex:  # deepinv's test uses real products, without the conjugate
        torch.manual_seed(0)
        assert float(op.adjointness_test(x[:1], num_samples=8)) < 1e-5


@pytest.mark.parametrize("case", operator_params())
def test_linearity(case):
    op = case.build()
    x1 = case.random_input(batch=1, seed=2)
    x2 = case.random_input(batch=1, seed=3)
    a = 2.5 - 0.5j if case.complex else 2.5
    lhs = op.A(a * x1 - 0.75 * x2)
    rhs = a * op.A(x1) - 0.75 * op.A(x2)
    rtol = 1e-5 if case.float32_internal else 1e-12
    assert torch.linalg.norm(lhs - rhs) <= rtol * torch.linalg.norm(rhs)


@pytest.mark.parametrize("case", operator_params())
def test_batch_consistency(case):
    op = case.build()
    channels = 2 if case.any_channels else None
    x = case.random_input(batch=2, channels=channels, dtype=torch.float32, seed=4)
    y = op.A(x)
    y_noise = torch.randn_like(y)
    x_back = op.A_adjoint(y_noise)
    # channels are independent only where the operator accepts any channel count (not for the
    # (real, imaginary) pair of deepinv's MRI layout)
    channel_slices = [slice(c, c + 1) for c in range(x.shape[1])] if case.any_channels else [slice(None)]
    for b in range(x.shape[0]):
        for c in channel_slices:
            torch.testing.assert_close(y[b : b + 1, c], op.A(x[b : b + 1, c]), rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(x_back[b : b + 1, c], op.A_adjoint(y_noise[b : b + 1, c]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", operator_params())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_preserved(case, dtype):
    op = case.build()
    x = case.random_input(batch=1, dtype=dtype)
    y = op.A(x)
    assert y.dtype == x.dtype
    assert op.A_adjoint(y).dtype == x.dtype


@pytest.mark.parametrize("case", operator_params())
def test_autograd_gradient_is_adjoint(case):
    # loss Re<v, A x>: torch's gradient (conjugate Wirtinger convention) is A^H v
    op = case.build()
    x = case.random_input(batch=1, dtype=torch.float64).requires_grad_(True)
    v = _data_like(op, x.detach(), seed=5)
    _vdot(v, op.A(x)).real.sum().backward()
    torch.testing.assert_close(x.grad, op.A_adjoint(v), rtol=1e-10, atol=1e-10)
    v.requires_grad_(True)
    u = case.random_input(batch=1, dtype=torch.float64, seed=6)
    _vdot(u, op.A_adjoint(v)).real.sum().backward()
    torch.testing.assert_close(v.grad, op.A(u), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", operator_params())
def test_declared_shapes(case):
    # A of an x shaped (1, *img_shape) is shaped (1, *meas_shape), and A_adjoint maps back.
    # deepinv's own classes declare only the image shape (through img_size).
    op = case.build()
    shape = image_shape(op)
    assert shape == case.x_shape
    x = case.random_input(batch=1).reshape(1, *shape)
    y = op.A(x)
    if type(op).__module__.startswith("operators."):
        assert tuple(y.shape) == (1, *measurement_shape(op))
    else:
        with pytest.raises(TypeError, match="^physics: expected an operator that declares its measurement shape"):
            measurement_shape(op)
    assert tuple(op.A_adjoint(y).shape) == (1, *shape)


def test_declared_shapes_of_nonlinear_operators():
    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 6, 5, dtype=torch.complex128, generator=gen)
    qmri = QuantitativeMRI(SenseMRI(torch.ones(4, 6, 5, dtype=torch.float64), maps), "t2", [10.0, 20.0, 30.0, 40.0])
    x = torch.rand(1, *image_shape(qmri), dtype=torch.float64) + 1.0
    assert image_shape(qmri) == (3, 6, 5) and tuple(qmri.A(x).shape) == (1, *measurement_shape(qmri)) == (1, 3, 4, 6, 5)
    # the wave operator maps ONE model (no batch or channel axis): its shapes are those of A's input and output
    wave = AcousticWave2D((8, 10), 10.0, 1e-3, 12, [(1, 2), (1, 7)], [(1, j) for j in range(10)], n_absorb=2)
    traces = wave.A(torch.full(image_shape(wave), 2000.0))
    assert image_shape(wave) == (8, 10) and tuple(traces.shape) == measurement_shape(wave) == (2, 12, 10)


def test_image_shape_of_deepinv_operators():
    # deepinv 0.5.0 records img_size as (C, *spatial) for these ...
    assert image_shape(BlurFFT(img_size=(3, 16, 12), filter=torch.full((1, 1, 3, 3), 1.0 / 9))) == (3, 16, 12)
    assert image_shape(Inpainting(img_size=(2, 8, 9), mask=0.5)) == (2, 8, 9)
    # ... but MultiCoilMRI keeps the img_size it was given (default (320, 320)): read off its mask
    coils = MultiCoilMRI(mask=torch.ones(12, 10), coil_maps=torch.ones(3, 12, 10, dtype=torch.complex64))
    assert coils.img_size == (320, 320) and image_shape(coils) == (2, 12, 10)
    assert tuple(coils.A_adjoint(coils.A(torch.randn(1, 2, 12, 10))).shape) == (1, 2, 12, 10)
    with pytest.raises(TypeError, match="^physics: expected an operator that declares its image shape"):
        image_shape(torch.nn.Identity())
