"""The package's modules import one another without a cycle (issue 20).

Every module of the installed ``offswitch`` package is parsed (never imported) and each of its
``import`` and ``from ... import`` statements of an ``offswitch`` module becomes an edge of the
module graph: top-level ones and those inside functions alike, since a lazy import is still a
dependency (it only moves the moment the cycle bites, from import time to the first call).
Imports under ``if TYPE_CHECKING:`` are left out: they never run, and are the way to name a
type across modules without depending on them. Imports by a name held in a string
(``importlib.import_module``, as the learner and intervention registries do) are not seen.

``from package import name`` depends on the module ``package.name`` when there is one (``from
offswitch.experiments import store``), else on ``package`` itself. An import depends on the
module it names; that Python also runs the parent packages' ``__init__`` first is not an edge
(else every import of a subpackage would make a cycle with its package's ``__init__``).
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path

import offswitch

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def package_modules() -> dict[str, Path]:
    """Every module of the installed package: its dotted name -> its source file.

    ``pkgutil.walk_packages`` finds the regular packages (those with an ``__init__.py``) and
    their modules; the packages that pyproject.toml installs are added to them, since some
    (``offswitch.experiments``) have no ``__init__.py``, and walk_packages does not enter
    those."""
    modules: dict[str, Path] = {}
    packages = {"offswitch"}
    for info in pkgutil.walk_packages(offswitch.__path__, "offswitch."):
        if info.ispkg:
            packages.add(info.name)
    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file():
        declared = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["packages"]
        packages.update(declared)
    for package in packages:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        for folder in spec.submodule_search_locations:
            init = Path(folder) / "__init__.py"
            if init.is_file():
                modules[package] = init
            for path in sorted(Path(folder).glob("*.py")):
                if path.name != "__init__.py":
                    modules[f"{package}.{path.stem}"] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree``, at any depth, except under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` (source ``path``) imports."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        # The module named, or the nearest enclosing one that is a module of the package
        # (``import offswitch.envs.layout.Action`` is not valid, but a name that is a
        # package's attribute resolves to the package).
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "offswitch" or alias.name.startswith("offswitch."):
                    add(alias.name)
            continue
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - (node.level - 1)])
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        if source != "offswitch" and not source.startswith("offswitch."):
            continue
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            add(submodule if submodule in modules else source)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan's
    algorithm, iteratively), each as the modules in import order, the first one repeated."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return [_cycle_in(graph, set(component)) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected ``component``."""
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in {sorted(component)}")  # pragma: no cover


def test_the_walk_finds_every_part_of_the_package():
    modules = package_modules()
    for name in (
        "offswitch",
        "offswitch.envs.engine",
        "offswitch.agents.training",
        "offswitch.agents.interventions.base",
        "offswitch.experiments.running.runner",
        "offswitch.experiments.running.ray_backend",
        "offswitch.experiments.results.store",
    ):
        assert name in modules
    assert not any(".tests" in name or ".benchmarks" in name for name in modules)


def test_imports_are_resolved_as_python_resolves_them(tmp_path):
    modules = {
        name: tmp_path / f"{name}.py"
        for name in ("offswitch", "offswitch.pkg", "offswitch.pkg.a", "offswitch.pkg.b")
    }
    modules["offswitch.pkg"] = tmp_path / "pkg" / "__init__.py"
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "from . import b\n"  # a submodule, relative
        "from offswitch.pkg import helper\n"  # a name of the package: the package
        "if TYPE_CHECKING:\n"
        "    from offswitch import never\n"
        "def f():\n"
        "    import offswitch\n"  # lazy, still an edge
    )
    path = tmp_path / "a.py"
    path.write_text(source)
    found = imported_modules("offswitch.pkg.a", path, modules)
    assert found == {"offswitch.pkg.b", "offswitch.pkg", "offswitch"}
    init = tmp_path / "pkg" / "__init__.py"
    init.parent.mkdir()
    init.write_text("from .a import thing\nfrom .. import pkg\n")
    assert imported_modules("offswitch.pkg", init, modules) == {"offswitch.pkg.a"}


def test_cycles_are_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


KNOWN_CYCLES: list[set[str]] = []
"""Cycles known and not yet broken (none): the test below fails when one of them is gone."""


def test_no_import_cycle_in_experiments():
    cycles = find_cycles(import_graph())
    ours = [c for c in cycles if any(m.startswith("offswitch.experiments.") for m in c)]
    assert not ours, "import cycles: " + "; ".join(" -> ".join(c) for c in ours)


def test_no_import_cycle_elsewhere_in_the_package():
    cycles = find_cycles(import_graph())
    new = [c for c in cycles if set(c) not in KNOWN_CYCLES]
    assert not new, "import cycles: " + "; ".join(" -> ".join(c) for c in new)
    gone = [sorted(k) for k in KNOWN_CYCLES if k not in [set(c) for c in cycles]]
    assert not gone, f"no longer a cycle, take it out of KNOWN_CYCLES: {gone}"


LAYERS = ("spec", "results", "running", "pages", "interactive")
"""``experiments/``'s sub-packages, bottom to top: a spec is run, its results stored, drawn
on pages, and the commands people type sit on all of them."""


def test_experiments_sub_packages_import_only_the_layers_below_them():
    def layer(module: str) -> int | None:
        parts = module.split(".")
        if parts[:2] != ["offswitch", "experiments"] or len(parts) < 3:
            return None
        return LAYERS.index(parts[2]) if parts[2] in LAYERS else None

    upward = []
    for module, targets in import_graph().items():
        own = layer(module)
        if own is None:
            continue
        upward += [f"{module} -> {t}" for t in sorted(targets) if (layer(t) or 0) > own]
    assert not upward, "imports of a layer above: " + "; ".join(upward)
    every = {m.split(".")[2] for m in package_modules() if m.startswith("offswitch.experiments.")}
    assert every == set(LAYERS), every  # each module sits in a layer
