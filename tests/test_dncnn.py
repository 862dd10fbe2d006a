"""The DnCNN denoiser and its training entry (``ct_dncnn``), without shipped weights."""

from __future__ import annotations

import pytest
import torch

from denoisers import load
from denoisers.dncnn import DnCNN
from recon.phantoms import TEST_SEEDS, dynamic_object
from recon.training import REGISTRY, main
from recon.training.data import DNCNN_KINDS, dynamic_frames, gaussian_noisy

# ----------------------------------------------------------------------------- network


def test_dncnn_is_residual_and_keeps_shapes():
    net = DnCNN(width=8, depth=3)
    assert len([m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]) == 4  # 3 hidden + output
    x = torch.rand(2, 1, 20, 33, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net(x)
        torch.testing.assert_close(out, x - net.noise(x))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert "width=8, depth=3" in repr(net)


def test_dncnn_rejects_bad_input():
    net = DnCNN(width=4, depth=1)
    with pytest.raises(ValueError, match="x: expected 1 channel"):
        net(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="x: expected a 4-D tensor"):
        net(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="depth: expected an integer >= 1"):
        DnCNN(depth=0)
    with pytest.raises(TypeError, match="width: expected an int"):
        DnCNN(width=6.5)


def test_default_dncnn_fits_the_weight_budget():
    spec = REGISTRY["ct_dncnn"]
    model = spec.build(width=spec.defaults["width"], depth=spec.defaults["depth"])
    assert model.width == 16 and model.depth == 6
    n_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert n_bytes < 5 * 1024**2


# ----------------------------------------------------------------------------- training data


def test_dynamic_frames_are_the_frames_of_the_seeded_objects():
    frames = dynamic_frames([3, 7], size=32, n_frames=4)
    assert frames.shape == (8, 1, 32, 32) and frames.dtype == torch.float32
    assert DNCNN_KINDS[3 % 4] == "cardiac"
    torch.testing.assert_close(frames[:4, 0], dynamic_object(32, 4, 3, "cardiac")[0], rtol=0, atol=0)
    torch.testing.assert_close(frames[4:, 0], dynamic_object(32, 4, 7, "cardiac")[0], rtol=0, atol=0)
    coule = dynamic_frames([0], size=32, n_frames=2)
    torch.testing.assert_close(coule[:, 0], dynamic_object(32, 2, 0, "coule")[0], rtol=0, atol=0)


def test_gaussian_noisy_is_seeded_with_the_given_std():
    clean = torch.zeros(4, 1, 64, 64)
    a = gaussian_noisy(clean, 0.05, torch.Generator().manual_seed(1))
    assert torch.equal(a, gaussian_noisy(clean, 0.05, torch.Generator().manual_seed(1)))
    assert float(a.std()) == pytest.approx(0.05, rel=0.02)
    sig = torch.tensor([0.0, 0.1, 0.2, 0.3]).reshape(-1, 1, 1, 1)
    b = gaussian_noisy(clean, sig, torch.Generator().manual_seed(2))
    assert float(b[0].abs().max()) == 0.0 and float(b[3].std()) == pytest.approx(0.3, rel=0.03)


# ----------------------------------------------------------------------------- training entry


TINY = [
    "--threads", "1", "--epochs", "1", "--n-train", "2", "--n-val", "1", "--batch-size", "4",
    "--width", "4", "--depth", "2", "--crop", "32",
]  # fmt: skip


def test_ct_dncnn_training_smoke_and_zoo_roundtrip(tmp_path, torch_state):
    card = main(["ct_dncnn", *TINY, "--out-dir", str(tmp_path / "a")])
    main(["ct_dncnn", *TINY, "--out-dir", str(tmp_path / "b")])
    # seeded: the same weights (to float32 rounding inside one process, see test_unet3d.py)
    first, second = (torch.load(tmp_path / d / "ct_dncnn.pt") for d in ("a", "b"))
    for key, value in first.items():
        torch.testing.assert_close(value, second[key], rtol=1e-4, atol=1e-6)
    assert card["model"]["class"] == "denoisers.dncnn.DnCNN" and card["model"]["kwargs"] == {"width": 4, "depth": 2}
    assert card["training"]["crop"] == 32 and len(card["training"]["history"]) == 1
    assert card["data"]["train_seeds"] == [0, 1] and card["data"]["frames_per_object"] == 8
    val = card["validation"]
    assert val["sigmas"] == [0.02, 0.05, 0.1] and len(val["psnr_net"]) == len(val["psnr_noisy"]) == 3
    assert card["data"]["val_seeds"][1] < TEST_SEEDS.start and card["data"]["val_seeds"][0] > card["data"]["train_seeds"][1]
    net = load("ct_dncnn", weights_dir=tmp_path / "a")
    assert isinstance(net, DnCNN) and not net.training and (net.width, net.depth) == (4, 2)
    with torch.no_grad():
        assert net(torch.rand(1, 1, 128, 128)).shape == (1, 1, 128, 128)


def test_ct_dncnn_training_rejects_bad_options(tmp_path, torch_state):
    with pytest.raises(SystemExit):
        main(["ct_dncnn", "--levels", "3", "--out-dir", str(tmp_path)])  # a ct_unet option
    with pytest.raises(ValueError, match="--crop"):
        main(["ct_dncnn", *TINY, "--crop", "200", "--out-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="--sigma-max"):
        main(["ct_dncnn", *TINY, "--sigma-max", "0", "--out-dir", str(tmp_path)])
