"""MIMO scenes, the 3D U-Net denoiser and its training entry (``mimo_unet3d``), without shipped weights."""

from __future__ import annotations

import pytest
import torch

from denoisers import load
from denoisers.unet3d import UNet3D
from recon.phantoms import MIMO_SCENE_SHAPE, TEST_SEEDS, mimo_scene, mimo_scene_batch
from recon.training import REGISTRY, main

# ----------------------------------------------------------------------------- scenes


def test_mimo_scene_shape_dtype_and_determinism():
    x = mimo_scene(seed=TEST_SEEDS[0])
    assert MIMO_SCENE_SHAPE == (25, 25, 49)
    assert x.shape == (1, 1, 25, 25, 49) and x.dtype == torch.complex64
    assert torch.equal(x, mimo_scene(seed=TEST_SEEDS[0]))
    assert not torch.equal(x, mimo_scene(seed=TEST_SEEDS[1]))
    y = mimo_scene((8, 9, 10), seed=3, dtype=torch.complex128)
    assert y.shape == (1, 1, 8, 9, 10) and y.dtype == torch.complex128


@pytest.mark.parametrize("seed", [0, 1, 2, 7, TEST_SEEDS[0], TEST_SEEDS[5]])
def test_mimo_scene_magnitudes_piecewise_constant_on_zero_background(seed):
    x = mimo_scene(seed=seed, dtype=torch.complex128)
    m = x.abs()
    inside = m > 0
    assert 0 < int(inside.sum()) < m.numel()
    assert torch.equal(x[~inside], torch.zeros_like(x[~inside]))  # background exactly 0
    assert float(m[inside].min()) > 0.2 - 1e-12 and float(m.max()) <= 1.0 + 1e-12
    assert torch.unique(m.round(decimals=9)).numel() <= 5  # background + at most 4 object values
    phase = x[inside].angle()
    if phase.numel() > 100:  # i.i.d. uniform phase: both half-planes are used
        assert float(phase.min()) < -2.5 and float(phase.max()) > 2.5


def test_mimo_scene_objects_cover_voxels_on_coarse_grids():
    for seed in range(40):
        assert float(mimo_scene((8, 8, 8), seed=seed).abs().max()) > 0.2


def test_mimo_scene_batch_matches_single_scenes():
    b = mimo_scene_batch(3, (8, 8, 12), first_seed=10, dtype=torch.complex128)
    assert b.shape == (3, 1, 8, 8, 12) and b.dtype == torch.complex128
    assert torch.equal(b[2:3], mimo_scene((8, 8, 12), seed=12, dtype=torch.complex128))


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        ({"shape": (25, 25)}, ValueError, "shape"),
        ({"shape": (4, 25, 49)}, ValueError, "shape"),
        ({"shape": (25.0, 25, 49)}, ValueError, "shape"),
        ({"shape": 25}, ValueError, "shape"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, ValueError, "seed"),
        ({"dtype": torch.float32}, TypeError, "dtype"),
    ],
)
def test_mimo_scene_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        mimo_scene(**kwargs)


def test_mimo_scene_batch_bad_n():
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        mimo_scene_batch(0)


# ----------------------------------------------------------------------------- network


@pytest.fixture(scope="module")
def net() -> UNet3D:
    torch.manual_seed(0)
    return UNet3D().eval()


@pytest.mark.parametrize("spatial", [(25, 25, 49), (9, 10, 11)])
def test_unet3d_output_shape_on_odd_sizes(net, spatial):
    x = torch.rand(2, 1, *spatial, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out_float = net(x, 0.1)
        out_tensor = net(x, torch.tensor([0.1, 0.1]))
    assert out_float.shape == x.shape and out_float.dtype == x.dtype
    torch.testing.assert_close(out_float, out_tensor)


def test_unet3d_uses_the_noise_level_and_keeps_float64(net):
    x = torch.rand(2, 1, 9, 10, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = net(x, torch.tensor([0.0, 0.2]))
        swapped = net(x.flip(0), torch.tensor([0.2, 0.0]))
        same = net(x, 0.0)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, swapped.flip(0))  # per-sample sigma follows its sample
    torch.testing.assert_close(out[0], same[0])
    assert not torch.allclose(out[1], same[1])


def test_unet3d_rejects_bad_input(net):
    x = torch.zeros(2, 1, 8, 8, 8)
    with pytest.raises(ValueError, match="x: expected 1 channel"):
        net(torch.zeros(1, 2, 8, 8, 8), 0.1)
    with pytest.raises(ValueError, match="x: expected a 5-D tensor"):
        net(torch.zeros(1, 8, 8, 8), 0.1)
    with pytest.raises(ValueError, match=r"sigma: expected shape \(2,\)"):
        net(x, torch.tensor([0.1]))
    with pytest.raises(ValueError, match="sigma: expected non-negative"):
        net(x, -0.1)
    with pytest.raises(TypeError, match="sigma: expected a float"):
        net(x, "0.1")
    with pytest.raises(ValueError, match="widths"):
        UNet3D(widths=(16,))


def test_default_unet3d_fits_the_weight_budget():
    spec = REGISTRY["mimo_unet3d"]
    model = spec.build(widths=spec.defaults["widths"])
    assert model.widths == (16, 32, 64) and model.stride == 4
    n_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert n_bytes < 5 * 1024**2


# ----------------------------------------------------------------------------- training entry


TINY = ["--threads", "1", "--epochs", "1", "--n-train", "3", "--n-val", "1", "--batch-size", "2", "--widths", "4", "8"]


def test_mimo_unet3d_training_smoke_and_zoo_roundtrip(tmp_path, torch_state):
    card = main(["mimo_unet3d", *TINY, "--out-dir", str(tmp_path / "a")])
    again = main(["mimo_unet3d", *TINY, "--out-dir", str(tmp_path / "b")])
    # Seeded: the same weights. Bitwise equality holds between separate processes (checked: equal
    # sha256), but inside one process the first run after the fixture queried torch's thread pool
    # rounds its convolutions differently, so here the weights are compared to float32 rounding.
    first, second = (torch.load(tmp_path / d / "mimo_unet3d.pt") for d in ("a", "b"))
    for key, value in first.items():
        torch.testing.assert_close(value, second[key], rtol=1e-4, atol=1e-6)
    assert card["model"]["class"] == "denoisers.unet3d.UNet3D" and card["model"]["kwargs"] == {"widths": [4, 8]}
    assert card["training"]["crop_shape"] == [16, 16, 32] and len(card["training"]["history"]) == 1
    val = card["validation"]
    assert val["sigmas"] == [0.05, 0.1] and len(val["psnr_net"]) == len(val["psnr_noisy"]) == 2
    assert card["data"]["val_seeds"][1] < TEST_SEEDS.start and card["data"]["val_seeds"][0] > card["data"]["train_seeds"][1]
    net = load("mimo_unet3d", weights_dir=tmp_path / "a")
    assert isinstance(net, UNet3D) and not net.training and net.widths == (4, 8)
    with torch.no_grad():
        out = net(torch.rand(1, 1, *MIMO_SCENE_SHAPE), 0.05)
    assert out.shape == (1, 1, *MIMO_SCENE_SHAPE)


def test_mimo_unet3d_training_rejects_bad_options(tmp_path, torch_state):
    with pytest.raises(SystemExit):
        main(["mimo_unet3d", "--levels", "3", "--out-dir", str(tmp_path)])  # a ct_unet option
    with pytest.raises(ValueError, match="--crop-shape"):
        main(["mimo_unet3d", *TINY, "--crop-shape", "9", "16", "32", "--out-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="--n-train"):
        main(["mimo_unet3d", "--n-train", "300000", "--out-dir", str(tmp_path)])
