"""OneTimeWork: rows W1-W11 of spec workmanager.md §2, schedule arithmetic and WorkInfo."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit import PayloadError, TransitionRejected, registry
from lifecyclekit.machines import (
    Constraints,
    DeviceConditions,
    OneTimeWork,
    StopReason,
    WorkResult,
    WorkState,
)
from tests.machines.conftest import ManualClock

SETUP = {"enqueued": [], "running": ["start"], "succeeded": ["start", "succeed"],
         "failed": ["start", "fail"], "cancelled": ["cancel"]}  # fmt: skip

# (row, source, call, expected target or None when refused)
TABLE: list[Any] = [
    pytest.param("enqueued", ("start", {}), "running", id="W1-enqueued-start-running"),
    pytest.param("running", ("succeed", {"output": {"k": 1}}), "succeeded", id="W2-succeed"),
    pytest.param(
        "running", ("finish", {"payload": WorkResult.success()}), "succeeded", id="W2-finish"
    ),
    pytest.param("running", ("fail", {}), "failed", id="W3-fail"),
    pytest.param(
        "running", ("finish", {"payload": WorkResult.failure()}), "failed", id="W3-finish"
    ),
    pytest.param("running", ("retry", {}), "enqueued", id="W4-retry"),
    pytest.param(
        "running", ("finish", {"payload": WorkResult.retry()}), "enqueued", id="W4-finish"
    ),
    pytest.param("running", ("stop", {"reason": 7}), "enqueued", id="W5-stop"),
    pytest.param("running", ("stop", {"reason": "UNKNOWN"}), "enqueued", id="W6-process-death"),
    pytest.param("enqueued", ("cancel", {}), "cancelled", id="W7-cancel-enqueued"),
    pytest.param("running", ("cancel", {}), "cancelled", id="W8-cancel-running"),
    pytest.param("enqueued", ("instantiation_failed", {}), "failed", id="W9-instantiation"),
    pytest.param("succeeded", ("cancel", {}), "succeeded", id="W11-cancel-succeeded-noop"),
    pytest.param("failed", ("cancel", {}), "failed", id="W11-cancel-failed-noop"),
    pytest.param("cancelled", ("cancel", {}), "cancelled", id="W11-cancel-cancelled-noop"),
    # §8.4 illegal
    pytest.param("enqueued", ("succeed", {}), None, id="8.4.5-success-without-running"),
    pytest.param("running", ("start", {}), None, id="8.4.5-double-start"),
    pytest.param("enqueued", ("retry", {}), None, id="8.4.10-result-not-running"),
    pytest.param("enqueued", ("stop", {"reason": 7}), None, id="8.4.10-stop-not-running"),
    pytest.param("enqueued", ("fail", {}), None, id="Q5-fail-only-by-instantiation"),
    pytest.param("running", ("instantiation_failed", {}), None, id="W9-only-from-enqueued"),
    pytest.param("succeeded", ("start", {}), None, id="8.4.1-nothing-leaves-succeeded"),
    pytest.param("failed", ("retry", {}), None, id="8.4.1-retry-a-failed-work"),
    pytest.param("cancelled", ("start", {}), None, id="8.4.1-un-cancel"),
]


def work_in(state: str, clock: ManualClock, **fields: Any) -> OneTimeWork:
    work = OneTimeWork(worker="Upload", clock=clock, **fields)
    for event in SETUP[state]:
        work.send(event)
    return work


@pytest.mark.parametrize(("source", "call", "target"), TABLE)
def test_one_time_table(
    clock: ManualClock, source: str, call: tuple[str, dict[str, Any]], target: str | None
) -> None:
    """Each row fires to its target; refusals leave state, context and history unchanged."""
    work = work_in(source, clock)
    before = work.snapshot()
    event, data = call
    if target is None:
        with pytest.raises(TransitionNotAllowed):
            work.send(event, **data)
        assert work.snapshot() == before
    else:
        work.send(event, **data)
        assert work.state == target


def test_w1_guard_constraints_and_delay(clock: ManualClock) -> None:
    """W1: start needs constraints met and the initial delay elapsed; reasons are shown."""
    work = OneTimeWork(
        worker="Upload",
        constraints=Constraints(network_type="UNMETERED", requires_charging=True),
        initial_delay=timedelta(seconds=2),
        clock=clock,
    )
    with pytest.raises(TransitionRejected, match=r"is_due is False \(next run at"):
        work.start()
    clock.advance(seconds=2)
    with pytest.raises(TransitionRejected) as info:
        work.start(conditions=DeviceConditions(unmetered=False))
    assert str(info.value) == (
        "Can't start OneTimeWork in ENQUEUED: constraints_met is False (network_type UNMETERED "
        "needs unmetered=True, device reports unmetered=False)"
    )
    assert work.context.run_attempt_count == 0
    work.start()  # no conditions: the device satisfies every constraint
    assert (work.state, work.context.run_attempt_count) == ("running", 1)


def test_initial_delay_next_schedule_time(clock: ManualClock) -> None:
    """§3.3: first run at lastEnqueueTime + initialDelay (the spec's 1000 + 2000 -> 3000)."""
    clock.advance(seconds=1)
    work = OneTimeWork(initial_delay=timedelta(seconds=2), clock=clock)
    assert work.info().next_schedule_time == clock.now + timedelta(seconds=2)


def test_retry_backs_off_exponentially_from_the_retry_time(clock: ManualClock) -> None:
    """W4 + §3.3: lastEnqueueTime = retry time; next = +30 s, +60 s, +120 s; count kept."""
    work = OneTimeWork(initial_delay=timedelta(hours=1), clock=clock)
    clock.advance(hours=1)
    for attempt, wait in enumerate((30, 60, 120), start=1):
        work.start()
        assert work.context.run_attempt_count == attempt
        clock.advance(seconds=5)
        work.retry()
        assert work.context.stop_reason is StopReason.NOT_STOPPED
        assert work.info().next_schedule_time == clock.now + timedelta(seconds=wait)
        clock.advance(seconds=wait - 1)
        with pytest.raises(TransitionRejected, match="is_due is False"):
            work.start()
        clock.advance(seconds=1)


def test_linear_backoff(clock: ManualClock) -> None:
    """LINEAR 30 s: 30 s, 60 s, 90 s."""
    work = registry.create("one-time-work", backoff_policy="LINEAR", clock=clock)
    waits = []
    for _ in range(3):
        work.start()
        work.finish(WorkResult.retry())
        waits.append(work.info().next_schedule_time - clock.now)
        clock.advance(hours=1)
    assert waits == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=90)]


def test_stop_keeps_enqueue_time_and_backs_off_from_it(clock: ManualClock) -> None:
    """W5 / Q3: stop keeps lastEnqueueTime and count; next = original enqueue + backoff(n)."""
    work = OneTimeWork(clock=clock)
    enqueued_at = clock.now
    clock.advance(minutes=10)
    work.start()
    work.stop(reason="CONSTRAINT_CHARGING")
    info = work.info()
    assert (info.state, info.run_attempt_count, info.stop_reason) == (
        WorkState.ENQUEUED,
        1,
        StopReason.CONSTRAINT_CHARGING,
    )
    assert work.context.last_enqueue_time == enqueued_at
    assert info.next_schedule_time == enqueued_at + timedelta(seconds=30)
    work.start()  # already eligible
    assert work.context.stop_reason is StopReason.NOT_STOPPED


def test_stop_with_backoff_for_system_interruptions(clock: ManualClock) -> None:
    """W5: with backoff_on_system_interruptions the stop is treated like a retry."""
    work = OneTimeWork(backoff_on_system_interruptions=True, clock=clock)
    clock.advance(minutes=10)
    work.start()
    work.stop(reason=StopReason.QUOTA)
    assert work.context.last_enqueue_time == clock.now
    assert work.info().next_schedule_time == clock.now + timedelta(seconds=30)
    assert work.info().stop_reason is StopReason.QUOTA


@pytest.mark.parametrize(
    ("reason", "pattern"), [(-256, "NOT_STOPPED"), (-1, r"\[-127, -1\] unused on purpose")]
)
def test_stop_reason_must_be_a_real_stop(clock: ManualClock, reason: int, pattern: str) -> None:
    """§10.1: a reason WorkManager stores, and not NOT_STOPPED."""
    work = work_in("running", clock)
    with pytest.raises(PayloadError, match=pattern):
        work.stop(reason=reason)


def test_cancel_stop_reasons(clock: ManualClock) -> None:
    """W7: cancel before running -> NOT_STOPPED; W8: while running -> CANCELLED_BY_APP."""
    assert work_in("enqueued", clock).info().stop_reason is StopReason.NOT_STOPPED
    queued = work_in("enqueued", clock)
    queued.cancel()
    assert queued.info().stop_reason is StopReason.NOT_STOPPED
    running = work_in("running", clock)
    running.cancel()
    assert running.info().stop_reason is StopReason.CANCELLED_BY_APP


def test_output_is_stored_only_by_results(clock: ManualClock) -> None:
    """§1.3: output set by success/failure; empty while unfinished; W9 leaves it empty."""
    work = work_in("running", clock)
    assert work.info().output == {}
    work.finish(WorkResult.success({"uploaded": 3}))
    assert work.info().output == {"uploaded": 3}
    failed = work_in("running", clock)
    failed.fail(output={"why": "quota"})
    assert failed.info().output == {"why": "quota"}
    broken = work_in("enqueued", clock)
    broken.instantiation_failed()
    assert (broken.info().output, broken.info().run_attempt_count) == ({}, 0)


def test_info_fields(clock: ManualClock) -> None:
    """WorkInfo carries WorkManager's fields; next_schedule_time only while ENQUEUED."""
    work = OneTimeWork(worker="Upload", tags={"sync"}, input={"a": 1}, clock=clock)
    info = work.info()
    assert info.id == work.context.id
    assert info.tags == {"Upload", "sync"}
    assert (info.generation, info.periodicity, info.initial_delay) == (0, None, timedelta(0))
    assert info.next_schedule_time == clock.now
    work.start()
    assert work.info().next_schedule_time is None
    assert work.is_finished is False
    work.succeed()
    assert work.is_finished is True
