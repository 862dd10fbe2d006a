"""Regression on the quick setting of demos/mimo_magnitude_pnp.py (13x13x25 voxels, default array,
1 test scene, 20 frequencies at 30 dB and 20 dB SNR).

Thresholds are the values measured on 2026-11-27 (2-core CPU) minus 0.5 dB; the measured value is
in the comment beside each. The ordering checks follow the issue: PnP-UNet3D best in every setting
(measured 9.1-9.8 dB above the best of l1 / TV), l1 and TV above BP and KM (measured 0.57-1.11 dB).
"""

import pytest
from demo_runner import run_quick_demo

S30, S20 = "20 freqs, 30 dB", "20 freqs, 20 dB"
THRESHOLDS = {  # (setting, method): threshold   # measured magnitude PSNR (dB)
    (S30, "BP"): 19.29,  # 19.79
    (S30, "KM"): 20.24,  # 20.74
    (S30, "l1"): 21.02,  # 21.52
    (S30, "TV"): 21.35,  # 21.85
    (S30, "PnP-UNet3D"): 31.11,  # 31.61
    (S20, "BP"): 19.28,  # 19.78
    (S20, "KM"): 20.22,  # 20.72
    (S20, "l1"): 20.79,  # 21.29
    (S20, "TV"): 21.02,  # 21.52
    (S20, "PnP-UNet3D"): 30.13,  # 30.63
}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("mimo_magnitude_pnp")
    result = run_quick_demo("mimo_magnitude_pnp", out, key="setting")
    for name in ("table.md", "table.csv", "figure.png"):
        assert (out / name).stat().st_size > 0
    return {k: r["psnr_mean"] for k, r in result.items()}


@pytest.mark.parametrize("key", sorted(THRESHOLDS))
def test_quick_psnr_thresholds(rows, key):
    assert rows[key] >= THRESHOLDS[key]


@pytest.mark.parametrize("setting", [S30, S20])
def test_unet3d_prior_is_best(rows, setting):
    assert rows[(setting, "PnP-UNet3D")] >= max(rows[(setting, m)] for m in ("BP", "KM", "l1", "TV")) + 3.0


@pytest.mark.parametrize("setting", [S30, S20])
@pytest.mark.parametrize("method", ["l1", "TV"])
def test_model_based_priors_beat_bp_and_km(rows, setting, method):
    assert rows[(setting, method)] >= max(rows[(setting, "BP")], rows[(setting, "KM")]) + 0.25
