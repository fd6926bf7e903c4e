"""DataflowJob: context, initial states, inference, provenance, Beam mapping, callbacks."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit import LifecycleError, PayloadError, registry
from lifecyclekit.machines import DataflowJob, ObservedDataflowJob
from tests.machines.test_dataflow_observe import DOCUMENTED, OBSERVED, STATES, job_in

T0 = datetime(2024, 3, 13, 20, 30, tzinfo=UTC)


def test_registry_builds_one_with_context() -> None:
    """registry.create('dataflow-job', ...) takes the pinned context fields."""
    job = registry.create("dataflow-job", job_id="j-1", job_type="JOB_TYPE_STREAMING")
    assert isinstance(job, DataflowJob)
    assert (job.state, job.context.job_id, job.context.job_type) == (
        "unknown",
        "j-1",
        "JOB_TYPE_STREAMING",
    )
    assert type(registry.create("dataflow-job-observed")) is ObservedDataflowJob


@pytest.mark.parametrize(
    ("given_type", "expected"),
    [(1, "JOB_TYPE_BATCH"), (2, "JOB_TYPE_STREAMING"), (0, "JOB_TYPE_UNKNOWN")],
)
def test_job_type_numbers_are_normalised(given_type: int, expected: str) -> None:
    """A number is accepted for job_type and stored as the API name."""
    assert DataflowJob(job_type=given_type).context.job_type == expected


def test_bad_job_type_is_a_payload_error() -> None:
    """An unknown job type is refused with the allowed names."""
    with pytest.raises(PayloadError, match="job_type.*JOB_TYPE_BATCH"):
        DataflowJob(job_type="JOB_TYPE_FLEX")


@pytest.mark.parametrize(
    ("initial", "state"),
    [("JOB_STATE_STOPPED", "stopped"), (9, "pending"), ("queued", "queued"), (None, "unknown")],
)
def test_initial_state(initial: Any, state: str) -> None:
    """A job may start in STOPPED, PENDING or QUEUED (spec §1.4) instead of unknown."""
    assert DataflowJob(initial_state=initial).state == state


def test_other_initial_states_are_refused() -> None:
    """Jobs are not created RUNNING."""
    with pytest.raises(PayloadError, match="not created in JOB_STATE_RUNNING"):
        DataflowJob(initial_state="JOB_STATE_RUNNING")


@pytest.mark.parametrize(
    "state", ["JOB_STATE_RUNNING", 2, "running"], ids=["api-name", "number", "state-id"]
)
def test_observe_accepts_every_spelling(state: Any) -> None:
    """An API name, a number or a state id name the same state."""
    job = DataflowJob()
    job.observe(state)
    assert job.state == "running"


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("JOB_STATE_SLEEPING", "unknown JobState"),
        (99, "unrecognized JobState number 99"),
        (-1, "unrecognized JobState number -1"),
        (True, "not a JobState"),
        (None, "unknown JobState"),
    ],
)
def test_bad_observations_are_payload_errors(value: Any, pattern: str) -> None:
    """Unknown names and numbers are errors, never silently UNKNOWN."""
    job = job_in(DataflowJob, "running")
    with pytest.raises(PayloadError, match=pattern):
        job.observe(value)
    assert job.state == "running"


def test_observe_at_sets_current_state_time_and_record_time() -> None:
    """at= becomes context.current_state_time and the history record's time."""
    job = DataflowJob()
    job.observe("JOB_STATE_RUNNING", at=T0)
    assert job.context.current_state_time == T0
    assert job.history[-1].at == T0
    with pytest.raises(PayloadError, match="aware datetime"):
        job.observe("JOB_STATE_DONE", at=datetime(2024, 1, 1))  # noqa: DTZ001
    assert job.state == "running"


@pytest.mark.parametrize(
    ("cls", "setup", "target", "events", "inferred"),
    [
        pytest.param(
            DataflowJob,
            ["JOB_STATE_QUEUED"],
            "JOB_STATE_RUNNING",
            ["launch", "run"],
            [True, False],
            id="T5-T7-queued-missed-pending",
        ),
        pytest.param(
            DataflowJob,
            ["JOB_STATE_PENDING"],
            "JOB_STATE_DONE",
            ["run", "complete"],
            [True, False],
            id="T7-T9-pending-missed-running",
        ),
        pytest.param(
            DataflowJob,
            ["JOB_STATE_QUEUED"],
            "JOB_STATE_RESOURCE_CLEANING_UP",
            ["launch", "run", "clean_up"],
            [True, True, False],
            id="T5-T7-T20-two-missed",
        ),
        pytest.param(
            DataflowJob,
            ["JOB_STATE_RUNNING", "request:JOB_STATE_DRAINED"],
            "JOB_STATE_DRAINED",
            ["finish_drain"],
            [False],
            id="T17-after-request-direct",
        ),
        pytest.param(
            ObservedDataflowJob,
            ["JOB_STATE_STOPPED"],
            "JOB_STATE_FAILED",
            ["launch", "fail"],
            [True, False],
            id="O3-T8-observed-stopped-missed-pending",
        ),
    ],
)
def test_infer_fills_missed_states(
    cls: type[DataflowJob], setup: list[str], target: str, events: list[str], inferred: list[bool]
) -> None:
    """infer=True applies the shortest service-driven path, marking missed steps inferred."""
    job = cls(job_type="JOB_TYPE_STREAMING")
    for step in setup:
        if step.startswith("request:"):
            job.request(step.split(":")[1])
        else:
            job.observe(step)
    start = len(job.history)
    without_infer = cls.restore(job.snapshot())
    with pytest.raises(TransitionNotAllowed) if len(events) > 1 else nullcontext():
        without_infer.observe(target)
    job.observe(target, at=T0, infer=True)
    new = job.history[start:]
    assert [r.event for r in new] == events
    assert [r.inferred for r in new] == inferred
    assert all(r.at == T0 for r in new)
    assert job.state_value == target


def test_infer_crosses_a_user_edge_only_with_the_request_on_record() -> None:
    """RUNNING -> DRAINED skips DRAINING only when a drain request is on record (T16, T17)."""
    job = job_in(DataflowJob, "running")
    job.context.job_type = "JOB_TYPE_STREAMING"
    with pytest.raises(TransitionNotAllowed, match="no path of service-driven"):
        job.observe("JOB_STATE_DRAINED", infer=True)
    assert job.state == "running"
    job.sync({"requestedState": "JOB_STATE_DRAINED"})
    job.observe("JOB_STATE_DRAINED", infer=True)
    assert [(r.event, r.inferred) for r in job.history[-2:]] == [
        ("drain", True),
        ("finish_drain", False),
    ]


def test_provenance_is_present_for_every_transition() -> None:
    """Every transition carries a spec row and its sentence; every table row is used."""
    for cls, table in ((DataflowJob, DOCUMENTED), (ObservedDataflowJob, OBSERVED)):
        rows = cls.transition_table()
        assert all(row.provenance is not None and row.provenance.text for row in rows)
        cited = {row.provenance.row for row in rows if row.provenance}
        assert set(table.values()) <= cited
        assert {f"T{n}" for n in range(1, 23)} <= cited


@pytest.mark.parametrize(
    ("state", "pipeline_state"),
    [
        ("unknown", "UNKNOWN"),
        ("queued", "UNRECOGNIZED"),
        ("resource_cleaning_up", "RESOURCE_CLEANING_UP"),
        ("paused", "PAUSED"),
        ("drained", "DRAINED"),
    ],
)
def test_pipeline_state_follows_beam(state: str, pipeline_state: str) -> None:
    """Beam 2.77 maps QUEUED to UNRECOGNIZED and every other state to its own name (spec §4)."""
    assert job_in(DataflowJob, state).pipeline_state == pipeline_state


def test_subclass_callbacks_fire_from_observe_and_request() -> None:
    """An application's on_enter_/after_ callbacks fire whichever entry point was used."""
    seen: list[str] = []

    class Monitored(DataflowJob):
        def on_enter_draining(self) -> None:
            seen.append("draining")

        def after_cancel(self, via: str) -> None:
            seen.append(f"cancel via {via}")

    job = Monitored(job_type="JOB_TYPE_STREAMING")
    job.observe("JOB_STATE_RUNNING")
    job.request("JOB_STATE_DRAINING")
    job.request("JOB_STATE_CANCELLED")
    assert seen == ["draining", "cancel via request"]


def test_snapshot_round_trip() -> None:
    """A tracker with history and context restores exactly, in its state."""
    job = DataflowJob(job_id="j", job_type="JOB_TYPE_STREAMING")
    job.observe("JOB_STATE_RUNNING", at=T0)
    job.request("JOB_STATE_DRAINED")
    snap = job.snapshot()
    assert snap.machine == "dataflow-job"
    restored = registry.restore(snap.model_dump_json())
    assert type(restored) is DataflowJob
    assert restored.snapshot() == snap


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["observe", "request", "replace"]))
    value: Any = draw(
        st.one_of(st.sampled_from(STATES), st.integers(-2, 16), st.just("JOB_STATE_NOPE"))
    )
    return kind, value


@given(st.sampled_from([DataflowJob, ObservedDataflowJob]), st.lists(calls(), max_size=20))
def test_terminal_absorption_and_refusals_change_nothing(
    cls: type[DataflowJob], sequence: list[tuple[str, Any]]
) -> None:
    """No call leaves a final state; a refused call changes neither state, context nor history."""
    job = cls(job_type="JOB_TYPE_STREAMING")
    final_state = None
    for kind, value in sequence:
        before = job.snapshot()
        try:
            if kind == "observe":
                job.observe(value, infer=isinstance(value, int) and value % 2 == 0)
            elif kind == "request":
                job.request(value)
            else:
                job.replace_with(f"new-{value}")
        except LifecycleError:
            assert job.snapshot() == before
        if final_state is not None:
            assert job.state == final_state
        elif job.is_finished:
            final_state = job.state
