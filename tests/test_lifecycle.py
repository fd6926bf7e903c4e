"""Lifecycle: strictness, transitions, state access, context, clock and history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit import (
    DefinitionError,
    Lifecycle,
    LifecycleError,
    PayloadError,
    State,
    TransitionRecord,
    TransitionRejected,
)
from tests.sample_machines import FixedClock, Ticket, TicketContext

FINISH_OK = {"outcome": "success"}

# (path to the source state, event, data, expected target or None when refused)
TICKET_TABLE = [
    pytest.param([], "start", {}, "running", id="queued-start-running"),
    pytest.param([], "cancel", {}, "cancelled", id="queued-cancel-cancelled"),
    pytest.param([], "finish", FINISH_OK, None, id="queued-finish-refused"),
    pytest.param([], "fail", {"reason": "x"}, None, id="queued-fail-refused"),
    pytest.param([], "retry", {}, None, id="queued-retry-refused"),
    pytest.param(["start"], "finish", FINISH_OK, "done", id="running-finish-done"),
    pytest.param(["start"], "fail", {"reason": "oom"}, "failed", id="running-fail-failed"),
    pytest.param(["start"], "retry", {}, "queued", id="running-retry-queued"),
    pytest.param(["start"], "cancel", {}, "cancelled", id="running-cancel-cancelled"),
    pytest.param(["start"], "start", {}, None, id="running-start-refused"),
    pytest.param(["cancel"], "start", {}, None, id="cancelled-start-refused"),
    pytest.param(["cancel"], "cancel", {}, None, id="cancelled-cancel-refused"),
    pytest.param(["start", "retry"], "start", {}, None, id="queued-after-retry-not-due"),
]


def drive(machine: Ticket, path: list[str]) -> None:
    for event in path:
        machine.send(event, **(FINISH_OK if event == "finish" else {}))


@pytest.mark.parametrize(("path", "event", "data", "target"), TICKET_TABLE)
def test_ticket_transition_table(
    clock: FixedClock, path: list[str], event: str, data: dict[str, str], target: str | None
) -> None:
    """Each allowed edge fires to its target; each other pair is refused with nothing changed."""
    ticket = Ticket(ticket_id="t-1", clock=clock)
    drive(ticket, path)
    before = (ticket.state, ticket.context.model_dump(), ticket.history)
    if target is None:
        with pytest.raises(TransitionNotAllowed):
            ticket.send(event, **data)
        assert (ticket.state, ticket.context.model_dump(), ticket.history) == before
    else:
        ticket.send(event, **data)
        assert ticket.state == target
        assert ticket.history[-1].event == event
        assert ticket.history[-1].target == target


def test_event_methods_and_send_are_the_same_path(clock: FixedClock) -> None:
    """``m.finish(...)`` and ``m.send("finish", ...)`` validate and record alike."""
    by_method = Ticket(ticket_id="a", clock=FixedClock())
    by_send = Ticket(ticket_id="a", clock=FixedClock())
    by_method.start()
    by_method.finish(outcome="success")
    by_send.send("start")
    by_send.send("finish", outcome="success")
    assert by_method.history == by_send.history
    assert by_method.context == by_send.context


def test_state_access_gives_id_value_and_finished() -> None:
    """state is the id, state_value the vendor value, is_finished follows final states."""
    ticket = Ticket(ticket_id="t")
    assert (ticket.state, ticket.state_value, ticket.is_finished) == ("queued", "QUEUED", False)
    ticket.start()
    assert (ticket.state, ticket.state_value, ticket.is_finished) == ("running", "RUNNING", False)
    ticket.fail(reason="disk full")
    assert (ticket.state, ticket.state_value, ticket.is_finished) == ("failed", "FAILED", True)


def test_strictness_cannot_be_switched_off() -> None:
    """A lifecycle that asks for silently ignored events is refused at class creation."""
    with pytest.raises(DefinitionError, match="allow_event_without_transition"):

        class Lenient(Lifecycle):
            allow_event_without_transition = True
            a = State(initial=True)
            b = State(final=True)
            go = a.to(b)


def test_definition_checks_stay_on() -> None:
    """python-statemachine's class checks (here: an unreachable state) still apply."""
    from statemachine.exceptions import InvalidDefinition

    with pytest.raises(InvalidDefinition, match="reachable"):

        class Broken(Lifecycle):
            a = State(initial=True)
            b = State(final=True)
            island = State()
            go = a.to(b)
            leave = island.to(b)


def test_context_fields_are_validated_keywords() -> None:
    """The constructor takes the Context fields and validates them."""
    ticket = Ticket(ticket_id="t-9", capacity="3")
    assert ticket.context == TicketContext(ticket_id="t-9", capacity=3)
    with pytest.raises(PayloadError, match=r"capacity.*greater than or equal to 0.*-1"):
        Ticket(ticket_id="t", capacity=-1)
    with pytest.raises(PayloadError, match=r"ticket_id: Field required"):
        Ticket()


def test_context_rejects_unknown_fields_with_the_known_ones() -> None:
    """A misspelled context keyword is an error that lists the real fields."""
    with pytest.raises(PayloadError, match=r"capacty: unknown context field.*capacity"):
        Ticket(ticket_id="t", capacty=2)


def test_context_instance_can_be_passed_whole() -> None:
    """``context=Model(...)`` is the same as passing its fields."""
    context = TicketContext(ticket_id="x", capacity=2)
    assert Ticket(context=context).context is context
    with pytest.raises(PayloadError, match="either context="):
        Ticket(context=context, capacity=3)


def test_lifecycle_without_context_refuses_context_data() -> None:
    """Data for a lifecycle with no Context model is refused, not dropped."""
    from tests.sample_machines import Door

    assert Door().context is None
    with pytest.raises(PayloadError, match="declares no Context"):
        Door(colour="red")


def test_context_field_clashing_with_constructor_is_a_definition_error() -> None:
    """A Context field named like a constructor keyword could never be set: refused."""

    class Bad(BaseModel):
        clock: int = 0

    with pytest.raises(DefinitionError, match="'clock'.*clash"):

        class Clashing(Lifecycle):
            Context = Bad
            a = State(initial=True)
            b = State(final=True)
            go = a.to(b)


def test_history_records_each_transition_on_the_clock(clock: FixedClock) -> None:
    """Every fired transition appends one record with seq, ids, JSON payload and clock time."""
    ticket = Ticket(ticket_id="t", clock=clock)
    assert ticket.history == ()
    ticket.start()
    ticket.finish(outcome="success", exit_code="3")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert ticket.history == (
        TransitionRecord(seq=1, event="start", source="queued", target="running", at=start),
        TransitionRecord(
            seq=2,
            event="finish",
            source="running",
            target="done",
            payload={"outcome": "success", "exit_code": 3},
            at=start + timedelta(seconds=1),
        ),
    )
    assert ticket.revision == 2


def test_clock_drives_time_guards() -> None:
    """After a retry the ticket is not due until the clock passes not_before."""
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    ticket = Ticket(ticket_id="t", clock=lambda: now[0])
    ticket.start()
    ticket.retry()
    with pytest.raises(TransitionRejected, match="is_due is False"):
        ticket.start()
    now[0] += timedelta(seconds=30)
    ticket.start()
    assert ticket.state == "running"


def test_clock_in_another_zone_is_recorded_in_utc() -> None:
    """History times are UTC whatever zone the clock reports in."""
    tz = datetime(2026, 1, 1, 12, tzinfo=UTC).astimezone().tzinfo
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    ticket = Ticket(ticket_id="t", clock=lambda: moment.astimezone(tz))
    ticket.start()
    assert ticket.history[0].at == moment
    assert ticket.history[0].at.utcoffset() == timedelta(0)


def test_naive_clock_is_refused_and_changes_nothing() -> None:
    """A clock returning a naive datetime raises a clear error before anything changes."""
    ticket = Ticket(ticket_id="t", clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="aware datetime"):
        ticket.now()
    with pytest.raises(TypeError, match="callable"):
        Ticket(ticket_id="t", clock="now")  # type: ignore[arg-type]


def test_transition_rejected_is_catchable_three_ways() -> None:
    """A refusal is psm's TransitionNotAllowed, lifecyclekit's root error, and itself."""
    ticket = Ticket(ticket_id="t", capacity=0)
    with pytest.raises(TransitionRejected) as info:
        ticket.start()
    assert isinstance(info.value, TransitionNotAllowed)
    assert isinstance(info.value, LifecycleError)
    assert info.value.event == "start"
    assert info.value.state == "queued"


def test_application_subclass_callbacks_fire() -> None:
    """An application subclass adds callbacks by psm's naming convention."""
    seen: list[str] = []

    class AuditedTicket(Ticket):
        def after_finish(self, outcome: str, payload: object) -> None:
            seen.append(f"{outcome}:{type(payload).__name__}")

        def on_enter_done(self) -> None:
            seen.append("done")

    ticket = AuditedTicket(ticket_id="t")
    ticket.start()
    ticket.finish(outcome="success")
    assert seen == ["done", "success:FinishPayload"]
    assert ticket.context.attempts == 1


def test_context_can_be_replaced_whole_by_its_model_only() -> None:
    """Assigning a Context instance replaces it; anything else is a PayloadError."""
    ticket = Ticket(ticket_id="t")
    ticket.context = TicketContext(ticket_id="u", capacity=5)
    assert (ticket.context.ticket_id, ticket.context.capacity) == ("u", 5)
    with pytest.raises(PayloadError, match="takes a TicketContext instance"):
        ticket.context = {"ticket_id": "v"}
    assert ticket.context.ticket_id == "u"


def test_call_runs_events_and_declared_commands_only() -> None:
    """call() fires events and runs declared commands; anything else lists both."""
    from lifecyclekit.machines import DataflowJob

    job = DataflowJob(job_type="JOB_TYPE_STREAMING")
    job.call("observe", "JOB_STATE_RUNNING")
    job.call("drain")
    assert job.state == "draining"
    with pytest.raises(
        TransitionRejected, match=r"neither an event nor a command.*Commands: observe, "
    ):
        job.call("snapshot")
    assert job.state == "draining"


def test_type_argument_declares_the_context_model() -> None:
    """``Lifecycle[Model]`` sets ``Context`` (validated like a declared one); a different
    ``Context`` beside it is a DefinitionError."""
    from pydantic import BaseModel

    from lifecyclekit import DefinitionError

    class Counter(BaseModel):
        n: int = 0

    class Typed(Lifecycle[Counter]):
        a = State(initial=True)
        b = State(final=True)
        go = a.to(b)

    assert Typed.Context is Counter
    assert Typed(n="3").context == Counter(n=3)
    with pytest.raises(PayloadError, match="unknown context field"):
        Typed(m=1)

    class Other(BaseModel):
        m: int = 0

    with pytest.raises(DefinitionError, match=r"is Lifecycle\[Counter\] but sets Context"):

        class Both(Lifecycle[Counter]):
            Context = Other
            a = State(initial=True)
            b = State(final=True)
            go = a.to(b)
