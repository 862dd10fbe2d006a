"""The photograph pipeline of ``dncnn_natural``: the scaled DnCNN, the PNG sets, augmented patches and resumable
training (on small synthetic PNG sets written here, so the tests need no data set)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import io

from denoisers import load
from denoisers.dncnn import DnCNN
from recon.training import REGISTRY, main
from recon.training import loop
from recon.training.dncnn_natural import he_init
from recon.training.data import file_list_sha256, gaussian_noisy, grid_patches, photo_files, photo_set

# ----------------------------------------------------------------------------- network


def test_scaled_dncnn_runs_its_residual_branch_on_unshuffled_pixels():
    net = DnCNN(width=8, depth=2, scale=2)
    x = torch.rand(2, 1, 20, 34, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net(x)
        expected = x - torch.nn.functional.pixel_shuffle(net.noise(torch.nn.functional.pixel_unshuffle(x, 2)), 2)
        torch.testing.assert_close(out, expected)
        odd = torch.rand(1, 1, 21, 33)
        padded = torch.cat([odd, odd[..., -1:, :]], dim=2)
        padded = torch.cat([padded, padded[..., -1:]], dim=3)  # the last row and column repeated: 22 x 34
        torch.testing.assert_close(net(odd), odd - (padded - net(padded))[..., :21, :33])
    assert net.noise[0].in_channels == 4 and net.noise[-1].out_channels == 4 and "scale=2" in repr(net)
    with pytest.raises(ValueError, match="scale: expected an integer >= 1"):
        DnCNN(scale=0)


def test_dncnn_natural_defaults_fit_the_weight_budget():
    spec = REGISTRY["dncnn_natural"]
    net = spec.build(width=spec.defaults["width"], depth=spec.defaults["depth"], scale=spec.defaults["scale"])
    n_bytes = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    assert n_bytes < 10 * 1024**2  # issue 19: weights under 10 MB
    assert spec.defaults["sigma_max"] == pytest.approx(55 / 255) and spec.val_first_seed is None
    torch.manual_seed(0)
    he_init(net)
    hidden, out = net.noise[2].weight, net.noise[-1].weight
    assert float(hidden.std()) == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05) and float(out.abs().max()) < 1e-2
    assert all(float(m.bias.abs().max()) == 0 for m in net.modules() if isinstance(m, torch.nn.Conv2d))


# ----------------------------------------------------------------------------- photographs


def _write_set(folder, shapes, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for k, shape in enumerate(shapes):
        io.imsave(folder / f"img{k:03d}.png", rng.integers(0, 256, shape, dtype=np.uint8), check_contrast=False)


@pytest.fixture
def photo_dir(tmp_path):
    _write_set(tmp_path / "train400", [(100, 100)] * 3, 0)
    _write_set(tmp_path / "bsd68", [(41, 30), (30, 41)], 1)
    return tmp_path


def test_photo_set_reads_gray_pngs_in_name_order(photo_dir):
    images, files = photo_set("bsd68", photo_dir)
    assert [f.name for f in files] == ["img000.png", "img001.png"]
    assert [tuple(i.shape) for i in images] == [(1, 1, 41, 30), (1, 1, 30, 41)]
    np.testing.assert_array_equal(images[0][0, 0].numpy() * 255, io.imread(files[0]).astype(np.float32))
    digest = file_list_sha256(files)
    io.imsave(files[1], np.zeros((30, 41), dtype=np.uint8), check_contrast=False)
    assert file_list_sha256(files) != digest  # contents count, not only names


def test_photo_set_rejects_missing_rgb_and_broken_files(photo_dir):
    with pytest.raises(ValueError, match="data_dir: expected PNG images in .*nowhere"):
        photo_files("nowhere", photo_dir)
    io.imsave(photo_dir / "bsd68" / "img002.png", np.zeros((8, 8, 3), dtype=np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match="expected an 8-bit grayscale image in .*img002.png, received dtype uint8, shape"):
        photo_set("bsd68", photo_dir)
    (photo_dir / "bsd68" / "img002.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="img002.png is not a readable image"):
        photo_set("bsd68", photo_dir)


def test_grid_patches_are_the_windows_on_the_grid():
    img = torch.arange(7 * 9.0).reshape(1, 1, 7, 9)
    patches = grid_patches([img, img], 3, 2)  # corners rows 0, 2, 4 and columns 0, 2, 4, 6
    assert patches.shape == (2 * 3 * 4, 1, 3, 3)
    torch.testing.assert_close(patches[5], img[0, :, 2:5, 2:5])
    torch.testing.assert_close(patches[12 + 11], img[0, :, 4:7, 6:9])


def test_augmented_batches_are_flips_and_rotations_of_the_same_crops():
    clean = torch.rand(6, 1, 12, 12, generator=torch.Generator().manual_seed(3))

    def targets(augment: bool) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(7)
        return [t for _, t in loop.noisy_patch_batches(clean, (8, 8), 4, 0.1, gen, gaussian_noisy, augment=augment)]

    for plain, moved in zip(torch.cat(targets(False)), torch.cat(targets(True))):
        images = [torch.rot90(plain, k, dims=(-2, -1)) for k in range(4)]
        assert any(torch.equal(moved, m) for m in images + [m.flip(-1) for m in images])
    with pytest.raises(ValueError, match="crop: augmentation needs a square 2D crop"):
        next(loop.noisy_patch_batches(clean, (8, 6), 4, 0.1, torch.Generator(), gaussian_noisy, augment=True))


# ----------------------------------------------------------------------------- training


def _tiny(photo_dir) -> list[str]:
    return ["--threads", "1", "--epochs", "2", "--n-train", "2", "--n-val", "2", "--batch-size", "8", "--width", "4",
            "--depth", "2", "--crop", "32", "--data-dir", str(photo_dir)]  # fmt: skip


def test_dncnn_natural_training_writes_a_card_and_loads_offline(photo_dir, tmp_path, torch_state):
    card = main(["dncnn_natural", *_tiny(photo_dir), "--out-dir", str(tmp_path / "w")])
    assert card["model"]["kwargs"] == {"width": 4, "depth": 2, "scale": 2}
    assert card["data"]["file_list_sha256"] == file_list_sha256(photo_files("train400", photo_dir)[:2])
    assert card["training"]["windows"] == 2 * 2 * 2 and len(card["training"]["history"]) == 2  # 100 px: corners 0, 20 per axis
    assert len(card["validation"]["psnr_net"]) == 3 and card["command"].startswith("python -m recon.training dncnn_natural")
    net = load("dncnn_natural", weights_dir=tmp_path / "w")
    assert isinstance(net, DnCNN) and net.scale == 2 and not net.training
    with pytest.raises(ValueError, match="--n-train/--n-val"):
        main(["dncnn_natural", *_tiny(photo_dir), "--n-val", "69", "--out-dir", str(tmp_path / "w")])


def test_an_interrupted_run_resumes_to_the_same_weights(photo_dir, tmp_path, interrupt_run, torch_state):
    main(["dncnn_natural", *_tiny(photo_dir), "--out-dir", str(tmp_path / "whole")])
    out = ["--out-dir", str(tmp_path / "parts")]
    interrupt_run(lambda: main(["dncnn_natural", *_tiny(photo_dir), *out]), loop, "run_epoch")
    assert torch.load(tmp_path / "parts" / "dncnn_natural.ckpt", weights_only=False)["history"][0]["epoch"] == 1
    with pytest.raises(ValueError, match="--resume: the checkpoint .* other options"):
        main(["dncnn_natural", *_tiny(photo_dir), "--lr", "0.01", "--resume", *out])
    ckpt = tmp_path / "parts" / "dncnn_natural.ckpt"  # a checkpoint written before a CLI option existed still resumes
    state = torch.load(ckpt, weights_only=False)
    assert state["config"].pop("sizes") is None
    torch.save(state, ckpt)
    card = main(["dncnn_natural", *_tiny(photo_dir), "--resume", *out])
    assert [h["epoch"] for h in card["training"]["history"]] == [1, 2]
    whole, parts = (torch.load(tmp_path / d / "dncnn_natural.pt") for d in ("whole", "parts"))
    for key, value in whole.items():  # the same run, to float32 rounding inside one process (test_dncnn.py)
        torch.testing.assert_close(parts[key], value, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="--resume: expected a checkpoint file"):
        main(["dncnn_natural", *_tiny(photo_dir), "--resume", "--out-dir", str(tmp_path / "empty")])


def test_bsd68_benchmark_scores_a_network_and_bm3d_on_the_same_images(photo_dir, tmp_path, torch_state, capsys):
    import importlib.util
    from pathlib import Path

    pytest.importorskip("bm3d", reason="the bm3d package comes with the bench extra")
    main(["dncnn_natural", *_tiny(photo_dir), "--out-dir", str(tmp_path / "w")])
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bsd68.py"
    spec = importlib.util.spec_from_file_location("bsd68_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    code = bench.main(["--data-dir", str(photo_dir), "--weights-dir", str(tmp_path / "w"), "--threads", "1",
                       "--json", str(tmp_path / "r.json")])  # fmt: skip
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 15 |") or line.startswith("| 50 |")]
    assert len(rows) == 2 and code == 1  # an untrained net misses BM3D's published figures
    import json

    res = json.loads((tmp_path / "r.json").read_text())["results"]
    assert len(res["25"]["ours"]) == len(res["25"]["bm3d"]) == 2
    assert min(res["25"]["bm3d"]) > max(res["25"]["noisy"])  # BM3D told the true sigma denoises
