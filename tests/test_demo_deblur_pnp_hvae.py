"""Regression on the quick setting of demos/deblur_pnp_hvae.py (camera + coins, 128^2 crops; Gaussian and
motion blur at noise 7.65/255, 50 % inpainting at 3/255; the shipped hvae and dncnn_natural).

Thresholds are the values measured on 2026-11-28 (1 torch thread, float32) minus a 0.5 dB margin,
the measured mean beside each. They hold the numbers as they are: the shipped HVAE is a weak prior
(PnP-HVAE is below TV and PnP-ADMM here; see the README), so no ordering between the methods is
asserted beyond what was measured with a wide margin: every method improves on the inpainting data.
"""

import pytest
from demo_runner import run_quick_demo

# (setting, method): threshold in dB   # measured mean PSNR
THRESHOLDS = {
    ("gaussian 7.65", "PnP-HVAE"): 24.7,  # 25.19
    ("gaussian 7.65", "PnP-ADMM (DnCNN)"): 28.8,  # 29.28
    ("gaussian 7.65", "RED (DnCNN)"): 28.7,  # 29.23
    ("gaussian 7.65", "TV"): 27.6,  # 28.11
    ("gaussian 7.65", "Wiener"): 25.1,  # 25.59
    ("motion 7.65", "PnP-HVAE"): 26.1,  # 26.63
    ("motion 7.65", "PnP-ADMM (DnCNN)"): 30.8,  # 31.34
    ("motion 7.65", "RED (DnCNN)"): 30.8,  # 31.31
    ("motion 7.65", "TV"): 30.1,  # 30.62
    ("motion 7.65", "Wiener"): 25.0,  # 25.53
    ("inpainting 3", "PnP-HVAE"): 23.0,  # 23.51
    ("inpainting 3", "PnP-ADMM (DnCNN)"): 30.1,  # 30.63
    ("inpainting 3", "RED (DnCNN)"): 22.6,  # 23.07
    ("inpainting 3", "TV"): 27.5,  # 28.03
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("deblur_pnp_hvae")
    return out, run_quick_demo("deblur_pnp_hvae", out, key="setting")


def test_quick_demo_writes_its_outputs(quick_run):
    out, rows = quick_run
    for name in ("table.md", "table.csv", "images.png", "curves.png"):
        assert (out / name).stat().st_size > 0
    assert "| motion 7.65 | PnP-HVAE |" in (out / "table.md").read_text()
    assert len(rows) == 2 * 6 + 5  # 2 blurs x 6 methods (observed included) + inpainting without Wiener


@pytest.mark.parametrize("key", sorted(THRESHOLDS))
def test_quick_demo_psnr_thresholds(quick_run, key):
    _, rows = quick_run
    assert rows[key]["psnr"] >= THRESHOLDS[key]


def test_pnp_hvae_runs_the_papers_iterations(quick_run):
    _, rows = quick_run
    assert rows[("motion 7.65", "PnP-HVAE")]["iterations"] == 50
    assert rows[("inpainting 3", "PnP-HVAE")]["iterations"] == 100


@pytest.mark.parametrize("method", ["PnP-HVAE", "PnP-ADMM (DnCNN)", "RED (DnCNN)", "TV"])
def test_every_method_fills_the_missing_pixels(quick_run, method):
    _, rows = quick_run
    # measured: observed (zeros at the missing pixels) 10.00 dB, the methods 23.07-30.63 dB
    assert rows[("inpainting 3", method)]["psnr"] > rows[("inpainting 3", "observed")]["psnr"] + 10.0
