"""The layering of ``src/hrface`` (``shared/design/house.md``): library code never imports ``hrface.cli``.

Every module outside ``hrface/cli`` is parsed with ``ast``; each import, at module level or inside a function,
absolute or relative (and each ``importlib.import_module("…")`` of a literal name), is resolved to the module
it names, which must not be ``hrface.cli`` or below it.  No exceptions are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hrface

PACKAGE = Path(hrface.__file__).resolve().parent
CLI = "hrface.cli"


def module_name(path: Path) -> str:
    parts = ("hrface", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in the module ``name`` with text ``source``; ``from X import Y``
    gives both ``X`` and ``X.Y`` (Y may be a submodule)."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def is_cli(module: str) -> bool:
    return module == CLI or module.startswith(CLI + ".")


def test_the_check_finds_every_form_of_import() -> None:
    source = (
        "import hrface.cli.main\n"
        "from ..cli.records import RecordSink\n"
        "from .. import cli\n"
        "from hrface import cli\n"
        "def f():\n"
        "    from ..cli import detect\n"
        "    importlib.import_module('hrface.cli.detect')\n"
        "from ..clip import x\n"  # not the CLI
        "from . import cli\n"  # hrface.serving.cli: not the CLI
    )
    found = [line for line, module in imported_modules(source, "hrface.serving.app") if is_cli(module)]
    assert sorted(set(found)) == [1, 2, 3, 4, 6, 7]
    assert imported_modules("from . import y", "hrface.io", is_package=True) == [(1, "hrface.io"), (1, "hrface.io.y")]


def test_library_never_imports_the_cli() -> None:
    modules = sorted(p for p in PACKAGE.rglob("*.py") if not is_cli(module_name(p)))
    assert len(modules) > 50, f"the package's modules were not found under {PACKAGE}"
    crossings = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: imports {module}"
        for path in modules
        for line, module in imported_modules(
            path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py"
        )
        if is_cli(module)
    ]
    assert not crossings, "library code imports the CLI (house.md: only the CLI sits above the library):\n" + "\n".join(
        crossings
    )
