"""The robustness grid of ``benchmarks/robustness.py``: the generic engine on a toy solve (counts, margins, the exact
report), thread counts restored, BSD68 photographs as attenuation maps, and one tiny real CT cell of each grid."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
import torch
from skimage import io

from operators.kernels import threads as thread_pool
from recon.phantoms import TEST_SEEDS, coule_like, rock_like

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "robustness.py"
_SPEC = importlib.util.spec_from_file_location("robustness_benchmark", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench  # dataclasses look their module up by name
_SPEC.loader.exec_module(bench)

NOISE_SHIFT = {0.01: 1.0, 0.04: 4.0}


def toy_solve(cell):
    """Exact binary fractions: X - Y is 0.5 at 1 % and 1.5 at 4 %; Z gains 0.25 dB with the second thread."""
    base = {"a": 30.0, "b": 20.0}[cell.family] - NOISE_SHIFT[cell.noise]
    return {"X": base + 2.0, "Y": base + (1.5 if cell.noise == 0.01 else 0.5), "Z": base + 0.25 * (cell.threads - 1)}


TOY_RANKINGS = (bench.Ranking.parse("X >= Y + 1 >= Z + 0.5"), bench.Ranking.best("X", ("Z",), margin=1.0, name="X best"))

TOY_REPORT = """# toy

a note

8 cells: family a, b; seed #0; noise 1 %, 4 %; threads 1, 2; size 8.

| method | mean PSNR (dB) | min | max | max diff over thread counts (dB) |
|---|---|---|---|---|
| X | 24.50 | 18.00 | 31.00 | 0.000 |
| Y | 23.50 | 16.50 | 30.50 | 0.000 |
| Z | 22.62 | 16.00 | 29.25 | 0.250 |

Largest PSNR difference between the thread counts of one cell: 0.250 dB (MISS: <= 0.05 dB).

## X >= Y + 1 >= Z + 0.5: kept in 2/8 (25 %) cells, MISS (target 90 %)

| method | mean PSNR (dB) | min-max (dB) |
|---|---|---|
| X | 24.50 | 18.00 to 31.00 |
| Y | 23.50 | 16.50 to 30.50 |
| Z | 22.62 | 16.00 to 29.25 |

| pair | required margin (dB) | mean margin (dB) | min-max (dB) | cells kept |
|---|---|---|---|---|
| X >= Y + 1 | 1 | +1.00 | +0.50 to +1.50 | 4/8 (50 %) |
| Y >= Z + 0.5 | 0.5 | +0.88 | +0.25 to +1.50 | 6/8 (75 %) |

Cells kept by family (a 1/4, b 1/4), noise (1 % 0/4, 4 % 2/4), threads (1 2/4, 2 0/4).

## X best: kept in 8/8 (100 %) cells, PASS (target 90 %)

| method | mean PSNR (dB) | min-max (dB) |
|---|---|---|
| X | 24.50 | 18.00 to 31.00 |
| Z | 22.62 | 16.00 to 29.25 |

| pair | required margin (dB) | mean margin (dB) | min-max (dB) | cells kept |
|---|---|---|---|---|
| X >= Z + 1 | 1 | +1.88 | +1.75 to +2.00 | 8/8 (100 %) |

Cells kept by family (a 4/4, b 4/4), noise (1 % 4/4, 4 % 4/4), threads (1 4/4, 2 4/4).
"""


@pytest.fixture
def toy_results(torch_state):
    thread_pool.set_num_threads(2)
    cells = bench.grid_cells(("a", "b"), (0,), (0.01, 0.04), (1, 2), size=(8,))
    return bench.run_grid(bench.Grid("toy", cells, TOY_RANKINGS, toy_solve), log=None)


# ----------------------------------------------------------------------------- the engine


def test_grid_cells_are_the_product_with_threads_fastest():
    cells = bench.grid_cells(("a", "b"), (0, 1), (0.5,), (1, 2), size=(32, 64))
    assert len(cells) == 16
    assert [c.threads for c in cells[:4]] == [1, 2, 1, 2] and [c.seed for c in cells[:4]] == [0, 0, 1, 1]
    assert cells[0] == bench.Cell("a", 0, 0.5, 1, (("size", 32),)) and cells[4]["size"] == 64
    assert cells[0].key == cells[1].key != cells[2].key
    assert cells[1].label() == "a #0, noise 50 %, 2 threads, size 32"
    with pytest.raises(KeyError, match="cell has no axis 'frames'"):
        cells[0]["frames"]


@pytest.mark.parametrize(
    "kwargs,match",
    [({"families": ()}, "families: expected a non-empty sequence"), ({"seeds": (-1,)}, r"seeds: .*bad: \[-1\]"),
     ({"noises": "0.02"}, "noises: expected"), ({"threads": (0, 1)}, "threads: expected .* integers >= 1"),
     ({"threads": (1, 1)}, "threads: expected distinct values"), ({"size": ()}, "size: expected a non-empty")],
)  # fmt: skip
def test_grid_cells_reject_bad_axes(kwargs, match):
    args = {"families": ("a",), "seeds": (0,), "noises": (0.01,), "threads": (1,), **kwargs}
    with pytest.raises(ValueError, match=match):
        bench.grid_cells(**args)


def test_rankings_parse_chain_and_best():
    parsed = bench.Ranking.parse("RED-PSM >= PSM-TV + 0.3 >= PSM + 1 >= window FBP + 1")
    chained = bench.Ranking.chain(("RED-PSM", "PSM-TV", "PSM", "window FBP"), (0.3, 1.0, 1.0))
    assert parsed == chained and parsed.methods == ("RED-PSM", "PSM-TV", "PSM", "window FBP")
    assert str(parsed.claims[0]) == "RED-PSM >= PSM-TV + 0.3"
    la = bench.Ranking.parse("La+TV >= TV + 1.5")  # a '+' inside a name is not a margin
    assert la.claims == (bench.Claim("La+TV", "TV", 1.5),)
    assert la.kept({"La+TV": 31.5, "TV": 30.0}) and not la.kept({"La+TV": 31.49, "TV": 30.0})
    best = bench.Ranking.best("La+Net", ("FBP", "La+TV"))
    assert best.claims == (bench.Claim("La+Net", "FBP"), bench.Claim("La+Net", "La+TV"))
    with pytest.raises(ValueError, match="margins: expected 2 margins"):
        bench.Ranking.chain(("A", "B", "C"), (1.0,))
    with pytest.raises(ValueError, match="text: expected 'A >= B"):
        bench.Ranking.parse("A >= B + lots")
    with pytest.raises(ValueError, match="over: expected method names other than 'A'"):
        bench.Ranking.best("A", ("A", "B"))
    with pytest.raises(ValueError, match="target: expected a share"):
        bench.Ranking("r", (bench.Claim("A", "B"),), target=1.5)


def test_engine_counts_margins_and_writes_the_exact_table(toy_results):
    chain, best = (bench.summarize(r, toy_results) for r in TOY_RANKINGS)
    assert (chain.kept, chain.n, chain.passed, best.kept, best.passed) == (2, 8, False, 8, True)
    assert [(c.mean, c.low, c.high, c.kept) for c in chain.claims] == [(1.0, 0.5, 1.5, 4), (0.875, 0.25, 1.5, 6)]
    assert chain.methods["Z"] == (22.625, 16.0, 29.25)
    assert chain.by_axis == {"family": {"a": (1, 4), "b": (1, 4)}, "noise": {0.01: (0, 4), 0.04: (2, 4)},
                             "threads": {1: (2, 4), 2: (0, 4)}}  # fmt: skip
    assert bench.thread_spread(toy_results) == {"X": 0.0, "Y": 0.0, "Z": 0.25}
    assert bench.report(toy_results, TOY_RANKINGS, title="toy", notes=["a note"]) == TOY_REPORT


def test_solve_must_score_every_ranked_method(torch_state):
    grid = bench.Grid("bad", bench.grid_cells(("a",), (0,), (0.01,), (1,)), TOY_RANKINGS, lambda cell: {"X": 1.0, "Y": 0.5})
    with pytest.raises(ValueError, match=r"solve: expected a finite PSNR for each of \['X', 'Y', 'Z'\]"):
        bench.run_grid(grid, log=None)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs numba with >= 2 threads")
def test_each_cell_runs_at_its_thread_count_and_the_counts_are_restored(torch_state):
    thread_pool.set_num_threads(2)
    torch.set_num_threads(3)  # torch's count differs from numba's: both must come back
    seen = []

    def solve(cell):
        seen.append((cell.threads, torch.get_num_threads(), thread_pool.num_threads()))
        if cell.noise == 0.04:
            raise RuntimeError("solver failed")
        return {"X": 1.0, "Y": 0.0, "Z": 0.0}

    cells = bench.grid_cells(("a",), (0,), (0.01,), (1, 2))
    results = bench.run_grid(bench.Grid("t", cells, TOY_RANKINGS[1:], solve), log=None)
    assert seen == [(1, 1, 1), (2, 2, 2)] and [r.numba_threads for r in results] == [1, 2]
    assert (torch.get_num_threads(), thread_pool.num_threads()) == (3, 2)
    with pytest.raises(RuntimeError, match="solver failed"):
        bench.run_grid(bench.Grid("t", bench.grid_cells(("a",), (0,), (0.04,), (1,)), TOY_RANKINGS[1:], solve), log=None)
    assert (torch.get_num_threads(), thread_pool.num_threads()) == (3, 2)


def test_json_and_markdown_are_written_whole(toy_results, tmp_path):
    grid = bench.Grid("toy", tuple(r.cell for r in toy_results), TOY_RANKINGS, toy_solve, "fixed things")
    bench.write_text(tmp_path / "sub" / "r.json", json.dumps(bench.results_json(grid, toy_results, 1.5)))
    data = json.loads((tmp_path / "sub" / "r.json").read_text())
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["r.json"]  # the .part file was renamed
    assert len(data["cells"]) == 8 and data["cells"][1] == {**data["cells"][1], "family": "a", "threads": 2, "size": 8}
    assert [(r["kept"], r["passed"]) for r in data["rankings"]] == [(2, False), (8, True)]
    assert data["rankings"][0]["by_axis"]["noise"] == {"0.01": [0, 4], "0.04": [2, 4]}


# ----------------------------------------------------------------------------- the CT families


def test_photographs_become_square_attenuation_maps_and_a_missing_set_is_skipped(tmp_path):
    folder = tmp_path / "bsd68"
    folder.mkdir()
    gen = np.random.default_rng(0)
    for k, shape in enumerate(((30, 50), (50, 30))):
        io.imsave(folder / f"test{k:03d}.png", (40 + 150 * gen.random(shape)).astype(np.uint8), check_contrast=False)
    x = bench.photo_object(1, 16, tmp_path)
    assert x.shape == (1, 1, 16, 16) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"index: expected 0 <= index < 2"):
        bench.photo_object(2, 16, tmp_path)
    said = []
    assert bench.available(("coule", "bsd68", "rock"), tmp_path, said.append) == ("coule", "bsd68", "rock")
    assert bench.available(("coule", "bsd68", "rock"), tmp_path / "none", said.append) == ("coule", "rock")
    assert said and said[0].startswith("family bsd68 skipped: data_dir: expected PNG images in")


def test_static_families_are_the_unseen_coule_seeds_and_rocks():
    cell = bench.Cell("coule", 1, 0.02, 1)
    assert torch.equal(bench.static_object(cell, 32), coule_like(32, TEST_SEEDS[bench.OBJECT_SEED0 + 1]))
    assert torch.equal(bench.static_object(bench.Cell("rock", 1, 0.02, 1), 32), rock_like(32, bench.object_seed(cell)))
    assert bench.noise_seed(cell) == bench.noise_seed(bench.Cell("coule", 1, 0.02, 2)) != bench.noise_seed(bench.Cell("coule", 1, 0.04, 1))
    with pytest.raises(ValueError, match="cell.family: expected one of"):
        bench.static_object(bench.Cell("walnut", 0, 0.02, 1), 32)


# ----------------------------------------------------------------------------- one real cell of each grid


def test_graphla_grid_runs_a_tiny_cell_at_one_and_two_threads(torch_state):
    thread_pool.set_num_threads(2)
    grid = bench.graphla_grid(families=("rock",), seeds=(0,), noises=(0.02,), threads=(1, 2), size=32, iters=20, log=None)
    assert [r.name for r in grid.rankings] == [*(f"La+{p} >= {p} + 1.5" for p in bench.PSIS), "La+Net best non-oracle"]
    results = bench.run_grid(grid, log=None)
    assert len(results) == 2 and set(results[0].psnr) == {*bench.GRAPHLA_NON_ORACLE, "La+True"}
    assert all(10.0 < v < 40.0 for r in results for v in r.psnr.values())
    # measured 0.002 dB (Tikhonov's CG), every other method < 1e-4 dB (busy 2-core machine)
    assert max(bench.thread_spread(results).values()) < bench.THREAD_TOLERANCE_DB
    assert "## La+Net best non-oracle: kept in" in bench.report(results, grid.rankings, title="t")


def test_red_psm_grid_runs_from_the_command_line(torch_state, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bench.QUICK, "red_psm", {"seeds": (0,), "sizes": (32,), "n_iter": 3})
    out, js = tmp_path / "red.md", tmp_path / "red.json"
    code = bench.main(["--grid", "red_psm", "--quick", "--families", "rock", "--threads", "1", "--out", str(out), "--json", str(js)])
    text = out.read_text()
    assert text.startswith("# Robustness grid `red_psm` (quick)") and text in capsys.readouterr().out
    assert "## RED-PSM >= PSM-TV + 0.3 >= PSM + 1 >= window FBP + 1: kept in" in text
    data = json.loads(js.read_text())
    assert [(c["family"], c["size"], c["noise"], c["threads"]) for c in data["cells"]] == [("rock", 32, 0.005, 1), ("rock", 32, 0.02, 1)]
    for cell in data["cells"]:
        assert set(cell["psnr"]) == {"window FBP", "PSM", "PSM-TV", "RED-PSM"} and all(v > 10 for v in cell["psnr"].values())
    assert code == (0 if data["rankings"][0]["passed"] else 1)
