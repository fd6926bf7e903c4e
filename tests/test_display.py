"""Notebook display, through IPython's own display formatter (what Jupyter calls)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from IPython.core.formatters import DisplayFormatter

from tests.sample_machines import Ticket


def _formats(obj: object) -> dict[str, Any]:
    data, _ = DisplayFormatter().format(obj)
    return dict(data)


@pytest.mark.graphviz
def test_class_displays_as_lifecyclekit_svg() -> None:
    """A class shows as lifecyclekit's diagram (event ids, vendor values), not psm's."""
    shown = _formats(Ticket)
    assert shown["text/html"].startswith('<div class="lifecyclekit"><?xml')
    assert ">QUEUED<" in shown["image/svg+xml"]
    assert "has_capacity" in shown["image/svg+xml"]
    assert "```mermaid\nstateDiagram-v2" in shown["text/markdown"]


@pytest.mark.graphviz
def test_instance_displays_with_its_path() -> None:
    """An instance shows its current state and its numbered path."""
    ticket = Ticket(ticket_id="t")
    ticket.start()
    shown = _formats(ticket)
    assert "#1" in shown["image/svg+xml"]
    assert "queued --> running : start [has_capacity, is_due] #1" in shown["text/markdown"]


def test_without_graphviz_the_display_falls_back_to_mermaid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No dot program: no SVG or HTML, and a mermaid block instead of an error."""
    monkeypatch.setenv("PATH", str(tmp_path))
    shown = _formats(Ticket(ticket_id="t"))
    assert "image/svg+xml" not in shown
    assert "text/html" not in shown
    assert shown["text/markdown"].startswith("```mermaid\nstateDiagram-v2")


def test_without_pydot_the_display_falls_back_to_mermaid(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pydot: the same fallback, for the class too."""
    monkeypatch.setitem(sys.modules, "pydot", None)
    shown = _formats(Ticket)
    assert set(shown) == {"text/plain", "text/markdown"}
