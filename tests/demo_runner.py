"""Run a demo script's quick mode from the tests (imported like ``operator_registry``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

DEMOS = Path(__file__).resolve().parents[1] / "demos"


def run_quick_demo(name: str, out: Path, key: str = "noise") -> dict:
    """Run ``demos/<name>.py --quick --out <out>``; return its rows keyed by (row[key], method).

    The demos folder goes on ``sys.path`` as when a demo runs as a script (demos import shared helpers).
    """
    if str(DEMOS) not in sys.path:
        sys.path.insert(0, str(DEMOS))
    spec = importlib.util.spec_from_file_location(f"{name}_demo", DEMOS / f"{name}.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    rows = demo.main(["--quick", "--out", str(out)])
    return {(r[key], r["method"]): r for r in rows}
