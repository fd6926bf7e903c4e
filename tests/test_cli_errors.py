"""The store verbs' mistakes and failures, run as a user runs the command (a subprocess):
typos are usage errors listing what is valid, every report is one line, long values are
shortened, and output that cannot be written after a commit says the commit happened."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lifecyclekit.store import open_store
from tests.helpers import raw_sql

Run = Callable[..., subprocess.CompletedProcess[str]]
RUNNING = '{"state": "JOB_STATE_RUNNING"}'


@pytest.fixture
def cli(tmp_path: Path) -> Run:
    """``lifecyclekit ARGS`` in ``tmp_path`` with LIFECYCLEKIT_STORE set to a file there."""

    def run(*args: str, env: dict[str, str] | None = None, **kw: object) -> Any:
        environment = {
            **os.environ,
            "LIFECYCLEKIT_STORE": f"sqlite:///{tmp_path}/cli.db",
            **(env or {}),
        }
        environment.pop("LIFECYCLEKIT_APP", None)
        streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kw}
        return subprocess.run(
            [sys.executable, "-m", "lifecyclekit", *args],
            text=True, check=False, cwd=tmp_path, env=environment, **streams,
        )  # fmt: skip

    return run


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# -- typos are usage errors ------------------------------------------------------------------

TYPOS = [
    pytest.param(("ls", "--state", "runing"), "--state", ["running", "queued"], id="ls-state"),
    pytest.param(("ls", "--name", "dataflow-jobs"), "--name", ["dataflow-job"], id="ls-name"),
    pytest.param(
        ("ls", "--name", "dataflow-job", "--state", "enqueued"),
        "--state",
        ["running", "draining"],
        id="ls-state-of-name",
    ),
    pytest.param(("migrate", "--name", "dataflow"), "--name", ["dataflow-job"], id="migrate"),
    pytest.param(("ls", "--where", "nokey"), "--where", ["FIELD=VALUE"], id="where-no-equals"),
    pytest.param(("ls", "--where", "=3"), "--where", ["no field name"], id="where-no-key"),
    pytest.param(("watch", "--timeout", "nan"), "--timeout", ["finite number"], id="watch-nan"),
    pytest.param(("watch", "--timeout", "-1"), "--timeout", [">= 0"], id="watch-negative"),
]


@pytest.mark.parametrize(("args", "option", "listed"), TYPOS)
def test_typos_are_usage_errors_that_list_the_valid_values(
    cli: Run, args: tuple[str, ...], option: str, listed: list[str]
) -> None:
    """Before: empty output and exit 0 (or a hang, for watch --timeout nan)."""
    assert cli("new", "dataflow-job", "--id", "j1").returncode == 0
    done = cli(*args, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert option in done.stderr
    for value in listed:
        assert value in done.stderr
    assert "Invalid data for" not in done.stderr


def test_a_stored_name_or_state_no_registered_lifecycle_has_is_listed(
    cli: Run, tmp_path: Path
) -> None:
    """--name of a lifecycle only the store knows (an application not imported here) still
    lists its rows: the check refuses only what is neither registered nor stored."""
    cli("new", "dataflow-job", "--id", "j1")
    url = f"sqlite:///{tmp_path}/cli.db"
    raw_sql(url, "UPDATE lk_instances SET machine = 'shop-order', state = 'paid'")
    done = cli("ls", "--name", "shop-order", "--state", "paid")
    assert done.returncode == 0, done.stderr
    assert "j1" in done.stdout


# -- one line per report ---------------------------------------------------------------------


def test_skipped_rows_are_reported_one_line_each(cli: Run, tmp_path: Path) -> None:
    """A row ls or watch cannot read is one stderr line naming it (pydantic's report spans
    several lines)."""
    for name in ("a", "b", "c"):
        cli("new", "dataflow-job", "--id", name)
    url = f"sqlite:///{tmp_path}/cli.db"
    raw_sql(url, "UPDATE lk_instances SET revision = 'many' WHERE id = 'b'")
    done = cli("ls")
    assert done.returncode == 0
    assert _one_line(done.stderr).startswith("lifecyclekit: skipped instance 'b': ")
    assert cli("send", "c", "observe", "--data", RUNNING).returncode == 0
    raw_sql(url, "UPDATE lk_changes SET record = '{\"seq\": \"x\"}' WHERE instance_id = 'c'")
    done = cli("watch", "--once")
    assert _one_line(done.stderr).startswith("lifecyclekit: skipped change of 'c': ")


def test_an_unknown_event_is_a_mistake_a_refusal_is_refused(cli: Run) -> None:
    cli("new", "dataflow-job", "--id", "j1")
    unknown = cli("send", "j1", "lanuch")
    assert unknown.returncode == 1
    assert _one_line(unknown.stderr).startswith("lifecyclekit: Can't call 'lanuch'")
    refused = cli("send", "j1", "cancel")
    assert refused.returncode == 1
    assert _one_line(refused.stderr).startswith("refused: Can't cancel")


# -- output after a commit -------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_says_the_instance_was_created(
    cli: Run, tmp_path: Path
) -> None:
    with open("/dev/full", "w") as full:
        done = cli("new", "dataflow-job", "--id", "j1", stdout=full)
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert "Instance 'j1' was created in sqlite:///" in line
    assert "but its output could not be written: [Errno 28]" in line
    with open_store(f"sqlite:///{tmp_path}/cli.db") as store:
        assert store.get("j1").state == "unknown"
        with open("/dev/full", "w") as full:
            sent = cli("send", "j1", "observe", "--data", RUNNING, stdout=full)
        assert "'observe' was applied to 'j1'" in _one_line(sent.stderr)
        assert store.get("j1").revision == 1


def test_long_values_are_shortened_in_tables_and_whole_in_json(cli: Run, tmp_path: Path) -> None:
    """history and status describe a 10 MB string by its size; --json keeps it whole."""
    huge = "x" * 10_000_000
    with open_store(f"sqlite:///{tmp_path}/cli.db") as store:
        store.create("dataflow-job", id="j1", name=huge)
        store.send(
            "j1", "observe", "JOB_STATE_RUNNING", metadata={"note": huge}, reason=huge[:1000]
        )
    for verb in ("history", "status"):
        done = cli(verb, "j1")
        assert done.returncode == 0, done.stderr
        assert len(done.stdout) < 2_000, verb
        assert "a str of 10,000,000 characters" in done.stdout
    assert len(cli("history", "j1", "--json").stdout) > 10_000_000


# -- diagram and --store ---------------------------------------------------------------------


def test_diagram_of_a_stored_id_says_to_pass_store(cli: Run, tmp_path: Path) -> None:
    """diagram NAME draws a lifecycle; it does not read LIFECYCLEKIT_STORE (documented), so
    an instance id gets a hint naming --store and the variable's value."""
    cli("new", "dataflow-job", "--id", "j1")
    done = cli("diagram", "j1")
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert "Unknown lifecycle 'j1'" in line
    assert f"add --store sqlite:///{tmp_path}/cli.db (LIFECYCLEKIT_STORE is set" in line
    drawn = cli("diagram", "j1", "--store", f"sqlite:///{tmp_path}/cli.db")
    assert drawn.returncode == 0, drawn.stderr


# -- --app failures --------------------------------------------------------------------------

APPS = [
    pytest.param("import sys\n\nsys.exit(3)\n", 3, "it called sys.exit(3)", id="sys-exit"),
    pytest.param("x = 1\ndef f(:\n    pass\n", 2, "SyntaxError: invalid syntax", id="syntax"),
    pytest.param(
        "from lifecyclekit import Lifecycle, State, registry\n\n\n"
        "@registry.register('dataflow-job')\nclass Job(Lifecycle):\n"
        "    a = State(initial=True)\n    b = State(final=True)\n    go = a.to(b)\n",
        4,
        "DefinitionError: Lifecycle name 'dataflow-job' is reserved",
        id="duplicate-name",
    ),
]


@pytest.mark.parametrize(("source", "line", "message"), APPS)
def test_app_failures_name_the_application_file_and_line(
    cli: Run, tmp_path: Path, source: str, line: int, message: str
) -> None:
    """The line of the application's code, never registry.py's or importlib's; an app that
    exits while imported is reported (before: exit 3, silently)."""
    (tmp_path / "shop.py").write_text(source)
    done = cli("--app", "./shop.py", "list")
    assert done.returncode == 1
    report = _one_line(done.stderr)
    assert f"at {tmp_path / 'shop.py'}:{line}: " in report, report
    assert message in report


# -- SQLite paths ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["missing", "read-only"])
def test_new_into_a_directory_it_cannot_use_says_which_and_why(tmp_path: Path, how: str) -> None:
    """Before: "no such store ... (unable to open database file)"."""
    folder = tmp_path / "data"
    command = [sys.executable, "-m", "lifecyclekit", "new", "dataflow-job", "--store",
               f"sqlite:///{folder}/jobs.db"]  # fmt: skip
    if how == "read-only":
        folder.mkdir(mode=0o555)
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv to drop the permission override")
            command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    finally:
        if folder.exists():
            folder.chmod(0o755)
    assert done.returncode == 1
    line = _one_line(done.stderr)
    expected = "does not exist: create it" if how == "missing" else "is not writable"
    assert f"the directory '{folder}' {expected}" in line, line
    assert "no such store" not in line
