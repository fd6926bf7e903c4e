"""The README's drawn error tree names every LifecycleError subclass the packages export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lifecyclekit
import lifecyclekit.errors
import lifecyclekit.machines
import lifecyclekit.store
from lifecyclekit import LifecycleError

README = Path(__file__).resolve().parent.parent / "README.md"
MODULES = [lifecyclekit, lifecyclekit.errors, lifecyclekit.store, lifecyclekit.machines]


def _readme_tree() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.partition("### Errors")[2]
    found = re.search(r"```\n(LifecycleError\n.*?)```", section, re.DOTALL)
    assert found, "README's Errors section has no drawn tree starting at LifecycleError"
    return found.group(1)


def _exported_errors() -> list[str]:
    names = set()
    for module in MODULES:
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, LifecycleError):
                names.add(value.__name__)
    return sorted(names)


@pytest.mark.parametrize("name", _exported_errors())
def test_every_exported_error_is_in_the_readme_tree(name: str) -> None:
    """An exported error class missing from the README's tree fails here: draw it there."""
    assert re.search(rf"\b{name}\b", _readme_tree()), f"{name} is not in README's error tree"


def test_the_tree_is_checked_against_enough_classes() -> None:
    """The store's and the machines' errors are among those checked (not only the core's)."""
    names = _exported_errors()
    assert {"NoSuchStore", "AfterCommitError", "WorkGraphError", "UnknownWork"} <= set(names)
