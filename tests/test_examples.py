"""The examples run as scripts and tell their story."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(name: str, stream: str = "stdout") -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, check=True
    )
    return str(getattr(done, stream))


def test_quickstart_prints_refusal_and_history() -> None:
    """The quickstart shows a guard refusal, then a four-record history ending in done."""
    out = run("quickstart.py")
    assert "refused: Can't start AuditedExport in QUEUED: has_rows is False" in out
    assert "state: done (DONE), attempts: 2" in out
    assert "  4  2026-11-23T09:03:00+00:00 finish  running  -> done" in out


def test_dataflow_monitor_infers_the_missed_draining() -> None:
    """The monitor replays the polls, fills in the DRAINING it never saw and ignores a late
    copy of an older poll (spec section 6.2)."""
    out = run("dataflow_monitor.py")
    assert "JOB_STATE_DRAINED    JOB_STATE_DRAINED    drain (inferred), finish_drain" in out
    assert (
        "   7  2024-03-13 21:05:12  JOB_STATE_DRAINED    JOB_STATE_DRAINED    stale, ignored"
        in out
    )
    assert "final: JOB_STATE_DRAINED (Beam PipelineState DRAINED), finished=True" in out
    assert "    running --> draining : drain [is_streaming] #3" in out
    assert "diagram written to" in out


def test_work_chain_tells_the_spec_story() -> None:
    """Retry with backoff, a failure failing the rest, APPEND onto the failed chain."""
    out = run("work_chain.py")
    rows = {
        line[10:54].strip(): line[54:].split() for line in out.splitlines() if line[:2] == "09"
    }
    assert rows["videos: retry, backoff until 09:00:30"] == ["SUCCEEDED", "ENQUEUED"] + [
        "BLOCKED"
    ] * 2 + ["-"]
    assert "is_due is False (next run at 2026-11-23T09:00:30+00:00" in out
    assert "merge input: {'album': 'holidays', 'photos': 120, 'videos': 8}" in out
    assert rows["merge failed: upload fails with it"] == ["SUCCEEDED"] * 2 + ["FAILED"] * 2 + ["-"]
    assert "upload's last record: prerequisite_failed, caused by MergeAlbum" in out
    assert (
        rows["Notify APPENDed to the failed chain: FAILED"] == ["SUCCEEDED"] * 2 + ["FAILED"] * 3
    )


def test_store_tour_drives_the_embedded_store() -> None:
    """The tour creates, drives, refuses and lists stored instances."""
    out = run("store_tour.py")
    assert "$ lifecyclekit send orders observe" in out
    assert "state:    drained (JOB_STATE_DRAINED)" in out
    drain = next(line for line in out.splitlines() if " drain " in line and "running" in line)
    assert drain.endswith("by ops because 'release 42'")
    feed = out.split("$ lifecyclekit watch --once --consumer mailer\n", 1)[1].split("\n\n")[0]
    assert [line.split()[4] for line in feed.splitlines()] == [
        "discover", "run", "drain", "finish_drain", "start", "finish",
    ]  # fmt: skip
    refusals = run("store_tour.py", "stderr")
    assert "refused: Can't start OneTimeWork in ENQUEUED: constraints_met is False" in refusals
    assert "belongs to WorkGraph 'default'" in refusals
    assert "WorkGraph(store=open_store(url), name='default').cancel(UUID(" in refusals
    assert "merge input:  {'photos': 120, 'videos': 8}" in out
    assert "merge failed: the upload fails with it" in out
    failed_row = next(line for line in out.splitlines() if "merge failed" in line)
    assert failed_row.split()[-4:] == ["SUCCEEDED", "SUCCEEDED", "FAILED", "FAILED"]
    listing = out.split("$ lifecyclekit ls", 1)[1].splitlines()
    machines = sorted(line.split()[1] for line in listing[2:] if line.strip())
    assert machines == ["chained-work", "chained-work", "dataflow-job"] + ["one-time-work"] * 3


def test_job_statechart_runs_regions_history_and_the_store() -> None:
    """The statechart example drives two parallel regions, explains a refusal inside one,
    resumes through a deep history state (in memory and from a store) and highlights the
    active configuration in its diagram."""
    out = run("job_statechart.py")
    assert "state: running; active: running, health, degraded, autoscaling, scaling" in out
    assert "refused: Can't scale_up MonitoredJob in running: below_max is False" in out
    assert "after resume: running, health, degraded, autoscaling, steady" in out
    assert "  6  resume       paused -> resume_point" in out
    assert "stored: {'resume_point': ('health', 'healthy', 'autoscaling', 'scaling')}" in out
    assert "active: running, health, healthy, autoscaling, scaling" in out
    assert "    degraded:::active" in out
