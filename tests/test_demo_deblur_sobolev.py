"""Regression on the quick setting of demos/deblur_sobolev.py (128^2, camera + a COULE-like phantom).

PSNR thresholds are the values measured on 2026-11-28 (1 torch thread, float32) minus a 0.5 dB
margin; the measured mean is in the comment beside each. "GD s=..." is the best PSNR along the
gradient-descent run (the truth is used there for reporting only); the TV rows use the weights
tuned on separate images. The run also checks the outputs and the implicit-regularization
ordering: in every setting, s = -1 reaches its best PSNR later than s = 0 (measured in all 9).
"""

import pytest
from demo_runner import run_quick_demo

# (setting, method): threshold in dB   # measured mean PSNR
THRESHOLDS = {
    ("identity 2%", "GD s=-1"): 39.5,  # 40.05
    ("identity 2%", "GD s=0"): 39.3,  # 39.78
    ("identity 2%", "L2+TV"): 44.8,  # 45.26
    ("identity 2%", "H^s+TV s=-1"): 43.9,  # 44.37
    ("identity 5%", "GD s=-1"): 32.5,  # 32.96
    ("identity 5%", "GD s=0"): 31.3,  # 31.83
    ("identity 5%", "L2+TV"): 37.6,  # 38.08
    ("identity 5%", "H^s+TV s=-1"): 37.2,  # 37.74
    ("identity 10%", "GD s=-1"): 28.1,  # 28.64
    ("identity 10%", "GD s=0"): 25.3,  # 25.81
    ("identity 10%", "L2+TV"): 33.7,  # 34.25
    ("identity 10%", "H^s+TV s=-1"): 32.4,  # 32.93
    ("gaussian 2%", "GD s=-1"): 27.8,  # 28.31
    ("gaussian 2%", "GD s=0"): 27.9,  # 28.40
    ("gaussian 2%", "L2+TV"): 32.3,  # 32.85
    ("gaussian 2%", "H^s+TV s=-1"): 31.8,  # 32.29
    ("gaussian 5%", "GD s=-1"): 26.2,  # 26.74
    ("gaussian 5%", "GD s=0"): 26.2,  # 26.74
    ("gaussian 5%", "L2+TV"): 29.5,  # 30.03
    ("gaussian 5%", "H^s+TV s=-1"): 29.5,  # 29.99
    ("gaussian 10%", "GD s=-1"): 24.9,  # 25.36
    ("gaussian 10%", "GD s=0"): 24.8,  # 25.30
    ("gaussian 10%", "L2+TV"): 27.7,  # 28.22
    ("gaussian 10%", "H^s+TV s=-1"): 27.9,  # 28.38
    ("motion 2%", "GD s=-1"): 32.7,  # 33.21
    ("motion 2%", "GD s=0"): 32.7,  # 33.19
    ("motion 2%", "L2+TV"): 39.9,  # 40.37
    ("motion 2%", "H^s+TV s=-1"): 38.7,  # 39.17
    ("motion 5%", "GD s=-1"): 28.5,  # 28.99
    ("motion 5%", "GD s=0"): 28.1,  # 28.59
    ("motion 5%", "L2+TV"): 34.3,  # 34.78
    ("motion 5%", "H^s+TV s=-1"): 32.8,  # 33.33
    ("motion 10%", "GD s=-1"): 26.0,  # 26.47
    ("motion 10%", "GD s=0"): 25.5,  # 25.95
    ("motion 10%", "L2+TV"): 30.3,  # 30.79
    ("motion 10%", "H^s+TV s=-1"): 29.1,  # 29.56
}
SETTINGS = sorted({setting for setting, _ in THRESHOLDS})


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("deblur_sobolev")
    return out, run_quick_demo("deblur_sobolev", out, key="setting")


def test_quick_demo_writes_its_outputs(quick_run):
    out, rows = quick_run
    for name in ("table.md", "table.csv", "curves.png", "images.png"):
        assert (out / name).stat().st_size > 0
    assert "| motion 5% | GD s=-1 |" in (out / "table.md").read_text()
    assert len(rows) == 9 * (2 * 6 + 2)  # 9 settings x (GD and CG for 6 s, 2 TV rows)


@pytest.mark.parametrize("key", sorted(THRESHOLDS))
def test_quick_demo_psnr_thresholds(quick_run, key):
    _, rows = quick_run
    assert rows[key]["best_psnr"] >= THRESHOLDS[key]


@pytest.mark.parametrize("setting", SETTINGS)
def test_negative_s_peaks_later(quick_run, setting):
    _, rows = quick_run
    assert rows[(setting, "GD s=-1")]["best_iter"] > rows[(setting, "GD s=0")]["best_iter"]
