"""The store verbs of the lifecyclekit command: new, send, status, history, ls."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lifecyclekit.cli import main
from lifecyclekit.store import open_store

Invoke = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("LIFECYCLEKIT_STORE", f"sqlite:///{tmp_path}/cli.db")
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args))

    return invoke


def test_new_send_status_history_ls(run: Invoke) -> None:
    """A job created, observed and drained from the shell; tables and JSON agree."""
    result = run("new", "dataflow-job", "--id", "j1", "--set", "job_type=JOB_TYPE_STREAMING")
    assert result.exit_code == 0
    assert "state:    unknown (JOB_STATE_UNKNOWN)" in result.output
    result = run("send", "j1", "observe", "--data", '{"state": "JOB_STATE_RUNNING"}')
    assert "state:    running (JOB_STATE_RUNNING)" in result.output
    result = run(
        "send", "j1", "request", "--data", '{"requested_state": "JOB_STATE_DRAINED"}', "--json"
    )
    assert json.loads(result.output)["state"] == "draining"
    history = run("history", "j1", "--json")
    assert [r["event"] for r in json.loads(history.output)] == ["discover", "drain"]
    table = run("history", "j1")
    assert "drain" in table.output.splitlines()[2]
    listing = run("ls", "--state", "draining")
    assert listing.output.splitlines()[1].split()[:4] == ["j1", "dataflow-job", "draining", "2"]
    status = run("status", "j1", "--json")
    assert json.loads(status.output)["context"]["requested_state"] == "JOB_STATE_DRAINED"


def test_refusal_prints_the_reason_and_leaves_the_store(run: Invoke, tmp_path: Path) -> None:
    """A refused event exits 1 with the guard explanation; the row is unchanged."""
    run("new", "one-time-work", "--id", "w", "--set", "worker=Upload")
    constraints = '{"constraints": {"network_type": "UNMETERED"}}'
    run("new", "one-time-work", "--id", "w2", "--context", constraints)
    with open_store(f"sqlite:///{tmp_path}/cli.db") as store:
        before = store.get("w2")
    result = run("send", "w2", "start", "--data", '{"conditions": {"unmetered": false}}')
    assert result.exit_code == 1
    assert (
        "refused: Can't start OneTimeWork in ENQUEUED: constraints_met is False" in result.stderr
    )
    with open_store(f"sqlite:///{tmp_path}/cli.db") as store:
        assert store.get("w2") == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "ghost"], "no such store: sqlite:///"),
        (["send", "ghost", "start"], "no such store: sqlite:///"),
        (["new", "nope"], "Unknown lifecycle 'nope'"),
        (["new", "one-time-work", "--set", "oops"], "--set takes key=value"),
        (["send", "x", "start", "--data", "[1]"], "must be a JSON object"),
        (["ls", "--store", "mysql://x/y"], "has an unknown scheme"),
    ],
)
def test_store_verb_errors(run: Invoke, args: list[str], message: str) -> None:
    """Mistakes are one line on stderr with exit 1."""
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_idempotency_key_from_the_shell(run: Invoke) -> None:
    """--key makes a repeated send a no-op."""
    run("new", "dataflow-job", "--id", "j", "--set", "job_type=2")
    for _ in range(2):
        run("send", "j", "observe", "--data", '{"state": 2}', "--key", "poll-1")
    assert len(json.loads(run("history", "j", "--json").output)) == 1
