"""Regression on the quick setting of demos/mri_qmri_nlcg.py (64x64 procedural brain, 8 coils,
SNR 30, T2 at R = 4 and 6, T1 at R = 4; NLCG 200 iterations; NLCG-Net with 2 unrolled blocks,
4 splits, learning rate 3e-4, gradient clipping at 0.5, at most 20 epochs).

NRMSE is lower-is-better: each threshold is the value measured on 2026-11-28 (2-core CPU, one
torch thread, as the suite runs) times 1.1, the measured value in the comment beside it. The
ordering checks follow the issue (NLCG-Net < NLCG, NLCG and subspace < SENSE+fit); the measured
margins are in the comments.
"""

import pytest
from demo_runner import run_quick_demo

MEASURED = {  # (setting, method): (NRMSE % of T2/T1, NRMSE % of |M0|), measured
    ("T2, R=4", "SENSE+fit"): (35.01, 39.1),
    ("T2, R=4", "subspace"): (32.43, 26.85),
    ("T2, R=4", "NLCG"): (12.04, 10.33),
    ("T2, R=4", "NLCG-Net"): (9.88, 7.01),
    ("T2, R=6", "SENSE+fit"): (37.73, 30.09),
    ("T2, R=6", "subspace"): (31.86, 22.23),
    ("T2, R=6", "NLCG"): (12.79, 11.34),
    ("T2, R=6", "NLCG-Net"): (10.01, 7.83),
    ("T1, R=4", "SENSE+fit"): (32.16, 11.31),
    ("T1, R=4", "subspace"): (30.09, 11.04),
    ("T1, R=4", "NLCG"): (19.84, 18.03),
    ("T1, R=4", "NLCG-Net"): (15.29, 6.13),
}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("mri_qmri_nlcg")
    result = run_quick_demo("mri_qmri_nlcg", out, key="setting")
    for name in ("table.md", "table.csv", "figure_t2_R4.png", "figure_t2_R6.png", "figure_t1_R4.png"):
        assert (out / name).stat().st_size > 0
    return {k: (r["nrmse_t"], r["nrmse_m0"]) for k, r in result.items()}


@pytest.mark.parametrize("key", sorted(MEASURED))
def test_quick_nrmse_thresholds(rows, key):
    t, m0 = rows[key]
    t_measured, m0_measured = MEASURED[key]
    assert t <= 1.1 * t_measured
    assert m0 <= 1.1 * m0_measured


@pytest.mark.parametrize("setting", ["T2, R=4", "T2, R=6", "T1, R=4"])
def test_nlcg_net_beats_nlcg(rows, setting):
    # measured margins (points of NRMSE %): relaxation 2.16 / 2.78 / 4.55, |M0| 3.32 / 3.51 / 11.90
    for i in (0, 1):
        assert rows[(setting, "NLCG-Net")][i] < rows[(setting, "NLCG")][i]


@pytest.mark.parametrize("setting", ["T2, R=4", "T2, R=6", "T1, R=4"])
def test_model_based_beats_subspace_beats_sense(rows, setting):
    # relaxation maps, measured: NLCG below subspace by 10.3-20.4, subspace below SENSE+fit by 2.1-5.9
    assert rows[(setting, "NLCG")][0] < rows[(setting, "subspace")][0] < rows[(setting, "SENSE+fit")][0]
