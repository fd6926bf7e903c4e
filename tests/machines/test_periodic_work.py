"""PeriodicWork: rows P1-P10 of spec workmanager.md §4 and the periodic schedule (§3.3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit import LifecycleError, registry
from lifecyclekit.machines import PeriodicWork, PeriodicWorkRequest, StopReason, WorkResult
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


# -- schedule override (§4.3, §3.3 branch 1) -------------------------------------------------

MIN = timedelta(minutes=1)


def test_override_sets_the_first_run(clock: ManualClock) -> None:
    """§3.3 branch 1: with periodCount 0 the next run is the override itself, whatever the
    initial delay, flex or interval say; an override in the past is due at once."""
    at = clock.now + 3 * MIN
    work = periodic(
        clock,
        repeat_interval=HOUR,
        flex_interval=15 * MIN,
        initial_delay=10 * MIN,
        next_schedule_time_override=at,
    )
    assert work.info().next_schedule_time == at
    assert work.context.next_schedule_time_override_generation == 1
    past = periodic(clock, next_schedule_time_override=clock.now - HOUR)
    past.start()
    assert past.state == "running"


def test_the_run_an_override_scheduled_clears_it(clock: ManualClock) -> None:
    """P2 ([t-ws] testNextScheduleTimeOverride_delayNormalNextSchedule): after the run the
    override is gone and the next run is completion + interval."""
    work = periodic(clock, repeat_interval=HOUR, next_schedule_time_override=clock.now + MIN)
    clock.advance(minutes=1)
    work.start()
    clock.advance(minutes=2)
    work.succeed()
    assert work.context.next_schedule_time_override is None
    assert work.info().next_schedule_time == clock.now + HOUR


def test_retry_after_an_override_backs_off_from_it(clock: ManualClock) -> None:
    """P4 ([t-ws] testNextScheduleTimeOverride_backsOffNextTimeAfterRetry): a retry at the
    override time clears it; next = override + the linear backoff."""
    at = clock.now + HOUR
    work = periodic(clock, backoff_policy="LINEAR", next_schedule_time_override=at)
    clock.now = at
    work.start()
    work.retry()
    assert work.info().next_schedule_time == at + timedelta(seconds=30)


# (how the run ends, extra request fields, whether the override survives)
RUN_ENDS: list[Any] = [
    pytest.param(("succeed", {}), {}, False, id="P2-success-clears"),
    pytest.param(("fail", {}), {}, False, id="P3-failure-clears"),
    pytest.param(("retry", {}), {}, False, id="P4-retry-clears"),
    pytest.param(("stop", {"reason": 7}), {}, True, id="P5-stop-keeps"),
    pytest.param(
        ("stop", {"reason": 7}), {"backoff_on_system_interruptions": True}, False,
        id="P5-stop-with-backoff-reschedules-and-clears",
    ),
    pytest.param(("cancel", {}), {}, True, id="P8-cancel-leaves-it"),
]  # fmt: skip


@pytest.mark.parametrize(("end", "fields", "survives"), RUN_ENDS)
def test_which_ends_clear_the_override(
    clock: ManualClock, end: tuple[str, dict[str, Any]], fields: dict[str, Any], survives: bool
) -> None:
    """§4.3: "After that Work finishes, the override will be cleared" ([ww] resetPeriodic and
    reschedule); a plain stop does not change it ("don't change any override time")."""
    at = clock.now - MIN
    work = periodic(clock, next_schedule_time_override=at, **fields)
    work.start()
    event, data = end
    work.send(event, **data)
    assert work.context.next_schedule_time_override == (at if survives else None)


def test_instantiation_failure_clears_the_override(clock: ManualClock) -> None:
    """P10: resetPeriodic clears the override too."""
    work = periodic(clock, next_schedule_time_override=clock.now + HOUR)
    work.instantiation_failed()
    assert work.context.next_schedule_time_override is None


def test_a_newer_override_outlives_the_run(clock: ManualClock) -> None:
    """§4.3: the run's end clears only the override it started with; one written by an update
    meanwhile (its generation moved on) stays, spaced at least 15 minutes after the run."""
    work = periodic(clock, repeat_interval=HOUR, next_schedule_time_override=clock.now)
    work.start()
    soon = clock.now + 5 * MIN
    work.context = work.context.updated_by(
        PeriodicWorkRequest(
            id=work.context.id, repeat_interval=HOUR, next_schedule_time_override=soon
        )
    )
    assert work.context.next_schedule_time_override_generation == 2
    work.succeed()
    assert work.context.next_schedule_time_override == soon
    # periodCount 1: max(override, lastEnqueueTime + 15 min), §3.3 branch 1
    assert work.info().next_schedule_time == clock.now + timedelta(minutes=15)
    clock.advance(minutes=15)
    work.start()
    work.succeed()
    assert work.context.next_schedule_time_override is None
    assert work.info().next_schedule_time == clock.now + HOUR


def test_an_update_that_leaves_the_override_alone_keeps_it(clock: ManualClock) -> None:
    """§10.2: override and its generation carry over unless the request sets or clears one;
    clear_next_schedule_time_override=True clears it and counts the generation up."""
    at = clock.now + HOUR
    work = periodic(clock, next_schedule_time_override=at)
    same = PeriodicWorkRequest(id=work.context.id, repeat_interval=2 * HOUR)
    work.context = work.context.updated_by(same)
    assert (work.context.next_schedule_time_override, work.context.generation) == (at, 1)
    assert work.context.next_schedule_time_override_generation == 1
    cleared = PeriodicWorkRequest(id=work.context.id, clear_next_schedule_time_override=True)
    assert cleared.next_schedule_time_override_generation == 1
    work.context = work.context.updated_by(cleared)
    assert work.context.next_schedule_time_override is None
    assert work.context.next_schedule_time_override_generation == 2
    assert work.info().next_schedule_time == clock.now  # back to the normal schedule


def test_an_update_during_the_run_without_override_lets_the_run_clear_it(
    clock: ManualClock,
) -> None:
    """§4.3: an unrelated update keeps the generation, so the running run still clears it."""
    work = periodic(clock, next_schedule_time_override=clock.now)
    work.start()
    work.context = work.context.updated_by(
        PeriodicWorkRequest(id=work.context.id, worker="Sync", tags={"v2"})
    )
    work.retry()
    assert work.context.next_schedule_time_override is None
