"""Quickstart: declare a lifecycle, subclass it in an application, drive it, print history.

Run it with ``make demo`` (or ``python examples/quickstart.py`` inside the venv).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from lifecyclekit import Lifecycle, State, TransitionRejected


class ExportContext(BaseModel):
    export_id: str
    rows: int = Field(default=0, ge=0)
    attempts: int = 0


class FinishPayload(BaseModel):
    outcome: Literal["success", "failure"]
    rows_written: int = Field(ge=0)


class Export(Lifecycle):
    """A data export: queued -> running -> done | failed, with retries and cancellation."""

    Context = ExportContext
    payloads = {"finish": FinishPayload}

    queued = State(initial=True, value="QUEUED")
    running = State(value="RUNNING")
    done = State(final=True, value="DONE")
    failed = State(final=True, value="FAILED")
    cancelled = State(final=True, value="CANCELLED")

    start = queued.to(running, cond="has_rows")
    finish = running.to(done, cond="succeeded") | running.to(failed)
    retry = running.to(queued)
    cancel = queued.to(cancelled) | running.to(cancelled)

    def has_rows(self) -> bool:
        return bool(self.context.rows > 0)

    def succeeded(self, outcome: str) -> bool:
        return outcome == "success"

    def on_enter_running(self) -> None:
        self.context.attempts += 1


class AuditedExport(Export):
    """The application's subclass: adds its own callbacks by naming convention."""

    def after_finish(self, payload: FinishPayload) -> None:
        print(f"  audit: export {self.context.export_id} finished: {payload.outcome}")


def main() -> None:
    tick = iter(range(1000))

    def clock() -> datetime:
        return datetime(2026, 11, 23, 9, 0, tzinfo=UTC) + timedelta(minutes=next(tick))

    export = AuditedExport(export_id="exp-42", clock=clock)
    try:
        export.start()
    except TransitionRejected as refusal:
        print(f"refused: {refusal}")

    export.context.rows = 1_000
    export.start()
    export.retry()
    export.start()
    export.finish(outcome="success", rows_written=1_000)

    print(f"\nstate: {export.state} ({export.state_value}), attempts: {export.context.attempts}")
    print(f"\n{'seq':>3}  {'at':<25} {'event':<7} {'source':<8} -> {'target':<8} payload")
    for record in export.history:
        print(
            f"{record.seq:>3}  {record.at.isoformat():<25} {record.event:<7} "
            f"{record.source:<8} -> {record.target:<8} {record.payload or ''}"
        )


if __name__ == "__main__":
    main()
