"""The store verbs of the lifecyclekit command: new, send, status, history, ls, watch, migrate."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    sent = json.loads(result.output)
    assert (sent["state"], [r["event"] for r in sent["records"]]) == ("draining", ["drain"])
    history = run("history", "j1", "--json")
    assert [r["event"] for r in json.loads(history.output)] == ["discover", "drain"]
    table = run("history", "j1")
    assert "drain" in table.output.splitlines()[2]
    listing = run("ls", "--state", "draining")
    assert listing.output.splitlines()[1].split()[:4] == ["j1", "dataflow-job", "draining", "2"]
    status = json.loads(run("status", "j1", "--json").output)
    assert status["context"]["requested_state"] == "JOB_STATE_DRAINED"
    assert status["last"]["event"] == "drain"


def test_refusal_prints_the_reason_and_leaves_the_store(run: Invoke, tmp_path: Path) -> None:
    """A refused event exits 1 with the guard explanation; the row is unchanged."""
    run("new", "one-time-work", "--id", "w", "--set", "worker=Upload")
    constraints = '{"constraints": {"network_type": "UNMETERED"}}'
    run("new", "one-time-work", "--id", "w2", "--set", "worker=U", "--context", constraints)
    with open_store(f"sqlite:///{tmp_path}/cli.db") as store:
        before = store.get("w2")
    result = run("send", "w2", "start", "--data", '{"conditions": {"unmetered": false}}')
    assert result.exit_code == 1
    assert (
        "refused: Can't start OneTimeWork in ENQUEUED: constraints_met is False" in result.stderr
    )
    with open_store(f"sqlite:///{tmp_path}/cli.db") as store:
        assert store.get("w2") == before


def test_context_fields_named_like_options(run: Invoke, tmp_path: Path) -> None:
    """--set is context only: a job's 'name' and a work's 'id' are context fields, distinct
    from the instance id."""
    assert run("new", "dataflow-job", "--id", "j", "--set", "name=clickstream").exit_code == 0
    work_id = str(uuid.uuid4())
    result = run(
        "new", "one-time-work", "--id", "w", "--set", "worker=W", "--set", f"id={work_id}"
    )
    assert result.exit_code == 0, result.stderr
    with open_store(f"sqlite:///{tmp_path}/cli.db") as store:
        assert store.get("j").context["name"] == "clickstream"  # type: ignore[index]
        assert store.get("w").context["id"] == work_id  # type: ignore[index]


def test_no_data_can_pick_the_starting_state(run: Invoke, tmp_path: Path) -> None:
    """Constructor internals given as --set are unknown context fields: refused, nothing
    created."""
    run("new", "one-time-work", "--id", "other", "--set", "worker=W")
    result = run("new", "one-time-work", "--id", "w", "--set", "worker=W", "--set",
                 "start_value=SUCCEEDED")  # fmt: skip
    assert result.exit_code == 1
    assert "start_value: unknown context field" in result.stderr
    assert "No stored instance 'w'" in run("status", "w").stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new", "nope"], "Unknown lifecycle 'nope'"),
        (["new", "one-time-work", "--set", "oops"], "--set: takes key=value (got 'oops')"),
        (["new", "one-time-work", "--context", "{"], "--context: is not valid JSON"),
        (["send", "x", "start", "--data", "notjson"], "--data: is not valid JSON"),
        (["send", "x", "start", "--data", "[1]"], "--data: must be a JSON object"),
        (["send", "x", "start", "--metadata", "7"], "--metadata: must be a JSON object"),
        (["send", "x", "start", "--data", "[" * 100_000], "<a str of 100,000 characters>"),
        (["ls", "--store", "mysql://u:secret@x/y"], "'mysql://u:***@x/y' has an unknown scheme"),
        (["ls", "--after", "nonsense"], "Not a find() cursor"),
        (["ls", "--limit", "0"], "limit must be an int from 1"),
        (["status", "i" * 5000], "has 5,000 characters"),
    ],
)
def test_store_verb_errors(run: Invoke, args: list[str], message: str) -> None:
    """Mistakes are one line on stderr with exit 1, naming the option; long values are
    described by their size, and passwords never repeated."""
    run("new", "one-time-work", "--id", "x", "--set", "worker=W")
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr) < 1000
    assert "secret" not in result.stderr


@pytest.mark.parametrize("verb", [["status", "x"], ["history", "x"], ["ls"], ["watch", "--once"]])
def test_read_verbs_never_create_a_store(run: Invoke, tmp_path: Path, verb: list[str]) -> None:
    """Reading a store that is not there says so and leaves no file behind."""
    url = f"sqlite:///{tmp_path}/typo.db"
    result = run(*verb, "--store", url)
    assert result.exit_code == 1
    assert f"no such store: {url}" in result.stderr
    assert not (tmp_path / "typo.db").exists()


def test_unknown_instance_in_an_existing_store(run: Invoke) -> None:
    """status/send of an unknown id say how to list ids."""
    run("new", "one-time-work", "--id", "w", "--set", "worker=W")
    for verb in (["status", "ghost"], ["send", "ghost", "start"], ["history", "ghost"]):
        result = run(*verb)
        assert result.exit_code == 1
        assert "No stored instance 'ghost'; list ids with" in result.stderr


def test_idempotency_key_from_the_shell(run: Invoke) -> None:
    """--key makes a repeated send a replay; a different request with it is refused."""
    run("new", "dataflow-job", "--id", "j", "--set", "job_type=2")
    for _ in range(2):
        result = run("send", "j", "observe", "--data", '{"state": 2}', "--key", "poll-1")
    assert "already applied: replayed" in result.stderr
    assert len(json.loads(run("history", "j", "--json").output)) == 1
    other = run("send", "j", "observe", "--data", '{"state": 3}', "--key", "poll-1")
    assert other.exit_code == 1
    assert "'poll-1' was already used on 'j' for a different request" in other.stderr


def test_who_and_why_are_kept_and_shown(run: Invoke) -> None:
    """--actor, --reason and --metadata land on the record and in `history`."""
    run("new", "one-time-work", "--id", "w", "--set", "worker=W")
    run("send", "w", "cancel", "--actor", "alice", "--reason", "duplicate upload",
        "--metadata", '{"ticket": "OPS-7"}')  # fmt: skip
    (record,) = json.loads(run("history", "w", "--json").output)
    assert (record["actor"], record["reason"], record["metadata"]) == (
        "alice", "duplicate upload", {"ticket": "OPS-7"},
    )  # fmt: skip
    line = run("history", "w").output.splitlines()[1]
    assert line.endswith("""by alice because 'duplicate upload' {"ticket": "OPS-7"}""")


def test_ls_pages_and_filters_on_context(run: Invoke) -> None:
    """--limit pages with a cursor printed on stderr; --where filters on context fields."""
    for n in range(3):
        run("new", "dataflow-job", "--id", f"j{n}", "--set", f"name=job-{n % 2}")
    first = run("ls", "--limit", "2")
    assert "more: --after " in first.stderr
    cursor = first.stderr.split("--after ")[1].strip()
    second = run("ls", "--limit", "2", "--after", cursor)
    ids = [line.split()[0] for line in (first.stdout + second.stdout).splitlines()[1:]]
    assert sorted(i for i in ids if i != "id") == ["j0", "j1", "j2"]
    found = json.loads(run("ls", "--where", "name=job-0", "--json").output)
    assert sorted(s["id"] for s in found) == ["j0", "j2"]


def test_watch_prints_the_feed_and_a_consumer_resumes(run: Invoke) -> None:
    """`watch --once` prints committed transitions in order; with --consumer it acks them,
    so the next run starts after them; --json prints one object per line."""
    run("new", "one-time-work", "--id", "w", "--set", "worker=W")
    run("send", "w", "start")
    first = run("watch", "--once", "--consumer", "ops")
    assert first.exit_code == 0, first.stderr
    (line,) = first.output.splitlines()
    assert line.split()[1:5] == ["w", "one-time-work", "1", "start"]
    run("send", "w", "finish", "--data", '{"outcome": "success"}')
    second = run("watch", "--once", "--consumer", "ops", "--json")
    assert [json.loads(x)["record"]["event"] for x in second.output.splitlines()] == ["finish"]
    assert run("watch", "--once", "--consumer", "ops").output == ""
    assert len(run("watch", "--timeout", "0.01").output.splitlines()) == 2


def test_migrate_without_work(run: Invoke) -> None:
    """`migrate` on an up-to-date store rewrites nothing."""
    run("new", "one-time-work", "--id", "w", "--set", "worker=W")
    result = run("migrate")
    assert (result.exit_code, result.output) == (0, "migrated 0 instance(s)\n")


VERBS = st.sampled_from(["new", "send", "status", "history", "ls", "watch", "migrate"])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(verb=VERBS, words=st.lists(st.one_of(TEXT, st.sampled_from([
    "--data", "--set", "--context", "--key", "--id", "--limit", "--after", "--where",
    "--metadata", "--actor", "--once", "--json", "x", "one-time-work", "start", "worker=W",
    '{"a": 1}', "9" * 30, "-1",
])), max_size=6))  # fmt: skip
def test_no_input_gives_a_traceback(run: Invoke, verb: str, words: list[str]) -> None:
    """Whatever the arguments, a store verb ends with exit 0, 1 (a one-line error) or 2
    (usage), never an unhandled exception."""
    args = [verb, *words] + (["--once"] if verb == "watch" else [])
    result = run(*args)
    assert result.exit_code in (0, 1, 2), (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    assert "Traceback" not in result.output
