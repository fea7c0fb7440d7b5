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


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level package imported, at module level?) for every import statement of one module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], id(node) in top))
    return [(name, at_top) for name, at_top in found if name in RANK]


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
