"""Hypothesis invariants over random event sequences (valid and invalid calls alike)."""

from __future__ import annotations

from typing import Any

from hypothesis import given

from lifecyclekit import LifecycleError
from tests.sample_machines import FixedClock, Ticket
from tests.strategies import ticket_sequences


@given(ticket_sequences)
def test_refused_call_changes_nothing(calls: list[tuple[str, dict[str, Any]]]) -> None:
    """Whatever the call, a refusal leaves state, context, history and revision as they were."""
    ticket = Ticket(ticket_id="t", clock=FixedClock())
    for event, data in calls:
        before = ticket.snapshot()
        try:
            ticket.send(event, **data)
        except LifecycleError:
            assert ticket.snapshot() == before
        else:
            assert ticket.revision == before.revision + 1


@given(ticket_sequences)
def test_final_states_absorb(calls: list[tuple[str, dict[str, Any]]]) -> None:
    """Once finished, no call ever changes the state again; states stay declared ones."""
    ticket = Ticket(ticket_id="t", clock=FixedClock())
    finished_in: str | None = None
    for event, data in calls:
        try:
            ticket.send(event, **data)
        except LifecycleError:
            pass
        assert ticket.state in {s.id for s in Ticket.states}
        if finished_in is not None:
            assert ticket.state == finished_in
        elif ticket.is_finished:
            finished_in = ticket.state


@given(ticket_sequences)
def test_history_is_a_gap_free_chain(calls: list[tuple[str, dict[str, Any]]]) -> None:
    """Each record starts where the previous one ended, numbered 1..n, ending at the state."""
    ticket = Ticket(ticket_id="t", clock=FixedClock())
    for event, data in calls:
        try:
            ticket.send(event, **data)
        except LifecycleError:
            pass
    history = ticket.history
    assert [r.seq for r in history] == list(range(1, len(history) + 1))
    previous = "queued"
    for record in history:
        assert record.source == previous
        previous = record.target
    assert previous == ticket.state
