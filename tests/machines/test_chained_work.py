"""ChainedWork on its own: rule E (spec §5.2) and rows C1-C5 (§5.3)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit import TransitionRejected
from lifecyclekit.machines import ChainedWork, WorkResult
from tests.machines.conftest import ManualClock

A, B = uuid4(), uuid4()


@pytest.mark.parametrize(
    ("prerequisites", "initial"),
    [
        pytest.param({A: "SUCCEEDED", B: "SUCCEEDED"}, "enqueued", id="E1-all-succeeded"),
        pytest.param({}, "enqueued", id="E1-none"),
        pytest.param({A: "FAILED", B: "CANCELLED"}, "failed", id="E2-failed-wins"),
        pytest.param({A: "SUCCEEDED", B: "FAILED"}, "failed", id="E2-any-failed"),
        pytest.param({A: "CANCELLED", B: "RUNNING"}, "cancelled", id="E3-any-cancelled"),
        pytest.param({A: "SUCCEEDED", B: "ENQUEUED"}, "blocked", id="E4-unfinished"),
        pytest.param({A: "BLOCKED", B: "RUNNING"}, "blocked", id="E4-all-unfinished"),
    ],
)
def test_rule_e_initial_state(
    prerequisites: dict[UUID, str], initial: str, clock: ManualClock
) -> None:
    """The initial state follows rule E over the direct prerequisites."""
    work = ChainedWork(worker="Merge", prerequisites=prerequisites, clock=clock)
    assert work.state == initial
    assert (work.context.last_enqueue_time is not None) == (initial == "enqueued")
    assert work.history == ()


def blocked(clock: ManualClock) -> ChainedWork:
    return ChainedWork(worker="Merge", prerequisites={A: "RUNNING", B: "ENQUEUED"}, clock=clock)


def test_c2_then_c1(clock: ManualClock) -> None:
    """C2: one prerequisite succeeding keeps BLOCKED; C1: the last one unblocks it, now."""
    work = blocked(clock)
    with pytest.raises(TransitionRejected, match="start"):
        work.start()
    work.prerequisite_succeeded(prerequisite=A)
    assert work.state == "blocked"
    assert work.info().next_schedule_time is None
    clock.advance(minutes=5)
    work.prerequisite_succeeded(prerequisite=B)
    assert work.state == "enqueued"
    assert work.context.last_enqueue_time == clock.now
    assert [(r.event, r.target, r.payload) for r in work.history] == [
        ("prerequisite_succeeded", "blocked", {"prerequisite": str(A)}),
        ("prerequisite_succeeded", "enqueued", {"prerequisite": str(B)}),
    ]
    work.start()
    work.finish(WorkResult.success({"merged": True}))
    assert work.info().output == {"merged": True}


@pytest.mark.parametrize("source", ["blocked", "enqueued", "running"])
@pytest.mark.parametrize(
    ("event", "target"),
    [("prerequisite_failed", "failed"), ("prerequisite_cancelled", "cancelled")],
    ids=["C3", "C4"],
)
def test_c3_c4_propagated_failure_and_cancel(
    clock: ManualClock, source: str, event: str, target: str
) -> None:
    """C3/C4: an unfinished dependent fails / is cancelled, recording which prerequisite."""
    work = ChainedWork(
        prerequisites={A: "SUCCEEDED"} if source != "blocked" else {A: "RUNNING"}, clock=clock
    )
    if source == "running":
        work.start()
    work.send(event, prerequisite=A)
    assert work.state == target
    assert work.history[-1].payload == {"prerequisite": str(A)}
    assert work.info().output == {}


def test_propagation_does_not_touch_finished_work(clock: ManualClock) -> None:
    """A CANCELLED work is never made FAILED and vice versa (first terminal wins)."""
    work = blocked(clock)
    work.cancel()
    work.prerequisite_failed(prerequisite=A)
    assert work.state == "cancelled"


@pytest.mark.parametrize(
    ("call", "data"),
    [("start", {}), ("succeed", {}), ("retry", {}), ("instantiation_failed", {})],
)
def test_blocked_work_cannot_run_or_finish(
    clock: ManualClock, call: str, data: dict[str, Any]
) -> None:
    """§8.4 #3/#10: BLOCKED never goes to RUNNING or SUCCEEDED directly."""
    work = blocked(clock)
    with pytest.raises(TransitionNotAllowed):
        work.send(call, **data)
    assert work.state == "blocked"


def test_restore_keeps_a_blocked_work_blocked(clock: ManualClock) -> None:
    """A snapshot of a BLOCKED work restores BLOCKED with its prerequisites' states."""
    work = blocked(clock)
    work.prerequisite_succeeded(prerequisite=A)
    restored = ChainedWork.restore(work.snapshot(), clock=clock)
    assert restored.state == "blocked"
    assert restored.context.prerequisites == work.context.prerequisites
    restored.prerequisite_succeeded(prerequisite=B)
    assert restored.state == "enqueued"
