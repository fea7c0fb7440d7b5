"""Imports go one way: each package imports only the layers below it, and no two packages import each other.

Every ``import`` statement of every module is read (also those inside functions), so no edge is hidden.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Lowest first. Packages of one rank may not import each other.
RANK = {"contract": 0, "features": 1, "seeds": 1, "scoring": 2, "campaigns": 3, "training": 4, "serving": 4,
        "churnclv": 5}
#: Modules that may import our own packages inside functions (the CLI, every module of churnclv/, loads
#: heavy layers per command, so that ``churnclv --help`` answers in a second).
LAZY_ALLOWED = {str(path.relative_to(ROOT)) for path in (ROOT / "churnclv").rglob("*.py")}


def _layer(module: str) -> str | None:
    """The layer a dotted module name belongs to: ``churnclv.<layer>…``, the CLI for ``churnclv.<other>``,
    None for the bare ``churnclv`` (the namespace) and anything not ours."""
    parts = module.split(".")
    if parts[0] != "churnclv" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in RANK else "churnclv"


def _statements(path: Path) -> list[tuple[list[str], bool]]:
    """(dotted modules imported, at module level?) for every import statement of one module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.append(([alias.name for alias in node.names], id(node) in top))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] if node.module == "churnclv" \
                else [node.module]
            found.append((names, id(node) in top))
    return found


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(layer imported, at module level?) for every import of our own packages in one module."""
    return [(layer, at_top) for names, at_top in _statements(path) for layer in map(_layer, names) if layer]


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(RANK))
def test_a_package_imports_only_layers_below_it(package):
    wrong = [f"{path.relative_to(ROOT)} imports {name}"
             for path in _modules(package) for name, _ in _imports(path)
             if name != package and RANK[name] >= RANK[package]]
    assert not wrong, "\n".join(wrong)


def test_serving_never_imports_training():
    assert not [p for p in _modules("serving") for name, _ in _imports(p) if name in ("training", "churnclv")]


@pytest.mark.parametrize("package", sorted(RANK))
def test_our_imports_are_at_the_top_of_modules(package):
    hidden = [f"{path.relative_to(ROOT)} imports {name} inside a function"
              for path in _modules(package) if str(path.relative_to(ROOT)) not in LAZY_ALLOWED
              for name, at_top in _imports(path) if not at_top]
    assert not hidden, "\n".join(hidden)


def test_the_layer_map_covers_every_package():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "benchmarks"}
    assert packages == set(RANK)


def test_every_import_of_our_code_goes_through_the_churnclv_namespace():
    """A bare ``import features`` works in the repository (its root is on the path) but not installed."""
    bare = [f"{path.relative_to(ROOT)} imports {name}"
            for package in [*RANK, "tests", "benchmarks"] for path in _modules(package)
            for names, _ in _statements(path) for name in names if name.split(".")[0] in set(RANK) - {"churnclv"}]
    assert not bare, "\n".join(bare)
