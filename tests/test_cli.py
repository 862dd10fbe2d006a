"""The regrecon command line: reconstruct from a TOML config (equal to the Python API), provenance,
atomic writes, bad configs, info and the console script (the demos have their own runner, tested in
test_demo_run.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import recon
from denoisers.zoo import sha256_file
from operators import ParallelBeamCT
from recon import cli
from recon.config import load_config
from recon.io import load_measurements

N, N_ANGLES = 32, 30
CONFIG = """
[input]
path = "sino.npy"

[geometry]
operator = "parallel_beam_ct"
img_size = 32
n_angles = 30
backend = "numba"

[method]
name = "tv"
alpha = 0.01
max_iter = 40
"""


def _physics() -> ParallelBeamCT:
    return ParallelBeamCT(N, torch.arange(N_ANGLES, dtype=torch.float64) * (math.pi / N_ANGLES), backend="numba")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with a config and the sinograms of two phantoms: sino.npy (one) and sinos.npy (both)."""
    x = torch.cat([recon.phantoms.coule_like(N, seed=s) for s in (3, 4)])
    y = _physics().A(x)
    np.save(tmp_path / "sino.npy", y[0].numpy())
    np.save(tmp_path / "sinos.npy", y.numpy())
    (tmp_path / "c.toml").write_text(CONFIG)
    return tmp_path


def _run(*argv: str) -> int:
    return cli.main([*argv])


def test_reconstruct_equals_python_api_and_records_provenance(workdir: Path) -> None:
    assert _run("reconstruct", str(workdir / "c.toml"), "--no-progress") == 0
    y = torch.from_numpy(np.load(workdir / "sino.npy"))[None]
    x_api, info = recon.tv(_physics(), y, alpha=0.01, max_iter=40, progress=False)
    with h5py.File(workdir / "c.h5") as fh:
        np.testing.assert_array_equal(fh["x"][()], x_api.numpy())
        attrs = dict(fh.attrs)
        np.testing.assert_allclose(fh["history/objective"][()], info.history.objective)
    assert attrs["method"] == "tv"
    assert attrs["params"] == '{"alpha": 0.01, "max_iter": 40}'
    assert '"operator": "parallel_beam_ct"' in attrs["geometry"] and '"n_angles": 30' in attrs["geometry"]
    assert attrs["input_sha256"] == sha256_file(workdir / "sino.npy")
    assert attrs["regrecon_version"] and attrs["torch_version"] and attrs["deepinv_version"]
    assert attrs["wall_time_s"] > 0
    assert '"n_iter": 40' in attrs["info"]


def test_output_option_and_atomic_write(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails half-way leaves neither a partial file nor a changed previous result."""
    out = workdir / "sub" / "r.h5"
    assert _run("reconstruct", str(workdir / "c.toml"), "-o", str(out), "--no-progress") == 0
    before = out.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", broken)
    with pytest.raises(OSError, match="disk full"):
        _run("reconstruct", str(workdir / "c.toml"), "-o", str(out), "--no-progress")
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.h5"]


def test_batch_form_equals_per_item_api(workdir: Path) -> None:
    cfg = workdir / "c.toml"
    cfg.write_text(CONFIG.replace("sino.npy", "sinos.npy") + "\n[batch]\nn_workers = 1\n")
    assert _run("reconstruct", str(cfg), "--batch", "-o", str(workdir / "b.h5"), "--no-progress") == 0
    ys = torch.from_numpy(np.load(workdir / "sinos.npy"))
    with h5py.File(workdir / "b.h5") as fh:
        assert fh["done"][()].all()
        for i in range(2):
            x_api, _ = recon.tv(_physics(), ys[i : i + 1], alpha=0.01, max_iter=40, progress=False)
            np.testing.assert_allclose(fh["x"][i], x_api[0].numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda c: c + "\n[extra]\na = 1\n", "unknown table [extra]"),
        (lambda c: c.replace("img_size = 32", "img_size = 32\nimg_sise = 3"), "geometry.img_sise: unknown key"),
        (lambda c: c.replace('backend = "numba"', "backend = 3"), "geometry.backend: expected str, received 3"),
        (lambda c: c.replace("img_size = 32\n", ""), "geometry.img_size: missing"),
        (lambda c: c.replace("parallel_beam_ct", "cone_beam"), "geometry.operator: expected one of"),
        (lambda c: c.replace('name = "tv"', 'name = "magic"'), "method.name: method: unknown method 'magic'"),
        (lambda c: c.replace("alpha = 0.01", "alpha = 0.01\nalhpa = 2"), "method.alhpa: not a parameter of recon.tv"),
        (lambda c: c.replace("n_angles = 30", "n_angles = 30\nangles = [0.0, 1.0]"), "geometry: geometry.n_angles: give exactly one"),
        (lambda c: c.replace("n_angles = 30", "n_angles = 20"), "input: expected measurements (1, 20, 46)"),
        (lambda c: c.replace("sino.npy", "missing.npy"), "input: no such file"),
        (lambda c: c.replace("sino.npy", "sino.txt"), "input: expected a file ending in .npy"),
        (lambda c: c.replace("[method]", "[methods]"), "unknown table [methods]"),
        (lambda c: c.replace("img_size = 32", "img_size = 32 ="), "is not valid TOML"),
    ],
)
def test_bad_config_names_key(workdir: Path, capsys: pytest.CaptureFixture, edit, needle: str) -> None:
    cfg = workdir / "c.toml"
    cfg.write_text(edit(CONFIG))
    assert _run("reconstruct", str(cfg), "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.startswith("regrecon: error: ") and needle in err, err
    assert not (workdir / "c.h5").exists()


def test_bad_measurement_files(workdir: Path) -> None:
    bad = np.load(workdir / "sino.npy")
    bad[0, 0, 0] = np.nan
    np.save(workdir / "nan.npy", bad)
    with pytest.raises(ValueError, match="1 NaN/Inf values"):
        load_measurements(workdir / "nan.npy")
    np.savez(workdir / "two.npz", a=bad, b=bad)
    with pytest.raises(ValueError, match=r"key: .* holds 2 arrays \(a, b\)"):
        load_measurements(workdir / "two.npz")
    with pytest.raises(ValueError, match="key: 'c' is not in"):
        load_measurements(workdir / "two.npz", key="c")
    with h5py.File(workdir / "m.h5", "w") as fh:
        fh["scan/sino"] = np.load(workdir / "sino.npy")
    np.testing.assert_array_equal(load_measurements(workdir / "m.h5", key="scan/sino"), np.load(workdir / "sino.npy"))


@pytest.mark.parametrize(
    "geometry",
    [
        {"operator": "mri", "img_size": 16, "acceleration": 4.0},
        {"operator": "blur", "img_size": [16, 20], "sigma": 1.5},
        {"operator": "fan_beam_ct", "img_size": 16, "n_angles": 12, "n_detectors": 24, "source_origin": 40.0, "origin_detector": 10.0},
    ],
)
def test_other_geometries_load(tmp_path: Path, geometry: dict) -> None:
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in geometry.items())
    (tmp_path / "g.toml").write_text(f'[input]\npath = "y.npy"\n[geometry]\n{lines}\n[method]\nname = "tv"\nalpha = 0.01\n')
    physics = load_config(tmp_path / "g.toml").physics
    assert physics.A(torch.rand(1, *physics.img_size)).shape[0] == 1


def test_info_lists_backends_and_weights(capsys: pytest.CaptureFixture) -> None:
    assert _run("info") == 0
    out = capsys.readouterr().out
    for needle in ("regrecon", "deepinv", "astra CPU      yes", "astra CUDA", "numba          yes", "hvae", "ct_dncnn"):
        assert needle in out, needle
    # every shipped weight file matches its card; cards before 2026-12-03 name the trainer by its old module
    # name (denoisers.train), ct_unet's by the current one (recon.training)
    assert "MISMATCH" not in out and out.count(" ok  python -m ") >= 5


@pytest.mark.parametrize("command", [[], ["reconstruct"], ["info"]])
def test_help_on_every_command(capsys: pytest.CaptureFixture, command: list[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        _run(*command, "--help")
    assert stop.value.code == 0
    assert "usage: regrecon" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "regrecon"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.startswith("regrecon ")


def test_cli_does_not_know_the_demos(capsys: pytest.CaptureFixture) -> None:
    """The demos run with their own runner (python -m demos); an installed wheel has no demos."""
    with pytest.raises(SystemExit) as stop:
        _run("demo", "--quick")
    assert stop.value.code == 2
    assert "invalid choice: 'demo'" in capsys.readouterr().err
    assert "demos" not in Path(cli.__file__).read_text()
