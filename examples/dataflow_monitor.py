"""Replay recorded Dataflow ``GET job`` poll results through ``DataflowJob.sync``.

The polls (``examples/data/dataflow_polls.json``) are REST ``Job`` JSON as the API returns
it, partial responses included: the first is the launch answer ``{"job": {...}}`` (a
``LaunchFlexTemplateResponse``, read as the job it carries) with no state yet, one is an
``UpdateJob`` response carrying only ``requestedState``, the poller misses
``JOB_STATE_DRAINING`` between RUNNING and DRAINED, which ``sync(..., infer=True)`` fills in
because the drain request is on record, and a late copy of an old RUNNING poll arrives after
DRAINED: its ``currentStateTime`` is older than the one on record, so ``sync`` ignores it as
stale (it returns ``False``). Prints a timeline: time, state, requested state, and whether a
step was inferred.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from lifecyclekit.diagrams import render
from lifecyclekit.machines import DataflowJob

POLLS = Path(__file__).resolve().parent / "data" / "dataflow_polls.json"


class MonitoredJob(DataflowJob):
    """The application's subclass: reacts to states whichever way they were reached."""

    def on_enter_draining(self) -> None:
        print(f"  -> {self.context.name}: draining, stop sending it new work")

    def on_enter_drained(self) -> None:
        print(f"  -> {self.context.name}: drained, safe to launch the replacement")


def main() -> None:
    polls = json.loads(POLLS.read_text())
    job = MonitoredJob.from_job(polls[0])
    print(f"tracking {job.context.job_id} ({job.context.name})\n")
    print(f"{'poll':>4}  {'state time':<20} {'state':<20} {'requested':<20} transitions")
    for number, poll in enumerate(polls, start=1):
        seen = len(job.history)
        fresh = job.sync(poll, infer=True) if number > 1 else True
        fired = ", ".join(
            f"{r.event}{' (inferred)' if r.inferred else ''}" for r in job.history[seen:]
        )
        if not fresh:
            fired = "stale, ignored"
        when = job.context.current_state_time
        print(
            f"{number:>4}  {when.strftime('%Y-%m-%d %H:%M:%S') if when else '-':<20} "
            f"{job.state_value:<20} {job.context.requested_state or '-':<20} {fired or '-'}"
        )
    print(
        f"\nfinal: {job.state_value} (Beam PipelineState {job.pipeline_state}), "
        f"finished={job.is_finished}, {len(job.history)} transitions in history"
    )
    # The job's diagram: its current state highlighted, the path it took numbered.
    diagram = str(render(job, "mermaid", path=True))
    target = Path(tempfile.gettempdir()) / f"{job.context.name}.mmd"
    target.write_text(diagram)
    print(f"\ndiagram written to {target}; the path it shows:")
    print("\n".join(line for line in diagram.splitlines() if " #" in line))


if __name__ == "__main__":
    main()
