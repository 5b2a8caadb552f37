"""What the package ships (issue 36): its version, ``hrface bench`` without research one-offs (those live in
``benchmarks/`` at the repository root and import hrface like a user), and no path that reaches out of the
package for ``../shared``."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

import hrface
from hrface.cli.main import main
from test_layering import PACKAGE, import_graph, package_modules

REPOSITORY = Path(__file__).resolve().parents[1]


def test_version_is_the_package_version(capsys) -> None:
    """``src/hrface/_version.py`` is the one place of the version: pyproject.toml reads it (the wheel's metadata,
    tests/test_wheel.py), ``hrface --version`` prints it."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"hrface {hrface.__version__}\n"
    assert str(Version(hrface.__version__)) == hrface.__version__  # PEP 440, in its normal form
    installed = importlib.metadata.version("hrface")
    assert installed == hrface.__version__, f"installed as {installed}: reinstall (pip install -e .)"
    pyproject = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hrface._version.__version__"}


def test_the_changelog_names_the_version() -> None:
    changelog = REPOSITORY / "CHANGELOG.md"
    if not changelog.exists():
        pytest.skip("no CHANGELOG.md beside the package (an installed wheel)")
    text = changelog.read_text(encoding="utf-8")
    assert re.search(rf"(?<![\w.]){re.escape(hrface.__version__)}(?!\w|\.\d)", text), (
        f"CHANGELOG.md does not name the version {hrface.__version__}"
    )


def test_the_benchmark_package_holds_only_what_the_library_uses() -> None:
    """Every module of ``hrface.benchmark`` is imported, directly or not, by a module outside it (``hrface bench``);
    a script run only as ``python -m hrface.benchmark.X`` belongs in ``benchmarks/``."""
    modules = package_modules()
    graph = import_graph(modules)
    inside = {name for name in modules if name == "hrface.benchmark" or name.startswith("hrface.benchmark.")}
    reached: set[str] = set()
    todo = [target for name in modules if name not in inside for target in graph[name] if target in inside]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += [target for target in graph[name] if target in inside]
    unused = sorted(inside - reached)
    assert not unused, f"move these research scripts to benchmarks/ at the repository root: {unused}"
    for name in inside:
        assert "__main__" not in modules[name].read_text(encoding="utf-8"), f"{name}: a script; see benchmarks/"


def test_nothing_in_the_package_reaches_out_of_it() -> None:
    """No ``../shared`` (or any ``shared`` folder) named in code, and no ``Path(...).parents[N]`` that climbs
    above the package: an installed wheel has no repository around it.  Docstrings may mention ``../shared``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        depth = len(path.relative_to(PACKAGE).parts) - 1  # parents[depth] is the package folder
        for node in ast.walk(tree):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            text = node.value if isinstance(node, ast.Constant) and id(node) not in docstrings else None
            if isinstance(text, str) and ("shared" in Path(text).parts or "../shared" in text):
                found.append(f"{where}: {text!r}")
            if isinstance(node, ast.Subscript) and getattr(node.value, "attr", None) == "parents":
                step = node.slice.value if isinstance(node.slice, ast.Constant) else None
                if not isinstance(step, int) or step > depth:
                    found.append(f"{where}: {ast.unparse(node)} may climb out of the package")
    assert not found, "the package looks outside itself:\n" + "\n".join(found)


def test_research_scripts_import_the_library_like_a_user() -> None:
    scripts = sorted((REPOSITORY / "benchmarks").glob("*.py"))
    if not scripts:
        pytest.skip("no benchmarks/ folder beside the package (an installed wheel)")
    relative = [
        f"{path.name}:{node.lineno}"
        for path in scripts
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level
    ]
    assert not relative, f"benchmarks/ scripts import hrface by its name, not relatively: {relative}"
    importers = []
    for name, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                absolute = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                absolute = [node.module or ""]
            else:
                continue
            importers += [f"{name}:{node.lineno}" for module in absolute if module.split(".")[0] == "benchmarks"]
    assert not importers, f"the package imports the research scripts: {importers}"
