"""The layout by stage (ARCHITECTURE.md): imports run one way, nothing imports the package root from below, no
private name crosses a module, and the old import paths still work for one release, with a warning.

import-linter (the lint env) holds the layers themselves; these tests hold what it does not, from the source.
"""
import ast
import functools
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import sigbench
from sigbench.core import moved

REPO = Path(__file__).resolve().parents[1]
SOURCES = {"sigbench": REPO / "sigbench", "sigbench_backends": REPO / "backends" / "sigbench_backends"}


def module_name(path: Path) -> str:
    for root, folder in SOURCES.items():
        if folder in path.parents or path.parent == folder:
            parts = path.relative_to(folder).with_suffix("").parts
            return ".".join((root, *parts)).removesuffix(".__init__")
    raise ValueError(path)


@functools.cache
def all_modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(encoding="utf-8"))
            for folder in SOURCES.values() for path in sorted(folder.rglob("*.py"))}


def is_module(name: str) -> bool:
    return name in all_modules()


def imports(tree: ast.Module, importer: str) -> list[tuple[str, list[str], ast.AST]]:
    """Every ``import``/``from ... import`` in ``tree`` (at any depth): (module, names, node)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if node.level:  # relative: sigbench's own code has none, but be exact
                base = importer.split(".")[: -node.level]
                module = ".".join([*base, module])
            found.append((module, [alias.name for alias in node.names], node))
    return found


def edges() -> dict[str, set[str]]:
    """Module -> the sigbench modules it imports (a ``from package import module`` counts as the module)."""
    graph: dict[str, set[str]] = {}
    for name, tree in all_modules().items():
        targets = set()
        for module, names, _ in imports(tree, name):
            if not module.startswith(("sigbench.", "sigbench_backends.")) and module not in SOURCES:
                continue
            subs = [f"{module}.{n}" for n in names if is_module(f"{module}.{n}")]
            targets.update(subs or [module])
        graph[name] = targets - {name}
    return graph


def test_no_module_imports_the_package_root():
    """The root lazily imports the API, so a module that imports the root sits above the API: only the root itself,
    ``__main__`` and the old worker path may."""
    offenders = []
    for name, tree in all_modules().items():
        if name in ("sigbench", "sigbench.__main__"):
            continue
        for module, names, node in imports(tree, name):
            if module == "sigbench" and (not names or any(not is_module(f"sigbench.{n}") for n in names)):
                offenders.append(f"{name}:{node.lineno}")
    assert not offenders, f"these import the package root (import what you need from its stage): {offenders}"


def test_no_private_name_crosses_a_module():
    offenders = []
    for name, tree in all_modules().items():
        sigbench_aliases = set()
        for module, names, node in imports(tree, name):
            if not module.startswith("sigbench"):
                continue
            offenders += [f"{name}:{node.lineno} imports {module}.{n}" for n in names if n.startswith("_")
                          and n != "__version__"]
            if isinstance(node, ast.ImportFrom):
                sigbench_aliases.update(alias.asname or alias.name for alias in node.names
                                        if is_module(f"{module}.{alias.name}"))
            else:
                sigbench_aliases.update(alias.asname or alias.name for alias in node.names)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in sigbench_aliases):
                offenders.append(f"{name}:{node.lineno} reads {node.value.id}.{node.attr}")
    assert not offenders, offenders


def test_imports_make_no_circle():
    graph = edges()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (circle := visit(target)):
                return circle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (circle := visit(start)):
            pytest.fail("an import circle: " + " -> ".join(circle))


def test_every_stage_is_in_the_layers_contract():
    """A new subpackage must take its place in pyproject.toml's import-linter layers, or nothing holds it."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in config if c["type"] == "layers")["layers"]
    named = {part.strip() for layer in layers for part in layer.split("|")}
    stages = {f"sigbench.{p.name}" for p in SOURCES["sigbench"].iterdir() if (p / "__init__.py").exists()}
    top = {f"sigbench.{p.stem}" for p in SOURCES["sigbench"].glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert stages - named == set(), "subpackages missing from the layers contract"
    assert top - named == {"sigbench.worker"}  # the old worker path, a shim (tested below)


@pytest.mark.parametrize("old", sorted(moved.MODULES))
def test_an_old_module_path_gives_the_new_module_and_warns(old):
    new = importlib.import_module(moved.MODULES[old])
    sys.modules.pop(f"sigbench.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"sigbench.{old} has moved to {moved.MODULES[old]}"):
        aliased = importlib.import_module(f"sigbench.{old}")
    assert aliased is new


@pytest.mark.parametrize("package, name", [(p, n) for p, names in moved.ATTRIBUTES.items() for n in names])
def test_an_old_attribute_of_a_module_now_a_package_warns_and_is_the_same(package, name):
    module, _, new_name = moved.ATTRIBUTES[package][name].partition(":")
    with pytest.warns(DeprecationWarning, match=f"{package}.{name} has moved to {module}.{new_name or name}"):
        value = getattr(importlib.import_module(package), name)
    assert value is getattr(importlib.import_module(module), new_name or name)


def test_an_unknown_attribute_is_still_an_attribute_error():
    from sigbench import results

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not hasattr(results, "no_such_name")


def test_the_old_paths_point_at_what_exists():
    """No entry of the table names a module or attribute that is gone (which would fail only when a user asks)."""
    for new in moved.MODULES.values():
        importlib.import_module(new)
    for names in moved.ATTRIBUTES.values():
        for name, home in names.items():
            module, _, new_name = home.partition(":")
            assert hasattr(importlib.import_module(module), new_name or name), home


def test_the_old_worker_command_still_starts_a_worker():
    done = subprocess.run([sys.executable, "-W", "default", "-m", "sigbench.worker", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "sigbench worker" in done.stdout and "python -m sigbench.execution.worker" in done.stdout
    assert "DeprecationWarning" in done.stderr and "sigbench.execution.worker" in done.stderr


def test_the_package_root_keeps_its_public_names():
    assert sigbench.SCHEMA_VERSION == 2 and sigbench.__version__
    assert all(callable(getattr(sigbench, name)) for name in ("run", "load", "compare", "accuracy", "ab"))
