"""Run a demo's quick mode from the tests through the demos' own runner (imported like ``operator_registry``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the demos run from the checkout (python -m demos), not from the installed package
    sys.path.insert(0, str(ROOT))

from demos.run import run_demo  # noqa: E402


def run_quick_demo(name: str, out: Path, key: str = "noise") -> dict:
    """Run demo ``name`` in its quick setting into ``out`` (``python -m demos NAME --quick``); rows keyed by (row[key], method)."""
    rows = run_demo(name, out, quick=True)
    return {(r[key], r["method"]): r for r in rows}
