"""What WorkGraph carries through an update (spec workmanager.md §10.2), the rules checked
when work is enqueued (V8, V13), stop reasons (§10.1) and expedited work in a graph (§10.4),
on every back-end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from lifecyclekit import PayloadError
from lifecyclekit.machines import (
    Constraints,
    DeviceConditions,
    PeriodicWorkRequest,
    StopReason,
    WorkGraph,
    WorkRequest,
    WorkResult,
)
from lifecyclekit.machines.workmanager.model import (
    CONTENT_URI_TRIGGER_WORKERS_LIMIT,
    PeriodicWorkSpec,
    WorkSpec,
)
from tests.machines.conftest import ManualClock

HOUR = timedelta(hours=1)


def context(graph: WorkGraph, request: WorkRequest | PeriodicWorkRequest) -> Any:
    return graph.work(request.id).context


# -- §10.2 -----------------------------------------------------------------------------------


def test_update_resets_the_stop_reason(graph: WorkGraph, clock: ManualClock) -> None:
    """§10.2: stopReason is back to NOT_STOPPED after an update (it is not carried over)."""
    request = WorkRequest(worker="Upload")
    graph.enqueue(request)
    graph.start(request.id)
    graph.stop(request.id, StopReason.CONSTRAINT_CONNECTIVITY)
    assert graph.info(request.id).stop_reason is StopReason.CONSTRAINT_CONNECTIVITY  # type: ignore[union-attr]
    graph.update_work(WorkRequest(id=request.id, worker="Upload"))
    assert graph.info(request.id).stop_reason is StopReason.NOT_STOPPED  # type: ignore[union-attr]


def test_one_time_update_carries_exactly_the_counters(
    graph: WorkGraph, clock: ManualClock
) -> None:
    """§10.2: runAttemptCount, lastEnqueueTime and generation + 1 are kept; every request
    field (tags, input, constraints, backoff, expedited...) comes from the new request."""
    request = WorkRequest(worker="Upload", tags={"v1"}, input={"n": 1})
    graph.enqueue(request)
    graph.start(request.id)
    clock.advance(minutes=5)
    graph.finish(request.id, WorkResult.retry())
    old = context(graph, request)
    new = WorkRequest(
        id=request.id,
        worker="Upload2",
        input={"n": 2},
        constraints=Constraints(network_type="UNMETERED"),
        backoff_policy="LINEAR",
        expedited=True,
    )
    assert graph.update_work(new) == "APPLIED_IMMEDIATELY"
    spec = context(graph, request)
    assert (spec.run_attempt_count, spec.last_enqueue_time, spec.generation) == (
        old.run_attempt_count,
        old.last_enqueue_time,
        old.generation + 1,
    )
    for field in WorkRequest.model_fields:
        assert getattr(spec, field) == getattr(new, field), field
    assert spec.tags == {"Upload2"}  # tags replaced, the worker always among them


def test_periodic_update_carries_period_and_override(graph: WorkGraph, clock: ManualClock) -> None:
    """§10.2: periodCount, the schedule override and its generation carry over; a request
    that sets an override replaces it and counts the generation up (P9)."""
    at = clock.now + HOUR
    request = PeriodicWorkRequest(worker="Sync", next_schedule_time_override=at)
    graph.enqueue_unique_periodic_work("sync", "KEEP", request)
    clock.now = at
    graph.start(request.id)
    graph.stop(request.id, 0)  # JobScheduler's STOP_REASON_UNDEFINED, §10.1
    graph.update_work(PeriodicWorkRequest(id=request.id, worker="Sync", repeat_interval=2 * HOUR))
    spec = context(graph, request)
    assert (spec.next_schedule_time_override, spec.next_schedule_time_override_generation) == (
        at,
        1,
    )
    assert (spec.stop_reason, spec.repeat_interval, spec.generation) == (
        StopReason.NOT_STOPPED,
        2 * HOUR,
        1,
    )
    later = at + 3 * HOUR
    graph.enqueue_unique_periodic_work(
        "sync", "UPDATE", PeriodicWorkRequest(worker="Sync", next_schedule_time_override=later)
    )
    spec = context(graph, request)
    assert (spec.next_schedule_time_override, spec.next_schedule_time_override_generation) == (
        later,
        2,
    )
    assert graph.info(request.id).next_schedule_time == later  # type: ignore[union-attr]


def test_updated_by_refuses_a_change_of_type() -> None:
    """§6.3: "Update operation must preserve worker's type.", as a PayloadError."""
    with pytest.raises(PayloadError, match="Can't update OneTime Worker to Periodic Worker"):
        WorkSpec().updated_by(PeriodicWorkRequest())  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match="Can't update Periodic Worker to OneTime Worker"):
        PeriodicWorkSpec().updated_by(WorkRequest())  # type: ignore[arg-type]


# -- V8, V13 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "refused"),
    [
        pytest.param("REPLACE", True, id="V8-replace"),
        pytest.param("CANCEL_AND_REENQUEUE", True, id="V8-cancel-and-reenqueue"),
        pytest.param("KEEP", False, id="V8-keep"),
        pytest.param("UPDATE", False, id="V8-update"),
    ],
)
def test_v8_override_only_with_update_or_keep(
    graph: WorkGraph, clock: ManualClock, policy: str, refused: bool
) -> None:
    """V8: "Next Schedule Time Override must be used with ExistingPeriodicWorkPolicyUPDATE
    (preferably) or KEEP"; a refusal leaves the named work as it was."""
    first = PeriodicWorkRequest(worker="Sync")
    graph.enqueue_unique_periodic_work("sync", "KEEP", first)
    before = graph.infos_for_unique_work("sync")
    request = PeriodicWorkRequest(worker="Sync", next_schedule_time_override=clock.now + HOUR)
    if not refused:
        graph.enqueue_unique_periodic_work("sync", policy, request)
        return
    with pytest.raises(PayloadError) as info:
        graph.enqueue_unique_periodic_work("sync", policy, request)
    assert "ExistingPeriodicWorkPolicyUPDATE (preferably) or KEEP" in str(info.value)
    assert info.value.errors[0][0] == "next_schedule_time_override"
    assert graph.infos_for_unique_work("sync") == before


def triggered(worker: str = "Watch") -> WorkRequest:
    return WorkRequest(
        worker=worker, constraints=Constraints(content_uri_triggers=["content://x"])
    )


def test_v13_content_uri_trigger_limit(graph: WorkGraph) -> None:
    """V13: at most 8 unfinished works with content-URI triggers; the operation that would
    pass the limit is refused whole, with WorkManager's message and counts; finished works
    do not count."""
    works = [triggered() for _ in range(CONTENT_URI_TRIGGER_WORKERS_LIMIT - 1)]
    graph.enqueue(*works)
    extra, plain = triggered(), WorkRequest()
    with pytest.raises(PayloadError) as info:
        graph.begin_with(plain).then(triggered(), extra).enqueue()
    message = str(info.value)
    assert "Too many workers with contentUriTriggers are enqueued:\n" in message
    assert "already enqueued count: 7;\ncurrent enqueue operation count: 2." in message
    assert graph.info(plain.id) is None  # nothing of the operation was stored
    graph.enqueue(extra)  # the eighth fits
    graph.cancel(works[0].id)
    graph.enqueue(triggered())  # a finished one no longer counts
    with pytest.raises(PayloadError, match="contentUriTrigger workers limit: 8"):
        graph.enqueue(triggered())
    graph.enqueue(WorkRequest())  # works without triggers are not limited


# -- §10.1 and §10.4 in a graph --------------------------------------------------------------


@pytest.mark.parametrize(
    "reason",
    [
        pytest.param(0, id="10.1-undefined"),
        pytest.param(16, id="10.1-jobscheduler-reason-unnamed"),
        pytest.param(2**31 - 1, id="10.1-int-max"),
        pytest.param(-128, id="10.1-foreground-service-timeout"),
    ],
)
def test_any_stop_reason_workmanager_stores_is_kept(graph: WorkGraph, reason: int) -> None:
    """§10.1: a JobScheduler reason WorkManager does not name is stored as given and reads
    back the same on every back-end."""
    request = WorkRequest()
    graph.enqueue(request)
    graph.start(request.id)
    graph.stop(request.id, reason)
    assert graph.info(request.id).stop_reason == reason  # type: ignore[union-attr]
    assert WorkGraph.restore(graph.snapshot()).info(request.id).stop_reason == reason  # type: ignore[union-attr]


@pytest.mark.parametrize("reason", [-1, -127, -129, -255, -300])
def test_reserved_stop_reasons_are_refused_in_a_graph(graph: WorkGraph, reason: int) -> None:
    """§10.1: the reserved ranges are refused as a PayloadError; the work keeps running."""
    request = WorkRequest()
    graph.enqueue(request)
    graph.start(request.id)
    with pytest.raises(PayloadError, match=r"reserves \[-255, -128\]"):
        graph.stop(request.id, reason)
    assert graph.info(request.id).state.value == "RUNNING"  # type: ignore[union-attr]


def test_a_dropped_expedited_dependent_waits(graph: WorkGraph) -> None:
    """§10.4: the quota guard holds for chained work too, and runnable() leaves it out."""
    a = WorkRequest(worker="A")
    b = WorkRequest(worker="B", expedited=True, out_of_quota_policy="DROP_WORK_REQUEST")
    graph.begin_with(a).then(b).enqueue()
    graph.start(a.id)
    graph.finish(a.id, WorkResult.success())
    no_quota = DeviceConditions(expedited_quota=False)
    assert graph.runnable(no_quota) == []
    assert graph.runnable() == [b.id]
    graph.start(b.id)
    assert graph.info(b.id).expedited is True  # type: ignore[union-attr]
