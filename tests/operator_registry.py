"""The one registry of small operators over which every generic operator test is parametrized.

Each entry is an :class:`OperatorCase`: a factory that builds a small operator and the shape of
one input sample. Test modules parametrize with :func:`operator_params`::

    from operator_registry import operator_params

    @pytest.mark.parametrize("case", operator_params())
    def test_something(case):
        op = case.build()
        x = case.random_input(batch=2, dtype=torch.float64)

To add the operators of a new module, append a ``_register_<module>()`` function below (called at
the bottom of this file) that calls :func:`register` once per operator/backend/geometry. The CT
geometries are drawn at import time from a fixed seed, so they are "random-ish" but reproducible:
several sizes, regular and irregular angle sets, detector counts, spacings and fan distances.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch


@dataclass(frozen=True)
class OperatorCase:
    """A registered operator.

    Attributes:
        name: test id, ``<class>-<backend>-<geometry>``.
        build: zero-argument factory returning a fresh ``deepinv.physics.LinearPhysics``.
        x_shape: shape of one input sample, ``(C, *spatial)``.
        any_channels: True when the operator accepts any channel count C (then tests also try C=2).
        float32_internal: True when the backend computes in float32 even for float64 input (the
            float64 tolerances of the generic tests are then float32-sized: 1e-5 relative).
        complex: True when the operator acts on complex tensors (inputs are then complex64 /
            complex128 where the tests ask for float32 / float64).
        tags: free labels to select subsets (e.g. ``"ct"``, ``"astra"``, ``"numba"``).
    """

    name: str
    build: Callable[[], object]
    x_shape: tuple[int, ...]
    any_channels: bool = True
    float32_internal: bool = False
    tags: frozenset[str] = frozenset()
    complex: bool = False

    def random_input(self, batch: int = 1, channels: int | None = None, dtype=torch.float64, seed: int = 0):
        """A standard-normal input ``(batch, C, *spatial)``; ``channels`` overrides C if allowed.

        ``dtype`` is the real precision; complex operators get the complex dtype of that precision.
        """
        if self.complex:
            dtype = {torch.float32: torch.complex64, torch.float64: torch.complex128}[dtype]
        shape = list(self.x_shape)
        if channels is not None:
            if not self.any_channels:
                raise ValueError(f"channels: operator {self.name} has a fixed channel count {shape[0]}")
            shape[0] = channels
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(batch, *shape, generator=gen, dtype=dtype)


REGISTRY: dict[str, OperatorCase] = {}


def register(
    name: str,
    build: Callable[[], object],
    x_shape: tuple[int, ...],
    *,
    any_channels: bool = True,
    float32_internal: bool = False,
    tags: tuple[str, ...] = (),
    complex: bool = False,
) -> OperatorCase:
    """Add an operator to the registry (``name`` must be new) and return its case."""
    if name in REGISTRY:
        raise ValueError(f"name: operator {name!r} is already registered")
    case = OperatorCase(name, build, tuple(x_shape), any_channels, float32_internal, frozenset(tags), complex)
    REGISTRY[name] = case
    return case


def operator_params(tag: str | None = None) -> list:
    """``pytest.param(case, id=case.name)`` for every registered case (optionally with ``tag``)."""
    return [pytest.param(c, id=c.name) for c in REGISTRY.values() if tag is None or tag in c.tags]


# ----------------------------------------------------------------------------- CT


def _ct_geometries(seed: int = 20240611) -> list[dict]:
    """Random-ish CT geometries: sizes, angle sets, detector counts, spacings, fan distances."""
    rng = np.random.default_rng(seed)
    geoms = []
    # parallel: regular half turn; irregular full turn; angles hitting 0, pi/4, pi/2 exactly; few views
    angle_sets = [
        np.linspace(0.0, math.pi, 12, endpoint=False),
        np.sort(rng.uniform(0.0, 2.0 * math.pi, 17)),
        np.array([0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4, math.pi, 2.0, 5.5]),
        np.sort(rng.uniform(-1.0, 1.0, 5)),
    ]
    for k, angles in enumerate(angle_sets):
        n = int(rng.choice([8, 13, 16, 21]))
        n_det = None if k == 0 else int(rng.integers(n // 2, 2 * n))
        spacing = float(rng.choice([0.5, 1.0, 1.7]))
        geoms.append({"kind": "parallel", "n": n, "angles": angles, "n_detectors": n_det, "detector_spacing": spacing})
    for _ in range(3):
        n = int(rng.choice([9, 16, 19]))
        angles = np.sort(rng.uniform(0.0, 2.0 * math.pi, int(rng.integers(6, 20))))
        geoms.append(
            {
                "kind": "fan",
                "n": n,
                "angles": angles,
                "n_detectors": int(rng.integers(n, 3 * n)),
                "detector_spacing": float(rng.uniform(0.6, 1.8)),
                "source_origin": float(rng.uniform(0.8, 3.0) * n),
                "origin_detector": float(rng.uniform(0.0, 2.0) * n),
            }
        )
    return geoms


def _register_ct() -> None:
    from operators import FanBeamCT, ParallelBeamCT

    for g_index, geom in enumerate(_ct_geometries()):
        g = dict(geom)
        kind, n = g.pop("kind"), g.pop("n")
        cls = ParallelBeamCT if kind == "parallel" else FanBeamCT
        for backend in ("astra", "numba"):

            def build(cls=cls, n=n, g=g, backend=backend):
                return cls(n, torch.as_tensor(g["angles"]), backend=backend, **{k: v for k, v in g.items() if k != "angles"})

            register(
                f"{cls.__name__}-{backend}-g{g_index}-n{n}-a{len(g['angles'])}",
                build,
                (1, n, n),
                float32_internal=backend == "astra",
                tags=("ct", backend, kind),
            )


_register_ct()


def _register_dynamic_ct() -> None:
    from operators import DynamicCT  # noqa: PLC0415

    rng = np.random.default_rng(20240612)
    irregular = rng.uniform(-1.0, 2.0 * math.pi, 4)  # explicit (P,) angles, one view per frame
    geometries = {  # name: (N, P, keyword arguments)
        "bitrev": (12, 5, {}),
        "2views-mirrored": (9, 4, {"views_per_frame": 2, "mirrored": True, "n_detectors": 17, "detector_spacing": 0.7}),
        "explicit-mirrored": (13, 4, {"angles": irregular, "mirrored": True, "n_detectors": 11, "detector_spacing": 1.6}),
    }
    for name, (n, n_frames, kwargs) in geometries.items():

        def build(n=n, n_frames=n_frames, kwargs=kwargs):
            return DynamicCT(n, n_frames, **kwargs)

        register(f"DynamicCT-numba-{name}-n{n}-p{n_frames}", build, (n_frames, n, n), any_channels=False, tags=("ct", "numba", "dynamic"))


_register_dynamic_ct()


# ----------------------------------------------------------------------------- near-field MIMO


def _register_mimo() -> None:
    from operators import NearFieldMIMO  # noqa: PLC0415
    from operators import mimo_geometry as mg  # noqa: PLC0415

    layouts = {
        "x": (mg.x_array(n_tx=4, n_rx=5), mg.default_frequencies(n=5), (5, 6, 7)),
        "planar": (mg.planar_array(n_per_side=3), mg.default_frequencies(6e9, 9e9, 4), (4, 4, 6)),
        "random": (mg.random_array(3, 4, seed=1), [5e9, 5.5e9, 8e9], (3, 5, 4)),  # non-uniform steps
    }
    for layout, ((tx, rx), freqs, shape) in layouts.items():
        for path, budget in (("numba", 0), ("dense", 2**28)):

            def build(tx=tx, rx=rx, freqs=freqs, shape=shape, budget=budget):
                return NearFieldMIMO(tx, rx, freqs, mg.default_grid(shape), dense_budget_bytes=budget)

            register(
                f"NearFieldMIMO-{path}-{layout}", build, (1, *shape), any_channels=False,
                tags=("mimo", path), complex=True,
            )


_register_mimo()


# ----------------------------------------------------------------------------- MRI


def _register_mri() -> None:
    from deepinv.physics import MRI, DynamicMRI  # noqa: PLC0415

    from operators import SenseMRI  # noqa: PLC0415

    gen = torch.Generator().manual_seed(7)
    h, w, n_coils, n_echoes = 12, 10, 3, 4
    maps = torch.randn(n_coils, h, w, dtype=torch.complex128, generator=gen)
    masks = (torch.rand(n_echoes, h, w, generator=gen) < 0.4).double()
    mask_2d = (torch.rand(h, w, generator=gen) < 0.5).double()
    register(
        "SenseMRI-mask-per-echo", lambda: SenseMRI(masks, maps), (2, n_echoes, h, w), any_channels=False, tags=("mri",)
    )
    register(
        "SenseMRI-shared-mask", lambda: SenseMRI(mask_2d, maps, n_echoes=2), (2, 2, h, w), any_channels=False,
        tags=("mri",),
    )  # fmt: skip
    # deepinv's own classes (reused unchanged) promote to the mask's dtype: float32 masks keep dtypes
    register("deepinv-MRI-single-coil", lambda: MRI(mask=mask_2d.float(), img_size=(2, h, w)), (2, h, w), any_channels=False, tags=("mri",))
    register(
        "deepinv-DynamicMRI-frames", lambda: DynamicMRI(mask=masks.float()[None, None].expand(1, 2, -1, -1, -1), img_size=(2, n_echoes, h, w)),
        (2, n_echoes, h, w), any_channels=False, tags=("mri",),
    )  # fmt: skip


_register_mri()
