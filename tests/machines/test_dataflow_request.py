"""DataflowJob.request and replace_with: every requestable value from every state (spec §2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from statemachine.exceptions import TransitionNotAllowed

from lifecyclekit import PayloadError, TransitionRejected
from lifecyclekit.machines import DataflowJob, ObservedDataflowJob
from tests.machines.test_dataflow_observe import FINAL, STATES, job_in

REQUESTABLE = [
    "JOB_STATE_RUNNING",
    "JOB_STATE_STOPPED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_DONE",
    "JOB_STATE_DRAINED",
    "JOB_STATE_DRAINING",
]
SERVICE_ONLY = [
    "JOB_STATE_FAILED",
    "JOB_STATE_UPDATED",
    "JOB_STATE_PENDING",
    "JOB_STATE_QUEUED",
    "JOB_STATE_CANCELLING",
    "JOB_STATE_RESOURCE_CLEANING_UP",
    "JOB_STATE_UNKNOWN",
    "JOB_STATE_PAUSING",
    "JOB_STATE_PAUSED",
]


def expected_outcome(source: str, value: str, job_type: str, rule_set: str) -> str:
    """The spec's answer, as a target state id, "same" (recorded, no change) or "refused"."""
    if source in FINAL or source == "unknown":
        return "refused"
    streaming = job_type == "JOB_TYPE_STREAMING"
    table: dict[str, dict[str, str]] = {
        # T1/T2: STOPPED <-> RUNNING; asking for what is true records it.
        "JOB_STATE_RUNNING": {"stopped": "running", "running": "same"},
        "JOB_STATE_STOPPED": {"running": "stopped", "stopped": "same"},
        # T12 (RUNNING -> CANCELLING), T3, T6, T18, T22 and P3; CANCELLING is under way.
        "JOB_STATE_CANCELLED": {
            "running": "cancelling",
            "cancelling": "same",
            "queued": "cancelled",
            "stopped": "cancelled",
            "draining": "cancelled",
            "resource_cleaning_up": "cancelled",
            "pausing": "cancelled",
            "paused": "cancelled",
        }
        | ({"pending": "cancelled"} if rule_set == "observed" else {}),
        # T9 (U), T4, T21 via P3, and P3 for PAUSING/PAUSED.
        "JOB_STATE_DONE": {
            "running": "done",
            "stopped": "done",
            "resource_cleaning_up": "done",
            "pausing": "done",
            "paused": "done",
        },
        # T16: RUNNING -> DRAINING, streaming jobs only; DRAINING is under way.
        "JOB_STATE_DRAINED": {"draining": "same"} | ({"running": "draining"} if streaming else {}),
        "JOB_STATE_DRAINING": {"draining": "same"}
        | ({"running": "draining"} if streaming else {}),
    }
    return table[value].get(source, "refused")


CASES = [
    pytest.param(
        cls, source, value, job_type, id=f"{cls.rule_set}-{job_type[9:]}-{source}-{value[10:]}"
    )
    for cls in (DataflowJob, ObservedDataflowJob)
    for job_type in ("JOB_TYPE_BATCH", "JOB_TYPE_STREAMING")
    for source in STATES
    for value in REQUESTABLE
]


@pytest.mark.parametrize(("cls", "source", "value", "job_type"), CASES)
def test_request_table(cls: type[DataflowJob], source: str, value: str, job_type: str) -> None:
    """Each request moves the job as spec §2 says, records itself, or is refused unchanged."""
    job = cls(job_id="j", job_type=job_type)
    if source != "unknown":
        job.observe(source)
    before = job.snapshot()
    outcome = expected_outcome(source, value, job_type, cls.rule_set)
    if outcome == "refused":
        with pytest.raises(TransitionNotAllowed) as info:
            job.request(value)
        assert job.snapshot() == before
        if source in FINAL:
            assert f"has terminated in state JOB_STATE_{source.upper()}" in str(info.value)
        return
    job.request(value)
    assert job.context.requested_state == value
    if outcome == "same":
        assert job.state == source
        assert job.history == before.history
    else:
        assert job.state == outcome
        assert job.history[-1].payload == {
            "via": "request",
            "value": value,
            "replaced_by_job_id": None,
        }


@pytest.mark.parametrize("value", SERVICE_ONLY)
def test_service_only_values_are_payload_errors(value: str) -> None:
    """FAILED, UPDATED, PENDING... can only be set by the service: a PayloadError."""
    job = job_in(DataflowJob, "running")
    with pytest.raises(PayloadError, match=f"{value} can only be set by the Dataflow service"):
        job.request(value)


def test_bad_value_is_reported_before_the_state_check() -> None:
    """An unknown name is a PayloadError even on a finished job."""
    job = job_in(DataflowJob, "done")
    with pytest.raises(PayloadError, match="unknown JobState"):
        job.request("JOB_STATE_STOPPING")


def test_drain_of_a_batch_job_is_refused_with_the_reason() -> None:
    """Drain applies only to streaming pipelines (spec §2.2); the refusal names the guard."""
    job = DataflowJob(job_type="JOB_TYPE_BATCH")
    job.observe("JOB_STATE_RUNNING")
    with pytest.raises(
        TransitionRejected,
        match="Can't drain DataflowJob in JOB_STATE_RUNNING: is_streaming is False",
    ):
        job.request("JOB_STATE_DRAINED")
    assert job.context.requested_state is None


def test_drain_of_a_job_of_unknown_type_is_refused() -> None:
    """A job not known to be streaming is not drained."""
    job = DataflowJob()
    job.observe("JOB_STATE_RUNNING")
    with pytest.raises(TransitionRejected, match="is_streaming is False"):
        job.request("JOB_STATE_DRAINING")


def test_drain_stores_the_spelling_given() -> None:
    """DRAINING and DRAINED are both drain; requested_state keeps the one sent."""
    job = DataflowJob(job_type=2)
    job.observe(2)
    job.request("JOB_STATE_DRAINING")
    assert (job.state, job.context.requested_state) == ("draining", "JOB_STATE_DRAINING")
    job.request("JOB_STATE_DRAINED")
    assert (job.state, job.context.requested_state) == ("draining", "JOB_STATE_DRAINED")


def test_request_before_any_observation_is_refused() -> None:
    """In `unknown` the job's state must be observed first."""
    job = DataflowJob(job_type="JOB_TYPE_STREAMING")
    with pytest.raises(TransitionNotAllowed, match="observe or sync the job first"):
        job.request("JOB_STATE_CANCELLED")
    assert job.context.requested_state is None


@pytest.mark.parametrize(
    ("cls", "source", "job_type", "expected"),
    [
        pytest.param(DataflowJob, "running", "JOB_TYPE_STREAMING", "updated", id="T15"),
        pytest.param(DataflowJob, "running", "JOB_TYPE_BATCH", None, id="T15-batch-refused"),
        pytest.param(DataflowJob, "draining", "JOB_TYPE_STREAMING", None, id="O2-documented"),
        pytest.param(ObservedDataflowJob, "draining", "JOB_TYPE_STREAMING", "updated", id="O2"),
        pytest.param(DataflowJob, "pending", "JOB_TYPE_STREAMING", None, id="pending-refused"),
        pytest.param(DataflowJob, "done", "JOB_TYPE_STREAMING", None, id="finished-refused"),
    ],
)
def test_replace_with(
    cls: type[DataflowJob], source: str, job_type: str, expected: str | None
) -> None:
    """Updating by replacement job: RUNNING streaming jobs (and DRAINING ones under O2)."""
    job = cls(job_type=job_type)
    job.observe(source)
    before = job.snapshot()
    if expected is None:
        with pytest.raises(TransitionNotAllowed):
            job.replace_with("new-job")
        assert job.snapshot() == before
    else:
        job.replace_with("new-job")
        assert (job.state, job.context.replaced_by_job_id) == ("updated", "new-job")


def test_replace_with_needs_a_job_id() -> None:
    """An empty replacement id is a PayloadError."""
    job = job_in(DataflowJob, "running")
    with pytest.raises(PayloadError, match="new_job_id"):
        job.replace_with("")


def test_replace_with_refuses_the_jobs_own_id() -> None:
    """A replacement job has an id of its own (spec §2.3, §6.3: linked both ways)."""
    job = DataflowJob(job_id="old", job_type="JOB_TYPE_STREAMING")
    job.observe("JOB_STATE_RUNNING")
    before = job.snapshot()
    with pytest.raises(PayloadError, match="is this job's own id"):
        job.replace_with("old")
    assert job.snapshot() == before


def replaced_by_command(job: DataflowJob) -> None:
    job.replace_with("new")


def replaced_by_poll(job: DataflowJob) -> None:
    job.sync({"id": "old", "currentState": "JOB_STATE_UPDATED", "replacedByJobId": "new"})


def replaced_by_two_polls(job: DataflowJob) -> None:
    job.sync({"id": "old", "currentState": "JOB_STATE_UPDATED"})
    job.sync({"id": "old", "replacedByJobId": "new"})


@pytest.mark.parametrize(
    ("cls", "source", "replace"),
    [
        pytest.param(DataflowJob, "running", replaced_by_command, id="§6.3-T15-replace_with"),
        pytest.param(DataflowJob, "running", replaced_by_poll, id="§6.3-T15-sync"),
        pytest.param(DataflowJob, "running", replaced_by_two_polls, id="§6.3-T15-two-polls"),
        pytest.param(ObservedDataflowJob, "draining", replaced_by_command, id="§6.3-O2"),
    ],
)
def test_replaced_by_follows_the_successor(
    cls: type[DataflowJob], source: str, replace: Callable[[DataflowJob], None]
) -> None:
    """§6.3: from an UPDATED job, a new tracker of the same class for its successor: its id
    is replacedByJobId, its replace_job_id points back, same type, name, project and location,
    not yet observed; the old tracker is unchanged."""
    job = cls(
        job_id="old",
        name="orders",
        project_id="p",
        location="us-central1",
        job_type="JOB_TYPE_STREAMING",
    )
    job.observe(source)
    replace(job)
    before = job.snapshot()
    successor = job.replaced_by()
    assert type(successor) is cls
    assert successor.state == "unknown"
    assert successor.history == ()
    assert successor.context.model_dump() == {
        "job_id": "new",
        "name": "orders",
        "project_id": "p",
        "location": "us-central1",
        "job_type": "JOB_TYPE_STREAMING",
        "requested_state": None,
        "current_state_time": None,
        "replace_job_id": "old",
        "replaced_by_job_id": None,
    }
    assert job.context.replaced_by_job_id == successor.context.job_id
    assert job.snapshot() == before
    successor.sync({"id": "new", "currentState": "JOB_STATE_RUNNING", "replaceJobId": "old"})
    assert successor.state == "running"
    with pytest.raises(PayloadError, match="'old'.*'new'"):
        successor.sync({"id": "old", "currentState": "JOB_STATE_UPDATED"})


def test_replaced_by_keeps_the_applications_subclass_and_clock() -> None:
    """The successor is of the application's subclass, with the clock given."""

    class Monitored(DataflowJob):
        pass

    job = Monitored(job_id="old", job_type="JOB_TYPE_STREAMING")
    job.observe("JOB_STATE_RUNNING")
    job.replace_with("new")
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    successor = job.replaced_by(clock=lambda: moment)
    assert type(successor) is Monitored
    successor.observe("JOB_STATE_PENDING")
    assert successor.history[-1].at == moment


@pytest.mark.parametrize("source", [s for s in STATES if s != "updated"])
def test_replaced_by_is_refused_before_the_job_was_replaced(source: str) -> None:
    """§6.3: only a job in JOB_STATE_UPDATED has a successor; the refusal changes nothing."""
    job = job_in(ObservedDataflowJob, source)
    job.context.replaced_by_job_id = "new"  # an id alone does not make the job replaced
    before = job.snapshot()
    with pytest.raises(TransitionRejected, match="only a job in JOB_STATE_UPDATED"):
        job.replaced_by()
    assert job.snapshot() == before


@pytest.mark.parametrize(
    ("job_id", "replaced_by_job_id", "pattern"),
    [
        pytest.param("old", None, "the successor's id is not known", id="no-successor-id"),
        pytest.param(None, "new", "this job's own id is not known", id="no-own-id"),
    ],
)
def test_replaced_by_needs_both_ids(
    job_id: str | None, replaced_by_job_id: str | None, pattern: str
) -> None:
    """§6.3 "linked both ways": an UPDATED job whose ids are not both known is refused."""
    job = DataflowJob(job_id=job_id, replaced_by_job_id=replaced_by_job_id)
    job.observe("JOB_STATE_UPDATED")
    before = job.snapshot()
    with pytest.raises(TransitionRejected, match=pattern):
        job.replaced_by()
    assert job.snapshot() == before
