"""Phantoms: seeded, deterministic, piecewise constant in [0, 1]."""

import dataclasses
import time

import numpy as np
import pytest
import torch

from recon import phantoms
from recon.phantoms import (
    DYNAMIC_KINDS,
    QMRI_MAX_PHASE,
    QMRI_TISSUES,
    QMRI_VARIATION,
    TEST_SEEDS,
    coule_like,
    coule_like_batch,
    dynamic_object,
    photo_phantom,
    qmri_brain,
    rock_like,
    shepp_logan,
)


def test_coule_like_deterministic_and_seeded():
    a = coule_like(64, seed=3)
    assert torch.equal(a, coule_like(64, seed=3))
    assert not torch.equal(a, coule_like(64, seed=4))


def test_coule_like_range_and_piecewise_constant():
    x = coule_like(128, seed=TEST_SEEDS[0])
    assert x.shape == (1, 1, 128, 128) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # at most one value per painted shape (<= 12 ellipses + 3 segments) plus the background
    assert 2 <= torch.unique(x).numel() <= 16


def test_coule_like_batch_matches_single_images():
    b = coule_like_batch(3, 32, first_seed=10, dtype=torch.float64)
    assert b.shape == (3, 1, 32, 32) and b.dtype == torch.float64
    assert torch.equal(b[2:3], coule_like(32, seed=12, dtype=torch.float64))


def test_shepp_logan_shape_and_range():
    x = shepp_logan(100)
    assert x.shape == (1, 1, 100, 100)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.max()) > 0.9


@pytest.mark.parametrize("kwargs,match", [({"size": 4}, "size"), ({"size": 32.0}, "size"), ({"seed": -1}, "seed")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        coule_like(**{"size": 32, **kwargs})


# --- rock-like sections (a family no network is trained on) ---------------------------------------


def test_rock_like_shape_range_and_layers():
    x = rock_like(64, seed=TEST_SEEDS[0])
    assert x.shape == (1, 1, 64, 64) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) <= 1.0
    assert rock_like(16, seed=1, dtype=torch.float64).dtype == torch.float64
    inside = x[0, 0] > 0.15  # grains and inclusions (pores and cracks are <= 0.1 + the texture's 0.05)
    assert 0.3 < float(inside.double().mean()) < 0.8  # measured 0.41-0.62 over TEST_SEEDS[:20] at 64x64
    # piecewise constant up to a smooth texture: most vertical neighbours differ by < 0.02 (measured 87-92 %)
    jumps = (x[0, 0, 1:] - x[0, 0, :-1]).abs()
    assert float((jumps < 0.02).double().mean()) > 0.8


def test_rock_like_deterministic_and_seeded():
    a = rock_like(48, seed=7)
    assert torch.equal(a, rock_like(48, seed=7))
    assert not torch.equal(a, rock_like(48, seed=8))
    assert not torch.equal(a, coule_like(48, seed=7))


@pytest.mark.parametrize("kwargs,match", [({"size": 7}, "size: expected an integer >= 8, received 7"),
                                          ({"size": 32.0}, "size"), ({"seed": -1}, "seed: expected a non-negative"),
                                          ({"seed": True}, "seed")])  # fmt: skip
def test_rock_like_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rock_like(**{"size": 32, **kwargs})


def test_photo_phantom_crops_the_centre_square_and_scales_to_unit_range():
    rng = np.random.default_rng(0)
    photo = np.zeros((40, 60))
    photo[:, 10:50] = rng.uniform(0.2, 0.7, (40, 40))  # the centre 40 x 40 square; the side bands are cut away
    out = photo_phantom(photo, 40, dtype=torch.float64)
    assert out.shape == (1, 1, 40, 40) and out.dtype == torch.float64
    centre = photo[:, 10:50]
    np.testing.assert_allclose(out[0, 0].numpy(), (centre - centre.min()) / (centre.max() - centre.min()), atol=1e-12)
    big = photo_phantom(torch.from_numpy(photo)[None, None].float(), 64)
    assert big.shape == (1, 1, 64, 64) and float(big.min()) == 0.0 and float(big.max()) == pytest.approx(1.0)
    assert float(photo_phantom(np.full((8, 8), 0.3), 8).abs().max()) == 0.0  # a constant photo: zeros, no division by 0


@pytest.mark.parametrize("photo", [np.zeros((4, 4, 3)), np.zeros((1, 9)), np.full((4, 4), np.nan)])
def test_photo_phantom_bad_input(photo):
    with pytest.raises(ValueError, match="^photo:"):
        photo_phantom(photo, 16)


# --- qMRI brain phantom -------------------------------------------------------------------------

QMRI_SEEDS = [TEST_SEEDS[i] for i in range(4)]


@pytest.fixture(scope="module")
def qmri_phantoms():
    return [qmri_brain(64, seed=s) for s in QMRI_SEEDS]


def test_qmri_brain_deterministic_and_seeded(qmri_phantoms):
    a, again = qmri_phantoms[0], qmri_brain(64, seed=QMRI_SEEDS[0])
    for name in ("labels", "t1", "t2", "m0", "mask"):
        assert torch.equal(getattr(a, name), getattr(again, name)), name
    assert not torch.equal(a.labels, qmri_phantoms[1].labels)
    assert not torch.equal(a.m0, qmri_phantoms[1].m0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.t1 = a.t2


@pytest.mark.parametrize("dtype,cdtype", [(torch.float32, torch.complex64), (torch.float64, torch.complex128)])
def test_qmri_brain_shapes_and_dtypes(dtype, cdtype):
    ph = qmri_brain(48, seed=5, dtype=dtype)
    fields = {"labels": torch.int64, "t1": dtype, "t2": dtype, "m0": cdtype, "mask": torch.bool}
    for name, expected in fields.items():
        x = getattr(ph, name)
        assert x.shape == (1, 1, 48, 48) and x.dtype == expected, name
    assert ph.r1().dtype == dtype and ph.r2().dtype == dtype


def test_qmri_brain_tissue_values(qmri_phantoms):
    v = QMRI_VARIATION * (1 + 1e-6)
    for ph in qmri_phantoms:
        assert set(torch.unique(ph.labels).tolist()) == {0, 1, 2, 3, 4}
        for label, tissue in QMRI_TISSUES.items():
            inside = ph.labels == label
            for got, nominal in ((ph.t1[inside], tissue.t1_ms), (ph.t2[inside], tissue.t2_ms)):
                assert float(got.min()) >= nominal * (1 - v) and float(got.max()) <= nominal * (1 + v), tissue.name
            torch.testing.assert_close(ph.m0[inside].abs(), torch.full_like(ph.t1[inside], tissue.pd))
        outside = ~ph.mask
        assert not ph.t1[outside].any() and not ph.t2[outside].any() and not ph.m0[outside].any()


def test_qmri_brain_mask_and_coverage(qmri_phantoms):
    for ph in [*qmri_phantoms, qmri_brain(32, seed=QMRI_SEEDS[0])]:
        assert torch.equal(ph.mask, ph.labels > 0)
        assert 0.5 <= ph.mask.double().mean() <= 0.8


def test_qmri_brain_phase_smooth_and_bounded(qmri_phantoms):
    for ph in qmri_phantoms:
        phase, mask = ph.m0[0, 0].angle(), ph.mask[0, 0]
        assert float(phase[mask].abs().max()) <= QMRI_MAX_PHASE + 1e-6
        assert float(phase[mask].std()) > 0.05  # not a constant phase
        for axis in (0, 1):
            both = mask.narrow(axis, 1, 63) & mask.narrow(axis, 0, 63)
            jumps = (phase.narrow(axis, 1, 63) - phase.narrow(axis, 0, 63))[both].abs()
            assert float(jumps.mean()) < 0.1 and float(jumps.max()) < 0.3


def test_qmri_brain_relaxation_rates(qmri_phantoms):
    ph = qmri_phantoms[0]
    for rate, time_ms in ((ph.r1(), ph.t1), (ph.r2(), ph.t2)):
        assert rate.shape == time_ms.shape
        torch.testing.assert_close(rate[ph.mask], 1000.0 / time_ms[ph.mask])
        assert not rate[~ph.mask].any()


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"size": 31}, ValueError, "size"),
        ({"size": 64.0}, ValueError, "size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, ValueError, "seed"),
        ({"dtype": torch.complex64}, TypeError, "dtype"),
    ],
)
def test_qmri_brain_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        qmri_brain(**{"size": 32, **kwargs})


# --- dynamic objects ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamic_objects():
    return {kind: dynamic_object(128, 32, seed=TEST_SEEDS[0], kind=kind) for kind in DYNAMIC_KINDS}


def test_dynamic_object_shape_range_and_speed():
    t0 = time.perf_counter()
    x = dynamic_object(128, 32, seed=TEST_SEEDS[1])
    assert time.perf_counter() - t0 < 2.0  # measured 0.05-0.1 s (one core, busy machine)
    assert x.shape == (1, 32, 128, 128) and x.dtype == torch.float32
    assert dynamic_object(16, 3, dtype=torch.float64).dtype == torch.float64


def test_dynamic_object_deterministic_and_seeded():
    a = dynamic_object(32, 6, seed=5)
    assert torch.equal(a, dynamic_object(32, 6, seed=5))
    assert not torch.equal(a, dynamic_object(32, 6, seed=6))
    # Shepp-Logan: the image is fixed, the motion is seeded
    s = dynamic_object(32, 6, seed=5, kind="shepp_logan")
    assert not torch.equal(s, dynamic_object(32, 6, seed=6, kind="shepp_logan"))


@pytest.mark.parametrize("kind", DYNAMIC_KINDS)
def test_dynamic_object_frames_move_smoothly(dynamic_objects, kind):
    x = dynamic_objects[kind][0].double()
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.max()) > 0.5
    consecutive = (x[1:] - x[:-1]).abs().mean(dim=(1, 2))
    first_vs_middle = float((x[16] - x[0]).abs().mean())
    # measured (seed TEST_SEEDS[0]): consecutive <= 0.18-0.24 of first-vs-middle, which is 0.019-0.031
    assert float(consecutive.max()) < 0.4 * first_vs_middle
    assert first_vs_middle > 0.01
    assert bool((consecutive > 0).all())  # every frame differs from the previous one


def test_dynamic_object_without_motion_is_the_static_image():
    x = dynamic_object(48, 4, seed=3, max_shift=0.0)
    static = coule_like(48, seed=3)[0, 0]
    for t in range(4):
        torch.testing.assert_close(x[0, t], static, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [8, 13, 128])
def test_dynamic_object_warp_interpolates_the_grid_piecewise_linearly(size):
    # barycentric weights: non-negative, summing to 1, and exact on affine fields (here the
    # node coordinates themselves, which must interpolate to the pixel coordinates)
    nodes, weights = phantoms._grid_triangle_weights(size, 6)
    assert float(weights.min()) >= -1e-12 and np.allclose(weights.sum(axis=1), 1.0)
    grid = np.linspace(-1.0, size, 6)
    node_rc = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    pixel_rc = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), axis=-1).reshape(-1, 2)
    np.testing.assert_allclose(np.einsum("kn,knd->kd", weights, node_rc[nodes]), pixel_rc, atol=1e-12)


def test_dynamic_object_cardiac_beats():
    # the bright blood pool (values near 1) changes its area periodically
    x = dynamic_object(96, 24, seed=2, kind="cardiac", max_shift=0.0)[0]
    area = (x > 0.9).sum(dim=(1, 2)).double()
    assert float(area.max()) > 1.3 * float(area.min()) > 0  # measured ratio 2.2


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"size": 4}, "size"),
        ({"n_frames": 0}, "n_frames"),
        ({"n_frames": 3.0}, "n_frames"),
        ({"seed": -2}, "seed"),
        ({"kind": "walnut"}, "kind: expected one of"),
        ({"max_shift": -1.0}, r"max_shift: expected a number in \[0, "),
        ({"max_shift": 20.0}, r"max_shift: expected a number in \[0, 1.32\] pixels for size 32"),
    ],
)
def test_dynamic_object_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dynamic_object(**{"size": 32, "n_frames": 4, **kwargs})
