"""The wheel: built from the source, installed into a fresh virtual environment, run away from the checkout.

The new environment has no editable install and no checkout on its path; it reuses the installed
dependencies (torch, deepinv, ...) through a ``.pth`` line naming this environment's
site-packages, a plain path entry, so the ``.pth`` files there (among them the editable finder of
``regrecon``) are not run. Every command runs with a scratch folder as working directory.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import recon
from operators import ParallelBeamCT

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("operators", "denoisers", "recon")
N, N_ANGLES, MAX_ITER = 32, 30, 20
CONFIG = f"""
[input]
path = "sino.npy"

[geometry]
operator = "parallel_beam_ct"
img_size = {N}
n_angles = {N_ANGLES}
backend = "astra"  # astra-toolbox: no numba compilation in the fresh environment

[method]
name = "tv"
alpha = 0.01
max_iter = {MAX_ITER}
"""
CHECK = """
import json, sys
from pathlib import Path
import denoisers, operators, recon
from denoisers import zoo
nets = {name: type(zoo.load(name)).__name__ for name in zoo.available()}
print(json.dumps({"files": [m.__file__ for m in (recon, denoisers, operators, zoo)], "weights_dir": str(zoo.WEIGHTS_DIR),
                  "shipped": sorted(p.stem for p in zoo.WEIGHTS_DIR.glob("*.pt")), "nets": nets,
                  "checkout_importable": any(Path(p or ".").resolve() == Path(sys.argv[1]) for p in sys.path),
                  "editable_finder": [m for m in sys.modules if "__editable__" in m]}))
"""

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(tool) for tool in ("pip", "setuptools", "wheel")),
    reason="the build tools (pip, setuptools, wheel) are not installed",
)


def _run(argv: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    run = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{argv}\n{run.stdout}\n{run.stderr}"
    return run


def _source_copy(dest: Path) -> None:
    """The files the build reads (pyproject, README, the three packages, the weights), without caches."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for folder in (*LIBRARY, "data/weights"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))


def _checkout_packages() -> set[str]:
    """Every import package of the source tree (``denoisers.weights`` is ``data/weights``)."""
    found = {".".join(p.parent.relative_to(ROOT).parts) for pkg in LIBRARY for p in (ROOT / pkg).rglob("__init__.py")}
    return found | {"denoisers.weights"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build the wheel, install it into a fresh venv, return its paths and a clean environment."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    src = tmp / "src"
    src.mkdir()
    _source_copy(src)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)], tmp, env)
    (wheel,) = dist.glob("regrecon-*.whl")

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).stdout.strip())
    (site / "_regrecon_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], tmp, env)
    work = tmp / "work"
    work.mkdir()
    return {"wheel": wheel, "venv": venv, "site": site, "python": python, "bin": venv / "bin", "work": work, "env": env}


def test_wheel_holds_every_package_and_the_weights(installed: dict):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    packages = {str(Path(n).parent).replace("/", ".") for n in names if n.endswith("/__init__.py") or n == "__init__.py"}
    assert packages == _checkout_packages()
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert set(listed) == _checkout_packages()
    shipped = sorted(p.name for p in (ROOT / "data" / "weights").iterdir() if p.suffix in (".pt", ".json"))
    assert len(shipped) >= 10
    assert sorted(Path(n).name for n in names if n.startswith("denoisers/weights/") and n.endswith((".pt", ".json"))) == shipped
    assert not [n for n in names if n.split("/")[0] in ("demos", "benchmarks", "tests", "data")]


def test_installed_wheel_loads_every_shipped_network_away_from_the_checkout(installed: dict):
    run = _run([str(installed["python"]), "-c", CHECK, str(ROOT)], installed["work"], installed["env"])
    out = json.loads(run.stdout.strip().splitlines()[-1])
    site = installed["site"].resolve()
    for path in out["files"]:
        assert Path(path).resolve().is_relative_to(site), path
    assert not out["checkout_importable"] and not out["editable_finder"]
    assert Path(out["weights_dir"]).resolve() == site / "denoisers" / "weights"
    shipped = sorted(p.stem for p in (ROOT / "data" / "weights").glob("*.pt"))
    assert out["shipped"] == shipped and sorted(out["nets"]) == shipped
    assert out["nets"] == {"ct_dncnn": "DnCNN", "ct_unet": "CTUNet", "dncnn_natural": "DnCNN", "hvae": "HVAE", "mimo_unet3d": "UNet3D"}


def test_installed_console_script_info_and_reconstruct(installed: dict):
    work, env = installed["work"], installed["env"]
    info = _run([str(installed["bin"] / "regrecon"), "info"], work, env).stdout
    assert "regrecon 0.1.0" in info and "MISMATCH" not in info and "missing" not in info
    assert info.count(" ok  ") == len(list((ROOT / "data" / "weights").glob("*.pt")))

    physics = ParallelBeamCT(N, torch.arange(N_ANGLES, dtype=torch.float64) * (math.pi / N_ANGLES), backend="astra")
    y = physics.A(recon.phantoms.coule_like(N, seed=3))
    np.save(work / "sino.npy", y[0].numpy())
    (work / "c.toml").write_text(CONFIG)
    out = _run([str(installed["bin"] / "regrecon"), "reconstruct", "c.toml", "--no-progress"], work, env).stdout
    assert "recon.tv" in out
    x_api, _ = recon.tv(physics, y, alpha=0.01, max_iter=MAX_ITER, progress=False)
    with h5py.File(work / "c.h5") as fh:
        assert fh.attrs["method"] == "tv"
        np.testing.assert_allclose(fh["x"][()], x_api.numpy(), rtol=1e-5, atol=1e-6)
