"""Interop with the real google-cloud-dataflow-client types, and life without them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any

import pytest

from lifecyclekit import PayloadError, TransitionNotAllowed
from lifecyclekit.machines import DataflowJob

dataflow = pytest.importorskip("google.cloud.dataflow_v1beta3")

# spec §3: a streaming job whose cancel was requested (reconstructed from public samples).
CANCELLING_JOB = {
    "id": "2024-03-13_13_30_56-9773037660972565699",
    "projectId": "my-project",
    "name": "orders-streaming",
    "type": "JOB_TYPE_STREAMING",
    "currentState": "JOB_STATE_CANCELLING",
    "currentStateTime": "2024-03-13T21:05:12.418263Z",
    "requestedState": "JOB_STATE_CANCELLED",
    "createTime": "2024-03-13T20:30:57.106560Z",
    "location": "us-central1",
    "labels": {"team": "payments"},
}
STATE_TIME = datetime(2024, 3, 13, 21, 5, 12, 418263, tzinfo=UTC)


def test_from_rest_json_dict() -> None:
    """A REST Job dict gives a tracker with context, state, time and request on record."""
    job = DataflowJob.from_job(CANCELLING_JOB)
    assert job.state == "cancelling"
    context = job.context
    assert (context.job_id, context.project_id, context.location, context.name) == (
        CANCELLING_JOB["id"],
        "my-project",
        "us-central1",
        "orders-streaming",
    )
    assert context.job_type == "JOB_TYPE_STREAMING"
    assert context.requested_state == "JOB_STATE_CANCELLED"
    assert context.current_state_time == STATE_TIME
    assert job.history[-1].at == STATE_TIME


def test_from_client_message_matches_from_json() -> None:
    """A real dataflow_v1beta3.Job parsed from the same JSON gives the same tracker."""
    message = dataflow.Job.from_json(json.dumps(CANCELLING_JOB), ignore_unknown_fields=True)
    assert (
        DataflowJob.from_job(message).snapshot() == DataflowJob.from_job(CANCELLING_JOB).snapshot()
    )
    assert DataflowJob.from_job(json.dumps(CANCELLING_JOB)).state == "cancelling"


def test_client_enum_members_are_read_by_name() -> None:
    """JobState / JobType members work; str() of them is the number, so .name is used."""
    assert str(dataflow.JobState.JOB_STATE_RUNNING) == "2"
    job = DataflowJob(job_type=dataflow.JobType.JOB_TYPE_STREAMING)
    assert job.context.job_type == "JOB_TYPE_STREAMING"
    job.observe(dataflow.JobState.JOB_STATE_RUNNING)
    job.request(dataflow.JobState.JOB_STATE_DRAINED)
    assert (job.state, job.context.requested_state) == ("draining", "JOB_STATE_DRAINED")


def test_message_built_from_enums() -> None:
    """A Job message built in code (types, timestamps as DatetimeWithNanoseconds) syncs."""
    message = dataflow.Job(
        id="j",
        type_=dataflow.JobType.JOB_TYPE_BATCH,
        current_state=dataflow.JobState.JOB_STATE_DONE,
        current_state_time=STATE_TIME,
    )
    job = DataflowJob.from_job(message)
    assert (job.state, job.context.job_type, job.context.current_state_time) == (
        "done",
        "JOB_TYPE_BATCH",
        STATE_TIME,
    )


def test_unknown_enum_number_in_a_message_is_unrecognized() -> None:
    """The client keeps an unknown number as a plain int (with a warning); we refuse it."""
    message = dataflow.Job(current_state=99)
    with (
        pytest.warns(UserWarning, match="Unrecognized JobState enum value: 99"),
        pytest.raises(PayloadError, match="unrecognized JobState number 99"),
    ):
        DataflowJob.from_job(message)


def test_unknown_state_name_in_json_is_an_error_not_a_reset() -> None:
    """from_json(ignore_unknown_fields=True) turns a bad name into UNKNOWN; sync refuses it."""
    bad = {"currentState": "JOB_STATE_SLEEPING"}
    parsed = dataflow.Job.from_json(json.dumps(bad), ignore_unknown_fields=True)
    assert parsed.current_state == dataflow.JobState.JOB_STATE_UNKNOWN
    job = DataflowJob()
    job.observe("JOB_STATE_RUNNING")
    with pytest.raises(PayloadError, match="currentState|current_state.*JOB_STATE_SLEEPING"):
        job.sync(bad)
    assert job.state == "running"


def test_partial_responses_change_only_what_they_carry() -> None:
    """An UpdateJob response without currentState, or a final job without requestedState."""
    job = DataflowJob.from_job(
        {"id": "j", "type": "JOB_TYPE_STREAMING", "currentState": "JOB_STATE_RUNNING"}
    )
    job.sync({"id": "j", "requestedState": "JOB_STATE_CANCELLED"})
    assert (job.state, job.context.requested_state) == ("running", "JOB_STATE_CANCELLED")
    job.sync({"id": "j", "currentState": "JOB_STATE_CANCELLING"})
    job.sync({"id": "j", "currentState": "JOB_STATE_CANCELLED"})
    assert (job.state, job.context.requested_state) == ("cancelled", "JOB_STATE_CANCELLED")
    assert [r.event for r in job.history] == ["discover", "cancel", "finish_cancel"]


def test_job_type_is_learned_once_and_never_changed() -> None:
    """type is learned while unknown; a known type is never changed by a later response."""
    job = DataflowJob()
    job.sync({"currentState": "JOB_STATE_RUNNING"})
    assert job.context.job_type == "JOB_TYPE_UNKNOWN"
    job.sync({"type": "JOB_TYPE_BATCH"})
    job.sync({"type": "JOB_TYPE_STREAMING"})
    assert job.context.job_type == "JOB_TYPE_BATCH"


def test_refused_sync_changes_nothing_at_all() -> None:
    """A sync whose state is illegal leaves type, request and state as they were."""
    job = DataflowJob.from_job({"id": "j", "currentState": "JOB_STATE_PENDING"})
    before = job.snapshot()
    with pytest.raises(TransitionNotAllowed):
        job.sync(
            {
                "type": "JOB_TYPE_STREAMING",
                "requestedState": "JOB_STATE_CANCELLED",
                "currentState": "JOB_STATE_DONE",
            }
        )
    assert job.snapshot() == before


def test_sync_with_replacement() -> None:
    """replacedByJobId and UPDATED from the service mark the job updated."""
    job = DataflowJob.from_job(
        {"id": "j", "type": "JOB_TYPE_STREAMING", "currentState": "JOB_STATE_RUNNING"}
    )
    job.sync({"currentState": "JOB_STATE_UPDATED", "replacedByJobId": "new"})
    assert (job.state, job.context.replaced_by_job_id) == ("updated", "new")


@pytest.mark.parametrize(
    ("job", "pattern"),
    [
        ({"type": "JOB_TYPE_FLEX"}, "unknown job type"),
        ({"currentStateTime": "yesterday"}, "not an RFC 3339 timestamp"),
        ("{not json", "not JSON"),
        (42, "expected a dataflow_v1beta3.Job message"),
    ],
)
def test_malformed_responses(job: Any, pattern: str) -> None:
    """Malformed input is a PayloadError saying what is wrong."""
    with pytest.raises(PayloadError, match=pattern):
        DataflowJob().sync(job)


def test_update_request_builds_the_client_request() -> None:
    """update_request() gives the UpdateJobRequest a cancel needs (spec §5)."""
    job = DataflowJob.from_job(CANCELLING_JOB)
    request = job.update_request("JOB_STATE_CANCELLED")
    assert isinstance(request, dataflow.UpdateJobRequest)
    assert (request.project_id, request.location, request.job_id) == (
        "my-project",
        "us-central1",
        CANCELLING_JOB["id"],
    )
    assert request.job.requested_state == dataflow.JobState.JOB_STATE_CANCELLED


BLOCK_GOOGLE = textwrap.dedent(
    """
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name == "google" or name.startswith("google."):
                raise ImportError(f"blocked {name}")
            return None

    sys.meta_path.insert(0, Block())
    """
)


def test_core_works_without_the_client() -> None:
    """With google-cloud-dataflow-client unimportable, JSON interop works and the client-only
    helper says how to install it."""
    script = BLOCK_GOOGLE + textwrap.dedent(
        """
        from lifecyclekit.machines import DataflowJob
        job = DataflowJob.from_job({"id": "j", "type": "JOB_TYPE_STREAMING", "currentState": 2})
        job.request("JOB_STATE_DRAINED")
        print(job.state)
        try:
            job.update_request("JOB_STATE_CANCELLED")
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "draining",
        "Building Dataflow API requests: google-cloud-dataflow-client is not installed; "
        "pip install 'lifecyclekit[dataflow]'",
    ]
