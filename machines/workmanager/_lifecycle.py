"""Guards, effects and payloads shared by the three WorkManager lifecycles.

Effects are attached as explicit ``on=`` callbacks (``_began``, ``_retried``...), so an
application subclass's own ``on_start`` or ``after_retry`` adds to them instead of replacing
them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from lifecyclekit import (
    Because,
    Explanation,
    LifecycleError,
    PayloadError,
    Provenance,
    State,
    TransitionRejected,
)

from ._values import _INT_MAX
from .continuation import owned_by_graph
from .model import (
    LATEST_INSTANT,
    MIN_PERIODIC_INTERVAL,
    DeviceConditions,
    OutOfQuotaPolicy,
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


def _stoppable(value: Any) -> StopReason | int:
    reason = StopReason.parse(value)
    if reason is StopReason.NOT_STOPPED:
        msg = "NOT_STOPPED (-256) means the work was not stopped; give the reason it was"
        raise ValueError(msg)
    return reason


class StopPayload(BaseModel):
    """``stop(reason=...)``: why the system stopped a running worker (spec §2.4, §10.1).

    A named :class:`StopReason` but NOT_STOPPED, or any JobScheduler reason (an int >= 0);
    the ranges WorkManager reserves are refused (see :meth:`StopReason.parse`).
    """

    model_config = _FROZEN

    reason: Annotated[StopReason | int, BeforeValidator(_stoppable)]


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

        configuration: Any

        def now(self) -> datetime: ...
        def explain(self, event: str, /, *args: Any, **data: Any) -> Explanation: ...

    def call(self, name: str, /, *args: Any, **data: Any) -> Any:
        """Fire an event by name, as ``store.send`` and ``lifecyclekit send`` do; refused
        for a work that belongs to a WorkGraph, whose operations alone drive its works (they
        propagate to dependents; a bare event would not).

        Raises:
            TransitionRejected: the work belongs to a graph; the message names the graph
                method to call instead.
        """
        owner = self.context.graph
        if owner is None:
            return super().call(name, *args, **data)  # type: ignore[misc]
        try:  # what the event would have done, for the refusal's data
            explanation = self.explain(name, *args, **data)
        except (LifecycleError, TypeError):  # bad data: refused for the owner all the same
            explanation = Explanation(
                machine=type(self).__name__, event=name, state=self.state,
                state_value=str(self.state_value), verdict="no_transition", candidates=(),
                allowed_events=(),
            )  # fmt: skip
        reason = owned_by_graph(owner, self.context.id, name)
        message = f"Can't {name} {type(self).__name__} in {self.state_value}: {reason}"
        raise TransitionRejected(explanation, set(self.configuration), message=message)

    def check_delete(self) -> None:
        """``store.delete`` of a work that belongs to a WorkGraph is refused: the graph's
        rows would point at nothing (its queries would fail, its dependents stay BLOCKED).

        Raises:
            TransitionRejected: naming the graph and its ``cancel`` and
                ``prune_work``.
        """
        owner = self.context.graph
        if owner is None:
            return
        work_id = self.context.id
        reason = (
            f"work {work_id} belongs to WorkGraph {owner!r}, whose rows point at it; call "
            f"WorkGraph(store=open_store(url), name={owner!r}).cancel(UUID("
            f"'{work_id}')) to stop it, then .prune_work() to delete finished works"
        )
        error = self.rejection("delete", reason)  # type: ignore[attr-defined]
        raise error

    @classmethod
    def _build_context(cls, given: Any, fields: dict[str, Any]) -> Any:
        """The context from a caller's data; ``graph`` is refused there: only a
        :class:`~lifecyclekit.machines.WorkGraph` sets it (on the works it inserts), so a
        work created with it would belong to no graph and be refused by everything.

        Raises:
            PayloadError: ``graph`` is given (as a keyword or in a mapping).
        """
        data = given if isinstance(given, Mapping) else {}
        owner = fields.get("graph", data.get("graph"))
        if owner is not None:
            message = (
                "is set only by the WorkGraph that owns the work; enqueue the request with "
                "WorkGraph(store=open_store(url), name=...).enqueue(WorkRequest(...)) to "
                "create a graph's work, or drop graph for a standalone one"
            )
            raise PayloadError(cls.__name__, "context", [("graph", message, owner)])
        return super()._build_context(given, fields)  # type: ignore[misc]

    # -- guards ------------------------------------------------------------------------------

    def constraints_met(self, conditions: DeviceConditions | None = None) -> Because:
        """The device satisfies every constraint (no conditions given: it does)."""
        unmet = self.context.constraints.unmet(conditions) if conditions is not None else []
        return Because(not unmet, "; ".join(unmet) or "all constraints met")

    def quota_allows(self, conditions: DeviceConditions | None = None) -> Because:
        """Expedited work with DROP_WORK_REQUEST does not run without expedited quota (§10.4).

        Decision (spec §10.4: "which final state WorkManager records for a dropped request is
        not documented: decide, say so in the code"): the start is refused and the work stays
        ENQUEUED. That is what androidx's code records: ``SystemJobScheduler.scheduleInternal``
        retries a refused expedited job as ordinary work only for
        RUN_AS_NON_EXPEDITED_WORK_REQUEST and otherwise just logs, changing nothing in the
        database (rule R1, code over docs). RUN_AS_NON_EXPEDITED_WORK_REQUEST runs as ordinary
        work, so its start is allowed.
        """
        spec = self.context
        if (
            conditions is None
            or conditions.expedited_quota
            or not spec.expedited
            or spec.out_of_quota_policy is not OutOfQuotaPolicy.DROP_WORK_REQUEST
        ):
            return Because(True, "")
        return Because(
            False,
            "no expedited quota left (expedited_quota=False) and out_of_quota_policy is "
            "DROP_WORK_REQUEST: WorkManager drops this run; the work stays ENQUEUED",
        )

    def is_due(self) -> Because:
        """The initial delay, backoff or period has elapsed (spec §3.3)."""
        due = self.next_run_time()
        now = self.now()
        if due is None or now >= due:
            return Because(True, "due")
        return Because(False, f"next run at {due.isoformat()}, now {now.isoformat()}")

    # -- effects -----------------------------------------------------------------------------

    def _began(self) -> None:
        """W1/P1: ``runAttemptCount += 1`` (kept at ``Int.MAX_VALUE`` once there),
        ``stopReason = NOT_STOPPED``."""
        self.context.run_attempt_count = min(self.context.run_attempt_count + 1, _INT_MAX)
        self.context.stop_reason = StopReason.NOT_STOPPED

    def _retried(self) -> None:
        """W4/P4: re-enqueued now; the attempt count is kept."""
        self.context.last_enqueue_time = self.now()
        self.context.stop_reason = StopReason.NOT_STOPPED

    def _stopped(self, reason: StopReason | int) -> None:
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

    def _enqueue_checks(self) -> None:
        """V6 when the work is enqueued: no delay may, counted from the clock's now, put a
        run past the last instant a date holds (spec §7.2, §10.7).

        Raises:
            PayloadError: naming the field, with WorkManager's message.
        """
        problems = self.context.schedule_overflow(self.now())
        if problems:
            raise PayloadError(type(self).__name__, "context", problems)

    def next_run_time(self) -> datetime | None:
        """``calculateNextRunTime`` (spec §3.3), for a work in ENQUEUED.

        Decision (§10.7: a schedule that would overflow a date is refused when the request is
        built): every delay is checked then, so a later sum can overflow only with a clock
        within a backoff or an interval of the year 10000; such a time reads as the last
        instant a ``datetime`` holds, never as an ``OverflowError``.
        """
        try:
            return self._next_run_time()
        except OverflowError:
            return LATEST_INSTANT

    def _next_run_time(self) -> datetime | None:
        spec = self.context
        last: datetime | None = spec.last_enqueue_time
        if last is None:
            return None
        override: datetime | None = getattr(spec, "next_schedule_time_override", None)
        if override is not None:  # branch 1: periodic work only (one-time has no override)
            if spec.period_count == 0:
                return override
            return max(override, last + MIN_PERIODIC_INTERVAL)
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
            expedited=spec.expedited,
            out_of_quota_policy=spec.out_of_quota_policy,
        )
