"""Guards that explain themselves: TransitionRejected and Lifecycle.explain."""

from __future__ import annotations

import pytest

from lifecyclekit import Candidate, GuardVerdict, PayloadError, TransitionRejected
from tests.sample_machines import Door, Ticket


def test_refusal_names_each_failed_guard() -> None:
    """The message reads 'Can't <event> <Machine> in <VALUE>: <guard> is False'."""
    ticket = Ticket(ticket_id="t", capacity=0)
    with pytest.raises(TransitionRejected) as info:
        ticket.start()
    assert str(info.value) == "Can't start Ticket in QUEUED: has_capacity is False"
    assert info.value.reasons == (
        Candidate(
            source="queued",
            target="running",
            guards=(
                GuardVerdict(name="has_capacity", kind="cond", value=False, passed=False),
                GuardVerdict(name="is_due", kind="cond", value=True, passed=True),
            ),
            passed=False,
        ),
    )


def test_explain_reports_without_firing() -> None:
    """explain() evaluates every guard but changes nothing."""
    ticket = Ticket(ticket_id="t", capacity=0)
    explanation = ticket.explain("start")
    assert not explanation.allowed
    assert explanation.verdict == "guards_failed"
    assert explanation.candidates == TransitionRejected(explanation).reasons
    assert ticket.state == "queued"
    assert ticket.history == ()
    ticket.context.capacity = 1
    assert ticket.explain("start").allowed
    assert ticket.state == "queued"


def test_explain_with_two_candidates_and_an_unless_guard() -> None:
    """Each candidate transition is listed with its guards; unless guards are marked."""
    door = Door()
    explanation = door.explain("push")
    assert [(c.target, c.passed) for c in explanation.candidates] == [
        ("open", False),
        ("locked", True),
    ]
    assert explanation.candidates[1].guards == (
        GuardVerdict(name="is_unlatched", kind="unless", value=False, passed=True),
    )
    door.latched = False
    explanation = door.explain("push")
    assert [(c.target, c.passed) for c in explanation.candidates] == [
        ("open", True),
        ("locked", False),
    ]
    assert (
        "unless is_unlatched: is_unlatched is True"
        in explanation.model_copy(update={"verdict": "guards_failed"}).message()
    )


@pytest.mark.parametrize(
    ("setup", "event", "verdict", "message"),
    [
        pytest.param(
            [],
            "finish",
            "no_transition",
            "Can't finish Ticket in QUEUED: no 'finish' transition leaves 'queued'. "
            "Events allowed in QUEUED: start, cancel.",
            id="no-transition",
        ),
        pytest.param(
            ["cancel"],
            "start",
            "finished",
            "Can't start Ticket in CANCELLED: the Ticket has terminated in state CANCELLED; "
            "a final state accepts no event.",
            id="finished",
        ),
        pytest.param(
            [],
            "launch",
            "unknown_event",
            "Can't send 'launch' to Ticket in QUEUED: Ticket has no such event. "
            "Events allowed in QUEUED: start, cancel.",
            id="unknown-event",
        ),
    ],
)
def test_refusals_without_guards_say_why(
    setup: list[str], event: str, verdict: str, message: str
) -> None:
    """No candidate, a final state, or an unknown event: each refusal has its own reason."""
    ticket = Ticket(ticket_id="t")
    for step in setup:
        ticket.send(step)
    data = {"outcome": "success"} if event == "finish" else {}
    assert ticket.explain(event, **data).verdict == verdict
    with pytest.raises(TransitionRejected) as info:
        ticket.send(event, **data)
    assert str(info.value) == message
    assert info.value.explanation.verdict == verdict


def test_explain_validates_payload_like_the_event() -> None:
    """explain() validates the data first, so guards see what the event call would give."""
    ticket = Ticket(ticket_id="t")
    ticket.start()
    with pytest.raises(PayloadError, match="outcome"):
        ticket.explain("finish", outcome="?")
    assert ticket.explain("finish", outcome="success").allowed


def test_allowed_and_enabled_events_keep_psm_meanings() -> None:
    """allowed_events ignores guards; enabled_events evaluates them."""
    ticket = Ticket(ticket_id="t", capacity=0)
    assert [str(e) for e in ticket.allowed_events] == ["start", "cancel"]
    assert [str(e) for e in ticket.enabled_events()] == ["cancel"]


def test_because_reason_appears_in_verdict_and_message() -> None:
    """A guard returning Because(False, reason) is refused with its reason shown."""
    from lifecyclekit import Because, Lifecycle, State

    class Upload(Lifecycle):
        waiting = State(initial=True)
        sent = State(final=True)
        send_it = waiting.to(sent, cond="online")
        link = "down"

        def online(self) -> Because:
            return Because(self.link == "up", f"link is {self.link}")

    upload = Upload()
    with pytest.raises(TransitionRejected) as info:
        upload.send_it()
    assert str(info.value) == "Can't send_it Upload in waiting: online is False (link is down)"
    assert info.value.reasons[0].guards[0].detail == "link is down"
    upload.link = "up"
    upload.send_it()
    assert upload.state == "sent"


def test_noop_when_finished_events_return_normally() -> None:
    """Events listed in noop_when_finished are accepted and change nothing once finished."""

    class Quiet(Ticket):
        noop_when_finished = frozenset({"cancel"})

    ticket = Quiet(ticket_id="t")
    ticket.cancel()
    before = ticket.snapshot()
    ticket.cancel()
    assert ticket.snapshot() == before
    with pytest.raises(TransitionRejected, match="terminated"):
        ticket.start()
