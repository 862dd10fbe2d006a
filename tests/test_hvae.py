"""The hierarchical VAE of PnP-HVAE (denoisers.hvae) and its training entry (``hvae``), without shipped weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import io

from denoisers import load, zoo
from denoisers.hvae import HVAE, gaussian_kl
from recon.training import REGISTRY, main
from recon.training import hvae as hvae_recipe
from recon.training.data import (
    HVAE_HELD_OUT_IMAGES,
    HVAE_TRAIN_IMAGES,
    file_list_sha256,
    hvae_image,
    hvae_patches,
    hvae_pool,
    hvae_texture,
    hvae_tiles,
    photo_files,
    photo_set,
)
from recon.training.hvae import evaluate_hvae


def _images(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 1, h, w, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- shapes and validation


@pytest.mark.parametrize("hw", [(64, 64), (128, 128), (48, 80)])
def test_shapes_of_every_output(vae, hw):
    h, w = hw
    x = _images(2, h, w)
    with torch.no_grad():
        stats = vae.elbo(x)
        z = vae.encode(x, [0.0, 0.5, 1.0])
        feats = vae.bottom_up(x)
        mean = vae.decode(z)
        samples = vae.sample(3, (h, w), temperature=0.7)
        rec = vae(x)
    assert vae.n_levels == 3 and vae.stride == 8 and vae.strides == (8, 4, 2)
    assert stats["recon"].shape == stats["total"].shape == stats["bits_per_dim"].shape == (2,)
    assert stats["kl"].shape == (2, 3) and stats["mean"].shape == x.shape
    assert [tuple(zl.shape) for zl in z] == [(2, 3, h // s, w // s) for s in (8, 4, 2)]
    assert {s: tuple(e.shape) for s, e in feats.items()} == {8: (2, 16, h // 8, w // 8), 4: (2, 16, h // 4, w // 4), 2: (2, 16, h // 2, w // 2)}
    assert mean.shape == rec.shape == x.shape and samples.shape == (3, 1, h, w)
    assert all(torch.isfinite(t).all() for t in (mean, rec, samples))


def test_rejects_bad_images_and_arguments(vae):
    with pytest.raises(ValueError, match=r"x: expected H and W positive and divisible by 8, received \(1, 1, 130, 128\)"):
        vae.elbo(torch.zeros(1, 1, 130, 128))
    with pytest.raises(ValueError, match="x: expected H and W positive and divisible by 8"):
        vae.encode(torch.zeros(2, 1, 64, 60), [0.0] * 3)
    with pytest.raises(ValueError, match="x: expected 1 channel"):
        vae.top_down(torch.zeros(1, 3, 64, 64), lambda l, nu, tau, mu, sigma: nu)
    with pytest.raises(ValueError, match="x: expected a 4-D tensor"):
        vae(torch.zeros(64, 64))
    with pytest.raises(ValueError, match="size: expected a positive int or"):
        vae.sample(1, 60)
    with pytest.raises(ValueError, match=r"z\[1\]: expected shape \(1, 3, 16, 16\)"):
        vae.decode([torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 32, 32)])
    with pytest.raises(ValueError, match="z: expected a list of 3 latent tensors"):
        vae.decode([torch.zeros(1, 3, 8, 8)])
    with pytest.raises(ValueError, match="strides: expected non-increasing powers of two"):
        HVAE(strides=(4, 8))
    with pytest.raises(ValueError, match="widths: expected an int or 3 ints"):
        HVAE(widths=(8, 8), strides=(4, 2))
    with pytest.raises(ValueError, match="gamma: expected a finite number > 0"):
        HVAE(gamma=0.0)


@pytest.mark.parametrize("bad", [[0.0, 1.0], [0.0, 1.0, 1.0, 1.0], [0.5, -0.1, 1.0], [0.5, float("nan"), 1.0], [1.0, float("inf"), 1.0]])
def test_rejects_bad_temperatures(vae, bad):
    x = _images(1, 64, 64)
    with pytest.raises(ValueError, match="temperatures"):
        vae.encode(x, bad)
    with pytest.raises(ValueError, match="temperatures"):
        vae.sample(1, 64, temperature=bad)


# ----------------------------------------------------------------------------- encode / decode / top_down


def test_encode_at_temperature_zero_is_deterministic(vae):
    x = _images(2, 64, 64, seed=1)
    with torch.no_grad():
        z1, z2 = vae.encode(x, [0.0, 0.0, 0.0]), vae.encode(x, 0.0)
        for a, b in zip(z1, z2):
            assert torch.equal(a, b)
        assert torch.equal(vae.decode(z1), vae.decode(z2))
        torch.testing.assert_close(vae.decode(z1), vae(x), rtol=0, atol=0)
        # temperature > 0 samples: seeded draws repeat, and differ from the means
        za = vae.encode(x, [0.0, 1.0, 1.0], generator=torch.Generator().manual_seed(3))
        zb = vae.encode(x, [0.0, 1.0, 1.0], generator=torch.Generator().manual_seed(3))
        assert all(torch.equal(a, b) for a, b in zip(za, zb))
        assert torch.equal(za[0], z1[0]) and not torch.equal(za[2], z1[2])


def test_top_down_callback_sees_documented_tensors_and_z_nu_is_encode_zero(vae):
    x = _images(2, 48, 80, seed=2)
    seen = []

    def choose(level, nu, tau, mu, sigma):
        seen.append((level, nu.shape, tau.shape, mu.shape, sigma.shape))
        assert bool((tau > 0).all()) and bool((sigma > 0).all())
        return nu

    with torch.no_grad():
        z, mean = vae.top_down(x, choose)
        z0 = vae.encode(x, [0.0] * 3)
    expected = [(l, *[torch.Size((2, 3, 48 // s, 80 // s))] * 4) for l, s in enumerate((8, 4, 2))]
    assert seen == expected
    for a, b in zip(z, z0):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(mean, vae.decode(z0), rtol=0, atol=0)
    with pytest.raises(ValueError, match="choose: expected a tensor of shape"):
        vae.top_down(x, lambda l, nu, tau, mu, sigma: nu[:, :1])


def test_top_down_pnp_z_step_interpolates_posterior_and_prior(vae):
    """The PnP-HVAE rule with T_l -> 0 pulls z to the prior mean; beta = 1, T = 1 gives b = 0, i.e. z = nu."""
    x = _images(1, 64, 64, seed=4)

    def z_step(beta, temps):
        def choose(l, nu, tau, mu, sigma):
            b, pt = 1 - beta * temps[l] ** 2, (temps[l] * sigma) ** 2
            return (beta * nu / tau**2 + b * mu / pt) / (beta / tau**2 + b / pt)

        return choose

    with torch.no_grad():
        z_post, _ = vae.top_down(x, z_step(1.0, [1.0, 1.0, 1.0]))
        for a, b in zip(z_post, vae.encode(x, 0.0)):
            torch.testing.assert_close(a, b)
        mus = []

        def record(l, nu, tau, mu, sigma):
            z = z_step(1.0, [1e-4] * 3)(l, nu, tau, mu, sigma)
            mus.append(mu)
            return z

        z_prior, _ = vae.top_down(x, record)
        for a, m in zip(z_prior, mus):
            torch.testing.assert_close(a, m, rtol=1e-4, atol=1e-5)


def test_float64_input_gives_float64_mean(vae):
    x = _images(1, 64, 64).double()
    with torch.no_grad():
        assert vae(x).dtype == torch.float64
        torch.testing.assert_close(vae(x).float(), vae(x.float()), rtol=0, atol=0)


# ----------------------------------------------------------------------------- ELBO, KL, prior


def test_elbo_terms_are_finite_and_kl_is_nonnegative(vae):
    x = _images(3, 64, 64, seed=5)
    with torch.no_grad():
        s = vae.elbo(x, generator=torch.Generator().manual_seed(0))
    assert all(bool(torch.isfinite(v).all()) for v in s.values())
    assert bool((s["kl"] >= 0).all()) and bool((s["kl"] > 0).all())
    torch.testing.assert_close(s["total"], s["recon"] + s["kl"].sum(1))
    d = 64 * 64
    torch.testing.assert_close(s["bits_per_dim"], s["total"] / (d * math.log(2)) + math.log2(255))
    recon = (x - s["mean"]).square().flatten(1).sum(1) / (2 * vae.gamma**2) + d * math.log(vae.gamma * math.sqrt(2 * math.pi))
    torch.testing.assert_close(s["recon"], recon)


def test_gaussian_kl_is_the_analytic_kl():
    g = torch.Generator().manual_seed(0)
    nu, mu = torch.randn(50, generator=g), torch.randn(50, generator=g)
    tau, sigma = torch.rand(50, generator=g) + 0.1, torch.rand(50, generator=g) + 0.1
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(nu, tau), torch.distributions.Normal(mu, sigma))
    torch.testing.assert_close(gaussian_kl(nu, tau, mu, sigma), ref)
    assert float(gaussian_kl(mu, sigma, mu, sigma).abs().max()) < 1e-6


def test_untrained_model_has_prior_equal_posterior():
    torch.manual_seed(0)
    model = HVAE(widths=8, z_channels=2, strides=(4, 2), enc_blocks=1, dec_blocks=0)
    with torch.no_grad():
        s = model.elbo(_images(2, 32, 32))
    assert float(s["kl"].abs().max()) < 1e-6


def test_log_prior_is_the_sum_of_gaussian_log_densities(vae):
    x = _images(2, 64, 64, seed=6)
    temps = [0.5, 0.8, 1.2]
    terms = []

    def choose(l, nu, tau, mu, sigma):
        terms.append(torch.distributions.Normal(mu, temps[l] * sigma).log_prob(nu).flatten(1).sum(1))
        return nu

    with torch.no_grad():
        z, _ = vae.top_down(x, choose)
        torch.testing.assert_close(vae.log_prior(z, temps), torch.stack(terms, 1).sum(1))
    with pytest.raises(ValueError, match="temperatures: expected numbers > 0"):
        vae.log_prior(z, [0.0, 1.0, 1.0])


def test_gradients_flow_and_one_step_lowers_the_loss():
    torch.manual_seed(0)
    model = HVAE(widths=(8, 16, 16), z_channels=2, strides=(4, 2), enc_blocks=1, dec_blocks=1)
    x = _images(4, 32, 32, seed=7)

    def loss() -> torch.Tensor:
        return model.elbo(x, generator=torch.Generator().manual_seed(0))["total"].mean() / x[0].numel()

    before = loss()
    before.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    sq_norm = sum(float(g.square().sum()) for g in grads)
    assert sq_norm > 0
    # a gradient step whose first-order decrease is 0.01 nats per dimension (the loss is steep:
    # its curvature along the output convolution is ~ 1 / gamma^2)
    step = 0.01 / sq_norm
    with torch.no_grad():
        for p in model.parameters():
            p -= step * p.grad
        assert float(loss()) < float(before) - 0.004


def test_default_hvae_fits_the_weight_budget():
    spec = REGISTRY["hvae"]
    model = spec.build(widths=spec.defaults["widths"], z_channels=spec.defaults["z_channels"], gamma=spec.defaults["gamma"])
    assert model.strides == (8, 4, 2) and model.n_levels >= 3 and model.gamma == pytest.approx(5 / 255)
    n_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert n_bytes < 5 * 1024**2
    with torch.no_grad():
        assert model(torch.rand(1, 1, 128, 128)).shape == (1, 1, 128, 128)


# ----------------------------------------------------------------------------- training data


def test_held_out_images_are_not_training_images():
    assert not set(HVAE_TRAIN_IMAGES) & set(HVAE_HELD_OUT_IMAGES)
    assert "camera" in HVAE_HELD_OUT_IMAGES
    cam = hvae_image("camera")
    assert cam.shape == (1, 1, 512, 512) and cam.dtype == torch.float32 and 0.0 <= float(cam.min()) < float(cam.max()) <= 1.0
    assert hvae_image("astronaut").shape == (1, 1, 512, 512)  # RGB -> gray
    with pytest.raises(ValueError, match="name: expected one of"):
        hvae_image("lena")


def test_textures_and_patches_are_seeded():
    t = hvae_texture(64, seed=3)
    assert t.shape == (1, 1, 64, 64) and float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    assert torch.equal(t, hvae_texture(64, seed=3)) and not torch.equal(t, hvae_texture(64, seed=4))
    pool = {"natural": [hvae_image("text")], "coule": [torch.rand(1, 1, 40, 50)], "texture": [hvae_texture(48, 0)]}
    a = hvae_patches(pool, 12, 32, torch.Generator().manual_seed(0))
    b = hvae_patches(pool, 12, 32, torch.Generator().manual_seed(0))
    assert a.shape == (12, 1, 32, 32) and torch.equal(a, b) and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    tiles = hvae_tiles([hvae_image("camera"), torch.rand(1, 1, 100, 140)], 64)
    assert tiles.shape == (64 + 2, 1, 64, 64)
    torch.testing.assert_close(tiles[1, 0], hvae_image("camera")[0, 0, :64, 64:128], rtol=0, atol=0)


# ----------------------------------------------------------------------------- training entry


TINY = [
    "--threads", "1", "--epochs", "2", "--patches", "16", "--batch-size", "8", "--n-train", "2", "--n-val", "1",
    "--widths", "8", "8", "8", "8", "--z-channels", "2", "--crop", "64",
]  # fmt: skip


@pytest.fixture
def photo_dir(tmp_path):
    """A stand-in for ../shared/datasets: three 100x100 train400 and two bsd68 PNGs (one and two 64x64 tiles)."""
    rng = np.random.default_rng(0)
    for name, shapes in (("train400", [(100, 100)] * 3), ("bsd68", [(70, 70), (70, 130)])):
        (tmp_path / name).mkdir()
        for k, shape in enumerate(shapes):
            io.imsave(tmp_path / name / f"img{k:03d}.png", rng.integers(0, 256, shape, dtype=np.uint8), check_contrast=False)
    return tmp_path


def test_hvae_training_smoke_and_zoo_roundtrip(photo_dir, tmp_path, torch_state):
    card = main(["hvae", *TINY, "--data-dir", str(photo_dir), "--out-dir", str(tmp_path / "w")])
    assert card["model"]["class"] == "denoisers.hvae.HVAE"
    assert card["model"]["kwargs"]["strides"] == [8, 4, 2] and card["model"]["kwargs"]["widths"] == [8, 8, 8, 8]
    assert card["model"]["n_parameters"] > 0 and card["training"]["crop"] == 64
    assert len(card["training"]["history"]) == 2 and len(card["training"]["history"][0]["train_kl_bits_per_dim"]) == 3
    assert card["data"]["file_list_sha256"] == file_list_sha256(photo_files("train400", photo_dir)[:2])
    test = card["test"]
    assert test["n_tiles"] == 3 and math.isfinite(test["bits_per_dim"]) and math.isfinite(test["psnr_recon"])
    assert card["validation"]["images"] == ["img000.png"]
    net = load("hvae", weights_dir=tmp_path / "w")
    assert isinstance(net, HVAE) and not net.training and net.gamma == pytest.approx(5 / 255)
    # the test figures of the card are reproduced from the written weights
    tiles = hvae_tiles(photo_set("bsd68", photo_dir)[0], test["tile"])
    assert evaluate_hvae(net, tiles)["bits_per_dim"] == pytest.approx(test["bits_per_dim"], rel=1e-5)


def test_an_interrupted_hvae_run_resumes_to_the_same_weights(photo_dir, tmp_path, interrupt_run, torch_state):
    run = ["hvae", *TINY, "--data-dir", str(photo_dir)]
    main([*run, "--out-dir", str(tmp_path / "whole")])
    interrupt_run(lambda: main([*run, "--out-dir", str(tmp_path / "parts")]), hvae_recipe, "evaluate_hvae")
    card = main([*run, "--resume", "--out-dir", str(tmp_path / "parts")])
    assert [h["epoch"] for h in card["training"]["history"]] == [1, 2]
    whole, parts = (torch.load(tmp_path / d / "hvae.pt") for d in ("whole", "parts"))
    for key, value in whole.items():  # to float32 rounding inside one process (test_dncnn.py)
        torch.testing.assert_close(parts[key], value, rtol=1e-4, atol=1e-6)


def test_hvae_training_rejects_bad_options(photo_dir, tmp_path, torch_state):
    run = ["hvae", *TINY, "--data-dir", str(photo_dir), "--out-dir", str(tmp_path)]
    with pytest.raises(SystemExit):
        main(["hvae", "--sigma-max", "0.1", "--out-dir", str(tmp_path)])  # a denoiser option
    with pytest.raises(ValueError, match="--crop"):
        main([*run, "--crop", "60"])
    with pytest.raises(ValueError, match="--gamma"):
        main([*run, "--gamma", "0"])
    with pytest.raises(ValueError, match="--n-train/--n-val"):
        main([*run, "--n-val", "69"])


def test_hvae_pool_uses_training_seeds_only():
    pool = hvae_pool(range(2), natural=("text",))
    assert [len(pool[k]) for k in ("natural", "coule", "texture")] == [1, 2, 2]
    assert pool["coule"][0].shape == (1, 1, 256, 256)


def test_shipped_hvae_loads_offline_and_reproduces_the_cards_validation():
    """The shipped HVAE (trained on train400) gives its card's -ELBO and encode-decode PSNR on the card's BSD68 images."""
    info = zoo.card("hvae")
    vae = load("hvae")  # sha256-checked, offline
    assert isinstance(vae, HVAE) and not vae.training and vae.strides == (8, 4, 2)
    assert (zoo.WEIGHTS_DIR / "hvae.pt").stat().st_size < 5 * 1024**2
    assert info["model"]["n_parameters"] == sum(p.numel() for p in vae.parameters())
    val = info["validation"]
    try:
        images, files = photo_set("bsd68")
    except ValueError as err:
        pytest.skip(f"the BSD68 set is not on this machine: {err}")
    chosen = [img for img, f in zip(images, files) if f.name in val["images"]]
    assert len(chosen) == len(val["images"]) == 4
    got = evaluate_hvae(vae, hvae_tiles(chosen, info["training"]["crop"]))  # posterior noise seeded with 0, as in the card
    assert got["bits_per_dim"] == pytest.approx(val["bits_per_dim"], abs=1e-3)
    assert got["psnr_recon"] == pytest.approx(val["psnr_recon"], abs=0.01)
    assert got["bits_per_dim"] < 8.0  # better than a uniform model of the 8-bit pixel values
