"""The allowed imports of ARCHITECTURE.md, checked from the source with ``ast``.

Each module of ``src/`` and ``machines/`` may import only the lifecyclekit modules its layer
allows (type-only imports included). ``PENDING`` lists the edges a later architecture move
removes; a test fails as soon as one of them is gone, so the list cannot go stale.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {
    "lifecyclekit.diagrams",
    "lifecyclekit._sheet",
    "lifecyclekit.export",
    "lifecyclekit.check",
}
CORE = {"errors", "payloads", "explain", "snapshot", "transitions", "_meta", "_psm", "_fast"}
CORE |= {"_display", "_chart"}
CORE = {f"lifecyclekit.{m}" for m in CORE} | {"lifecyclekit.lifecycle"}
ALLOWED: dict[str, set[str]] = {
    "lifecyclekit": CORE | {"lifecyclekit.registry"},
    "lifecyclekit.__main__": {"lifecyclekit.cli"},
    "lifecyclekit.cli": {"lifecyclekit.store", "lifecyclekit.registry", "lifecyclekit"}
    | TOOLS
    | CORE,
    **{tool: CORE | TOOLS | {"lifecyclekit.registry"} for tool in TOOLS},
    "lifecyclekit.registry": CORE,
    "lifecyclekit.store": CORE | {"lifecyclekit.registry", "lifecyclekit.store"},
    "lifecyclekit.store.sqlite": {"lifecyclekit.store._backend", "lifecyclekit.errors"},
    "lifecyclekit.store.postgres": {"lifecyclekit.store._backend", "lifecyclekit.errors"},
    **dict.fromkeys(CORE, CORE),
    "lifecyclekit._psm": set(),
    # Notebook display hooks live on the class but draw with the diagrams tool, lazily.
    "lifecyclekit._display": CORE | {"lifecyclekit.diagrams"},
    "lifecyclekit.machines": {"lifecyclekit", "lifecyclekit.machines"},
    "lifecyclekit.machines.workmanager._repo_sql": {
        "lifecyclekit",
        "lifecyclekit.machines",
        "lifecyclekit.store",
    },
}
PRIVATE_PSM = ("statemachine.engines", "statemachine.factory", "statemachine.callbacks")
PRIVATE_PSM += ("statemachine.event_data", "statemachine.dispatcher", "statemachine.signature")
PRIVATE_PSM += ("statemachine.spec_parser", "statemachine.configuration", "statemachine.event")
PRIVATE_PSM += ("statemachine.orderedset", "statemachine.graph", "statemachine.invoke")
PENDING = {}


def _modules() -> dict[str, set[str]]:
    """Every module of the package with the modules it imports."""
    found: dict[str, set[str]] = {}
    for root, package in (
        ("src/lifecyclekit", "lifecyclekit"),
        ("machines", "lifecyclekit.machines"),
    ):
        for path in sorted((ROOT / root).rglob("*.py")):
            parts = path.relative_to(ROOT / root).with_suffix("").parts
            name = ".".join([package, *(p for p in parts if p != "__init__")])
            here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            imports: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    imports |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level:
                    base = here[: len(here) - node.level + 1]
                    imports.add(".".join(base + ([node.module] if node.module else [])))
                elif isinstance(node, ast.ImportFrom) and node.module:
                    imports.add(node.module)
            found[name] = imports
    return found


def _rule(module: str) -> set[str]:
    """The allowed set of the longest ALLOWED key that is ``module`` or a package of it."""
    keys = [k for k in ALLOWED if module == k or module.startswith(k + ".")]
    return ALLOWED[max(keys, key=len)]


def _within(name: str, allowed: set[str]) -> bool:
    return any(name == a or name.startswith(a + ".") for a in allowed)


MODULES = _modules()
EDGES = {(m, i) for m, imports in MODULES.items() for i in imports}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module: str) -> None:
    """A module imports only what its layer allows; psm's engine internals only in _psm."""
    bad = []
    for imported in sorted(MODULES[module]):
        if (module, imported) in PENDING:
            continue
        if imported.startswith(PRIVATE_PSM) and module != "lifecyclekit._psm":
            bad.append(imported)
        elif imported.startswith("lifecyclekit") and not (
            _within(imported, _rule(module)) or imported.startswith(module + ".")
        ):
            bad.append(imported)
    assert bad == [], f"{module} may not import {bad}"


def test_pending_edges_still_exist() -> None:
    """When a move removes an edge, its PENDING entry goes too."""
    assert sorted(set(PENDING) - EDGES) == []


def test_the_core_never_imports_machines_store_cli_or_tools() -> None:
    """The arrows point inward."""
    outward = ("lifecyclekit.machines", "lifecyclekit.store", "lifecyclekit.cli", *TOOLS)
    for module in CORE - {"lifecyclekit._display"} | {"lifecyclekit.registry"}:
        assert [i for i in MODULES.get(module, ()) if i.startswith(outward)] == []
