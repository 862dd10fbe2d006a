"""SenseMRI's complex path and layout converters; the qMRI model's analytic derivatives; the qMRI
reconstructions (NLCG monotone, dictionary fit exact on noise-free signals, subspace basis) and
their input checks."""

from __future__ import annotations

import pytest
import torch

import recon
from operators.mri import SenseMRI, to_channels, to_complex
from operators.qmri import QuantitativeMRI
from recon.methods.qmri import dictionary_fit, nlcg_maps, subspace_basis
from recon.result import ReconInfo
from recon.solvers import History

TE = [23.0 * k for k in range(1, 9)]
TI = [35.0, 150.0, 300.0, 1000.0, 3000.0]


def _sense(n_echoes: int = 8, h: int = 12, w: int = 10, n_coils: int = 4, seed: int = 0, dtype=torch.complex128):
    gen = torch.Generator().manual_seed(seed)
    maps = torch.randn(n_coils, h, w, dtype=dtype, generator=gen)
    maps = maps / maps.abs().square().sum(0).sqrt()  # rss-normalised
    masks = (torch.rand(n_echoes, h, w, generator=gen) < 0.5).to(maps.real.dtype)
    return SenseMRI(masks, maps)


def _maps(model: str, h: int = 12, w: int = 10, seed: int = 1, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, h, w, dtype=dtype, generator=gen)
    lo, hi = (5.0, 20.0) if model == "t2" else (0.5, 3.0)
    x[:, 2] = lo + (hi - lo) * torch.rand(h, w, dtype=dtype, generator=gen)
    return x


def test_converters_round_trip_and_reject_the_other_layout():
    z = torch.randn(2, 3, 4, dtype=torch.complex64)
    x = to_channels(z)
    assert x.shape == (2, 2, 3, 4) and torch.equal(to_complex(x), z)
    with pytest.raises(TypeError, match="z: expected a complex tensor"):
        to_channels(x)
    with pytest.raises(ValueError, match=r"x: expected a real tensor \(B, 2"):
        to_complex(torch.randn(2, 3, 4))


def test_sense_complex_path_adjoint_and_matches_deepinv_layout():
    op = _sense()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 12, 10, dtype=torch.complex128, generator=gen)
    v = torch.randn(2, 4, 8, 12, 10, dtype=torch.complex128, generator=gen)
    lhs, rhs = torch.vdot(op.A_complex(x).flatten(), v.flatten()), torch.vdot(x.flatten(), op.A_adjoint_complex(v).flatten())
    assert abs(lhs - rhs) < 1e-12 * abs(lhs)
    torch.testing.assert_close(to_channels(op.A_complex(x)), op.A(to_channels(x)), rtol=0, atol=0)


def test_sense_full_mask_with_rss_maps_is_an_isometry():
    op = _sense()
    full = op.with_mask(torch.ones(8, 12, 10, dtype=torch.float64))
    x = torch.randn(1, 8, 12, 10, dtype=torch.complex128)
    torch.testing.assert_close(full.A_adjoint_complex(full.A_complex(x)), x)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"mask": torch.ones(2, 12, 11)}, ValueError, r"coil_maps: expected the image size \(12, 11\)"),
        ({"mask": torch.ones(1, 2, 12, 10)}, ValueError, r"mask: expected shape \(H, W\) or \(E, H, W\)"),
        ({"mask": 0.5 * torch.ones(12, 10)}, ValueError, "mask: expected a 0/1 sampling mask"),
        ({"coil_maps": torch.ones(3, 12, 10)}, TypeError, "coil_maps: expected a complex tensor"),
        ({"coil_maps": torch.ones(12, 10, dtype=torch.complex64)}, ValueError, r"coil_maps: expected a complex tensor \(N, H, W\)"),
        ({"n_echoes": 3}, ValueError, "n_echoes: expected None or 2"),
    ],
)
def test_sense_bad_construction(kwargs, error, match):
    args = {"mask": torch.ones(2, 12, 10), "coil_maps": torch.ones(3, 12, 10, dtype=torch.complex64), **kwargs}
    with pytest.raises(error, match=match):
        SenseMRI(**args)


def test_sense_bad_data():
    op = _sense(dtype=torch.complex64)
    with pytest.raises(TypeError, match="x: expected a complex tensor"):
        op.A_complex(torch.randn(1, 8, 12, 10))
    with pytest.raises(ValueError, match=r"x: expected shape \(\*, 8, 12, 10\)"):
        op.A_complex(torch.randn(1, 7, 12, 10, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"y: expected shape \(\*, 4, 8, 12, 10\)"):
        op.A_adjoint_complex(torch.randn(1, 3, 8, 12, 10, dtype=torch.complex64))


@pytest.mark.parametrize("model,times", [("t2", TE), ("t1", TI)])
def test_analytic_gradient_and_jacobian_match_autograd(model, times):
    phys = QuantitativeMRI(_sense(len(times)), model, times)
    x = _maps(model)
    y = torch.randn(1, 4, len(times), 12, 10, dtype=torch.complex128, generator=torch.Generator().manual_seed(5))
    f, g = phys.data_fit(x, y)
    xr = x.clone().requires_grad_(True)
    f_auto = 0.5 * (phys.A(xr) - y).abs().square().sum()
    (g_auto,) = torch.autograd.grad(f_auto, xr)
    torch.testing.assert_close(f, f_auto.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(g, g_auto, rtol=1e-10, atol=1e-12)
    dx = torch.randn_like(x)
    _, jv = torch.func.jvp(phys.A, (x,), (dx,))
    torch.testing.assert_close(phys.jvp(x, dx), jv, rtol=1e-10, atol=1e-12)
    v = torch.randn_like(y)
    # <J dx, v> (real part) equals <dx, J^H v>
    lhs = torch.vdot(phys.jvp(x, dx).flatten(), v.flatten()).real
    torch.testing.assert_close(lhs, (dx * phys.vjp(x, v)).sum(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("model,times", [("t2", TE), ("t1", TI)])
def test_dictionary_fit_recovers_noise_free_maps(model, times):
    phys = QuantitativeMRI(_sense(len(times)), model, times)
    x = _maps(model)
    est = dictionary_fit(phys, phys.signal(x), n_rates=4000)
    # grid spacing of 4000 log-spaced rates over the range: about 0.15 % in R
    torch.testing.assert_close(est[:, 2], x[:, 2], rtol=2e-3, atol=0)
    torch.testing.assert_close(est[:, :2], x[:, :2], rtol=0, atol=2e-2 * float(x[:, :2].abs().max()))


def test_subspace_basis_is_orthonormal_and_captures_the_dictionary():
    phys = QuantitativeMRI(_sense(8), "t2", TE)
    phi = subspace_basis(phys, 4)
    torch.testing.assert_close(phi.T @ phi, torch.eye(4, dtype=phi.dtype))
    atoms = phys.atoms(torch.tensor([5.0, 12.5, 9.1, 1.0], dtype=torch.float64))
    resid = atoms - (atoms @ phi) @ phi.T
    assert float(resid.norm() / atoms.norm()) < 1e-2  # measured 3.7e-3 for rank 4


def test_nlcg_reduces_the_objective_monotonically():
    phys = QuantitativeMRI(_sense(8, 16, 16, seed=2), "t2", TE)
    x = _maps("t2", 16, 16)
    y = phys.A(x)
    _, info = nlcg_maps(phys, y, max_iter=60, progress=False)
    assert isinstance(info, ReconInfo) and info.n_iter == len(info.history.objective) and info.seconds > 0
    assert info.params == {"model": "t2", "max_iter": 60, "tol": 1e-6} and info.extra["data_scale"] > 0
    obj = torch.tensor(info.history.objective)
    assert bool((obj[1:] <= obj[:-1]).all())
    assert float(obj[-1]) < 1e-2 * float(obj[0])


def test_methods_accept_sense_with_model_and_times():
    sense = _sense(5, seed=4)
    x = _maps("t1")
    y = QuantitativeMRI(sense, "t1", TI).A(x)
    a, _ = recon.qmri_fit(sense, y, model="t1", inversion_times=TI, progress=False)
    b, _ = recon.qmri_fit(QuantitativeMRI(sense, "t1", TI), y, progress=False)
    torch.testing.assert_close(a, b)


def test_cg_methods_report_one_typed_result():
    phys = QuantitativeMRI(_sense(8, seed=3), "t2", TE)
    y = phys.A(_maps("t2"))
    maps, info = recon.qmri_fit(phys, y, max_iter=7, tol=1e-12, progress=False)
    assert isinstance(info.history, History) and info.n_iter == 7 and not info.converged and info.stop_reason == "max_iter"
    assert info.params == {"model": "t2", "max_iter": 7, "tol": 1e-12} and info.extra["images"].shape == (1, 8, 12, 10)
    torch.testing.assert_close(maps, dictionary_fit(phys, info.extra["images"]))  # the fit of the reported images
    maps, info = recon.subspace_recon(phys, y, rank=3, progress=False)
    assert info.params["rank"] == 3 and info.extra["basis"].shape == (8, 3) and info.extra["images"].shape == (1, 8, 12, 10)
    assert info.n_iter == len(info.history.residual) >= 1 and info.extra["data_scale"] > 0


@pytest.mark.parametrize(
    "times,match",
    [
        ([23.0 * k for k in range(1, 8)], r"echo_times: expected 8 times in ms"),
        ([23.0, 46.0, 46.0, 92.0, 115.0, 138.0, 161.0, 184.0], "strictly increasing"),
        ([184.0 - 23.0 * k for k in range(8)], "strictly increasing"),
        ([float("nan")] + TE[1:], "finite"),
    ],
)
def test_bad_echo_times(times, match):
    with pytest.raises(ValueError, match=match):
        QuantitativeMRI(_sense(8), "t2", times)


def test_bad_model_and_arguments():
    sense = _sense(8)
    with pytest.raises(ValueError, match="model: expected one of"):
        QuantitativeMRI(sense, "t3", TE)
    with pytest.raises(TypeError, match="sense: expected an operators.mri.SenseMRI"):
        QuantitativeMRI(object(), "t2", TE)
    with pytest.raises(ValueError, match="echo_times: expected the sampling times"):
        recon.nlcg_maps(sense, torch.zeros(1, 4, 8, 12, 10, dtype=torch.complex128), model="t2")
    with pytest.raises(ValueError, match="inversion_times: expected None for model='t2'"):
        recon.qmri_fit(sense, torch.zeros(1, 4, 8, 12, 10, dtype=torch.complex128), model="t2", echo_times=TE, inversion_times=TI)
    phys = QuantitativeMRI(sense, "t2", TE)
    with pytest.raises(TypeError, match="y: expected complex k-space"):
        recon.qmri_fit(phys, torch.zeros(1, 4, 8, 12, 10))
    with pytest.raises(ValueError, match=r"y: expected shape \(\*, 4, 8, 12, 10\)"):
        recon.subspace_recon(phys, torch.ones(1, 4, 7, 12, 10, dtype=torch.complex128))
    with pytest.raises(ValueError, match="rank: expected at most the number of echoes 8"):
        recon.subspace_recon(phys, torch.ones(1, 4, 8, 12, 10, dtype=torch.complex128), rank=9)
    with pytest.raises(ValueError, match=r"x: expected shape \(\*, 3, 12, 10\)"):
        phys.A(torch.zeros(1, 2, 12, 10, dtype=torch.float64))


def test_split_samples_partitions_the_mask_and_keeps_the_centre():
    from recon.methods.nlcg_net import CENTRE_BLOCK, split_samples

    mask = (torch.rand(3, 16, 20, generator=torch.Generator().manual_seed(8)) < 0.5).double()
    mask[:, 6:10, 8:12] = 1
    keep, taken = split_samples(mask, 0.4, torch.Generator().manual_seed(0))
    assert torch.equal(keep + taken, mask) and float((keep * taken).abs().sum()) == 0.0
    c0, c1 = 8 - CENTRE_BLOCK // 2, 10 - CENTRE_BLOCK // 2
    assert float(taken[:, c0 : c0 + CENTRE_BLOCK, c1 : c1 + CENTRE_BLOCK].sum()) == 0.0
    eligible = mask.sum((1, 2)) - CENTRE_BLOCK**2
    assert torch.equal(taken.sum((1, 2)), torch.round(0.4 * eligible))


def test_nlcg_net_runs_and_reports_its_training():
    phys = QuantitativeMRI(_sense(8, 16, 16, seed=2, dtype=torch.complex64), "t2", TE)
    x = _maps("t2", 16, 16, dtype=torch.float32)
    y = phys.A(x)
    maps, info = recon.nlcg_net(phys, y, warm_iter=5, n_blocks=1, dc_iter=2, n_splits=2, max_epochs=2, progress=False)
    assert maps.shape == (1, 3, 16, 16) and bool(torch.isfinite(maps).all())
    assert isinstance(info, ReconInfo) and info.n_iter == 2 and info.stop_reason == "max_epochs" and not info.converged
    assert info.history.residual == info.extra["val_loss"] and len(info.extra["val_loss"]) == 2
    assert info.history.objective == info.extra["train_loss"] and len(info.extra["grad_norm"]) == 4  # 2 epochs x 2 splits
    assert info.extra["warm_start"].shape == maps.shape and info.extra["warm_history"].iterations == 5
    assert info.params["lam"] > 0 and info.params["lam_init"] == 0.05 and info.params["n_splits"] == 2
    # the patience stop: with patience 1 the run ends at the first epoch that does not improve the validation loss
    _, info = recon.nlcg_net(phys, y, warm_iter=5, n_blocks=1, dc_iter=2, n_splits=2, max_epochs=8, patience=1, lr=1e-12,
                             lr_lambda=1e-12, warm_start=info.extra["warm_start"], progress=False)  # fmt: skip
    assert info.converged and info.stop_reason == "patience" and info.n_iter < 8 and info.extra["warm_history"] is None


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rho": 1.5}, "rho: expected a fraction"), ({"val_fraction": 0.0}, "val_fraction"), ({"n_blocks": 0}, "n_blocks"),
        ({"grad_clip": 0.0}, "grad_clip: expected a number > 0"),
    ],
)
def test_nlcg_net_bad_arguments(kwargs, match):
    phys = QuantitativeMRI(_sense(8, 16, 16, dtype=torch.complex64), "t2", TE)
    y = phys.A(_maps("t2", 16, 16, dtype=torch.float32))
    with pytest.raises(ValueError, match=match):
        recon.nlcg_net(phys, y, warm_iter=1, **kwargs)
    with pytest.raises(ValueError, match="y: expected one scan"):
        recon.nlcg_net(phys, torch.cat([y, y]), warm_iter=1)
