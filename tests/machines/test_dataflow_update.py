"""Spec dataflow.md §6.1: one rule for requests.

``request()`` (the tracker), ``update_body()`` (the REST body) and ``update_request()`` (the
client's ``UpdateJobRequest``) refuse exactly the same requests with the same message; a
force cancel adds the label ``force_cancel_job=true`` and needs a regular cancel first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lifecyclekit import LifecycleError, PayloadError, TransitionRejected
from lifecyclekit.machines import DataflowJob, ObservedDataflowJob
from tests.machines.test_dataflow_observe import FINAL, STATES
from tests.machines.test_dataflow_request import REQUESTABLE, SERVICE_ONLY, expected_outcome

dataflow = pytest.importorskip("google.cloud.dataflow_v1beta3")

Builder = Callable[..., Any]
BUILDERS: dict[str, Builder] = {
    "update_body": lambda job, value, **kw: job.update_body(value, **kw),
    "update_request": lambda job, value, **kw: job.update_request(value, **kw),
}


def tracker(cls: type[DataflowJob], source: str, job_type: str) -> DataflowJob:
    job = cls(job_id="j", project_id="p", location="us-central1", job_type=job_type)
    if source != "unknown":
        job.observe(source)
    return job


def attempt(call: Callable[..., Any], *args: Any) -> tuple[tuple[type, str] | None, Any]:
    """The refusal a call raises (its type and message) or None, and what it returned."""
    try:
        return None, call(*args)
    except LifecycleError as exc:
        return (type(exc), str(exc)), None


def why(source: str, value: str, job_type: str, rule_set: str) -> str:
    """The spec section or row a request's outcome rests on, for the test id."""
    if source in FINAL:
        return "§2.4-terminated"
    if source == "unknown":
        return "§1.5-unknown"
    if value.startswith("JOB_STATE_DRAIN") and source == "running":
        return "T16" if job_type == "JOB_TYPE_STREAMING" else "§2.2-batch-drain"
    outcome = expected_outcome(source, value, job_type, rule_set)
    return "§2.1" if outcome == "refused" else "§2.1-allowed"


CASES = [
    pytest.param(
        cls,
        source,
        value,
        job_type,
        id=f"{why(source, value, job_type, cls.rule_set)}-{cls.rule_set}-{job_type[9:]}-"
        f"{source}-{value[10:]}",
    )
    for cls in (DataflowJob, ObservedDataflowJob)
    for job_type in ("JOB_TYPE_BATCH", "JOB_TYPE_STREAMING")
    for source in STATES
    for value in REQUESTABLE
]


@pytest.mark.parametrize(("cls", "source", "value", "job_type"), CASES)
def test_every_builder_refuses_what_request_refuses(
    cls: type[DataflowJob], source: str, value: str, job_type: str
) -> None:
    """§6.1: update_body() and update_request() refuse what request() refuses (service-only
    states, a drain of a batch job, anything against a terminated job), with the same error
    and message; what request() accepts they build; a builder changes nothing."""
    expected = expected_outcome(source, value, job_type, cls.rule_set)
    refusal, _ = attempt(tracker(cls, source, job_type).request, value)
    assert (refusal is not None) == (expected == "refused")
    if source in FINAL:
        assert refusal is not None
        assert f"has terminated in state JOB_STATE_{source.upper()}" in refusal[1]
    for name, build in BUILDERS.items():
        job = tracker(cls, source, job_type)
        before = job.snapshot()
        refused, built = attempt(build, job, value)
        assert refused == refusal, name
        assert job.snapshot() == before, name
        if refusal is None and name == "update_body":
            assert built == {"requestedState": value}
        elif refusal is None:
            assert built.job.requested_state == dataflow.JobState[value]
            assert dict(built.job.labels) == {}


def test_drain_of_a_batch_job_is_refused_by_every_builder_alike() -> None:
    """§2.2 (drain "applies only to streaming pipelines") through §6.1: one message."""
    messages = set()
    for call in (
        lambda job: job.request("JOB_STATE_DRAINED"),
        lambda job: job.update_body("JOB_STATE_DRAINED"),
        lambda job: job.update_request("JOB_STATE_DRAINED"),
    ):
        job = tracker(DataflowJob, "running", "JOB_TYPE_BATCH")
        with pytest.raises(TransitionRejected) as info:
            call(job)
        messages.add(str(info.value))
    assert messages == {"Can't drain DataflowJob in JOB_STATE_RUNNING: is_streaming is False"}


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("value", SERVICE_ONLY + ["JOB_STATE_STOPPING", 99])
def test_service_only_and_unknown_values_are_refused_alike(name: str, value: Any) -> None:
    """§6.1 / §2.1: FAILED, UPDATED, PENDING... "could only be set by the service", and
    unknown names: the builders' PayloadError is request()'s, word for word."""
    job = tracker(DataflowJob, "running", "JOB_TYPE_STREAMING")
    with pytest.raises(PayloadError) as by_request:
        job.request(value)
    with pytest.raises(PayloadError) as by_builder:
        BUILDERS[name](job, value)
    assert str(by_builder.value) == str(by_request.value)


def regular_cancel(job: DataflowJob) -> None:
    job.request("JOB_STATE_CANCELLED")


def cancel_learned_by_sync(job: DataflowJob) -> None:
    job.sync({"id": "j", "requestedState": "JOB_STATE_CANCELLED"})


def drain(job: DataflowJob) -> None:
    job.request("JOB_STATE_DRAINED")


def nothing(job: DataflowJob) -> None:
    pass


FORCE_BODY = {"requestedState": "JOB_STATE_CANCELLED", "labels": {"force_cancel_job": "true"}}


@pytest.mark.parametrize(
    ("source", "before", "refusal"),
    [
        pytest.param("running", regular_cancel, None, id="§6.1-after-request-cancelling"),
        pytest.param("cancelling", nothing, None, id="§6.1-T12-cancelling-observed"),
        pytest.param("running", cancel_learned_by_sync, None, id="§6.1-request-learned-by-sync"),
        pytest.param("running", nothing, "no regular cancel was requested", id="§6.1-no-cancel"),
        pytest.param("running", drain, "no regular cancel was requested", id="§6.1-drain-only"),
        pytest.param("queued", regular_cancel, "has terminated", id="§2.4-cancelled-already"),
        pytest.param("done", nothing, "has terminated", id="§2.4-done"),
        pytest.param("unknown", nothing, "not known yet", id="§1.5-unknown"),
    ],
)
@pytest.mark.parametrize("name", list(BUILDERS))
def test_force_cancel(
    name: str, source: str, before: Callable[[DataflowJob], None], refusal: str | None
) -> None:
    """§6.1 / §2.1: force adds the label force_cancel_job=true to the Job of the request (as
    gcloud's Cancel(force=True)), only after a regular cancel was requested; a refused force
    changes nothing."""
    job = tracker(DataflowJob, source, "JOB_TYPE_STREAMING")
    before(job)
    snapshot = job.snapshot()
    if refusal is not None:
        with pytest.raises(TransitionRejected, match=refusal):
            BUILDERS[name](job, "JOB_STATE_CANCELLED", force=True)
        assert job.snapshot() == snapshot
        return
    built = BUILDERS[name](job, dataflow.JobState.JOB_STATE_CANCELLED, force=True)
    assert job.snapshot() == snapshot
    if name == "update_body":
        assert built == FORCE_BODY
    else:
        assert isinstance(built, dataflow.UpdateJobRequest)
        assert (built.project_id, built.location, built.job_id) == ("p", "us-central1", "j")
        assert built.job.requested_state == dataflow.JobState.JOB_STATE_CANCELLED
        assert dict(built.job.labels) == {"force_cancel_job": "true"}
        assert not built.update_mask.paths
        rest = dataflow.Job.to_dict(built.job, use_integers_for_enums=False)
        assert (rest["requested_state"], rest["labels"]) == (
            FORCE_BODY["requestedState"],
            FORCE_BODY["labels"],
        )


def test_force_cancel_message_quotes_the_stop_doc() -> None:
    """The refusal says why and what to do first."""
    job = tracker(DataflowJob, "running", "JOB_TYPE_STREAMING")
    with pytest.raises(TransitionRejected) as info:
        job.update_body("JOB_STATE_CANCELLED", force=True)
    assert str(info.value) == (
        "Can't force-cancel DataflowJob in JOB_STATE_RUNNING: no regular cancel was requested "
        "('Before force canceling, you must first attempt a regular cancel'). Request "
        "JOB_STATE_CANCELLED without force first; force only a cancel that is stuck."
    )


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize(
    ("value", "force", "pattern"),
    [
        ("JOB_STATE_DRAINED", True, "only a cancel can be forced, not a request for"),
        ("JOB_STATE_DONE", True, "only a cancel can be forced"),
        ("JOB_STATE_CANCELLED", "yes", "force: must be True or False"),
        ("JOB_STATE_CANCELLED", 1, "force: must be True or False"),
    ],
)
def test_bad_force_is_a_payload_error(name: str, value: str, force: Any, pattern: str) -> None:
    """force applies to a cancel only and is a bool; anything else is bad data."""
    job = tracker(DataflowJob, "cancelling", "JOB_TYPE_STREAMING")
    before = job.snapshot()
    with pytest.raises(PayloadError, match=pattern):
        BUILDERS[name](job, value, force=force)
    assert job.snapshot() == before


@pytest.mark.parametrize("missing", ["job_id", "project_id"])
def test_update_request_needs_the_job_it_names(missing: str) -> None:
    """An UpdateJobRequest without its job's id or project could only fail at the service."""
    fields = {"job_id": "j", "project_id": "p", missing: None}
    job = DataflowJob(**fields)
    job.observe("JOB_STATE_RUNNING")
    with pytest.raises(PayloadError, match=f"{missing}: not known"):
        job.update_request("JOB_STATE_CANCELLED")
    assert job.update_body("JOB_STATE_CANCELLED") == {"requestedState": "JOB_STATE_CANCELLED"}
