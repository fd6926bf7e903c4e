"""Export to python-statemachine's statechart document and back."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
import yaml
from statemachine.io import load

from lifecyclekit import DefinitionError, Lifecycle, TransitionRejected, registry
from lifecyclekit.export import from_document, to_document, to_json, to_yaml
from tests.sample_machines import Door, Ticket

SCHEMA = json.loads(
    files("statemachine.io").joinpath("schemas/statechart.schema.json").read_text()
)


def structure(cls: Any) -> tuple[Any, ...]:
    states = {s.id for s in cls.states_map.values()}
    initial = next(s.id for s in cls.states_map.values() if s.initial)
    final = {s.id for s in cls.final_states}
    edges = sorted(
        (t.source.id, str(event), (t.target or t.source).id)
        for s in cls.states_map.values()
        for t in s.transitions
        for event in t.events
    )
    return states, initial, final, edges


@pytest.mark.parametrize("name", registry.names())
def test_round_trip_through_statemachine_io(name: str) -> None:
    """Every registered lifecycle exports to a schema-valid document that psm loads back with
    the same states, events, transitions, initial and final states."""
    cls = registry.get(name)
    document = to_document(cls)
    jsonschema.validate(document, SCHEMA)
    loaded = load(json.dumps(document), format="json")
    assert structure(loaded) == structure(cls)


def test_extras_travel_beside_the_document() -> None:
    """Values, provenance and schemas go in the companion, never in the document."""
    document, extras = to_document(registry.get("dataflow-job"), extras=True)
    jsonschema.validate(document, SCHEMA)
    assert extras["values"]["running"] == "JOB_STATE_RUNNING"
    assert {"row": "T16", "event": "drain", "source": "running", "target": "draining"}.items() <= (
        next(p for p in extras["provenance"] if p["row"] == "T16").items()
    )
    assert extras["context"]["title"] == "DataflowJobContext"
    assert extras["payloads"]["drain"]["title"] == "JobChange"


def test_json_and_yaml() -> None:
    """JSON and YAML carry the same document (and the companion with extras)."""
    assert json.loads(to_json(Ticket)) == to_document(Ticket)
    assert yaml.safe_load(to_yaml(Ticket)) == to_document(Ticket)
    both = json.loads(to_json(Ticket, extras=True))
    assert set(both) == {"document", "extras"}


def test_unless_guards_export_as_unless() -> None:
    """psm's unless guards stay unless guards in the document."""
    push = to_document(Door)["states"]["closed"]["transitions"][:2]
    assert push == [
        {"event": "push", "target": "open", "cond": ["is_unlatched"]},
        {"event": "push", "target": "locked", "unless": ["is_unlatched"]},
    ]


def test_from_document_is_strict_and_binds_guards() -> None:
    """A document becomes a strict Lifecycle; guards bind by name; refusals explain."""
    capacity = {"n": 0}
    cls = from_document(
        to_document(Ticket),
        guards={"has_capacity": lambda: capacity["n"] > 0, "is_due": lambda: True},
    )
    assert issubclass(cls, Lifecycle)
    assert structure(cls) == structure(Ticket)
    machine = cls()
    with pytest.raises(TransitionRejected, match="has_capacity is False"):
        machine.start()
    capacity["n"] = 1
    machine.start()
    assert machine.state == "running"


def test_from_document_refuses_unbound_guards() -> None:
    """An unbound guard would silently block in psm's lenient loader; here it is an error."""
    with pytest.raises(DefinitionError, match="'has_capacity', 'is_due' are not bound"):
        from_document(to_document(Ticket))


@pytest.mark.parametrize(
    ("document", "pattern"),
    [
        ({"states": {}}, "non-empty 'states'"),
        (
            {"states": {"a": {"states": {"b": {"transitions": [{"event": "e", "target": "z"}]}}}}},
            "from 'b' targets unknown state 'z'",
        ),
        (
            {"states": {"a": {"initial": True, "transitions": [{"event": "e", "target": "z"}]}}},
            "unknown state 'z'",
        ),
    ],
)
def test_from_document_malformed(document: dict[str, Any], pattern: str) -> None:
    """Malformed documents are DefinitionErrors saying what is wrong."""
    with pytest.raises(DefinitionError, match=pattern):
        from_document(document)


@pytest.mark.parametrize("name", sorted(registry.names()))
@pytest.mark.parametrize("form", ["pair", "json"])
def test_from_document_takes_the_document_with_its_extras(name: str, form: str) -> None:
    """`from_document(to_document(cls, extras=True))` and the JSON form rebuild the class with
    its state values and provenance (issue 10, point 8)."""
    cls = registry.get(name)
    guards = {g.name: bool for row in cls.transition_table() for g in row.guards}
    given = (
        to_document(cls, extras=True) if form == "pair" else json.loads(to_json(cls, extras=True))
    )
    rebuilt = from_document(given, guards=guards)
    assert {s.id: s.value for s in rebuilt.states} == {s.id: s.value for s in cls.states}
    assert [(r.event, r.source, r.target, r.provenance) for r in rebuilt.transition_table()] == [
        (r.event, r.source, r.target, r.provenance) for r in cls.transition_table()
    ]


def test_from_document_refuses_a_foreign_companion() -> None:
    """A companion of another version (or not a mapping) is a DefinitionError saying so."""
    document, extras = to_document(Ticket, extras=True)
    with pytest.raises(DefinitionError, match="extras version 1 .*'lifecyclekit' key is 99"):
        from_document((document, {**extras, "lifecyclekit": 99}))
    with pytest.raises(DefinitionError, match="Not a statechart document: list"):
        from_document([1, 2])  # type: ignore[arg-type]
