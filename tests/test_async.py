"""Async lifecycles (issue 15 point 1): a lifecycle with ``async def`` guards or callbacks works
through the same public API, with ``await`` inside a running loop and without from sync code."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, ConfigDict

from lifecyclekit import (
    AsyncRequired,
    Lifecycle,
    PayloadError,
    Registry,
    State,
    TransitionNotAllowed,
    TransitionRejected,
)
from lifecyclekit.store import open_store
from tests.sample_machines import Ticket

T = TypeVar("T")

REGISTRY = Registry(discover=False)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` inside a fresh event loop (as an application's ``asyncio.run``)."""
    return asyncio.run(coroutine)


class OrderContext(BaseModel):
    funds: int = 0
    entered: list[str] = []
    boom: bool = False


class PayPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    amount: int


@REGISTRY.register("async-order")
class Order(Lifecycle[OrderContext]):
    """created -pay-> paid -ship-> shipped; guards and entry actions are async."""

    payloads = {"pay": PayPayload}

    created = State(initial=True)
    paid = State()
    shipped = State(final=True)

    pay = created.to(paid, cond=["is_open", "has_funds"])
    ship = paid.to(shipped, on="_ship")

    def is_open(self) -> bool:
        """A sync guard next to the async one: both verdicts are reported."""
        return True

    async def has_funds(self, payload: PayPayload) -> bool:
        await asyncio.sleep(0)
        return self.context.funds >= payload.amount

    async def on_enter_created(self) -> None:
        await asyncio.sleep(0)
        self.context.entered.append("created")

    async def on_enter_paid(self) -> None:
        await asyncio.sleep(0)
        self.context.entered.append("paid")

    async def _ship(self) -> None:
        self.context.entered.append("shipping")
        await asyncio.sleep(0)
        if self.context.boom:
            msg = "carrier down"
            raise RuntimeError(msg)


def test_created_inside_a_loop_is_in_its_initial_state_at_once() -> None:
    """No undocumented await: state, state_value and is_finished answer at once; the
    initial state's async entry action runs at ``await activate_initial_state()``."""

    async def scenario() -> tuple[str, Any, bool, list[str], list[str], bool]:
        order = Order()
        before = (order.state, order.state_value, order.is_finished, list(order.context.entered))
        await order.activate_initial_state()
        return (*before, list(order.context.entered), order.is_async)

    assert run(scenario()) == ("created", "created", False, [], ["created"], True)


def test_pending_entry_actions_run_before_the_first_event() -> None:
    """Without the explicit await, the first event runs the initial entry actions first."""

    async def scenario() -> list[str]:
        order = Order(funds=5)
        await order.pay(amount=5)
        return list(order.context.entered)

    assert run(scenario()) == ["created", "paid"]


def test_created_from_sync_code_runs_entry_actions_at_once() -> None:
    """No loop running: construction activates the initial state, entry actions included."""
    order = Order()
    assert (order.state, order.context.entered) == ("created", ["created"])


def test_awaited_events_move_and_record_history() -> None:
    """``await lc.<event>()`` and ``await lc.send()`` fire; history and revision follow."""

    async def scenario() -> Order:
        order = Order(funds=10)
        await order.pay(amount=3)
        await order.send("ship")
        return order

    order = run(scenario())
    assert order.state == "shipped"
    assert order.is_finished
    assert [(r.event, r.source, r.target, r.payload) for r in order.history] == [
        ("pay", "created", "paid", {"amount": 3}),
        ("ship", "paid", "shipped", None),
    ]
    assert order.revision == 2


def test_payload_validates_before_async_guards() -> None:
    """Bad data is a PayloadError before any guard runs; nothing changes."""
    calls: list[str] = []

    class Watched(Order):
        async def has_funds(self, payload: PayPayload) -> bool:
            calls.append("has_funds")
            return True

    async def scenario() -> Watched:
        order = Watched()
        with pytest.raises(PayloadError, match="amount"):
            await order.pay(amount="lots")
        return order

    order = run(scenario())
    assert calls == []
    assert (order.state, order.history, order.revision) == ("created", (), 0)


def test_awaited_refusal_is_transition_rejected_with_every_verdict() -> None:
    """A refusal raised by the await is TransitionRejected (a TransitionNotAllowed), with
    the sync and the async guard's verdicts; nothing changes."""

    async def scenario() -> tuple[Order, TransitionRejected]:
        order = Order(funds=1)
        with pytest.raises(TransitionRejected) as caught:
            await order.pay(amount=5)
        return order, caught.value

    order, error = run(scenario())
    assert isinstance(error, TransitionNotAllowed)
    assert str(error) == "Can't pay Order in created: has_funds is False"
    (candidate,) = error.explanation.candidates
    assert [(g.name, g.value, g.passed) for g in candidate.guards] == [
        ("is_open", True, True),
        ("has_funds", False, False),
    ]
    assert (order.state, order.history, order.revision) == ("created", (), 0)


def test_refusal_from_sync_code_awaits_the_guards_too() -> None:
    """Driven from sync code (no loop), the refusal still reports the async guard's real
    verdict."""
    order = Order(funds=1)
    with pytest.raises(TransitionRejected) as caught:
        order.pay(amount=5)
    assert caught.value.explanation.verdict == "guards_failed"
    assert str(caught.value) == "Can't pay Order in created: has_funds is False"
    order.pay(amount=1)
    assert order.state == "paid"


@pytest.mark.parametrize(
    ("funds", "verdict", "value"),
    [pytest.param(1, "guards_failed", False, id="refused"), pytest.param(9, "allowed", True)],
)
def test_aexplain_awaits_async_guards(funds: int, verdict: str, value: bool) -> None:
    """``await lc.aexplain(event, **data)`` reports the awaited verdict without firing."""

    async def scenario() -> tuple[Order, Any]:
        order = Order(funds=funds)
        return order, await order.aexplain("pay", amount=5)

    order, explanation = run(scenario())
    assert explanation.verdict == verdict
    assert [g.value for g in explanation.candidates[0].guards] == [True, value]
    assert order.state == "created"


def test_aexplain_validates_the_payload() -> None:
    """aexplain refuses bad data as the event would."""
    with pytest.raises(PayloadError, match="amount"):
        run(Order().aexplain("pay", amount="lots"))


def test_aexplain_works_for_sync_lifecycles() -> None:
    """aexplain answers as explain for a lifecycle without async guards."""
    ticket = Ticket(ticket_id="t")
    assert run(ticket.aexplain("start")) == ticket.explain("start")


def test_sync_explain_of_an_async_guard_raises_instead_of_answering() -> None:
    """explain() cannot answer for an async guard: AsyncRequired names it and the fix, in and
    out of a loop (no "never awaited" warning: warnings are errors in this suite)."""

    async def in_loop() -> None:
        with pytest.raises(AsyncRequired, match=r"guard 'has_funds' is async.*aexplain"):
            Order(funds=9).explain("pay", amount=1)

    run(in_loop())
    with pytest.raises(AsyncRequired, match="has_funds"):
        Order(funds=9).explain("pay", amount=1)
    assert issubclass(AsyncRequired, TypeError)


def test_sync_explain_of_an_event_without_async_guards_still_answers() -> None:
    """Only an event whose guards are async needs aexplain."""
    order = Order(funds=9)
    order.pay(amount=1)
    assert order.explain("ship").verdict == "allowed"


def test_exception_in_an_async_callback_changes_nothing() -> None:
    """As on the sync path: the state stays and no record is written."""

    async def scenario() -> Order:
        order = Order(funds=9)
        await order.pay(amount=1)
        order.context.boom = True
        with pytest.raises(RuntimeError, match="carrier down"):
            await order.ship()
        return order

    order = run(scenario())
    assert (order.state, order.revision, len(order.history)) == ("paid", 1, 1)


def test_atomic_rolls_back_awaited_events() -> None:
    """``with lc.atomic():`` around awaited events restores state, context, history and
    revision when an async callback raises."""

    async def pay_and_ship(order: Order) -> None:
        with order.atomic():
            await order.pay(amount=1)
            await order.ship()

    async def scenario() -> Order:
        order = Order(funds=9)
        order.context.boom = True
        with pytest.raises(RuntimeError, match="carrier down"):
            await pay_and_ship(order)
        return order

    order = run(scenario())
    assert (order.state, order.revision, order.history) == ("created", 0, ())
    assert order.context.entered == []  # "created" ran only at the first event: rolled back


def test_recording_dates_awaited_transitions() -> None:
    """``recording(at=...)`` applies to events awaited inside the block."""
    from datetime import UTC, datetime

    at = datetime(2026, 1, 2, tzinfo=UTC)

    async def scenario() -> Order:
        order = Order(funds=9)
        with order.recording(at=at, inferred=True):
            await order.pay(amount=1)
        return order

    (record,) = run(scenario()).history
    assert (record.at, record.inferred) == (at, True)


def test_acall_and_asend_await_async_and_pass_sync_lifecycles_through() -> None:
    """The awaitable contract an async store relies on, for both kinds of lifecycle."""

    async def scenario() -> tuple[Order, Ticket]:
        order = Order(funds=9)
        await order.acall("pay", amount=1)
        await order.asend("ship")
        ticket = Ticket(ticket_id="t")
        await ticket.asend("start")
        with pytest.raises(TransitionRejected, match="has_funds is False"):
            await Order().acall("pay", amount=1)
        return order, ticket

    order, ticket = run(scenario())
    assert (order.state, ticket.state) == ("shipped", "running")
    assert not ticket.is_async


def test_snapshot_and_restore_are_unchanged() -> None:
    """Restore rebuilds an async lifecycle in its state, without entry actions, and it keeps
    working with await."""

    async def scenario() -> tuple[Order, Order]:
        order = Order(funds=9)
        await order.pay(amount=1)
        restored = Order.restore(order.snapshot().model_dump_json())
        before = list(restored.context.entered)
        await restored.ship()
        return restored, Order(entered=before)

    restored, before = run(scenario())
    assert before.context.entered == ["created", "paid"]
    assert restored.state == "shipped"
    assert [r.seq for r in restored.history] == [1, 2]


def test_a_sync_store_creates_loads_and_drives_an_async_lifecycle(tmp_path: Path) -> None:
    """From sync code the sync store stores an async lifecycle's row and drives it."""
    with open_store(f"sqlite:///{tmp_path / 's.db'}", registry=REGISTRY, create=True) as store:
        created = store.create("async-order", id="o1", funds=9)
        assert (created.state, created.context) == (
            "created",
            {"funds": 9, "entered": ["created"], "boom": False},
        )
        with pytest.raises(TransitionRejected, match="has_funds is False"):
            store.send("o1", "pay", amount=20)
        store.send("o1", "pay", amount=2)
        loaded = store.load("o1")
        assert (type(loaded), loaded.state, loaded.revision) == (Order, "paid", 1)


class Parcel(Lifecycle):
    """An async statechart: a compound state entered through an async guard."""

    created = State(initial=True)

    class fulfilment(State.Compound):
        packing = State(initial=True)
        shipped = State()

        ship = packing.to(shipped)

    done = State(final=True)

    start = created.to(fulfilment, cond="in_stock")
    finish = fulfilment.to(done)

    async def in_stock(self) -> bool:
        return True


def test_async_statechart_reports_its_start_before_activation_and_drives() -> None:
    async def scenario() -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
        parcel = Parcel()
        before = (parcel.state, parcel.configuration_ids)  # activation still pending
        await parcel.start()
        verdict = (await parcel.aexplain("ship")).verdict
        await parcel.ship()
        restored = Parcel.restore(parcel.snapshot())
        assert [(r.source, r.target) for r in parcel.history] == [
            ("created", "fulfilment"),
            ("packing", "shipped"),
        ]
        return before[0], before[1], verdict, restored.configuration_ids

    assert run(scenario()) == ("created", ("created",), "allowed", ("fulfilment", "shipped"))
