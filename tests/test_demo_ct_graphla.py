"""Regression on the quick setting of demos/ct_graphla.py (128^2, 120 views, 3 images, 400 its).

Thresholds are the means measured on 2026-11-27 (2-core CPU) minus 0.5 dB, La+FBP's and the Net's
on 2026-12-03 (the default ``sigma="auto"`` graph, the noise-blind ``ct_unet``); the measured mean is
in the comment beside each. La+Net must be the best non-oracle method at both noise levels (issue
20; measured margins over the next best, La+TV: 0.63 dB at 2 %, 0.80 dB at 4 %). The gain checks follow the issue: every La+Psi above its Psi, by at
least 1.5 dB at 2 % noise (measured gains 3.1-8.1 dB) and 0.5 dB at 4 % (measured 0.96-5.4 dB).
"""

import pytest
from demo_runner import run_quick_demo

THRESHOLDS = {  # (noise, method): threshold   # measured mean PSNR (dB)
    (0.02, "La+FBP"): 32.9,  # 33.44 (2026-12-03, sigma="auto"; 28.64 with the paper's fixed 1e-3)
    (0.02, "La+Tik"): 33.0,  # 33.58
    (0.02, "La+TV"): 34.5,  # 35.08
    (0.02, "La+Net"): 35.2,  # 35.71 (2026-12-03, the noise-blind ct_unet; 34.87 with the 2 %-only net)
    (0.02, "La+True"): 47.5,  # 48.09
    (0.02, "Net"): 30.4,  # 30.91 (2026-12-03, noise-blind; 30.53)
    (0.04, "Net"): 29.1,  # 29.60 (2026-12-03, noise-blind)
    (0.04, "La+TV"): 29.7,  # 30.23
    (0.04, "La+Net"): 30.5,  # 31.03 (2026-12-03, noise-blind; 30.45)
    (0.04, "La+True"): 44.2,  # 44.77
}
MIN_GAIN = {0.02: 1.5, 0.04: 0.5}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("ct_graphla")
    result = run_quick_demo("ct_graphla", out)
    for name in ("table.md", "table.csv", "figure.png", "noise_sweep.png"):
        assert (out / name).stat().st_size > 0
    return result


@pytest.mark.parametrize("key", sorted(THRESHOLDS))
def test_quick_psnr_thresholds(rows, key):
    assert rows[key]["psnr_mean"] >= THRESHOLDS[key]


@pytest.mark.parametrize("noise", [0.02, 0.04])
@pytest.mark.parametrize("psi", ["FBP", "Tik", "TV", "Net"])
def test_every_la_psi_beats_its_psi(rows, noise, psi):
    assert rows[(noise, f"La+{psi}")]["psnr_mean"] >= rows[(noise, psi)]["psnr_mean"] + MIN_GAIN[noise]


@pytest.mark.parametrize("noise", [0.02, 0.04])
def test_oracle_graph_is_best(rows, noise):
    others = [rows[(noise, m)]["psnr_mean"] for m in ("FBP", "Tik", "TV", "Net", "La+FBP", "La+Tik", "La+TV", "La+Net")]
    assert rows[(noise, "La+True")]["psnr_mean"] > max(others) + 5.0


@pytest.mark.parametrize("noise", [0.02, 0.04])
def test_la_net_is_the_best_non_oracle_method(rows, noise):
    others = [rows[(noise, m)]["psnr_mean"] for m in ("FBP", "Tik", "TV", "Net", "La+FBP", "La+Tik", "La+TV")]
    assert rows[(noise, "La+Net")]["psnr_mean"] > max(others)
