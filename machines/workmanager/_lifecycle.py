"""Guards, effects and payloads shared by the three WorkManager lifecycles.

Effects are attached as explicit ``on=`` callbacks (``_began``, ``_retried``...), so an
application subclass's own ``on_start`` or ``after_retry`` adds to them instead of replacing
them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from lifecyclekit import Because, Provenance, State

from .model import (
    DeviceConditions,
    Periodicity,
    StopReason,
    WorkData,
    WorkInfo,
    WorkResult,
    WorkState,
)

__all__ = [
    "WORK_PAYLOADS",
    "OutputPayload",
    "PrerequisitePayload",
    "StartPayload",
    "StopPayload",
    "WorkBehaviour",
    "result_transitions",
    "row",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class StartPayload(BaseModel):
    """``start(conditions=...)``: the device's conditions now (``None``: all satisfied)."""

    model_config = _FROZEN

    conditions: DeviceConditions | None = None


class OutputPayload(BaseModel):
    """``succeed(output=...)`` / ``fail(output=...)``: the worker's output Data."""

    model_config = _FROZEN

    output: WorkData = Field(default_factory=dict)


def _stoppable(value: Any) -> StopReason:
    reason = StopReason.parse(value)
    if reason is StopReason.NOT_STOPPED:
        msg = "NOT_STOPPED (-256) means the work was not stopped; give the reason it was"
        raise ValueError(msg)
    return reason


class StopPayload(BaseModel):
    """``stop(reason=...)``: why the system stopped a running worker (spec §2.4, Q9)."""

    model_config = _FROZEN

    reason: Annotated[StopReason, BeforeValidator(_stoppable)]


class PrerequisitePayload(BaseModel):
    """A chained work's prerequisite changed: which one caused this transition."""

    model_config = _FROZEN

    prerequisite: UUID


WORK_PAYLOADS: dict[str, type[BaseModel]] = {
    "start": StartPayload,
    "succeed": OutputPayload,
    "fail": OutputPayload,
    "finish": WorkResult,
    "stop": StopPayload,
}
"""The payload models every work lifecycle declares for its shared events."""


def result_transitions(running: State, succeeded: State, failed: State, enqueued: State) -> Any:
    """``finish(result)`` of one-time work: W2, W3 or W4 by the result's outcome."""
    return (
        running.to(succeeded, cond="is_success", on="_finished")
        | running.to(failed, cond="is_failure", on="_finished")
        | running.to(enqueued, cond="is_retry", on="_finished")
    )


def row(row_id: str, text: str, driver: str = "") -> Provenance:
    """Provenance citing a row of the WorkManager specification."""
    return Provenance(row=row_id, text=text, driver=driver)


class WorkBehaviour:
    """Guards, effects and ``info()`` for lifecycles whose context is a work spec."""

    periodic = False

    if TYPE_CHECKING:  # provided by Lifecycle
        context: Any
        state: str
        state_value: Any

        def now(self) -> datetime: ...

    # -- guards ------------------------------------------------------------------------------

    def constraints_met(self, conditions: DeviceConditions | None = None) -> Because:
        """The device satisfies every constraint (no conditions given: it does)."""
        unmet = self.context.constraints.unmet(conditions) if conditions is not None else []
        return Because(not unmet, "; ".join(unmet) or "all constraints met")

    def is_due(self) -> Because:
        """The initial delay, backoff or period has elapsed (spec §3.3)."""
        due = self.next_run_time()
        now = self.now()
        if due is None or now >= due:
            return Because(True, "due")
        return Because(False, f"next run at {due.isoformat()}, now {now.isoformat()}")

    # -- effects -----------------------------------------------------------------------------

    def _began(self) -> None:
        """W1/P1: ``runAttemptCount += 1``, ``stopReason = NOT_STOPPED``."""
        self.context.run_attempt_count += 1
        self.context.stop_reason = StopReason.NOT_STOPPED

    def _retried(self) -> None:
        """W4/P4: re-enqueued now; the attempt count is kept."""
        self.context.last_enqueue_time = self.now()
        self.context.stop_reason = StopReason.NOT_STOPPED

    def _stopped(self, reason: StopReason) -> None:
        """W5/W6/P5: the enqueue time is kept unless backoff applies to interruptions."""
        self.context.stop_reason = reason
        if self.context.backoff_on_system_interruptions:
            self.context.last_enqueue_time = self.now()

    def _cancelled(self, source: State) -> None:
        """W7/W8: a running work is stopped with CANCELLED_BY_APP."""
        running = source.value == WorkState.RUNNING
        self.context.stop_reason = (
            StopReason.CANCELLED_BY_APP if running else StopReason.NOT_STOPPED
        )

    # -- schedule ----------------------------------------------------------------------------

    def next_run_time(self) -> datetime | None:
        """``calculateNextRunTime`` (spec §3.3), for a work in ENQUEUED."""
        spec = self.context
        last: datetime | None = spec.last_enqueue_time
        if last is None:
            return None
        if spec.run_attempt_count > 0:
            return spec.backoff.next_run_at(last, spec.run_attempt_count)  # type: ignore[no-any-return]
        if not self.periodic:
            return last + spec.initial_delay  # type: ignore[no-any-return]
        first = spec.period_count == 0
        schedule: datetime = last + (spec.initial_delay if first else spec.repeat_interval)
        if first and spec.flex_interval != spec.repeat_interval:
            schedule += spec.repeat_interval - spec.flex_interval
        return schedule

    def info(self) -> WorkInfo:
        """The work as ``WorkInfo`` shows it."""
        spec = self.context
        enqueued = self.state_value == WorkState.ENQUEUED
        return WorkInfo(
            id=spec.id,
            state=WorkState(self.state_value),
            tags=spec.tags,
            output=dict(getattr(spec, "output", {})),
            run_attempt_count=spec.run_attempt_count,
            generation=spec.generation,
            next_schedule_time=self.next_run_time() if enqueued else None,
            stop_reason=spec.stop_reason,
            initial_delay=spec.initial_delay,
            periodicity=Periodicity(
                repeat_interval=spec.repeat_interval, flex_interval=spec.flex_interval
            )
            if self.periodic
            else None,
            constraints=spec.constraints,
        )
