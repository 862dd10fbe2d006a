"""One noise vocabulary: every public method that takes ``noise_level`` (relative, ``||e|| / ||A x||``) also takes
``noise_std`` (absolute, per measured entry; complex entries E|e_i|^2 = noise_std^2), and the two give the same
result when they describe the same noise: ``noise_std = r ||y|| / sqrt(1 + r^2) / sqrt(m)`` for ``noise_level=r``
(``||A x||^2 + ||e||^2 = ||y||^2`` on average, ``m`` measured entries).

The methods are found, not listed: every public function of :mod:`recon` and of the public modules of
:mod:`recon.methods` with a ``noise_level`` parameter must have a case in :data:`CASES`, so a new method cannot
skip the check.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil

import pytest
import torch
from deepinv.physics import BlurFFT, Inpainting
from deepinv.physics.functional.blur import gaussian_blur

import recon
import recon.methods
from operators import NearFieldMIMO, ParallelBeamCT
from operators import mimo_geometry as mg
from recon.noise import add_relative_noise, measured_entries
from recon.phantoms import coule_like


def _public_noise_methods() -> dict[str, object]:
    found = {name: getattr(recon, name) for name in recon.__all__}
    for mod in pkgutil.iter_modules(recon.methods.__path__):
        if not mod.name.startswith("_"):
            module = importlib.import_module(f"recon.methods.{mod.name}")
            found |= {name: getattr(module, name) for name in getattr(module, "__all__", [])}
    return {n: f for n, f in found.items() if inspect.isfunction(f) and "noise_level" in inspect.signature(f).parameters}


def _ct():
    physics = ParallelBeamCT(16, torch.linspace(0, math.pi, 21, dtype=torch.float64)[:-1], backend="numba")
    return physics, add_relative_noise(physics.A(coule_like(16, seed=5, dtype=torch.float64)), 0.03, seed=0)


def _blur():
    physics = BlurFFT((1, 32, 32), filter=gaussian_blur(sigma=(1.5, 1.5), dtype=torch.float64))
    return physics, add_relative_noise(physics.A(coule_like(32, seed=6, dtype=torch.float64)), 0.03, seed=1)


def _inpainting():
    physics = Inpainting(img_size=(1, 32, 32), mask=0.5, rng=torch.Generator().manual_seed(1))
    x = coule_like(32, seed=7, dtype=torch.float64)
    y = physics.A(x) + 0.03 * physics.mask * torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    return physics, y


def _mimo():
    physics = NearFieldMIMO(*mg.x_array(n_tx=4, n_rx=5), mg.default_frequencies(n=5), mg.default_grid((5, 6, 7)))
    gen = torch.Generator().manual_seed(5)
    x = torch.randn((1, 1, 5, 6, 7), generator=gen, dtype=torch.complex64)
    y0 = physics.A(x)
    return physics, y0 + 0.05 * float(y0.abs().pow(2).mean().sqrt()) * torch.randn(y0.shape, generator=gen, dtype=y0.dtype)


def _smoothing(v: torch.Tensor, sigma: float) -> torch.Tensor:
    """A blind denoiser of the prior protocol ``D(x, sigma)``: periodic 3x3 binomial smoothing."""
    k = torch.tensor([1.0, 2.0, 1.0], dtype=v.dtype)
    return torch.nn.functional.conv2d(
        torch.nn.functional.pad(v, (1, 1, 1, 1), mode="circular"), (k[:, None] * k[None, :] / 16).reshape(1, 1, 3, 3)
    )


#: name -> [(problem, keyword arguments besides the noise words), ...]; small, fast settings of each method.
CASES = {
    "tikhonov": [(_ct, {})],
    "tv": [(_ct, {"max_iter": 100, "progress": False})],
    "graphla": [(_ct, {"psi": "fbp", "max_iter": 30, "progress": False})],
    "magnitude_pnp": [(_mimo, {"prior": "l1", "max_iter": 10, "tol": 0.0, "progress": False})],
    "sobolev_fit": [(_blur, {"s": -1.0, "method": "cg", "scale": 2 * math.pi * 10, "max_iter": 100})],
    "wiener": [(_blur, {"signal_power": 0.01})],
    "pnp_admm": [(p, {"prior": _smoothing, "denoiser_sigma": 0.05, "max_iter": 5, "progress": False}) for p in (_blur, _inpainting)],
    "red": [(p, {"prior": _smoothing, "lam": 300.0, "denoiser_sigma": 0.05, "max_iter": 5, "progress": False}) for p in (_blur, _inpainting)],
    "pnp_hvae": [(p, {"max_iter": 3, "progress": False}) for p in (_blur, _inpainting)],
}  # fmt: skip


def test_every_public_method_with_a_noise_level_has_a_case_and_takes_noise_std():
    found = _public_noise_methods()
    assert sorted(found) == sorted(CASES)
    for name, fn in found.items():
        params = inspect.signature(fn).parameters
        assert "noise_std" in params, name
        assert params["noise_level"].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params["noise_std"].kind is inspect.Parameter.KEYWORD_ONLY, name


@pytest.mark.parametrize(
    "name, make, kwargs",
    [(n, make, kw) for n, cases in CASES.items() for make, kw in cases],
    ids=[f"{n}-{make.__name__.strip('_')}" for n, cases in CASES.items() for make, _ in cases],
)
def test_noise_level_and_the_matching_noise_std_give_the_same_result(name, make, kwargs, request):
    method = _public_noise_methods()[name]
    physics, y = make()
    if name == "pnp_hvae":
        kwargs = {**kwargs, "model": request.getfixturevalue("vae")}
    r = 0.04
    m = float(measured_entries(physics, y)[0])
    std = r * float(y.abs().norm()) / math.sqrt(1 + r * r) / math.sqrt(m)
    x_level, info_level = method(physics, y, noise_level=r, **kwargs)
    x_std, info_std = method(physics, y, noise_std=std, **kwargs)
    scale = float(x_level.abs().max())
    torch.testing.assert_close(x_std, x_level, rtol=1e-4, atol=1e-5 * scale)
    assert info_level.params["noise_std"] == pytest.approx([std], rel=1e-6)
    assert info_std.params["noise_level"] == pytest.approx([r], rel=1e-6)
    with pytest.raises(ValueError, match="noise_std"):
        method(physics, y, noise_level=r, noise_std=std, **kwargs)
