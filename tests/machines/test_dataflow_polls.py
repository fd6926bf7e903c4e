"""Spec dataflow.md §6.2: which polls belong to the job, and the service time they carry.

A poll with another job's id is refused naming both ids; launch answers ``{"job": {...}}``
are unwrapped (a dry run's is refused); a poll older than the recorded ``currentStateTime``
is stale and never applied, so the recorded time never moves backwards.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecyclekit import LifecycleError, PayloadError
from lifecyclekit.machines import DataflowJob, ObservedDataflowJob
from tests.machines.test_dataflow_observe import STATES

dataflow = pytest.importorskip("google.cloud.dataflow_v1beta3")

JOB_ID = "2024-03-13_13_30_56-9773037660972565699"
OTHER_ID = "2024-03-14_01_02_03-1111111111111111111"
T0 = datetime(2024, 3, 13, 20, 30, 57, 106560, tzinfo=UTC)
T1 = T0 + timedelta(minutes=2)
T2 = T0 + timedelta(minutes=30)


def poll(state: str | None = None, at: datetime | None = None, **more: Any) -> dict[str, Any]:
    """A REST Job as GET returns it (only the fields given)."""
    job: dict[str, Any] = {"id": JOB_ID, "type": "JOB_TYPE_STREAMING"}
    if state is not None:
        job["currentState"] = f"JOB_STATE_{state.upper()}"
    if at is not None:
        job["currentStateTime"] = at.isoformat().replace("+00:00", "Z")
    return job | more


# -- the job's id ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(poll("running", T1) | {"id": OTHER_ID}, id="rest-dict"),
        pytest.param(json.dumps(poll("done", T2) | {"id": OTHER_ID}), id="json-text"),
        pytest.param({"id": OTHER_ID, "requestedState": "JOB_STATE_CANCELLED"}, id="partial"),
        pytest.param({"job": poll("running", T1) | {"id": OTHER_ID}}, id="launch-answer"),
    ],
)
def test_a_poll_of_another_job_is_refused_naming_both_ids(other: Any) -> None:
    """§6.2: "Job.id is immutable for the life of the job": another id is a PayloadError
    that names both ids, and nothing of that poll is applied."""
    job = DataflowJob.from_job(poll("pending", T0))
    before = job.snapshot()
    with pytest.raises(PayloadError) as info:
        job.sync(other)
    assert JOB_ID in str(info.value)
    assert OTHER_ID in str(info.value)
    assert job.snapshot() == before


def test_a_message_of_another_job_is_refused() -> None:
    """§6.2 with the client's own Job message."""
    job = DataflowJob.from_job(dataflow.Job(id=JOB_ID, current_state=2))
    with pytest.raises(PayloadError, match=f"this Job is job {OTHER_ID!r}.*{JOB_ID!r}"):
        job.sync(dataflow.Job(id=OTHER_ID, current_state=3))
    assert job.state == "running"


def test_from_job_refuses_a_job_id_that_is_not_the_jobs() -> None:
    """§6.2: job_id= given with a Job of another id names both."""
    with pytest.raises(PayloadError, match=f"{OTHER_ID!r}.*{JOB_ID!r}"):
        DataflowJob.from_job(poll("running"), job_id=OTHER_ID)
    assert DataflowJob.from_job(poll("running"), job_id=JOB_ID).context.job_id == JOB_ID


def test_a_tracker_without_an_id_learns_it_once() -> None:
    """The first poll with an id names the job; a later poll of another job is refused."""
    job = DataflowJob()
    job.sync({"currentState": "JOB_STATE_RUNNING"})
    assert job.context.job_id is None
    job.sync(poll("running") | {"projectId": "p", "location": "europe-west1", "name": "orders"})
    context = job.context
    assert (context.job_id, context.project_id, context.location, context.name) == (
        JOB_ID,
        "p",
        "europe-west1",
        "orders",
    )
    with pytest.raises(PayloadError, match="a job's id never changes"):
        job.sync(poll("done") | {"id": OTHER_ID})


# -- launch answers --------------------------------------------------------------------------

INNER = {
    "id": JOB_ID,
    "projectId": "my-project",
    "name": "orders-streaming",
    "location": "us-central1",
    "type": "JOB_TYPE_STREAMING",
    "currentState": "JOB_STATE_QUEUED",
    "currentStateTime": "2024-03-13T20:30:57.106560Z",
}


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"job": INNER}, id="rest-LaunchFlexTemplateResponse"),
        pytest.param(json.dumps({"job": INNER}), id="json-text"),
        pytest.param(
            dataflow.LaunchTemplateResponse(job=dataflow.Job.from_json(json.dumps(INNER))),
            id="client-LaunchTemplateResponse",
        ),
        pytest.param(
            dataflow.LaunchFlexTemplateResponse(job=dataflow.Job.from_json(json.dumps(INNER))),
            id="client-LaunchFlexTemplateResponse",
        ),
    ],
)
def test_launch_answers_are_unwrapped(answer: Any) -> None:
    """§6.2: LaunchTemplateResponse.job / LaunchFlexTemplateResponse.job is the job."""
    job = DataflowJob.from_job(answer)
    assert (job.context.job_id, job.context.name, job.context.project_id) == (
        JOB_ID,
        "orders-streaming",
        "my-project",
    )
    assert (job.state, job.context.current_state_time) == ("queued", T0)
    assert job.sync(answer) is True
    assert job.state == "queued"


@pytest.mark.parametrize(
    ("answer", "pattern"),
    [
        pytest.param({"job": None}, "a launch answer without a job", id="rest-dry-run"),
        pytest.param(
            dataflow.LaunchFlexTemplateResponse(), "a launch answer without a job", id="dry-run"
        ),
        pytest.param({"job": "j"}, "the launch answer's job is not a Job", id="not-a-job"),
        pytest.param({"job": {"type": "JOB_TYPE_BATCH"}}, "the Job has no id", id="no-id"),
        pytest.param({}, "the Job has no id", id="empty"),
        pytest.param(dataflow.Job(current_state=2), "the Job has no id", id="message-no-id"),
    ],
)
def test_answers_without_a_job_id_are_refused(answer: Any, pattern: str) -> None:
    """§6.2: reading a launch answer "never yields a tracker with no id"."""
    with pytest.raises(PayloadError, match=pattern):
        DataflowJob.from_job(answer)


# -- stale polls -----------------------------------------------------------------------------


def at(state: str, when: datetime | None) -> dict[str, Any]:
    return poll(state, when)


@pytest.mark.parametrize(
    ("cls", "polls", "late", "state", "recorded"),
    [
        pytest.param(
            DataflowJob,
            [at("stopped", T0), at("running", T1)],
            at("stopped", T0),
            "running",
            T1,
            id="§6.2-late-STOPPED-copy-ignored",
        ),
        pytest.param(
            DataflowJob,
            [at("running", T1), at("done", T2)],
            at("running", T1),
            "done",
            T2,
            id="§6.2-late-RUNNING-after-DONE-ignored",
        ),
        pytest.param(
            ObservedDataflowJob,
            [at("stopped", T0), at("pending", T1)],
            at("stopped", T0),
            "pending",
            T1,
            id="§6.2-O3-late-STOPPED-ignored",
        ),
        pytest.param(
            DataflowJob,
            [at("running", T1)],
            poll("running", T0, requestedState="JOB_STATE_CANCELLED"),
            "running",
            T1,
            id="§6.2-stale-poll-ignored-whole",
        ),
        pytest.param(
            DataflowJob,
            [at("running", T1)],
            {"id": JOB_ID, "currentStateTime": "2024-03-13T20:30:57Z"},
            "running",
            T1,
            id="§6.2-stale-time-alone",
        ),
    ],
)
def test_a_stale_poll_is_never_applied(
    cls: type[DataflowJob],
    polls: list[dict[str, Any]],
    late: dict[str, Any],
    state: str,
    recorded: datetime,
) -> None:
    """§6.2: a poll whose currentStateTime is older than the recorded one is stale: sync()
    ignores it whole (returns False) and the recorded time stays."""
    job = cls.from_job(polls[0])
    for earlier in polls[1:]:
        assert job.sync(earlier) is True
    before = job.snapshot()
    assert job.sync(late) is False
    assert job.snapshot() == before
    assert (job.state, job.context.current_state_time) == (state, recorded)


@pytest.mark.parametrize(
    ("first", "then", "state", "recorded", "events"),
    [
        pytest.param(at("running", T1), at("running", T1), "running", T1, [], id="equal-same"),
        pytest.param(
            at("pending", T1), at("running", T1), "running", T1, ["run"], id="equal-new-state"
        ),
        pytest.param(
            at("running", T1), at("done", None), "done", T1, ["complete"], id="no-time-applied"
        ),
        pytest.param(at("running", T1), at("running", T2), "running", T2, [], id="newer-same"),
    ],
)
def test_equal_times_and_polls_without_a_time_are_applied(
    first: dict[str, Any],
    then: dict[str, Any],
    state: str,
    recorded: datetime,
    events: list[str],
) -> None:
    """§6.2: "Equal times are not stale"; a poll without currentStateTime cannot be judged
    and is applied (decision); a newer time of the same state is recorded."""
    job = DataflowJob.from_job(first)
    assert job.sync(then) is True
    assert (job.state, job.context.current_state_time) == (state, recorded)
    assert [r.event for r in job.history[1:]] == events


def test_observe_with_an_older_time_is_ignored() -> None:
    """§6.2 holds for observe(at=...) too: the late STOPPED does not move RUNNING back."""
    job = DataflowJob()
    job.observe("JOB_STATE_STOPPED", at=T0)
    job.observe("JOB_STATE_RUNNING", at=T1)
    before = job.snapshot()
    job.observe("JOB_STATE_STOPPED", at=T0)
    assert job.snapshot() == before


# -- the service time after a request (issue 13) -----------------------------------------------


@pytest.mark.parametrize(
    ("request_value", "reported", "state"),
    [
        pytest.param("JOB_STATE_DRAINED", "draining", "draining", id="T16-drain-DRAINING"),
        pytest.param("JOB_STATE_DRAINING", "draining", "draining", id="T16-draining-DRAINING"),
        pytest.param("JOB_STATE_CANCELLED", "cancelling", "cancelling", id="T12-CANCELLING"),
        pytest.param("JOB_STATE_STOPPED", "stopped", "stopped", id="T2-STOPPED"),
    ],
)
def test_the_service_time_after_a_request_is_recorded(
    request_value: str, reported: str, state: str
) -> None:
    """After request(), the service's poll of the state the request led to, with a newer
    currentStateTime, updates the recorded time; it fires nothing; an older one does not."""
    job = DataflowJob.from_job(at("running", T1))
    job.request(request_value)
    history = job.history
    assert job.context.current_state_time == T1
    assert job.sync(at(reported, T0)) is False
    assert job.context.current_state_time == T1
    assert job.sync(at(reported, T2)) is True
    assert (job.state, job.context.current_state_time) == (state, T2)
    assert job.history == history


# -- invariants --------------------------------------------------------------------------------

TIMES = [None, T0, T1, T2]


@st.composite
def polls(draw: st.DrawFn) -> Any:
    """Polls as they may arrive: any state (or a bad one), time, id, request, wrapper."""
    job: dict[str, Any] = {}
    state = draw(st.one_of(st.none(), st.sampled_from(STATES), st.just("sleeping")))
    if state is not None:
        job["currentState"] = f"JOB_STATE_{state.upper()}"
    when = draw(st.sampled_from(TIMES))
    if when is not None:
        job["currentStateTime"] = when.isoformat()
    job_id = draw(st.sampled_from([JOB_ID, JOB_ID, OTHER_ID, None]))
    if job_id is not None:
        job["id"] = job_id
    if draw(st.booleans()):
        job["requestedState"] = draw(st.sampled_from(["JOB_STATE_CANCELLED", "JOB_STATE_NOPE"]))
    if draw(st.booleans()):
        job["replacedByJobId"] = draw(st.sampled_from(["new", "", 7]))
    return {"job": job} if draw(st.booleans()) else job


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["sync", "sync", "sync", "request", "body", "replaced_by"]))
    if kind == "sync":
        return kind, draw(polls())
    value = draw(st.one_of(st.sampled_from(STATES), st.integers(-1, 15), st.none()))
    return kind, value


@given(st.sampled_from([DataflowJob, ObservedDataflowJob]), st.lists(calls(), max_size=25))
def test_recorded_time_never_moves_back_and_refusals_change_nothing(
    cls: type[DataflowJob], sequence: list[tuple[str, Any]]
) -> None:
    """§6.2: the recorded time never moves backwards; every refusal is a LifecycleError (never
    a KeyError or AttributeError) and changes nothing; an ignored stale poll changes nothing."""
    job = cls(job_id=JOB_ID, project_id="p", job_type="JOB_TYPE_STREAMING")
    for kind, value in sequence:
        before = job.snapshot()
        try:
            if kind == "sync":
                if job.sync(value, infer=True) is False:
                    assert job.snapshot() == before
            elif kind == "request":
                job.request(value)
            elif kind == "body":
                job.update_body(value, force=job.state == "cancelling")
                assert job.snapshot() == before
            else:
                successor = job.replaced_by()
                assert successor.context.replace_job_id == JOB_ID
        except LifecycleError:
            assert job.snapshot() == before
        recorded, earlier = job.context.current_state_time, before.context["current_state_time"]
        if earlier is not None:
            assert recorded is not None
            assert recorded >= datetime.fromisoformat(earlier)
