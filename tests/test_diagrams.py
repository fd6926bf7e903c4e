"""Diagrams: goldens for mermaid and md, highlighting, real SVG/PNG, missing tools."""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lifecyclekit import Lifecycle, MissingDependency, State, registry
from lifecyclekit.diagrams import DiagramError, render
from tests.sample_machines import Door, FixedClock, Ticket

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str, text: str) -> None:
    """Compare with tests/golden/<name>; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if not path.exists() or os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_mermaid_golden() -> None:
    """Edges carry event ids and guards; states their vendor value; finals are drawn final."""
    text = render(Ticket, "mermaid")
    assert 'state "QUEUED" as queued' in text
    assert "queued --> running : start [has_capacity, is_due]" in text
    assert "done --> [*]" in text
    golden("ticket.mermaid", str(text))


def test_md_sheet_golden() -> None:
    """The md sheet: diagram, states, transitions, payload schemas, context fields."""
    text = str(render(Ticket, "md"))
    assert "| `running` | `finish` |  | `done` |" in text
    assert "`FinishPayload`, sent with `finish`:" in text
    assert '| `outcome` | "success" \\| "failure" | yes |  |' in text
    assert "### Context: `TicketContext`" in text
    golden("ticket.md", text)


def test_unless_guards_read_as_not() -> None:
    """python-statemachine's !name is written 'not name'."""
    assert "closed --> locked : push [not is_unlatched]" in str(render(Door, "mermaid"))


def test_instance_highlights_state_and_numbers_its_path() -> None:
    """An instance's current state is highlighted; path=True numbers and styles its history."""
    ticket = Ticket(ticket_id="t", clock=FixedClock())
    ticket.start()
    ticket.retry()
    plain = str(render(ticket, "mermaid"))
    assert "queued:::active" in plain
    assert "linkStyle" not in plain
    text = str(render(ticket, "mermaid", path=True))
    assert "queued --> running : start [has_capacity, is_due] #1" in text
    assert "running --> queued : retry #2" in text
    links = [line for line in text.splitlines() if " --> " in line]
    styled = sorted(int(n) for n in re.findall(r"linkStyle (\d+)", text))
    assert [links[i].split(" : ")[1].split()[0] for i in styled] == ["start", "retry"]


def test_registry_names_render() -> None:
    """A registry name is drawn like its class."""
    assert render("one-time-work", "mermaid") == render(registry.get("one-time-work"), "mermaid")


def test_unknown_format_says_which_exist() -> None:
    """An unknown format lists the formats."""
    with pytest.raises(DiagramError, match="Formats: mermaid, dot, svg, png, md"):
        render(Ticket, "gif")


def _normalised_dot(text: str) -> str:
    return re.sub(r"\d{6,}", "<id>", text)


def test_dot_output_with_ids_normalised() -> None:
    """DOT embeds per-process ids; with them normalised it is stable and labelled by id."""
    pytest.importorskip("pydot")
    text = _normalised_dot(str(render(Ticket, "dot")))
    assert text == _normalised_dot(str(render(Ticket, "dot")))
    assert "start" in text
    assert "QUEUED" in text


def test_dot_path_is_emphasised() -> None:
    """The DOT edges of an instance's history are coloured."""
    pytest.importorskip("pydot")
    ticket = Ticket(ticket_id="t")
    ticket.start()
    assert "#d9480f" in str(render(ticket, "dot", path=True))


@pytest.mark.graphviz
@pytest.mark.parametrize(
    "name", ["dataflow-job", "one-time-work", "periodic-work", "chained-work"]
)
def test_svg_is_real(name: str) -> None:
    """Graphviz renders an SVG document that parses, with a node per state."""
    svg = render(name, "svg")
    assert isinstance(svg, str)
    root = ET.fromstring(svg.encode())
    titles = {el.text for el in root.iter("{http://www.w3.org/2000/svg}title")}
    assert {s.id for s in registry.get(name).states} <= titles


@pytest.mark.graphviz
def test_png_is_real() -> None:
    """A PNG: the magic bytes and a plausible size from the IHDR chunk."""
    png = render("one-time-work", "png")
    assert isinstance(png, bytes)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 200
    assert height > 50


def test_missing_graphviz_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the dot program on PATH, SVG/PNG explain what to install; mermaid still works."""
    pytest.importorskip("pydot")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DiagramError, match=r"apt-get install graphviz.*brew install graphviz"):
        render(Ticket, "svg")
    assert render(Ticket, "mermaid")


def test_missing_pydot_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pydot, DOT/SVG/PNG name the extra; md and mermaid need nothing."""
    monkeypatch.setitem(sys.modules, "pydot", None)
    with pytest.raises(MissingDependency, match=r"pip install 'lifecyclekit\[diagrams\]'"):
        render(Ticket, "dot")
    assert render(Ticket, "md")


class Shortcut(Lifecycle):
    """Two events join the same pair of states."""

    a = State(initial=True)
    b = State()
    z = State(final=True)

    go = a.to(b)
    jump = a.to(b)
    back = b.to(a)
    end = b.to(z)


def _dot_edges(text: str) -> dict[tuple[str, str, str], str]:
    """DOT edge lines by (source, target, event), for the path tests."""
    edges = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+) -> (\w+) \[label=<.*?<font[^>]*>(\w+)</font>", line)
        if match:
            edges[match.groups()] = line
    return edges


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_path_marks_only_the_edge_taken_and_numbers_it(fmt: str) -> None:
    """When two edges join the same states, only the one whose event fired is marked, and
    every step carries its number, in DOT (so SVG and PNG) as in mermaid (issue 10, point 7)."""
    if fmt == "dot":
        pytest.importorskip("pydot")
    shortcut = Shortcut()
    shortcut.jump()
    shortcut.back()
    shortcut.jump()
    text = str(render(shortcut, fmt, path=True))
    if fmt == "mermaid":
        assert "    a --> b : jump #1 #3" in text
        assert "    a --> b : go\n" in text
        assert "    b --> a : back #2" in text
        return
    edges = _dot_edges(text)
    assert 'xlabel="#1 #3"' in edges["a", "b", "jump"]
    assert "#d9480f" in edges["a", "b", "jump"]
    assert "#d9480f" not in edges["a", "b", "go"]
    assert "xlabel" not in edges["a", "b", "go"]
    assert 'xlabel="#2"' in edges["b", "a", "back"]
    assert "xlabel" not in edges["b", "z", "end"]


@pytest.mark.graphviz
def test_svg_path_shows_the_step_numbers() -> None:
    """The numbers reach the SVG that Graphviz draws."""
    shortcut = Shortcut()
    shortcut.go()
    shortcut.end()
    svg = str(render(shortcut, "svg", path=True))
    texts = [
        el.text for el in ET.fromstring(svg.encode()).iter("{http://www.w3.org/2000/svg}text")
    ]
    assert "#1" in texts
    assert "#2" in texts
