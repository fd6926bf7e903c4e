"""The lifecyclekit command, in-process, including its error paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecyclekit import registry
from lifecyclekit.cli import main
from lifecyclekit.export import to_document
from tests.test_check import FAULTY

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = ["dataflow-job", "one-time-work", "periodic-work", "chained-work"]


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def test_list(cli: CliRunner) -> None:
    """One line per lifecycle with its state count and final states."""
    result = cli.invoke(main, ["list"])
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.startswith("periodic-work"))
    assert "3 states  final: cancelled" in line


def test_show(cli: CliRunner) -> None:
    """States, transitions with guards and provenance, payloads, context, the rule notes."""
    result = cli.invoke(main, ["show", "dataflow-job"])
    assert result.exit_code == 0
    assert "running                drain [is_streaming] -> draining  (T16)" in result.output
    assert "payload drain: JobChange(via, value, replaced_by_job_id)" in result.output
    assert (
        "context: DataflowJobContext(job_id, name, project_id, location, job_type" in result.output
    )
    assert "PAUSING and PAUSED" in result.output  # the definition-checks note


@pytest.mark.parametrize("fmt", ["mermaid", "md", "dot"])
def test_diagram_to_stdout(cli: CliRunner, fmt: str) -> None:
    """diagram NAME -f FORMAT writes to stdout by default."""
    result = cli.invoke(main, ["diagram", "one-time-work", "-f", fmt])
    assert result.exit_code == 0
    assert "start" in result.output


@pytest.mark.graphviz
@pytest.mark.parametrize(
    "name", ["dataflow-job", "one-time-work", "periodic-work", "chained-work"]
)
def test_diagram_svg_file(cli: CliRunner, tmp_path: Path, name: str) -> None:
    """The issue's acceptance line: diagram NAME -f svg -o x.svg writes a real SVG."""
    out = tmp_path / "x.svg"
    result = cli.invoke(main, ["diagram", name, "-f", "svg", "-o", str(out)])
    assert result.exit_code == 0
    assert out.read_text().lstrip().startswith("<?xml")
    assert "</svg>" in out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diagram", "nope"], "lifecyclekit: Unknown lifecycle 'nope'"),
        (["show", "one-time-wrok"], "Did you mean 'one-time-work'?"),
        (["export", "nope"], "Unknown lifecycle"),
        (["diagram", "one-time-work", "-o", "/nonexistent/dir/x.md"], "lifecyclekit: "),
    ],
)
def test_user_errors_are_one_line_exit_1(cli: CliRunner, args: list[str], message: str) -> None:
    """Unknown names and unwritable paths: one line on stderr, exit 1, no traceback."""
    result = cli.invoke(main, args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(cli: CliRunner) -> None:
    """A bad format or a missing argument is a usage error."""
    assert cli.invoke(main, ["diagram", "one-time-work", "-f", "gif"]).exit_code == 2
    assert cli.invoke(main, ["show"]).exit_code == 2


def test_export_json_and_yaml(cli: CliRunner) -> None:
    """export prints the document; --extras adds the companion."""
    plain = cli.invoke(main, ["export", "periodic-work"])
    assert json.loads(plain.output)["name"] == "periodic-work"
    extra = cli.invoke(main, ["export", "periodic-work", "--extras"])
    assert set(json.loads(extra.output)) == {"document", "extras"}
    yaml_out = cli.invoke(main, ["export", "periodic-work", "-f", "yaml"])
    assert yaml_out.output.startswith("name: periodic-work")


def test_check_names_and_files(cli: CliRunner, tmp_path: Path) -> None:
    """check passes registered lifecycles and exits 1 listing findings of a faulty file."""
    assert cli.invoke(main, ["check"]).exit_code == 0
    good = tmp_path / "good.json"
    good.write_text(json.dumps(to_document(registry.get("one-time-work"))))
    assert cli.invoke(main, ["check", str(good)]).output == f"{good}: ok\n"
    faulty = tmp_path / "faulty.json"
    faulty.write_text(json.dumps(FAULTY))
    result = cli.invoke(main, ["check", str(faulty)])
    assert result.exit_code == 1
    assert f"{faulty}: LK002 b: trap state: not final, no exit" in result.output


def test_gallery_to_a_directory(cli: CliRunner, tmp_path: Path) -> None:
    """gallery -o DIR writes the sheets page (and SVGs where Graphviz is present)."""
    result = cli.invoke(main, ["gallery", "--builtin", "-o", str(tmp_path)])
    assert result.exit_code == 0
    assert "## OneTimeWork (`one-time-work`)" in (tmp_path / "README.md").read_text()


def test_machines_gallery_is_fresh(cli: CliRunner) -> None:
    """machines/README.md is what `lifecyclekit gallery --builtin` writes now."""
    result = cli.invoke(main, ["gallery", "--builtin"])
    stored = (ROOT / "machines" / "README.md").read_text()
    assert result.output == stored, (
        "stale: run `lifecyclekit gallery --builtin > machines/README.md`"
    )


def test_python_dash_m(tmp_path: Path) -> None:
    """python -m lifecyclekit is the same command."""
    out = subprocess.run(
        [sys.executable, "-m", "lifecyclekit", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert "one-time-work" in out


def test_diagram_of_a_stored_instance_draws_its_path(cli: CliRunner, tmp_path: Path) -> None:
    """`diagram ID --store URL` draws the stored instance with its numbered path."""
    url = f"sqlite:///{tmp_path}/jobs.db"
    created = cli.invoke(
        main,
        ["new", "dataflow-job", "--id", "j1", "--set", "job_type=JOB_TYPE_STREAMING"]
        + ["--store", url],
    )
    assert created.exit_code == 0, created.output
    for state in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING"):
        sent = cli.invoke(main, ["send", "j1", "observe", "--data", json.dumps({"state": state})]
                          + ["--store", url])  # fmt: skip
        assert sent.exit_code == 0, sent.output
    drawn = cli.invoke(main, ["diagram", "j1", "--store", url])
    assert drawn.exit_code == 0
    assert "unknown --> pending : discover [is_observed_state] #1" in drawn.output
    assert "pending --> running : run #2" in drawn.output
    missing = cli.invoke(main, ["diagram", "nope", "--store", url])
    assert (missing.exit_code, missing.output.strip()) == (
        1,
        "lifecyclekit: No stored instance 'nope'; list ids with find() or `lifecyclekit ls`.",
    )


BAD_DOCUMENTS = [
    pytest.param(b"\x00\x01\xff", "doc.json", "doc.json: not a text file", id="binary"),
    pytest.param(b"[1,2", "doc.json", "doc.json: not valid JSON: Expecting", id="broken-json"),
    pytest.param(b"", "doc.json", "doc.json: not valid JSON", id="empty"),
    pytest.param(b"a: [b", "doc.yaml", "doc.yaml: not valid YAML", id="broken-yaml"),
    pytest.param(b"- a", "doc.yaml", "doc.yaml: not a statechart document", id="yaml-list"),
    pytest.param(
        b'{"states": 5}', "doc.json", "doc.json: Not a statechart document: 'states' must be",
        id="states-not-mapping",
    ),
    pytest.param(
        b'{"states": {"a": {"transitions": [{"event": "go", "cond": 3}]}}}', "doc.json",
        "'cond' of a transition of 'a' must be a name or a list of names, got int 3",
        id="cond-not-a-name",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("content", "filename", "message"), BAD_DOCUMENTS)
def test_check_reports_a_bad_document_in_one_line(
    cli: CliRunner, tmp_path: Path, content: bytes, filename: str, message: str
) -> None:
    """A file that is not a statechart document is one line naming the file, exit 1."""
    path = tmp_path / filename
    path.write_bytes(content)
    result = cli.invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.output.count("\n") == 1
    assert message in result.output
    assert str(path) in result.output


def test_check_finds_a_transition_to_no_state(cli: CliRunner, tmp_path: Path) -> None:
    """A document transition whose target is no state is finding LK009."""
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"states": {"a": {"initial": True, "final": True, "transitions": [
        {"event": "go", "target": "zz"}]}}}))  # fmt: skip
    result = cli.invoke(main, ["check", str(path)])
    assert (result.exit_code, result.output) == (1, f"{path}: LK009 go a->zz: targets no state\n")


def test_an_unexpected_error_is_one_line_and_exit_3(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug of ours is still one line (exit 3), and LIFECYCLEKIT_DEBUG shows the traceback."""
    import lifecyclekit.cli as cli_module

    def broken(name: str) -> object:
        msg = "boom"
        raise TypeError(msg)

    monkeypatch.setattr(cli_module.registry, "get", broken)
    result = cli.invoke(main, ["show", "dataflow-job"])
    assert result.exit_code == 3
    assert result.output.startswith("lifecyclekit: unexpected TypeError: boom (a bug")
    monkeypatch.setenv("LIFECYCLEKIT_DEBUG", "1")
    debug = cli.invoke(main, ["show", "dataflow-job"])
    assert isinstance(debug.exception, TypeError)


@pytest.mark.slow
def test_a_reader_that_goes_away_is_not_an_error() -> None:
    """`lifecyclekit show ... | head` closing early prints nothing on stderr (no Broken pipe)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lifecyclekit", "show", "dataflow-job"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the command writes a byte
    _, err = proc.communicate(timeout=60)
    assert err == b""
    assert proc.returncode == 1
