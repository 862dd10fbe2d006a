"""Shipped denoiser weights: offline loading, sha256 check, card PSNR reproduced, shapes."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path

import pytest
import torch

from denoisers import load, zoo
from denoisers.dncnn import DnCNN
from denoisers.unet import CTUNet
from denoisers.unet3d import UNet3D
from denoisers.zoo import WEIGHTS_DIR
from recon.phantoms import TEST_SEEDS
from recon.training import REGISTRY
from recon.training.ct_dncnn import evaluate_dncnn
from recon.training.ct_unet import VAL_NOISE_LEVELS, evaluate_ct_unet
from recon.training.data import HVAE_CROP, ct_pairs, dynamic_frames, hvae_pool, hvae_tiles, mimo_magnitudes
from recon.training.mimo_unet3d import evaluate_mimo_unet3d


@pytest.fixture(scope="module")
def ct_unet():
    return load("ct_unet")


def test_ct_unet_loads_offline_in_eval_mode(ct_unet):
    assert isinstance(ct_unet, CTUNet)
    assert not ct_unet.training
    assert (WEIGHTS_DIR / "ct_unet.pt").stat().st_size < 5 * 1024**2


def test_ct_unet_reproduces_card_psnr(ct_unet, torch_state):
    """The noise-blind net reproduces its card's validation PSNR at every validation noise level, and gains there."""
    info = zoo.card("ct_unet")
    first, last = info["validation"]["seeds"]
    assert last < 900_000  # held-out images are not test images and not training images
    assert first > info["data"]["train_seeds"][1]
    torch.set_num_threads(2)
    val = info["validation"]
    assert val["noise_levels"] == list(VAL_NOISE_LEVELS)
    for nl, p_fbp_card, p_net_card in zip(val["noise_levels"], val["psnr_fbp_256"], val["psnr_net_256"], strict=True):
        x_fbp, x_true = ct_pairs(range(first, last + 1), size=info["data"]["image_size"], noise_level=nl)
        p_fbp, p_net = evaluate_ct_unet(ct_unet, x_fbp, x_true)
        assert p_fbp == pytest.approx(p_fbp_card, abs=0.05)
        assert p_net == pytest.approx(p_net_card, abs=0.05)
        assert p_net > p_fbp + 3.0


def procedural_tiles(seeds: range) -> torch.Tensor:
    """The validation tiles of ``dncnn_natural``: COULE-like and texture images of ``seeds``, 64x64 tiles."""
    pool = hvae_pool(list(seeds), natural=())
    return hvae_tiles(pool["coule"] + pool["texture"], HVAE_CROP)


@pytest.mark.parametrize(
    "name,cls,clean_frames,evaluate,min_gain_db",
    [
        ("mimo_unet3d", UNet3D, mimo_magnitudes, evaluate_mimo_unet3d, 5.0),
        ("ct_dncnn", DnCNN, dynamic_frames, evaluate_dncnn, 5.0),  # card: +7.3, +12.1, +12.8 dB
        ("dncnn_natural", DnCNN, procedural_tiles, evaluate_dncnn, 5.0),  # card: +7.0, +11.1, +12.9 dB
    ],
    ids=["mimo_unet3d", "ct_dncnn", "dncnn_natural"],
)
def test_sigma_denoiser_loads_offline_and_reproduces_card_psnr(name, cls, clean_frames, evaluate, min_gain_db):
    net = load(name)
    assert isinstance(net, cls) and not net.training
    assert (WEIGHTS_DIR / f"{name}.pt").stat().st_size < 5 * 1024**2
    info = zoo.card(name)
    first, last = info["validation"]["seeds"]
    assert info["data"]["train_seeds"][1] < first and last < TEST_SEEDS.start  # neither training nor test data
    clean = clean_frames(range(first, last + 1))
    val = info["validation"]
    for sigma, p_noisy_card, p_net_card in zip(val["sigmas"], val["psnr_noisy"], val["psnr_net"], strict=True):
        p_noisy, p_net = evaluate(net, clean, sigma)
        assert p_noisy == pytest.approx(p_noisy_card, abs=0.05)
        assert p_net == pytest.approx(p_net_card, abs=0.05)
        assert p_net > p_noisy + min_gain_db


@pytest.mark.parametrize("n", [128, 256])
def test_ct_unet_output_shape_equals_input_shape(ct_unet, n):
    x = torch.rand(2, 1, n, n, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        out = ct_unet(x)
    assert out.shape == x.shape and out.dtype == x.dtype


def test_ct_unet_rejects_bad_input_shape(ct_unet):
    with pytest.raises(ValueError, match="x: expected height and width divisible by 8"):
        ct_unet(torch.zeros(1, 1, 100, 100))
    with pytest.raises(ValueError, match="x: expected 1 channel"):
        ct_unet(torch.zeros(1, 2, 64, 64))


def test_zoo_classes_are_the_shipped_cards_and_the_training_recipes():
    # the zoo keeps its own name -> class map (denoisers never imports recon.training); the two agree
    shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))
    assert list(zoo.available()) == shipped == sorted(REGISTRY)
    for name, cls in zoo.ARCHITECTURES.items():
        assert zoo.card(name)["model"]["class"] == f"{cls.__module__}.{cls.__qualname__}"
        assert REGISTRY[name].build is cls


def test_weights_are_package_data():
    assert WEIGHTS_DIR == Path(str(files("denoisers.weights")))
    assert WEIGHTS_DIR.resolve() == (Path(__file__).resolve().parents[1] / "data" / "weights")  # the editable install


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="ct_unet"):
        load("no_such_net")


def test_wrong_sha256_raises(tmp_path):
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS_DIR / f"ct_unet{suffix}", tmp_path / f"ct_unet{suffix}")
    assert isinstance(load("ct_unet", weights_dir=tmp_path), CTUNet)  # the intact copy loads
    card_path = tmp_path / "ct_unet.json"
    info = json.loads(card_path.read_text())
    info["sha256"] = "0" * 64
    card_path.write_text(json.dumps(info))
    with pytest.raises(ValueError, match="sha256"):
        load("ct_unet", weights_dir=tmp_path)


def test_tampered_weights_raise(tmp_path, monkeypatch):
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS_DIR / f"ct_unet{suffix}", tmp_path / f"ct_unet{suffix}")
    with open(tmp_path / "ct_unet.pt", "ab") as f:
        f.write(b"\0")
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ValueError, match="sha256"):
        load("ct_unet")


def test_missing_weights_name_the_reproduce_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m recon.training ct_unet"):
        load("ct_unet", weights_dir=tmp_path)
