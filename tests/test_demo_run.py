"""The demos' runner (python -m demos): names, SUMMARY declarations, the summary table, bad names."""

from __future__ import annotations

import subprocess
import sys

import pytest
from demo_runner import ROOT

from demos import common, run


def test_runner_rejects_unknown_name_before_running_anything(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        run.main(["ct_classical", "no_such_demo"])
    assert stop.value.code == 2
    assert "NAME: unknown demo 'no_such_demo'; expected one of" in capsys.readouterr().err
    with pytest.raises(ValueError, match="NAME: unknown demo 'x'"):
        run.load("x")


def test_every_demo_declares_a_summary_of_its_own_methods() -> None:
    names = run.demo_names()
    assert {"ct_classical", "ct_graphla", "deblur_pnp_hvae", "mri_qmri_nlcg", "fwi_sobolev"} <= set(names)
    assert "common" not in names and "run" not in names
    for name in names:
        demo = run.load(name)
        assert set(demo.SUMMARY) == run.SUMMARY_KEYS, name
        assert callable(demo.main), name


def test_summary_lines_render_rows() -> None:
    summary = {"modality": "CT", "methods": ("La+TV",), "metric": "psnr_mean", "metric_label": "PSNR (dB)",
               "setting": ("noise",), "paper": "paper_psnr"}  # fmt: skip
    rows = [
        {"noise": 0.02, "method": "TV", "psnr_mean": 30.0, "paper_psnr": 28.8},
        {"noise": 0.02, "method": "La+TV", "psnr_mean": 33.456, "paper_psnr": 34.92},
        {"noise": 0.04, "method": "La+TV", "psnr_mean": 30.1, "paper_psnr": float("nan")},
    ]
    lines = run.summary_lines("ct_graphla", summary, rows)
    assert [(ln["setting"], ln["ours"], ln["paper"]) for ln in lines] == [("noise 2%", "33.46", "34.92"), ("noise 4%", "30.10", "-")]
    table = run.render_summary(lines)
    assert table.splitlines()[0] == "| demo | method | modality | setting | metric | ours | paper |"
    assert table.splitlines()[1] == "|---|---|---|---|---|---|---|"
    assert table.splitlines()[2] == "| ct_graphla | La+TV | CT | noise 2% | PSNR (dB) | 33.46 | 34.92 |"


def test_common_tables_and_hill_climb(tmp_path) -> None:
    common.write_csv([{"a": 1, "b": 2}, {"a": 3, "c": 4}], tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines() == ["a,b,c", "1,2,", "3,,4"]
    text = common.write_markdown(tmp_path / "t.md", ["# t", *common.table_lines(("x", "y"), [(1, "b")])])
    assert text == "# t\n| x | y |\n|---|---|\n| 1 | b |\n" == (tmp_path / "t.md").read_text()
    calls = []
    best, tried = common.hill_climb((1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0), lambda v: calls.append(v) or -((v - 2.0) ** 2))
    assert best == 2.0 and sorted(tried) == [1.0, 2.0, 3.0, 4.0, 5.0] and len(calls) == len(tried)  # each value once


def test_python_m_demos_runs_from_the_checkout() -> None:
    done = subprocess.run([sys.executable, "-m", "demos", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.startswith("usage: python -m demos") and "fwi_sobolev" in done.stdout
