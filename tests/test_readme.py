"""Every code block of README.md runs, so the README cannot drift from the code.

The ``python`` blocks run in order, as one script, in a fresh interpreter whose working folder is
a temporary one (the blocks write their files there); they are written at sizes that run in
seconds, and say in comments what the full-size setting is. The ``toml`` block is the config
format: it is written beside a matching sinogram and run through ``regrecon reconstruct``. The
``bash`` blocks name commands that the suite runs elsewhere (``make`` targets, the CLI tests).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _blocks(language: str) -> list[str]:
    text = README.read_text()
    return [textwrap.dedent(m.group(1)) for m in re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M)]


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_readme_has_python_blocks():
    assert len(_blocks("python")) >= 5


def test_readme_python_blocks_run(tmp_path):
    script = "\n\n".join(_blocks("python"))
    (tmp_path / "readme_blocks.py").write_text(script)
    done = _run([sys.executable, "readme_blocks.py"], tmp_path, timeout=600)
    assert done.returncode == 0, f"README python blocks failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


def test_readme_toml_config_runs(tmp_path):
    (config,) = _blocks("toml")
    import tomllib

    parsed = tomllib.loads(config)
    from operators import ParallelBeamCT

    geometry = parsed["geometry"]
    n, n_angles = int(geometry["img_size"]), int(geometry["n_angles"])
    import math

    import torch

    physics = ParallelBeamCT(n, torch.arange(n_angles) * math.pi / n_angles, backend=geometry["backend"])
    x = torch.zeros(1, 1, n, n)
    x[..., n // 4 : 3 * n // 4, n // 4 : 3 * n // 4] = 1.0
    np.save(tmp_path / parsed["input"]["path"], physics.A(x).numpy())
    (tmp_path / "scan.toml").write_text(config)
    done = _run([sys.executable, "-m", "recon.cli", "reconstruct", "scan.toml", "--no-progress"], tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / parsed["output"]["path"]).is_file()


@pytest.mark.parametrize("command", ["make demo", "make test"])
def test_readme_names_the_two_commands(command):
    assert any(command in block for block in _blocks("bash"))
