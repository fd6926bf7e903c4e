"""Provenance, transition tables, recording times, inferred records, atomic blocks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lifecyclekit import DefinitionError, GuardRef, Lifecycle, Provenance, State, TransitionInfo
from tests.sample_machines import FixedClock, Ticket

WHY = Provenance(row="R1", text="Doors open when pushed.", driver="user")


class Swing(Lifecycle):
    shut = State(initial=True, value="SHUT")
    ajar = State(value="AJAR")
    gone = State(final=True)

    push = shut.to(ajar, cond="free") | ajar.to(gone, unless="stuck")
    close = ajar.to(shut)
    provenance = {("push", "shut", "ajar"): WHY}

    free = True
    stuck = False


def test_transition_table_lists_every_edge_with_guards_and_provenance() -> None:
    """Each declared transition appears once, unless-guards marked as negated."""
    assert Swing.transition_table() == [
        TransitionInfo(
            event="push",
            source="shut",
            target="ajar",
            guards=(GuardRef(name="free"),),
            payload=None,
            provenance=WHY,
        ),
        TransitionInfo(
            event="push",
            source="ajar",
            target="gone",
            guards=(GuardRef(name="stuck", negated=True),),
            payload=None,
            provenance=None,
        ),
        TransitionInfo(
            event="close", source="ajar", target="shut", guards=(), payload=None, provenance=None
        ),
    ]


def test_transition_table_names_payload_models() -> None:
    """Events with payload models carry the model's name."""
    finish = [row for row in Ticket.transition_table() if row.event == "finish"]
    assert [row.payload for row in finish] == ["FinishPayload"]


def test_provenance_for_a_missing_transition_is_a_definition_error() -> None:
    """Provenance keys must name real (event, source, target) transitions."""
    with pytest.raises(DefinitionError, match=r"push shut->gone"):

        class Wrong(Lifecycle):
            shut = State(initial=True)
            gone = State(final=True)
            push = shut.to(gone)
            provenance = {("push", "shut", "gone"): WHY, ("push", "shut", "gone2"): WHY}


def test_recording_sets_time_and_inferred_flag() -> None:
    """Inside recording(at=..., inferred=True) records take that time and flag; after, not."""
    ticket = Ticket(ticket_id="t", clock=FixedClock())
    reported = datetime(2025, 5, 5, 12, tzinfo=UTC)
    with ticket.recording(at=reported, inferred=True):
        assert ticket.now() == reported
        ticket.start()
    ticket.retry()
    first, second = ticket.history
    assert (first.at, first.inferred) == (reported, True)
    # on_retry reads the clock once (00:00:00) before the record does (00:00:01).
    assert (second.at, second.inferred) == (datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), False)
    with (
        pytest.raises(ValueError, match="aware datetime"),
        ticket.recording(at=datetime(2025, 1, 1)),
    ):
        pass


def test_atomic_rolls_back_state_context_history_revision() -> None:
    """A failure inside atomic() undoes every transition fired in the block."""
    ticket = Ticket(ticket_id="t")
    before = ticket.snapshot()

    def doomed() -> None:
        with ticket.atomic():
            ticket.start()
            ticket.retry()
            assert ticket.context.attempts == 1
            msg = "boom"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="boom"):
        doomed()
    assert ticket.snapshot() == before
    ticket.context.not_before = None
    ticket.start()
    assert [r.seq for r in ticket.history] == [1]


def test_start_value_starts_elsewhere_and_runs_entry_actions() -> None:
    """start_value enters that state as the initial one, running its entry actions."""
    ticket = Ticket(ticket_id="t", start_value="RUNNING")
    assert ticket.state == "running"
    assert ticket.context.attempts == 1
    assert ticket.history == ()


def test_atomic_rollback_from_a_final_state_leaves_the_instance_live() -> None:
    """Rolling back a block that finished the instance makes it accept events again."""
    ticket = Ticket(ticket_id="t")

    def doomed() -> None:
        with ticket.atomic():
            ticket.cancel()
            assert ticket.is_finished
            msg = "later step failed"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="later step failed"):
        doomed()
    assert (ticket.state, ticket.is_finished, ticket.history) == ("queued", False, ())
    ticket.start()
    assert ticket.state == "running"
