"""The noise-blind ``ct_unet`` recipe: its noise model, its card and a resumed run (tiny sizes, synthetic PNG set)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import io

from operators.ct import ct_geometry
from recon.noise import add_relative_noise
from recon.phantoms import coule_like
from recon.training import ct_unet, main
from recon.training.data import ct_clean_fbps, ct_noise_bank, file_list_sha256, photo_files


def test_fbp_plus_scaled_noise_fbp_is_the_fbp_of_relative_noise():
    """FBP(A x) + level ||A x|| / ||w|| FBP(w) equals the FBP of add_relative_noise(A x, level) with the same draw w."""
    x = coule_like(128, 5)
    fbp_clean, y_norm = ct_clean_fbps(x)
    noise_fbp, w_norm = ct_noise_bank(1, 128, seed=11)
    physics = ct_geometry(128)
    y_norm_direct = physics.A(x).double().norm()
    assert float(y_norm[0]) == pytest.approx(float(y_norm_direct), rel=1e-6)
    level = 0.03
    composed = fbp_clean + float(level * y_norm[0] / w_norm[0]) * noise_fbp
    direct = physics.fbp(add_relative_noise(physics.A(x), level, seed=11), filter="ram-lak")
    torch.testing.assert_close(composed, direct, rtol=0, atol=1e-5 * float(direct.abs().max()))


@pytest.fixture
def photo_dir(tmp_path):
    folder = tmp_path / "train400"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        io.imsave(folder / f"img{k:03d}.png", rng.integers(0, 256, (60, 80), dtype=np.uint8), check_contrast=False)
    return tmp_path


def _tiny(photo_dir) -> list[str]:
    return ["--threads", "1", "--epochs", "2", "--n-train", "2", "--n-photos", "2", "--n-noise", "2", "--n-val", "1",
            "--batch-size", "2", "--width", "4", "--levels", "2", "--crop", "32", "--data-dir", str(photo_dir)]  # fmt: skip


def test_an_interrupted_ct_unet_run_resumes_to_the_same_weights_and_card(photo_dir, tmp_path, interrupt_run, torch_state):
    whole = main(["ct_unet", *_tiny(photo_dir), "--out-dir", str(tmp_path / "whole")])
    out = ["--out-dir", str(tmp_path / "parts")]
    interrupt_run(lambda: main(["ct_unet", *_tiny(photo_dir), *out]), ct_unet, "run_epoch")
    with pytest.raises(ValueError, match="--resume: the checkpoint .* other options"):
        main(["ct_unet", *_tiny(photo_dir), "--noise-max", "0.1", "--resume", *out])
    card = main(["ct_unet", *_tiny(photo_dir), "--resume", *out])
    assert [h["epoch"] for h in card["training"]["history"]] == [1, 2]
    a, b = (torch.load(tmp_path / d / "ct_unet.pt") for d in ("whole", "parts"))
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=1e-4, atol=1e-6)
    assert whole["data"]["photos"]["file_list_sha256"] == file_list_sha256(photo_files("train400", photo_dir)[:2])
    val = whole["validation"]
    assert val["noise_levels"] == [0.01, 0.02, 0.04] and len(val["psnr_net_256"]) == len(val["psnr_fbp_128"]) == 3
    assert val["psnr_fbp_256"][0] > val["psnr_fbp_256"][1] > val["psnr_fbp_256"][2]  # more noise, worse FBP


@pytest.mark.parametrize(
    ("extra", "match"),
    [(["--noise-min", "0.06"], "--noise-min/--noise-max"), (["--n-photos", "4"], "--n-photos"), (["--crop", "31"], "--crop"),
     (["--sizes", "100"], "--sizes"), (["--sizes", "128", "--crop", "160"], "--sizes")],
)
def test_ct_unet_bad_options(photo_dir, tmp_path, extra, match, torch_state):
    with pytest.raises(ValueError, match=match):
        main(["ct_unet", *_tiny(photo_dir), *extra, "--out-dir", str(tmp_path)])


def test_two_sizes_train_on_objects_of_both_sides(photo_dir, tmp_path, torch_state):
    card = main(["ct_unet", *_tiny(photo_dir), "--epochs", "1", "--sizes", "128", "256", "--out-dir", str(tmp_path)])
    assert card["data"]["training_sizes"] == [128, 256]
    assert "182 detector bins at 128x128" in card["data"]["geometry"] and "362 detector bins at 256x256" in card["data"]["geometry"]
