"""A statechart lifecycle: a monitored streaming job whose ``running`` state has two
parallel regions, health and autoscaling, and which resumes where it was after a pause.

Run it: it drives one job through both regions, explains a refused event, pauses and
resumes it (a deep history state remembers both regions), keeps it in a SQLite store across
a "restart", and prints the diagram with the active configuration highlighted.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel

from lifecyclekit import HistoryState, Lifecycle, Registry, State, TransitionRejected
from lifecyclekit.diagrams import render
from lifecyclekit.store import open_store

registry = Registry(discover=False)


class JobContext(BaseModel):
    workers: int = 1
    max_workers: int = 4


@registry.register("monitored-job")
class MonitoredJob(Lifecycle[JobContext]):
    """A streaming job: submitted, then running (health and autoscaling in parallel),
    pausable, finally done."""

    submitted = State(initial=True)

    class running(State.Parallel):
        class health(State.Compound):
            healthy = State(initial=True)
            degraded = State()

            degrade = healthy.to(degraded)
            recover = degraded.to(healthy)

        class autoscaling(State.Compound):
            steady = State(initial=True)
            scaling = State()

            scale_up = steady.to(scaling, cond="below_max")
            settle = scaling.to(steady)

        resume_point = HistoryState(type="deep")

    paused = State()
    done = State(final=True)

    start = submitted.to(running)
    pause = running.to(paused)
    resume = paused.to(running.resume_point)
    finish = running.to(done)

    def below_max(self) -> bool:
        return self.context.workers < self.context.max_workers

    def on_enter_scaling(self) -> None:
        self.context.workers += 1

    def on_enter_running(self) -> None:
        print("  (entered running)")


def main() -> None:
    job = MonitoredJob(max_workers=2)
    job.start()
    job.degrade()
    job.scale_up()
    print(f"state: {job.state}; active: {', '.join(job.configuration_ids)}")
    job.settle()
    try:
        job.scale_up()
    except TransitionRejected as refused:
        print(f"refused: {refused}")
    job.pause()
    job.resume()  # the deep history state re-enters degraded and steady
    print(f"after resume: {', '.join(job.configuration_ids)}")
    print("history:")
    for record in job.history:
        print(f"  {record.seq}  {record.event:<9} {record.source:>9} -> {record.target}")

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'jobs.db'}"
        with open_store(url, registry=registry, create=True) as store:
            store.create("monitored-job", id="ingest", max_workers=3)
            for event in ("start", "scale_up", "pause"):
                store.send("ingest", event)
            print(f"stored: {store.get('ingest').history_states}")
        with open_store(url, registry=registry) as store:  # a new process would do the same
            result = store.send("ingest", "resume")
            print(f"resumed from the store: {result.state}")
            print(f"active: {', '.join(store.load('ingest').configuration_ids)}")

    print(render(job, "mermaid"))


if __name__ == "__main__":
    main()
