"""Diagrams of lifecycles, on python-statemachine's ``extract -> renderers`` pipeline.

:func:`render` draws a lifecycle class, an instance (its current state highlighted, and with
``path=True`` the transitions of its history numbered and emphasised), or a registry name, as
``mermaid``, ``dot``, ``svg``, ``png`` or ``md`` (a "lifecycle sheet": diagram, transitions
with guards and provenance, payload and context schemas; GitHub renders it as is).

What lifecyclekit changes in python-statemachine's intermediate graph before its renderers
run: edges are labelled with event *ids* and their guards (``start [constraints_met,
is_due]``, unless-guards as ``not name``) rather than humanized names, and states show their
vendor value where it differs from their id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from lifecyclekit.errors import DiagramError, optional_import
from lifecyclekit.lifecycle import Lifecycle
from lifecyclekit.transitions import all_states

if TYPE_CHECKING:
    from statemachine.contrib.diagram.model import DiagramGraph

__all__ = ["FORMATS", "DiagramError", "gallery_sheet", "render", "resolve"]

Format = Literal["mermaid", "dot", "svg", "png", "md"]
FORMATS: tuple[Format, ...] = ("mermaid", "dot", "svg", "png", "md")

_INSTALL_DOT = "apt-get install graphviz (Debian/Ubuntu) or brew install graphviz (macOS)"
_PATH_COLOUR = "#d9480f"
_PATH_STYLE = f"stroke:{_PATH_COLOUR},stroke-width:3px"


def resolve(target: object) -> type[Lifecycle] | Lifecycle:
    """A lifecycle class or instance from a class, an instance or a registry name."""
    if isinstance(target, str):
        from lifecyclekit.registry import registry

        return registry.get(target)
    if isinstance(target, Lifecycle) or (
        isinstance(target, type) and issubclass(target, Lifecycle)
    ):
        return target
    msg = f"Cannot draw {target!r}: give a Lifecycle class, an instance or a registry name."
    raise DiagramError(msg)


def _class_of(machine: type[Lifecycle] | Lifecycle) -> type[Lifecycle]:
    return machine if isinstance(machine, type) else type(machine)


def diagram_graph(machine: type[Lifecycle] | Lifecycle) -> DiagramGraph:
    """python-statemachine's ``extract()`` graph, relabelled the lifecyclekit way."""
    from statemachine.contrib.diagram.extract import extract

    graph = extract(machine)
    cls = _class_of(machine)
    values = {state.id: state.value for state in all_states(cls)}
    pending = list(graph.states)
    while pending:  # compound and parallel states hold theirs as children
        state = pending.pop()
        pending.extend(state.children)
        if state.id not in values:
            continue  # history pseudo-states keep python-statemachine's "H"
        value = values[state.id]
        state.name = str(value) if value is not None and str(value) != state.id else state.id
    declared = [
        (state.id, " ".join(str(e) for e in transition.events))
        for state in _extraction_order(cls.states)
        for transition in state.transitions
    ]
    for (source, events), diagram_transition in zip(declared, graph.transitions, strict=False):
        if diagram_transition.source == source:  # always, in python-statemachine's order
            diagram_transition.event = events
        diagram_transition.guards = [
            f"not {guard[1:]}" if guard.startswith("!") else guard
            for guard in diagram_transition.guards
        ]
    return graph


def _extraction_order(states: Any) -> Iterator[Any]:
    """States (history states included) in the order python-statemachine's ``extract``
    lists their transitions: each state, then its children, then its history states."""
    for state in states:
        yield state
        yield from _extraction_order(state.states)
        for history in state.history:
            yield history
            yield from _extraction_order(history.states)


def render(target: object, format: str = "mermaid", *, path: bool = False) -> str | bytes:
    """Draw a lifecycle.

    Args:
        target: a lifecycle class, an instance (current state highlighted), or a registry name.
        format: ``mermaid``, ``dot``, ``svg`` (text), ``png`` (bytes) or ``md``.
        path: for an instance, number and emphasise the transitions of its history.

    Raises:
        DiagramError: an unknown format, or Graphviz's ``dot`` missing (the message says how
            to install it; ``mermaid`` and ``md`` need neither).
        MissingDependency: pydot is not installed (``pip install 'lifecyclekit[diagrams]'``).
        UnknownLifecycle: ``target`` names no registered lifecycle.
    """
    if format not in FORMATS:
        msg = f"Unknown diagram format {format!r}. Formats: {', '.join(FORMATS)}."
        raise DiagramError(msg)
    machine = resolve(target)
    history = machine.history if path and isinstance(machine, Lifecycle) else ()
    if format == "mermaid":
        return _mermaid(machine, history)
    if format == "md":
        from lifecyclekit._sheet import sheet

        return sheet(machine, _mermaid(machine, history))
    dot = _dot(machine, history)
    if format == "dot":
        return dot
    return _graphviz(dot, format)


Edge = tuple[str, str, str]
"""An edge as drawn: source id, target id, and its label's event text (``"push"``)."""


def _steps(edges: list[Edge], history: Any) -> dict[int, list[int]]:
    """Which drawn edge each record of ``history`` took: edge index -> record numbers.

    A record takes the first edge with its source, target and event, so when two edges join
    the same pair of states only the one whose event fired is marked.
    """
    steps: dict[int, list[int]] = {}
    for record in history:
        for index, (source, target, events) in enumerate(edges):
            if (source, target) == (
                record.source,
                record.target,
            ) and record.event in events.split():
                steps.setdefault(index, []).append(record.seq)
                break
    return steps


def _numbers(seqs: list[int]) -> str:
    return " ".join(f"#{seq}" for seq in seqs)


def _mermaid(machine: type[Lifecycle] | Lifecycle, history: Any) -> str:
    from statemachine.contrib.diagram.renderers.mermaid import MermaidRenderer

    text = MermaidRenderer().render(diagram_graph(machine))
    if not history:
        return text
    lines = text.rstrip("\n").split("\n")
    links = [i for i, line in enumerate(lines) if " --> " in line]
    pattern = re.compile(r"^\s*(\S+) --> (\S+)(?: : ([^\[]*))?")
    edges = []
    for line_no in links:
        match = pattern.match(lines[line_no])
        edges.append(match.groups(default="") if match else ("", "", ""))
    steps = _steps([(s, t, e.strip()) for s, t, e in edges], history)
    for index, seqs in steps.items():
        lines[links[index]] += " " + _numbers(seqs)
    lines += [f"    linkStyle {index} {_PATH_STYLE}" for index in sorted(steps)]
    return "\n".join(lines) + "\n"


def _dot(machine: type[Lifecycle] | Lifecycle, history: Any) -> str:
    optional_import(
        "pydot",
        extra="diagrams",
        feature="DOT, SVG and PNG diagrams",
        more=f"SVG and PNG also need Graphviz's dot program ({_INSTALL_DOT}); the mermaid "
        "and md formats need neither",
    )
    from statemachine.contrib.diagram.renderers.dot import DotRenderer

    dot_graph = DotRenderer().render(diagram_graph(machine))
    drawn = dot_graph.get_edges()
    edges = [
        (
            str(edge.get_source()).strip('"'),
            str(edge.get_destination()).strip('"'),
            _label_event(str(edge.get("label") or "")),
        )
        for edge in drawn
    ]
    for index, seqs in _steps(edges, history).items():
        drawn[index].set("color", _PATH_COLOUR)
        drawn[index].set("fontcolor", _PATH_COLOUR)
        drawn[index].set("penwidth", "3")
        drawn[index].set("xlabel", f'"{_numbers(seqs)}"')
    return str(dot_graph.to_string())


def _label_event(label: str) -> str:
    """The event text of a DOT edge label (python-statemachine writes an HTML table whose
    first line is the event, then the guards)."""
    match = re.search(r"<font[^>]*>([^<]*)", label)
    return match.group(1).strip() if match else label.strip('"<> ')


def _graphviz(dot: str, format: str) -> str | bytes:
    from statemachine.contrib.diagram.graphviz import GraphvizNotFoundError, run_graphviz

    try:
        output = run_graphviz(dot, format)
    except GraphvizNotFoundError:
        msg = (
            f"{format.upper()} diagrams need Graphviz's dot program on PATH: {_INSTALL_DOT}. "
            "The mermaid and md formats need nothing more."
        )
        raise DiagramError(msg) from None
    return output.decode("utf-8") if format == "svg" else output


def gallery_sheet(names: list[str]) -> str:
    """One Markdown page with the ``md`` sheet of every named lifecycle."""
    header = (
        "# Lifecycle gallery\n\n"
        "<!-- Generated by `lifecyclekit gallery --builtin > machines/README.md`; do not edit. "
        "A test fails when it is stale. -->\n\n"
        "One sheet per registered lifecycle: its diagram (edges labelled `event [guards]`), "
        "states with their vendor values, transitions with the specification row each rests "
        "on, payload models and context fields.\n"
    )
    return header + "".join(f"\n{render(name, 'md')!s}" for name in names)
