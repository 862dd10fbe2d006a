"""PSNR regression on the quick setting of demos/ct_classical.py (128^2, 60 views, 2 images).

Thresholds are the values measured on 2026-11-27 (numba backend, the demo default; the astra
backend gave the same means to 0.01 dB) on the 2-core CPU, minus a 0.5 dB
margin; the measured mean is in the comment beside each. The run also checks the three output
files and the ordering FBP < Tikhonov < TV at both noise levels.
"""

import pytest
from demo_runner import run_quick_demo

# (noise, method): threshold in dB   # measured mean PSNR
THRESHOLDS = {
    (0.02, "FBP"): 21.3,  # 21.80
    (0.02, "Tikhonov"): 24.5,  # 25.01
    (0.02, "TV"): 29.7,  # 30.23
    (0.04, "FBP"): 16.7,  # 17.22
    (0.04, "Tikhonov"): 22.8,  # 23.37
    (0.04, "TV"): 26.5,  # 27.07
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ct_classical")
    return out, run_quick_demo("ct_classical", out)


def test_quick_demo_writes_its_outputs(quick_run):
    out, _ = quick_run
    for name in ("table.md", "table.csv", "figure.png"):
        assert (out / name).stat().st_size > 0
    assert "| 2% | TV |" in (out / "table.md").read_text()


@pytest.mark.parametrize("key", sorted(THRESHOLDS))
def test_quick_demo_psnr_thresholds(quick_run, key):
    _, rows = quick_run
    assert rows[key]["psnr_mean"] >= THRESHOLDS[key]


@pytest.mark.parametrize("noise", [0.02, 0.04])
def test_quick_demo_ordering(quick_run, noise):
    _, rows = quick_run
    fbp, tik, tv = (rows[(noise, m)]["psnr_mean"] for m in ("FBP", "Tikhonov", "TV"))
    assert fbp < tik < tv
    assert rows[(noise, "TV")]["ssim_mean"] > rows[(noise, "FBP")]["ssim_mean"]
