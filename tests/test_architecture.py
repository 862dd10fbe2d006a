"""The layers point down only: ``operators`` <- ``denoisers`` <- ``recon`` <- ``demos``, ``benchmarks``.

The three library packages and the ``demos`` package on top of them are checked by
import-linter's layers contract in ``pyproject.toml`` (``[tool.importlinter]``; it counts imports
inside functions too and lists no exceptions). ``benchmarks/`` (scripts, not a package) sits
above the library too; a small AST walk checks that the library never imports ``demos`` or
``benchmarks`` nor loads them by path, and that the two never import each other.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("operators", "denoisers", "recon")
SCRIPTS = ("demos", "benchmarks")
#: the contract's layers, top first: the demos package above the library
LAYERS = ["demos", "recon", "denoisers", "operators"]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the ``pyproject.toml`` of ``cwd``, no cache written."""
    return subprocess.run(
        [sys.executable, "-c", LINT, "--config", str(cwd / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _imported_roots(tree: ast.AST) -> set[str]:
    """Top-level names of every absolute import in ``tree``, at any depth (functions included)."""
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
    return {id(n.body[0].value) for n in nodes if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}


def test_contract_is_the_layer_order_with_no_exceptions():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert sorted(config["root_packages"]) == sorted(LAYERS)
    (contract,) = config["contracts"]
    assert contract["type"] == "layers" and contract["layers"] == LAYERS
    assert not {"ignore_imports", "unmatched_ignore_imports_alerting", "exhaustive_ignores"} & set(contract)


def test_library_layers_contract_is_kept():
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout


def test_contract_catches_an_up_import_inside_a_function(tmp_path: Path):
    # the same contract on a three-package toy whose middle layer imports the top one in a function
    text = (ROOT / "pyproject.toml").read_text()
    start = text.index("[tool.importlinter]")
    end = re.search(r"^\[(?!\[?tool\.importlinter)", text[start + 1 :], re.M)
    (tmp_path / "pyproject.toml").write_text(text[start : start + 1 + end.start()] if end else text[start:])
    for pkg in LAYERS:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "recon" / "phantoms.py").write_text("X = 1\n")
    (tmp_path / "denoisers" / "train.py").write_text("def f():\n    from recon.phantoms import X\n\n    return X\n")
    (tmp_path / "demos" / "run.py").write_text("X = 2\n")
    (tmp_path / "recon" / "cli.py").write_text("def g():\n    from demos.run import X\n\n    return X\n")
    run = _lint_imports(tmp_path)
    assert run.returncode == 1 and "BROKEN" in run.stdout
    assert "denoisers.train -> recon.phantoms" in run.stdout
    assert "recon.cli -> demos.run" in run.stdout


@pytest.mark.parametrize("package", LIBRARY)
def test_library_never_reaches_up_to_the_scripts(package: str):
    """No import of ``demos``/``benchmarks``/``tests`` and no path to them in the library's code."""
    path_like = re.compile(r"(^|[/\\])(demos|benchmarks|tests)([/\\]|$)")
    for path in _python_files(package):
        tree = ast.parse(path.read_text(), str(path))
        assert not _imported_roots(tree) & {*SCRIPTS, "tests"}, path
        docstrings = _docstrings(tree)
        literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]
        assert not [s for s in literals if path_like.search(s)], f"{path} names a script folder by path"


def test_demos_and_benchmarks_are_independent():
    for folder, other in (("demos", "benchmarks"), ("benchmarks", "demos")):
        for path in _python_files(folder):
            assert other not in _imported_roots(ast.parse(path.read_text(), str(path))), path
