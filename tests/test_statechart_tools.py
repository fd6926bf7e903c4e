"""Statecharts through the tools: diagrams (clusters, the active configuration, the path),
export and ``from_document`` round trips, and ``check``."""

from __future__ import annotations

import pytest

from lifecyclekit import Lifecycle, State
from lifecyclekit.check import check
from lifecyclekit.diagrams import render
from lifecyclekit.export import from_document, to_document, to_json
from tests.chart_machines import Order


def _ordered() -> Order:
    order = Order()
    for event in ("pay", "pack", "ship", "depart"):
        order.send(event)
    return order


def test_transition_table_lists_nested_transitions() -> None:
    """Transitions declared inside compound and parallel states are part of the table."""
    rows = {(r.event, r.source, r.target) for r in Order.transition_table()}
    assert {
        ("pack", "picking", "packing"),
        ("depart", "handed_over", "in_transit"),
        ("settle", "invoiced", "paid"),
        ("release", "created", "resume"),
    } <= rows


def test_mermaid_draws_clusters_and_highlights_the_configuration() -> None:
    """Compound and parallel states are nested blocks (regions split by ``--``), edges carry
    event ids and guards, and every active state is marked."""
    text = str(render(_ordered(), "mermaid"))
    assert "state fulfilment {" in text
    assert 'state "tracking" as tracking {' in text
    assert "        --\n" in text
    assert "picking --> packing : pack [has_items]" in text
    assert "tracking --> delivered : deliver" in text
    active = {line.split(":::")[0].strip() for line in text.splitlines() if ":::active" in line}
    assert active == {"tracking", "carrier", "in_transit", "billing", "invoiced"}


def test_mermaid_path_numbers_transitions_inside_regions() -> None:
    """With ``path=True`` a transition inside a region is numbered as its record."""
    text = str(render(_ordered(), "mermaid", path=True))
    assert "picking --> packing : pack [has_items] #2" in text
    assert "handed_over --> in_transit : depart #4" in text


def test_dot_and_svg_draw_clusters_with_the_active_states_filled() -> None:
    """DOT has one cluster per compound or parallel state; active states are filled."""
    dot = str(render(_ordered(), "dot"))
    for cluster in ("fulfilment", "tracking", "carrier", "billing"):
        assert f"subgraph cluster_{cluster} " in dot
    assert "pack<br/>[has_items]" in dot
    nodes = {line.split(" [", 1)[0]: line for line in dot.splitlines() if " [label=" in line}
    for state in ("in_transit", "invoiced"):
        assert "fillcolor=turquoise" in nodes[state]
    for state in ("handed_over", "paid", "picking", "created"):
        assert "fillcolor=white" in nodes[state]
    svg = str(render(_ordered(), "svg"))
    assert "<svg" in svg
    assert "in_transit" in svg


def _guards() -> dict[str, object]:
    return {"has_items": lambda: True}


def test_export_nests_compound_parallel_and_history_states() -> None:
    """The document nests states as python-statemachine's format does."""
    document = to_document(Order)
    fulfilment = document["states"]["fulfilment"]
    assert fulfilment["states"]["picking"] == {
        "initial": True,
        "transitions": [{"event": "pack", "target": "packing", "cond": ["has_items"]}],
    }
    assert fulfilment["history"] == {"resume": {"transitions": [{"target": "picking"}]}}
    tracking = document["states"]["tracking"]
    assert tracking["parallel"] is True
    assert set(tracking["states"]) == {"carrier", "billing"}
    assert document["states"]["created"]["transitions"][1] == {
        "event": "release",
        "target": "resume",
    }


def test_export_is_read_by_python_statemachine() -> None:
    """python-statemachine's own loader accepts the document and runs the same chart."""
    from statemachine.io import load

    chart = load(to_json(Order), format="json")
    machine = chart()
    for event in ("pay", "ship", "settle"):
        machine.send(event)
    assert {s.id for s in machine.configuration} == {
        "tracking", "carrier", "handed_over", "billing", "paid",
    }  # fmt: skip


def test_from_document_round_trips_a_statechart() -> None:
    """export -> from_document -> export is the identity, and the rebuilt class behaves the
    same: regions, guards, history memory, snapshots."""
    pair = to_document(Order, extras=True)
    rebuilt = from_document(pair, guards=_guards())
    assert issubclass(rebuilt, Lifecycle)
    assert to_document(rebuilt)["states"] == pair[0]["states"]
    assert [(r.event, r.source, r.target) for r in rebuilt.transition_table()] == [
        (r.event, r.source, r.target) for r in Order.transition_table()
    ]
    machine = rebuilt()
    for event in ("pay", "pack", "hold", "release", "ship", "settle"):
        machine.send(event)
    assert machine.configuration_ids == (
        "tracking", "carrier", "handed_over", "billing", "paid",
    )  # fmt: skip
    again = rebuilt.restore(machine.snapshot())
    assert again.snapshot() == machine.snapshot()


def test_check_finds_nothing_wrong_in_a_sound_statechart() -> None:
    """``check`` follows the hierarchy: nested states are reachable through their parent
    and leave through their ancestors' transitions."""
    assert check(Order) == []
    assert check(to_document(Order), guards=_guards()) == []


def test_check_reports_a_history_state_without_default() -> None:
    """A history state with no default transition enters nothing before it remembers
    something (python-statemachine's behaviour): LK010."""
    document = to_document(Order)
    del document["states"]["fulfilment"]["history"]["resume"]["transitions"]
    findings = check(document, guards=_guards())
    assert [(f.code, f.subject) for f in findings] == [("LK010", "resume")]
    assert "add resume.to(<a state of fulfilment>)" in findings[0].message


def test_check_reports_a_nested_trap_and_an_unreachable_nested_state() -> None:
    """A nested state with no exit of its own or of its ancestors is a trap; a nested
    state nothing enters is unreachable."""
    document = to_document(Order)
    fulfilment = document["states"]["fulfilment"]
    fulfilment["states"]["stuck"] = {}
    carrier = document["states"]["tracking"]["states"]["carrier"]
    carrier["states"]["lost"] = {"transitions": [{"event": "find", "target": "in_transit"}]}
    document["states"]["tracking"]["transitions"] = []
    codes = {(f.code, f.subject) for f in check(document, guards=_guards())}
    assert ("LK001", "stuck") in codes
    assert ("LK001", "lost") in codes
    assert ("LK002", "in_transit") in codes
    assert ("LK005", "find") in codes


class _NoExit(Lifecycle):
    start = State(initial=True)

    class work(State.Compound):
        a = State(initial=True)
        b = State()
        go = a.to(b)

    end = State(final=True)
    begin = start.to(work)
    finish = work.to(end)


def test_check_passes_a_class_whose_nested_states_leave_through_the_parent() -> None:
    """``b`` has no transition of its own but leaves with ``work``'s ``finish``."""
    assert check(_NoExit) == []


def test_check_refuses_a_malformed_nested_document() -> None:
    """Nested ``states`` of the wrong type are a DefinitionError saying where."""
    from lifecyclekit.errors import DefinitionError

    with pytest.raises(DefinitionError, match="'states' of 'a' must be a mapping of state ids"):
        check({"states": {"a": {"states": ["b"]}}})
