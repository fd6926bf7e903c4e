"""Pins the two private python-statemachine hooks lifecyclekit relies on.

If a python-statemachine release renames or bypasses them, these fail first and say where.
"""

from __future__ import annotations

from statemachine import StateChart

from lifecyclekit import Lifecycle
from tests.sample_machines import Ticket


def test_hooks_exist_on_psm() -> None:
    """StateChart still has _put_nonblocking and _processing_loop."""
    assert callable(StateChart._put_nonblocking)
    assert callable(StateChart._processing_loop)
    assert "_put_nonblocking" in vars(Lifecycle)
    assert "_processing_loop" in vars(Lifecycle)


def test_every_event_entry_point_goes_through_put_nonblocking() -> None:
    """Event methods, send() and raise_() all reach _put_nonblocking (where payloads validate)."""
    seen: list[str] = []

    class Spy(Ticket):
        def _put_nonblocking(self, trigger_data, internal=False):  # type: ignore[no-untyped-def]
            seen.append(trigger_data.event.id)
            return super()._put_nonblocking(trigger_data, internal=internal)

    spy = Spy(ticket_id="t")
    spy.start()
    spy.send("retry")
    spy.raise_("cancel")
    assert seen == ["start", "retry", "cancel"]


def test_guard_wrappers_keep_the_resolved_callable() -> None:
    """Explanations read a guard's raw answer from psm's CallbackWrapper._callback."""
    ticket = Ticket(ticket_id="t")
    transition = next(t for t in Ticket.queued.transitions if t.match("start"))
    wrappers = list(ticket._callbacks[transition.cond.key])
    assert [w.meta.attr_name for w in wrappers] == ["has_capacity", "is_due"]
    assert all(callable(w._callback) for w in wrappers)


def test_engine_running_flag_tracks_final_states() -> None:
    """Lifecycle.atomic() restores psm's _engine.running after rolling back a final state."""
    ticket = Ticket(ticket_id="t")
    assert ticket._engine.running is True
    ticket.cancel()
    assert ticket._engine.running is False
