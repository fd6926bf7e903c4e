"""Static checks: every registered lifecycle passes; each finding fires on a faulty input."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from lifecyclekit import Lifecycle, Provenance, State, registry
from lifecyclekit.check import check
from lifecyclekit.export import to_document
from tests.sample_machines import Ticket


@pytest.mark.parametrize("name", registry.names())
def test_registered_lifecycles_pass(name: str) -> None:
    """No finding for any registered lifecycle."""
    assert check(registry.get(name)) == []


def codes(findings: list[Any]) -> list[tuple[str, str]]:
    return [(f.code, f.subject) for f in findings]


FAULTY = {
    "states": {
        "a": {"initial": True, "transitions": [{"event": "go", "target": "b", "cond": "ok"}]},
        "b": {},
        "c": {"transitions": [{"event": "loop", "target": "c"}]},
        "d": {"final": True},
        "e": {"transitions": [{"event": "orphan", "target": "d"}]},
    }
}


def test_document_findings() -> None:
    """Unreachable (LK001), trap (LK002), no path to final (LK003), unbound guard (LK004),
    events no reachable state accepts (LK005)."""
    assert codes(check(FAULTY)) == [
        ("LK003", "a"),
        ("LK002", "b"),
        ("LK001", "c"),
        ("LK003", "c"),
        ("LK001", "d"),
        ("LK001", "e"),
        ("LK005", "loop"),
        ("LK005", "orphan"),
    ]
    assert ("LK004", "ok") in codes(check(FAULTY, guards={}))
    assert ("LK004", "ok") not in codes(check(FAULTY, guards={"ok": bool}))


def test_guard_expressions_check_each_name() -> None:
    """A boolean expression of guards names each of them."""
    document = to_document(Ticket)
    document["states"]["queued"]["transitions"][0]["cond"] = ["has_capacity and not frozen"]
    assert codes(check(document, guards={"has_capacity": bool})) == [("LK004", "frozen")]


class Unschemable(BaseModel):
    model_config = {"arbitrary_types_allowed": True}
    handle: object = None

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        msg = "cannot describe a handle"
        raise TypeError(msg)


def test_class_findings() -> None:
    """A class with psm's validation off: structure, guard, schema, provenance, values."""

    class Sloppy(Lifecycle):
        validate_disconnected_states = False
        validate_trap_states = False
        validate_final_reachability = False
        Context = Unschemable
        a = State(initial=True, value="X")
        b = State(value="X")
        c = State(final=True)
        island = State()
        go = a.to(b, cond="missing_guard")
        leave = b.to(c)
        float_ = island.to(c)
        provenance = {("go", "a", "b"): Provenance(row="R1", text="because")}

    found = codes(check(Sloppy))
    assert ("LK001", "island") in found
    assert ("LK004", "missing_guard") in found
    assert ("LK006", "context") in found
    assert ("LK007", "leave b->c") in found
    assert ("LK008", "b") in found
