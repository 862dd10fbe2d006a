"""The demos' runner: ``python -m demos [NAME ...] [--quick] [--out DIR]`` from the repository root.

Runs the named demos (all by default), each into ``<out>/<name>``, and prints one summary table,
also written to ``<out>/summary.md``: per demo the lines its ``SUMMARY`` names (method, modality,
setting, our metric, the paper's figure). A demo that fails is reported and the others still run;
the exit status is 1 when any failed, 2 for an unknown name (nothing runs then).

A demo is a module ``demos/<name>.py`` with ``main(argv) -> rows`` (one dict per table row, each
with a ``"method"``) and ``SUMMARY``, a dict: ``modality``; ``methods`` (the row ``method``
values to show); ``metric`` (a row key) and ``metric_label``; ``setting`` (row keys that make
the setting label); ``paper``: a row key holding the paper's figure for that row, else a text
shown as it is.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from demos.common import table_lines

DEMOS_DIR = Path(__file__).resolve().parent
#: the keys every demo's SUMMARY has
SUMMARY_KEYS = frozenset({"modality", "methods", "metric", "metric_label", "setting", "paper"})
SUMMARY_HEADER = ("demo", "method", "modality", "setting", "metric", "ours", "paper")


def demo_names() -> list[str]:
    """Names of the demo scripts (the modules of this folder that declare a ``SUMMARY``)."""
    return sorted(p.stem for p in DEMOS_DIR.glob("*.py") if "\nSUMMARY = " in p.read_text())


def load(name: str) -> ModuleType:
    """The module of demo ``name``.

    Raises:
        ValueError: ``name`` is not one of :func:`demo_names`.
    """
    available = demo_names()
    if name not in available:
        raise ValueError(f"NAME: unknown demo {name!r}; expected one of {', '.join(available)}")
    return importlib.import_module(f"demos.{name}")


def run_demo(name: str, out: Path, quick: bool) -> list[dict]:
    """Run demo ``name`` into the folder ``out`` (its quick setting if ``quick``); return its rows."""
    return load(name).main(["--out", str(out)] + (["--quick"] if quick else []))


def summary_lines(name: str, summary: dict, rows: list[dict]) -> list[dict]:
    """The rows of one demo that its ``SUMMARY`` names, as summary-table lines (see the module docstring)."""
    lines = []
    for row in rows:
        if row["method"] not in summary["methods"]:
            continue
        paper = summary["paper"]
        if paper in row:
            paper = "-" if row[paper] is None or math.isnan(row[paper]) else f"{row[paper]:.2f}"
        ours = row[summary["metric"]]
        lines.append({
            "demo": name, "method": row["method"], "modality": summary["modality"],
            "setting": ", ".join(_setting_text(k, row[k]) for k in summary["setting"]) or "-",
            "metric": summary["metric_label"], "ours": f"{ours:.3g}" if abs(ours) < 1 else f"{ours:.2f}", "paper": paper,
        })  # fmt: skip
    return lines


def _setting_text(key: str, value: object) -> str:
    if key == "noise" and isinstance(value, float):
        return f"noise {value:.0%}"
    return str(value)


def render_summary(lines: list[dict]) -> str:
    """Markdown table of :func:`summary_lines` output."""
    return "\n".join(table_lines(SUMMARY_HEADER, ([line[h] for h in SUMMARY_HEADER] for line in lines))) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run demos (all by default) and print one table: method, modality, setting, ours, the paper's figure."""
    available = demo_names()
    ap = argparse.ArgumentParser(prog="python -m demos", description=main.__doc__)
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"demos to run (default: all): {', '.join(available)}")
    ap.add_argument("--quick", action="store_true", help="the demos' small settings (minutes instead of hours)")
    ap.add_argument("--out", type=Path, default=Path("out"), help="folder for the demos' outputs (default: out/)")
    args = ap.parse_args(argv)
    names = args.names or available
    try:
        modules = {name: load(name) for name in names}
    except ValueError as err:
        ap.error(str(err))  # exit status 2
    lines, failed = [], []
    t_all = time.perf_counter()
    for k, (name, module) in enumerate(modules.items(), 1):
        print(f"=== [{k}/{len(names)}] {name}{' --quick' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        try:
            rows = run_demo(name, args.out / name, args.quick)
        except Exception as err:  # noqa: BLE001  (one failing demo must not hide the others' results)
            print(f"=== {name} FAILED: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        lines += summary_lines(name, module.SUMMARY, rows)
        print(f"=== {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    table = render_summary(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(table)
    print(f"\n{table}\n{len(names) - len(failed)}/{len(names)} demos in {time.perf_counter() - t_all:.0f} s; table in {args.out / 'summary.md'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
