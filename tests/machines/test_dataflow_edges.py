"""Dataflow rough edges: a job replaced by itself, a Job wrapped with fields of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lifecyclekit import PayloadError
from lifecyclekit.machines import DataflowJob
from lifecyclekit.store import open_store
from tests.helpers import BACKENDS, backend_url

SELF_REPLACED = {"id": "s6", "currentState": "JOB_STATE_UPDATED", "replacedByJobId": "s6"}


def running(job_id: str = "s6") -> DataflowJob:
    job = DataflowJob(job_id=job_id, job_type="JOB_TYPE_STREAMING")
    job.observe("JOB_STATE_RUNNING")
    return job


@pytest.mark.parametrize(
    "poll",
    [
        pytest.param(SELF_REPLACED, id="with-its-id"),
        pytest.param({k: v for k, v in SELF_REPLACED.items() if k != "id"}, id="without-id"),
        pytest.param(
            {**SELF_REPLACED, "currentStateTime": "2000-01-01T00:00:00Z"}, id="even-stale"
        ),
    ],
)
def test_a_poll_replacing_the_job_by_itself_is_refused(poll: dict[str, Any]) -> None:
    """replacedByJobId equal to the job's own id is refused as replace_with(own id) is, so
    replaced_by() never yields a tracker for the job itself; nothing changes."""
    job = running()
    before = job.snapshot()
    with pytest.raises(PayloadError, match=r"replacedByJobId: is this job's own id.*\(got 's6'\)"):
        job.sync(poll)
    assert job.snapshot() == before


def test_from_job_refuses_a_self_replaced_job() -> None:
    """from_job reads the Job through the same rule."""
    with pytest.raises(PayloadError, match=r"from_job.*replacedByJobId: is this job's own id"):
        DataflowJob.from_job(SELF_REPLACED)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stored_self_replacing_poll_is_refused(backend: str, tmp_path: Path) -> None:
    """Through store.send on every back-end, the row is unchanged."""
    with open_store(backend_url(backend, tmp_path, "df.db"), create=True) as store:
        store.create("dataflow-job", id="s6", job_id="s6", job_type="JOB_TYPE_STREAMING")
        store.send("s6", "observe", "JOB_STATE_RUNNING")
        before = store.get("s6")
        with pytest.raises(PayloadError, match=r"replacedByJobId: is this job's own id"):
            store.send("s6", "sync", SELF_REPLACED)
        assert store.get("s6") == before


@pytest.mark.parametrize("read", ["from_job", "sync"])
def test_a_job_with_a_job_key_of_its_own_is_refused(read: str) -> None:
    """{"id": "A", "job": {...}} is neither a Job nor a launch answer: refused with a hint
    (its "job" used to be ignored silently)."""
    wrapped = {"id": "A", "job": {"id": "B", "currentState": "JOB_STATE_RUNNING"}}
    pattern = r"job: has both a 'job' key and Job fields \(id\).*Pass the Job itself"
    call = DataflowJob.from_job if read == "from_job" else running("A").sync
    with pytest.raises(PayloadError, match=pattern):
        call(wrapped)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stored_sync_says_when_the_poll_was_ignored(backend: str, tmp_path: Path) -> None:
    """SendResult.returned carries sync's answer: False for a stale poll (nothing changed),
    True for one applied; None for an event. A replay returns it too."""
    with open_store(backend_url(backend, tmp_path, "df.db"), create=True) as store:
        store.create("dataflow-job", id="j", job_id="j", job_type="JOB_TYPE_BATCH")
        poll = {"id": "j", "currentState": "JOB_STATE_RUNNING",
                "currentStateTime": "2026-01-01T10:00:00Z"}  # fmt: skip
        applied = store.send("j", "sync", poll)
        assert (applied.returned, applied.state) == (True, "running")
        stale = {"id": "j", "currentState": "JOB_STATE_DONE",
                 "currentStateTime": "2026-01-01T09:00:00Z"}  # fmt: skip
        ignored = store.send("j", "sync", stale, idempotency_key="k")
        assert (ignored.returned, ignored.state, ignored.records) == (False, "running", ())
        assert store.send("j", "sync", stale, idempotency_key="k").returned is False
        assert store.send("j", "cancel").returned is None
