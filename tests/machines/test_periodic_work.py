"""PeriodicWork: rows P1-P10 of spec workmanager.md §4 and the periodic schedule (§3.3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit import LifecycleError, registry
from lifecyclekit.machines import PeriodicWork, StopReason, WorkResult
from tests.machines.conftest import ManualClock

HOUR = timedelta(hours=1)

TABLE: list[Any] = [
    pytest.param("enqueued", ("start", {}), "enqueued->running", id="P1-start"),
    pytest.param(
        "running", ("succeed", {"output": {"k": 1}}), "running->enqueued", id="P2-success"
    ),
    pytest.param("running", ("fail", {}), "running->enqueued", id="P3-failure"),
    pytest.param(
        "running",
        ("finish", {"payload": WorkResult.failure()}),
        "running->enqueued",
        id="P3-finish",
    ),
    pytest.param("running", ("retry", {}), "running->enqueued", id="P4-retry"),
    pytest.param("running", ("stop", {"reason": 2}), "running->enqueued", id="P5-stop"),
    pytest.param(
        "running", ("stop", {"reason": -512}), "running->enqueued", id="P6-process-death"
    ),
    pytest.param("enqueued", ("cancel", {}), "enqueued->cancelled", id="P7-cancel"),
    pytest.param("running", ("cancel", {}), "running->cancelled", id="P8-cancel-running"),
    pytest.param("enqueued", ("instantiation_failed", {}), "enqueued->enqueued", id="P10"),
    pytest.param("cancelled", ("start", {}), None, id="8.4.1-cancelled-is-final"),
    pytest.param("enqueued", ("succeed", {}), None, id="8.4.10-result-not-running"),
]


def periodic(clock: ManualClock, **fields: Any) -> PeriodicWork:
    return PeriodicWork(worker="Sync", clock=clock, **fields)


@pytest.mark.parametrize(("source", "call", "edge"), TABLE)
def test_periodic_table(
    clock: ManualClock, source: str, call: tuple[str, dict[str, Any]], edge: str | None
) -> None:
    """Each row's edge; refusals leave everything as it was."""
    work = periodic(clock)
    if source == "running":
        work.start()
    elif source == "cancelled":
        work.cancel()
    before = work.snapshot()
    event, data = call
    if edge is None:
        with pytest.raises(TransitionNotAllowed):
            work.send(event, **data)
        assert work.snapshot() == before
        return
    work.send(event, **data)
    record = work.history[-1]
    assert f"{record.source}->{record.target}" == edge


def test_no_succeeded_or_failed_states() -> None:
    """§4.1: SUCCEEDED, FAILED and BLOCKED are not states; CANCELLED is the only final one."""
    assert {s.value for s in PeriodicWork.states} == {"ENQUEUED", "RUNNING", "CANCELLED"}
    assert [s.value for s in PeriodicWork.final_states] == ["CANCELLED"]


def test_every_result_starts_a_new_period(clock: ManualClock) -> None:
    """P2/P3: success or failure -> ENQUEUED, count reset, periodCount + 1, output not stored."""
    work = periodic(clock, repeat_interval=HOUR)
    for outcome in (WorkResult.success({"k": 1}), WorkResult.failure({"k": 2})):
        clock.advance(hours=1)
        work.start()
        clock.advance(minutes=3)
        work.finish(outcome)
        info = work.info()
        assert (info.state, info.run_attempt_count, info.output) == ("ENQUEUED", 0, {})
        assert info.next_schedule_time == clock.now + HOUR  # next = completion + interval
    assert work.context.period_count == 2


def test_next_schedule_after_periods(clock: ManualClock) -> None:
    """§4.2: lastEnqueue 1000 ms, period 900000 ms, periodCount 3 -> 901000 ms."""
    work = periodic(clock, repeat_interval=timedelta(milliseconds=900_000))
    for _ in range(3):
        work.start()
        work.succeed()
        clock.advance(minutes=15)
    clock.advance(seconds=1)
    work.start()
    work.succeed()
    assert work.context.period_count == 4
    assert work.info().next_schedule_time == clock.now + timedelta(milliseconds=900_000)


def test_flex_and_initial_delay_only_shape_the_first_period(clock: ManualClock) -> None:
    """§3.3 branch 3 / Q8: interval - flex and initial delay apply while periodCount == 0."""
    work = periodic(
        clock,
        repeat_interval=HOUR,
        flex_interval=timedelta(minutes=15),
        initial_delay=timedelta(minutes=10),
    )
    start = clock.now
    assert work.info().next_schedule_time == start + timedelta(minutes=10 + 45)
    clock.advance(minutes=55)
    work.start()
    work.succeed()
    assert work.info().next_schedule_time == clock.now + HOUR
    assert work.info().initial_delay == timedelta(minutes=10)


def test_retry_uses_backoff_not_the_interval(clock: ManualClock) -> None:
    """P4: retry keeps the count and backs off 30 s, 60 s; success then resets the count."""
    work = periodic(clock, repeat_interval=HOUR)
    work.start()
    work.retry()
    assert work.info().next_schedule_time == clock.now + timedelta(seconds=30)
    clock.advance(seconds=30)
    work.start()
    work.finish(WorkResult.retry())
    assert work.info().run_attempt_count == 2
    assert work.info().next_schedule_time == clock.now + timedelta(seconds=60)
    assert work.context.period_count == 0
    clock.advance(seconds=60)
    work.start()
    work.succeed()
    assert (work.info().run_attempt_count, work.context.period_count) == (0, 1)


def test_stop_and_instantiation_failure(clock: ManualClock) -> None:
    """P5 keeps counts with the reason; P10 closes the period without running."""
    work = periodic(clock)
    work.start()
    work.stop(reason=StopReason.PREEMPT)
    assert (work.info().stop_reason, work.info().run_attempt_count) == (StopReason.PREEMPT, 1)
    work.instantiation_failed()
    assert (work.state, work.context.period_count, work.info().run_attempt_count) == (
        "enqueued",
        1,
        0,
    )


def test_cancel_is_the_only_end(clock: ManualClock) -> None:
    """P7/P8; a cancelled periodic work stays cancelled, cancel again is a no-op."""
    work = registry.create("periodic-work", repeat_interval=HOUR, clock=clock)
    work.start()
    work.cancel()
    assert (work.state_value, work.info().stop_reason) == (
        "CANCELLED",
        StopReason.CANCELLED_BY_APP,
    )
    work.cancel()
    assert work.info().periodicity is not None
    assert work.info().periodicity.repeat_interval == HOUR  # type: ignore[union-attr]


EVENTS = st.sampled_from(
    ["start", "succeed", "fail", "retry", "cancel", "stop", "instantiation_failed"]
)


@given(st.lists(EVENTS, max_size=30))
def test_periodic_never_finishes_except_by_cancel(events: list[str]) -> None:
    """Whatever happens, a periodic work is ENQUEUED or RUNNING until cancelled, then stays."""
    clock = ManualClock()
    work = periodic(clock)
    cancelled = False
    for event in events:
        clock.advance(hours=6)
        before = work.snapshot()
        try:
            work.send(event, **({"reason": 7} if event == "stop" else {}))
        except LifecycleError:
            assert work.snapshot() == before
        cancelled = cancelled or work.state == "cancelled"
        assert work.state == "cancelled" if cancelled else work.state in ("enqueued", "running")
