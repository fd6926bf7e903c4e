"""A command called with missing, surplus or unknown arguments is a PayloadError naming its
parameters, in memory, through a store (both back-ends) and from the shell; nothing changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lifecyclekit import PayloadError
from lifecyclekit.cli import main
from lifecyclekit.machines import DataflowJob
from lifecyclekit.store import open_store
from tests.helpers import BACKENDS, backend_url

# (command, positional, keywords, what the message says was wrong, the parameters it lists)
CALLS: list[Any] = [
    pytest.param(
        "observe", (), {}, "missing a required argument: 'state'",
        "observe takes (state, at=None, *, infer=False)", id="observe-without-state",
    ),
    pytest.param(
        "request", (), {"state": "JOB_STATE_CANCELLED"},
        "missing a required argument: 'requested_state'", "request takes (requested_state)",
        id="request-with-a-wrong-keyword",
    ),
    pytest.param(
        "observe", ("JOB_STATE_RUNNING",), {"bogus": 1},
        "got an unexpected keyword argument 'bogus'", "observe takes (state,",
        id="observe-with-an-unknown-keyword",
    ),
    pytest.param(
        "sync", ({"id": "j"}, False, 3), {}, "too many positional arguments",
        "sync takes (job, infer=False)", id="sync-with-too-many-arguments",
    ),
    pytest.param(
        "replace_with", (), {}, "missing a required argument: 'new_job_id'",
        "replace_with takes (new_job_id)", id="replace-with-without-id",
    ),
]  # fmt: skip


def running_job() -> DataflowJob:
    job = DataflowJob(job_id="j", job_type="JOB_TYPE_STREAMING")
    job.observe("JOB_STATE_RUNNING")
    return job


@pytest.mark.parametrize(("command", "args", "data", "wrong", "takes"), CALLS)
def test_bad_command_arguments_in_memory(
    command: str, args: tuple[Any, ...], data: dict[str, Any], wrong: str, takes: str
) -> None:
    """Lifecycle.call binds the arguments before the command runs: PayloadError (not
    TypeError) saying what was wrong and listing the parameters; nothing changes."""
    job = running_job()
    before = job.snapshot()
    with pytest.raises(PayloadError) as caught:
        job.call(command, *args, **data)
    message = str(caught.value)
    assert wrong in message
    assert takes in message
    assert caught.value.event == command
    assert job.snapshot() == before


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request.param, tmp_path, "commands.db")


@pytest.mark.parametrize(("command", "args", "data", "wrong", "takes"), CALLS)
def test_bad_command_arguments_through_a_store(
    store_url: str,
    command: str,
    args: tuple[Any, ...],
    data: dict[str, Any],
    wrong: str,
    takes: str,
) -> None:
    """store.send refuses the same calls with the same PayloadError; the row is unchanged."""
    with open_store(store_url, create=True) as store:
        store.create("dataflow-job", id="j", job_id="j", job_type="JOB_TYPE_STREAMING")
        store.send("j", "observe", "JOB_STATE_RUNNING")
        before = store.get("j")
        with pytest.raises(PayloadError, match=wrong) as caught:
            store.send("j", command, *args, **data)
        assert takes in str(caught.value)
        assert store.get("j") == before
        assert len(store.history("j")) == 1


def test_send_a_command_without_data_from_the_shell(tmp_path: Path) -> None:
    """`lifecyclekit send ID observe` without --data exits 1 with the parameters, not as an
    unexpected TypeError (exit 3)."""
    url = f"sqlite:///{tmp_path}/cli.db"
    runner = CliRunner()
    created = runner.invoke(main, ["new", "dataflow-job", "--id", "o2", "--store", url])
    assert created.exit_code == 0, created.stderr
    with open_store(url) as store:
        before = store.get("o2")
    result = runner.invoke(main, ["send", "o2", "observe", "--store", url])
    assert result.exit_code == 1, result.stderr
    assert "missing a required argument: 'state'" in result.stderr
    assert "observe takes (state, at=None, *, infer=False)" in result.stderr
    assert "TypeError" not in result.stderr
    with open_store(url) as store:
        assert store.get("o2") == before
