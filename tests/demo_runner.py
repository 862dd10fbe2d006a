"""Run a demo script's quick mode from the tests (imported like ``operator_registry``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEMOS = Path(__file__).resolve().parents[1] / "demos"


def run_quick_demo(name: str, out: Path, key: str = "noise") -> dict:
    """Run ``demos/<name>.py --quick --out <out>``; return its rows keyed by (row[key], method)."""
    spec = importlib.util.spec_from_file_location(f"{name}_demo", DEMOS / f"{name}.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    rows = demo.main(["--quick", "--out", str(out)])
    return {(r[key], r["method"]): r for r in rows}
