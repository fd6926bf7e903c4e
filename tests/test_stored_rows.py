"""``Lifecycle.from_stored``: a store row back to a live instance, without a Snapshot."""

from __future__ import annotations

import pytest

from lifecyclekit import SnapshotError, registry
from tests.sample_machines import Door, FixedClock, Ticket


def _row(ticket: Ticket) -> dict[str, object]:
    snapshot = ticket.snapshot()
    return {
        "state": snapshot.state,
        "context": ticket.context.model_dump_json(),
        "revision": snapshot.revision,
        "last": snapshot.history[-1] if snapshot.history else None,
    }


def test_a_row_rebuilds_the_instance_with_its_last_record(clock: FixedClock) -> None:
    """State, context, revision and the last record come back; the next record follows it."""
    ticket = Ticket(ticket_id="t", capacity=2, clock=clock)
    ticket.start()
    ticket.retry()
    row = _row(ticket)
    rebuilt = Ticket.from_stored(**row, clock=clock)  # type: ignore[arg-type]
    assert rebuilt.on_fast_path == (Ticket.fast_path_reason is None)
    assert (rebuilt.state, rebuilt.revision) == ("queued", 2)
    assert rebuilt.context == ticket.context
    assert rebuilt.history == ticket.history[-1:]
    clock.current = ticket.context.not_before
    rebuilt.start()
    assert [(r.seq, r.event) for r in rebuilt.history] == [(2, "retry"), (3, "start")]


def test_context_may_be_a_dict_or_absent() -> None:
    """A dict context validates like JSON; a lifecycle without context takes None."""
    rebuilt = Ticket.from_stored("running", {"ticket_id": "x"}, revision=0)
    assert (rebuilt.state, rebuilt.context.ticket_id, rebuilt.history) == ("running", "x", ())
    door = Door.from_stored("open", None, revision=4)
    assert (door.state, door.revision) == ("open", 4)


def test_subclass_constructors_run_as_on_restore() -> None:
    """A WorkManager work keeps its stored enqueue time (its constructor sees a restore)."""
    work = registry.create("one-time-work", worker="Upload", clock=FixedClock())
    stored = work.context.model_dump_json()
    rebuilt = type(work).from_stored("enqueued", stored, revision=0, clock=FixedClock())
    assert rebuilt.context.last_enqueue_time == work.context.last_enqueue_time


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"state": "nowhere"}, "unknown state 'nowhere'", id="unknown-state"),
        pytest.param({"schema_version": 2}, "schema_version 2", id="schema-version"),
        pytest.param({"context": '{"ticket_id": 3}'}, "invalid context", id="bad-context"),
        pytest.param({"context": "{"}, "invalid context", id="not-json"),
        pytest.param({"revision": 0}, "last history record is #1", id="revision-before-last"),
        pytest.param({"state": "queued"}, "ending in 'running'", id="last-elsewhere"),
    ],
)
def test_a_bad_row_is_a_snapshot_error(kwargs: dict[str, object], message: str) -> None:
    """Each inconsistency is refused with what was wrong."""
    ticket = Ticket(ticket_id="t")
    ticket.start()
    row = {**_row(ticket), **kwargs}
    with pytest.raises(SnapshotError, match=message):
        Ticket.from_stored(**row)  # type: ignore[arg-type]


def test_context_for_a_lifecycle_without_one_is_refused() -> None:
    """Door declares no context: stored data for it is an error."""
    with pytest.raises(SnapshotError, match="has a context, but Door has none"):
        Door.from_stored("closed", '{"colour": "red"}', revision=0)
