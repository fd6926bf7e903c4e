"""DataflowJob.request and replace_with: every requestable value from every state (spec §2)."""

from __future__ import annotations

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
