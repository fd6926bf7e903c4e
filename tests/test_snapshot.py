"""Snapshots: JSON round trips, restore without entry actions, and bad snapshots."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from lifecyclekit import LifecycleError, Snapshot, SnapshotError, registry
from tests.sample_machines import Door, FixedClock, Ticket
from tests.strategies import ticket_sequences


def play(ticket: Ticket, calls: list[tuple[str, dict[str, Any]]]) -> None:
    for event, data in calls:
        try:
            ticket.send(event, **data)
        except LifecycleError:
            pass


@given(ticket_sequences)
def test_snapshot_restore_is_the_identity(calls: list[tuple[str, dict[str, Any]]]) -> None:
    """Any reachable instance -> snapshot -> JSON -> restore gives the same instance."""
    ticket = Ticket(ticket_id="t", clock=FixedClock())
    play(ticket, calls)
    snap = ticket.snapshot()
    restored = Ticket.restore(Snapshot.model_validate_json(snap.model_dump_json()))
    assert restored.state == ticket.state
    assert restored.context == ticket.context
    assert restored.history == ticket.history
    assert restored.revision == ticket.revision
    assert restored.snapshot() == snap


def test_restored_instance_keeps_going() -> None:
    """A restored instance accepts events and continues its history without gaps."""
    ticket = Ticket(ticket_id="t", clock=FixedClock())
    ticket.start()
    restored = Ticket.restore(ticket.snapshot().model_dump(), clock=FixedClock())
    restored.finish(outcome="success")
    assert [r.seq for r in restored.history] == [1, 2]
    assert restored.revision == 2


def test_restore_does_not_run_entry_actions() -> None:
    """Restoring into 'running' does not call on_enter_running again."""
    ticket = Ticket(ticket_id="t")
    ticket.start()
    assert ticket.context.attempts == 1
    restored = Ticket.restore(ticket.snapshot())
    assert restored.context.attempts == 1
    assert restored.state == "running"


def test_restore_in_final_state_refuses_events() -> None:
    """A finished instance stays finished after a round trip."""
    ticket = Ticket(ticket_id="t")
    ticket.cancel()
    restored = Ticket.restore(ticket.snapshot())
    assert restored.is_finished
    with pytest.raises(LifecycleError, match="final state"):
        restored.start()


def test_snapshot_records_registry_name_and_schema_version() -> None:
    """An unregistered class records module:QualName; schema_version is the class's."""
    snap = Door().snapshot()
    assert snap.machine == "tests.sample_machines:Door"
    assert snap.schema_version == Door.schema_version == 1
    assert snap.context is None


def test_registry_restore_finds_the_class() -> None:
    """registry.restore rebuilds an instance of whatever lifecycle the snapshot names."""
    from lifecyclekit import Registry

    local = Registry(discover=False)
    local.register("ticket")(type("RegisteredTicket", (Ticket,), {}))
    cls = local.get("ticket")
    instance = cls(ticket_id="r")
    instance.send("start")
    restored = local.restore(instance.snapshot().model_dump_json())
    assert type(restored) is cls
    assert restored.state == "running"


def _good() -> dict[str, Any]:
    ticket = Ticket(ticket_id="t", clock=FixedClock())
    ticket.start()
    return ticket.snapshot().model_dump(mode="json")


def _edit(**changes: Any) -> dict[str, Any]:
    data = _good()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        pytest.param(
            _edit(state="paused"), r"unknown state 'paused'.*queued, running", id="state"
        ),
        pytest.param(_edit(machine="other"), r"lifecycle 'other', not", id="machine"),
        pytest.param(_edit(schema_version=2), r"schema_version 2.*schema_version 1", id="schema"),
        pytest.param(
            _edit(context={"ticket_id": "t", "capacity": -3}),
            r"invalid context: capacity: .*greater than or equal to 0 \(got -3\)",
            id="context",
        ),
        pytest.param(_edit(context=None), r"invalid context: ticket_id", id="no-context"),
        pytest.param(_edit(state="queued"), r"last history record ends in 'running'", id="tail"),
        pytest.param(_edit(revision=0), r"revision 0, lower", id="revision"),
        pytest.param(_edit(extra=1), r"Not a valid lifecycle snapshot: extra", id="extra-key"),
        pytest.param("{not json", r"Not a valid lifecycle snapshot", id="not-json"),
    ],
)
def test_bad_snapshots_raise_snapshot_error(data: Any, pattern: str) -> None:
    """Each malformed snapshot is refused with a message saying what is wrong."""
    with pytest.raises(SnapshotError, match=pattern):
        Ticket.restore(data)


def test_history_gap_is_refused() -> None:
    """A history whose seq numbers skip is not a snapshot this library wrote."""
    ticket = Ticket(ticket_id="t", clock=FixedClock())
    ticket.start()
    ticket.retry()
    data = ticket.snapshot().model_dump(mode="json")
    data["history"][1]["seq"] = 3
    data["revision"] = 3
    with pytest.raises(SnapshotError, match="gap in its history: record 3 where 2"):
        Ticket.restore(data)


def test_a_tail_window_of_history_restores() -> None:
    """A snapshot may carry only its latest records; numbering continues from them."""
    ticket = Ticket(ticket_id="t", clock=FixedClock())
    ticket.start()
    ticket.retry()
    data = ticket.snapshot().model_dump(mode="json")
    data["history"] = data["history"][-1:]
    restored = Ticket.restore(data)
    restored.cancel()
    assert [r.seq for r in restored.history] == [2, 3]
    assert restored.revision == 3


def test_registry_restore_of_unknown_machine() -> None:
    """registry.restore of a snapshot naming an unregistered lifecycle is a SnapshotError."""
    with pytest.raises(
        SnapshotError,
        match="Cannot restore the snapshot: Unknown lifecycle 'tests.sample_machines:Ticket'",
    ):
        registry.restore(_good())
