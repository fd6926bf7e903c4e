"""Typed events: payload models validate data before any guard or callback runs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_serializer

from lifecyclekit import DefinitionError, Lifecycle, PayloadError, State
from lifecyclekit.payloads import RESERVED_FIELD_NAMES, dump_payload
from tests.sample_machines import FailPayload, FinishPayload, Ticket


@pytest.fixture
def running() -> Ticket:
    ticket = Ticket(ticket_id="t")
    ticket.start()
    return ticket


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({"outcome": "success"}, FinishPayload(outcome="success"), id="good"),
        pytest.param(
            {"outcome": "failure", "exit_code": "7"},
            FinishPayload(outcome="failure", exit_code=7),
            id="coerced-str-to-int",
        ),
    ],
)
def test_valid_payload_reaches_callbacks_as_model_and_fields(
    running: Ticket, data: dict[str, str], expected: FinishPayload
) -> None:
    """Valid (and coerced) data reaches callbacks as ``payload`` and by field name."""
    received: list[tuple[object, object]] = []

    class Watch:
        def after_finish(self, payload: FinishPayload, exit_code: int) -> None:
            received.append((payload, exit_code))

    running.add_listener(Watch())
    running.finish(**data)
    assert received == [(expected, expected.exit_code)]
    assert running.history[-1].payload == expected.model_dump(mode="json")


def test_model_instance_is_accepted_positionally_or_as_payload(running: Ticket) -> None:
    """A ready payload instance can be sent positionally or as ``payload=``."""
    running.send("finish", FinishPayload(outcome="success", exit_code=1))
    assert running.history[-1].payload == {"outcome": "success", "exit_code": 1}
    other = Ticket(ticket_id="u")
    other.start()
    other.finish(payload=FinishPayload(outcome="failure"))
    assert other.context.outcome == "failure"


@pytest.mark.parametrize(
    ("send", "pattern"),
    [
        pytest.param(
            lambda t: t.finish(outcome="maybe"),
            r"Ticket event 'finish': outcome: Input should be 'success' or 'failure' "
            r"\(got 'maybe'\)",
            id="bad-literal",
        ),
        pytest.param(
            lambda t: t.finish(outcome="success", exit_code=999),
            r"exit_code: Input should be less than or equal to 255 \(got 999\)",
            id="out-of-range",
        ),
        pytest.param(lambda t: t.finish(), r"outcome: Field required", id="missing-field"),
        pytest.param(
            lambda t: t.finish(outcome="success", colour="red"),
            r"colour: Extra inputs are not permitted \(got 'red'\)",
            id="extra-field",
        ),
        pytest.param(
            lambda t: t.finish("success"), r"positional data is not accepted", id="positional"
        ),
        pytest.param(
            lambda t: t.finish(FailPayload(reason="x")),
            r"positional data is not accepted",
            id="wrong-model",
        ),
        pytest.param(
            lambda t: t.retry(delay=3),
            r"Ticket event 'retry': this event carries no data \(got \{'delay': 3\}\)",
            id="undeclared",
        ),
        pytest.param(
            lambda t: t.send("fail", reason=""),
            r"reason: String should have at least 1 character",
            id="via-send",
        ),
    ],
)
def test_invalid_payload_is_refused_and_changes_nothing(
    running: Ticket, send: object, pattern: str
) -> None:
    """Bad data raises PayloadError naming machine, event and field; nothing changes."""
    before = (running.state, running.context.model_dump(), running.history, running.revision)
    with pytest.raises(PayloadError, match=pattern):
        send(running)  # type: ignore[operator]
    assert (running.state, running.context.model_dump(), running.history, running.revision) == (
        before
    )


def test_payload_is_validated_before_guards() -> None:
    """A guard never sees unvalidated data: validation fails first, the guard is not called."""
    calls: list[object] = []

    class Gate(Lifecycle):
        class Open(BaseModel):
            width: int

        payloads = {"open": Open}
        shut = State(initial=True)
        opened = State(final=True)
        open = shut.to(opened, cond="wide_enough")

        def wide_enough(self, width: int) -> bool:
            calls.append(width)
            return width > 2

    gate = Gate()
    with pytest.raises(PayloadError):
        gate.open(width="wide")
    assert calls == []
    gate.open(width="3")
    assert calls == [3]


def test_payload_error_is_a_value_error_with_structured_errors(running: Ticket) -> None:
    """PayloadError carries machine, event and (field, message, value) triples."""
    with pytest.raises(ValueError, match="finish") as info:
        running.finish(outcome="nope", exit_code=-1)
    err = info.value
    assert isinstance(err, PayloadError)
    assert (err.machine, err.event) == ("Ticket", "finish")
    assert [field for field, _, _ in err.errors] == ["outcome", "exit_code"]


@pytest.mark.parametrize("field", sorted(RESERVED_FIELD_NAMES))
def test_payload_field_with_injected_name_is_a_definition_error(field: str) -> None:
    """A payload field python-statemachine would override is refused, suggesting a rename."""
    model = type("Clash", (BaseModel,), {"__annotations__": {field: int}})
    with pytest.raises(DefinitionError, match=rf"'{field}'.*Rename the field"):
        type("Machine", (Lifecycle,), {"payloads": {"go": model}, **_two_state_body()})


def _two_state_body() -> dict[str, object]:
    a = State(initial=True)
    b = State(final=True)
    return {"a": a, "b": b, "go": a.to(b)}


def test_payload_for_unknown_event_is_a_definition_error() -> None:
    """A payloads key that names no event is refused with the list of events."""

    class P(BaseModel):
        x: int

    with pytest.raises(DefinitionError, match=r"'finsh', which is not an event.*Events: go"):

        class Typo(Lifecycle):
            payloads = {"finsh": P}
            a = State(initial=True)
            b = State(final=True)
            go = a.to(b)


def test_payload_value_must_be_a_model() -> None:
    """A payloads value that is not a pydantic model is refused."""
    with pytest.raises(DefinitionError, match="must be a pydantic BaseModel"):

        class NotAModel(Lifecycle):
            payloads = {"go": dict}  # type: ignore[dict-item]
            a = State(initial=True)
            b = State(final=True)
            go = a.to(b)


def test_payloads_are_inherited_and_extended() -> None:
    """A subclass keeps its parent's payload models and may add its own."""

    class Note(BaseModel):
        text: str

    class NotedTicket(Ticket):
        payloads = {"cancel": Note}

    ticket = NotedTicket(ticket_id="t")
    ticket.start()
    with pytest.raises(PayloadError, match="outcome"):
        ticket.finish(outcome="?")
    ticket.cancel(text="no longer needed")
    assert ticket.history[-1].payload == {"text": "no longer needed"}


class _Inner(BaseModel):
    when: datetime


class _Rich(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    amount: Decimal = Field(alias="Amount")
    inner: _Inner
    tags: tuple[str, ...] = ()
    kind: Literal["a", "b"] = "a"

    @field_serializer("amount")
    def _as_text(self, value: Decimal) -> str:
        return f"{value:.2f}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def doubled(self) -> Decimal:
        return self.amount * 2


@pytest.mark.parametrize(
    "payload",
    [
        _Rich(Amount=Decimal("1.5"), inner=_Inner(when=datetime(2026, 1, 1, tzinfo=UTC))),
        _Inner(when=datetime(2026, 5, 1, 12, tzinfo=UTC)),
        FinishPayload(outcome="success", exit_code=4),
    ],
    ids=["aliases-serializers-computed", "nested-datetime", "plain"],
)
def test_history_payloads_dump_exactly_as_model_dump_json_mode(payload: BaseModel) -> None:
    """The history dumps payloads as model_dump(mode="json"): aliases, serializers and all."""
    assert dump_payload(payload) == payload.model_dump(mode="json")
