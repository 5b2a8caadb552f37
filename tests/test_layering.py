"""The layering of ``src/hrface`` (``shared/design/house.md``): floors, no circles, library code never imports the CLI.

Every module of the package is parsed with ``ast``; each import, at module level or inside a function, absolute or
relative (and each ``importlib.import_module("…")`` of a literal name), is resolved to the module it names: ``from X
import Y`` names the module ``X.Y`` when there is one, else ``X``.  Then:

- **library code never imports** ``hrface.cli`` (no exception);
- **floors**: an import goes down a floor, or stays in its own top-level package; the floor-1 packages may import each
  other.  :data:`UPWARD` and :data:`SIDEWAYS` list the only other arrows, each with the reason it stays; there is at
  most one upward arrow, and an exception that is no longer used fails the test (remove it);
- **no circles**, file by file and package by package (the children of every package, sub-packages taken whole),
  except :data:`CIRCLES`, each temporary and with its reason;
- nothing in the package imports the package root ``hrface`` (the façade users import).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import hrface

PACKAGE = Path(hrface.__file__).resolve().parent
CLI = "hrface.cli"

FLOORS = {
    "cli": 6,  # argparse, progress bars, exit codes, messages
    "serving": 5,
    "distributed": 5,
    "video": 5,
    "benchmark": 5,  # what ``hrface bench`` needs only; research one-offs live in benchmarks/ at the repository root
    "training": 4,
    "evaluation": 3,
    "export": 3,
    "runtime": 2,  # Detector, Landmarker, FaceAnalyzer, backends
    "models": 1,
    "data": 1,
    "geometry": 1,
    "landmarks": 1,
    "io": 1,  # images in and out, and the records (hrface.io.records: built and written in one place)
    "ops": 1,
    "errors": 1,
    "extras": 1,
    "_version": 1,
}
"""The floor of each top-level package or module of ``hrface`` (house.md); a new one must be given its floor here."""

UPWARD = {
    ("hrface.runtime.backends", "hrface.export.onnx_export"): (
        "the first-use export of a checkpoint run on ONNX Runtime or OpenVINO (FaceAnalyzer(detector='x.pth')): the "
        "runtime reaches the exporter through one lazily called function, backends._exporter() -> "
        "export.onnx_export.cached_export; export imports nothing from the runtime, so there is no circle"
    ),
}
"""The upward imports that stay, ``(importing module, imported module): why``; at most one (issue 36)."""

SIDEWAYS = {
    ("hrface.benchmark.profile", "hrface.video"): (
        "hrface bench --video times the video analysis: the benchmark measures video, video never imports it"
    ),
}
"""Imports between two packages of one floor above floor 1, ``(importing module, imported module): why``."""

CIRCLES: dict[frozenset[str], str] = {}
"""Import circles allowed for now (files, or children of one package), each with its reason."""


def module_name(path: Path) -> str:
    parts = ("hrface", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(source: str, name: str, is_package: bool) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` for every import in the module ``name`` with text ``source``: ``names`` are those
    of ``from module import names`` (empty for ``import module`` and ``importlib.import_module("module")``)."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, target, [alias.name for alias in node.names]))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value, []))
    return found


def imported_modules(source: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in the module ``name`` with text ``source``; ``from X import Y``
    gives both ``X`` and ``X.Y`` (Y may be a submodule)."""
    found = []
    for line, module, names in _imports(source, name, is_package):
        found.append((line, module))
        found += [(line, f"{module}.{item}") for item in names]
    return found


def is_cli(module: str) -> bool:
    return module == CLI or module.startswith(CLI + ".")


def package_modules() -> dict[str, Path]:
    modules = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    assert len(modules) > 50, f"the package's modules were not found under {PACKAGE}"
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """``{module: {imported module of the package: first line}}``.  ``from X import Y`` imports the module ``X.Y``
    when there is one, else ``X`` (Y is a name defined in X); any other import names the longest module of the
    package that its name lies in."""

    def longest(module: str) -> str:
        while module and module not in modules:
            module = module.rpartition(".")[0]
        return module

    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for line, module, names in _imports(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"):
            submodules = [f"{module}.{item}" for item in names if f"{module}.{item}" in modules]
            targets = submodules + ([longest(module)] if len(submodules) < len(names) or not names else [])
            for target in targets:
                if target and target != name:
                    edges.setdefault(target, line)
        graph[name] = edges
    return graph


def top(module: str) -> str:
    """The top-level package (or module) of ``hrface`` that ``module`` lies in; '' for the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.add(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


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


def test_the_graph_names_the_imported_module_and_finds_circles(tmp_path) -> None:
    files = {"hrface.a": "a/__init__.py", "hrface.a.x": "a/x.py", "hrface.b": "b/__init__.py", "hrface.b.y": "b/y.py"}
    modules = {name: tmp_path / file for name, file in files.items()}
    sources = {
        "hrface.a": "from . import x\n",  # the submodule, not the package itself
        "hrface.a.x": "from ..b import name\n",  # a name of the package hrface.b
        "hrface.b": "def f():\n    import hrface.b.y.z\n",  # the longest module of the package
        "hrface.b.y": "from hrface.a import x\n",
    }
    for name, path in modules.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(sources[name])
    graph = import_graph(modules)
    assert graph == {
        "hrface.a": {"hrface.a.x": 1},
        "hrface.a.x": {"hrface.b": 1},
        "hrface.b": {"hrface.b.y": 2},
        "hrface.b.y": {"hrface.a.x": 1},
    }
    assert cycles({k: set(v) for k, v in graph.items()}) == [frozenset({"hrface.a.x", "hrface.b", "hrface.b.y"})]


def test_library_never_imports_the_cli() -> None:
    modules = [p for p in sorted(PACKAGE.rglob("*.py")) if not is_cli(module_name(p))]
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


def test_imports_keep_to_the_floors() -> None:
    modules = package_modules()
    unknown = sorted({top(name) for name in modules} - set(FLOORS) - {""})
    assert not unknown, f"give these packages their floor in FLOORS (house.md): {unknown}"
    assert len(UPWARD) <= 1, "at most one import runs back up the floors (issue 36)"
    crossings, used = [], set()
    for name, edges in import_graph(modules).items():
        for target, line in edges.items():
            here, there = top(name), top(target)
            if there == "":
                crossings.append(f"{name}:{line} imports the package root hrface (the façade): import the module")
                continue
            if here in ("", there) or FLOORS[here] > FLOORS[there] or FLOORS[here] == FLOORS[there] == 1:
                continue
            key = (name, target)
            if key in UPWARD or key in SIDEWAYS:
                used.add(key)
                continue
            way = "up" if FLOORS[there] > FLOORS[here] else "sideways"
            crossings.append(
                f"{name}:{line} imports {target}: {way} from floor {FLOORS[here]} ({here}) to {FLOORS[there]} ({there})"
            )
    assert not crossings, "imports across the floors of house.md:\n" + "\n".join(crossings)
    stale = sorted((set(UPWARD) | set(SIDEWAYS)) - used)
    assert not stale, f"these exceptions are no longer used; remove them from UPWARD / SIDEWAYS: {stale}"


def test_no_import_circles_file_by_file_and_package_by_package() -> None:
    modules = package_modules()
    graph = {name: set(edges) for name, edges in import_graph(modules).items()}
    found = {component: "files" for component in cycles(graph)}
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}
    for package in sorted(packages):
        prefix = package + "."

        def child(module: str, prefix: str = prefix) -> str | None:
            return prefix + module[len(prefix) :].split(".")[0] if module.startswith(prefix) else None

        children: dict[str, set[str]] = defaultdict(set)
        for name, targets in graph.items():
            for target in targets:
                a, b = child(name), child(target)
                if a and b and a != b:
                    children[a].add(b)
        for component in cycles(children):
            found.setdefault(component, f"children of {package}")
    unexpected = [f"{where}: {' <-> '.join(sorted(c))}" for c, where in found.items() if c not in CIRCLES]
    assert not unexpected, "import circles (house.md: none):\n" + "\n".join(unexpected)
    stale = [sorted(c) for c in CIRCLES if c not in found]
    assert not stale, f"these circles are gone; remove them from CIRCLES: {stale}"
