"""What Android WorkManager's lifecycles share: requests, specs, results and ``WorkInfo``.

Facts from the project's WorkManager specification (``shared/spec/workmanager.md``), derived
from androidx ``work-runtime`` at commit a9b06aaf (rule R1: the code wins over the docs).
Durations are ``timedelta``; instants are aware ``datetime``; WorkManager's ``Long.MAX_VALUE``
("never") is ``None``. Things WorkManager clamps are clamped here too, with a warning naming
the field, the value given and the value used (rule R3); what WorkManager refuses (spec §7.2,
V1-V8, with its messages) is refused here with a :class:`~lifecyclekit.PayloadError` naming the
field, as is anything a date cannot hold (§10.7).

The values requests are made of (states, policies, stop reasons, ``Data``, constraints,
backoff) live in ``_values.py`` and the rules no single model holds in ``_rules.py``; both are
re-exported here, the one place applications import from.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

from lifecyclekit import PayloadError

from ._rules import (
    CONTENT_URI_TRIGGER_WORKERS_LIMIT,
    V1_IDLE_BACKOFF,
    V3_PERIODIC_EXPEDITED,
    V4_EXPEDITED_CONSTRAINTS,
    V5_EXPEDITED_DELAY,
    V8_OVERRIDE_POLICY,
    check_content_uri_trigger_limit,
    micros,
    overflow,
    override_instant,
)
from ._values import (
    _INT_MAX,
    DEFAULT_BACKOFF_DELAY,
    LATEST_INSTANT,
    MAX_BACKOFF_DELAY,
    MAX_DATA_BYTES,
    MIN_BACKOFF_DELAY,
    MIN_PERIODIC_FLEX,
    MIN_PERIODIC_INTERVAL,
    Backoff,
    BackoffPolicy,
    Constraints,
    ContentUriTrigger,
    DeviceConditions,
    ExistingPeriodicWorkPolicy,
    ExistingWorkPolicy,
    NetworkType,
    OutOfQuotaPolicy,
    StopReason,
    UpdateResult,
    WorkData,
    WorkState,
    _clamped,
    _Model,
    _refuse,
    backoff_delay_for,
    no_nul,
)

__all__ = [
    "CONTENT_URI_TRIGGER_WORKERS_LIMIT",
    "DEFAULT_BACKOFF_DELAY",
    "LATEST_INSTANT",
    "MAX_BACKOFF_DELAY",
    "MAX_DATA_BYTES",
    "MIN_BACKOFF_DELAY",
    "MIN_PERIODIC_FLEX",
    "MIN_PERIODIC_INTERVAL",
    "Backoff",
    "BackoffPolicy",
    "Constraints",
    "ContentUriTrigger",
    "DeviceConditions",
    "ExistingPeriodicWorkPolicy",
    "ExistingWorkPolicy",
    "NetworkType",
    "OutOfQuotaPolicy",
    "PeriodicWorkRequest",
    "PeriodicWorkSpec",
    "Periodicity",
    "StopReason",
    "UpdateResult",
    "WorkData",
    "WorkInfo",
    "WorkRequest",
    "WorkResult",
    "WorkSpec",
    "WorkState",
    "backoff_delay_for",
    "check_content_uri_trigger_limit",
]


def _stop_reason(value: Any) -> StopReason | int:
    return StopReason.parse(value)


_Duration = Annotated[timedelta, Field(ge=timedelta(0))]
_BACKOFF_FIELDS = frozenset({"backoff_policy", "backoff_delay"})


# -- requests and specs ----------------------------------------------------------------------


class _RequestFields(_Model):
    """The fields and build rules every work request shares (``WorkRequest.Builder``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    _build_checks_now: ClassVar[bool] = True
    """Check V6 against the wall clock on every validation: requests do; a work's context
    does not (its lifecycle checks it against its own clock when the work is enqueued)."""

    id: UUID = Field(default_factory=uuid4)
    worker: StrictStr = Field(default="Worker", min_length=1)
    """The worker class name; always one of the tags."""
    input: WorkData = Field(default_factory=dict)
    tags: frozenset[StrictStr] = frozenset()
    constraints: Constraints = Field(default_factory=Constraints)
    initial_delay: _Duration = timedelta(0)
    """Refused if the first run would fall past the last instant a date holds (V6)."""
    backoff_policy: BackoffPolicy = BackoffPolicy.EXPONENTIAL
    backoff_delay: timedelta = DEFAULT_BACKOFF_DELAY
    """Clamped to [10 s, 5 h] with a warning (§3.2)."""
    backoff_on_system_interruptions: StrictBool = False
    keep_results_for_at_least: _Duration = timedelta(0)
    """``keepResultsForAtLeast``: how long a finished work is kept before WorkManager may
    prune it by itself (§10.6; ``WorkGraph.prune_work(expired_only=True)``)."""
    backoff_criteria_set: StrictBool = False
    """WorkManager's ``backoffCriteriaSet``: ``backoff_policy`` or ``backoff_delay`` was given
    (set from the arguments unless given itself; kept by ``model_dump``). Refused together
    with ``requires_device_idle`` (V1, V2)."""
    expedited: StrictBool = False
    """``setExpedited(policy)``: important to the user; one-time work only (V3), network and
    storage constraints only (V4), no initial delay (V5)."""
    out_of_quota_policy: OutOfQuotaPolicy | None = None
    """What expedited work does without quota; ``None`` unless ``expedited`` (which defaults it
    to RUN_AS_NON_EXPEDITED_WORK_REQUEST, WorkSpec's default)."""

    def model_post_init(self, context: Any, /) -> None:
        given = self.model_fields_set
        if "backoff_criteria_set" not in given and given & _BACKOFF_FIELDS:
            object.__setattr__(self, "backoff_criteria_set", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _BACKOFF_FIELDS and not self.backoff_criteria_set:
            self.__dict__["backoff_criteria_set"] = True  # as setBackoffCriteria() does
            try:
                super().__setattr__(name, value)
            except PayloadError:
                self.__dict__["backoff_criteria_set"] = False
                raise
            return
        super().__setattr__(name, value)

    @field_validator("worker", "tags")
    @classmethod
    def _no_nul(cls, value: str | frozenset[str]) -> str | frozenset[str]:
        for text in [value] if isinstance(value, str) else sorted(value):
            no_nul(text, "the worker name" if isinstance(value, str) else "a tag")
        return value

    @field_validator("backoff_delay")
    @classmethod
    def _clamp_backoff(cls, value: timedelta) -> timedelta:
        return _clamped("backoff_delay", value, MIN_BACKOFF_DELAY, MAX_BACKOFF_DELAY)

    @property
    def backoff(self) -> Backoff:
        """The backoff criteria as one value."""
        return Backoff.model_construct(policy=self.backoff_policy, delay=self.backoff_delay)

    @model_validator(mode="after")
    def _check_request(self) -> Self:
        if self.worker not in self.tags:
            object.__setattr__(self, "tags", self.tags | {self.worker})
        if self.expedited and self.out_of_quota_policy is None:
            policy = OutOfQuotaPolicy.RUN_AS_NON_EXPEDITED_WORK_REQUEST
            object.__setattr__(self, "out_of_quota_policy", policy)
        problems = self._problems()
        if problems:
            error = PayloadError(type(self).__name__, "context", problems)
            raise error
        return self

    def _problems(self) -> list[tuple[str, str, Any]]:
        """Every rule of §7.2 this request breaks, in the order WorkManager checks them: the
        setters (V6, V7), ``buildInternal`` (V1/V2, V3), then ``build`` (V4, V5)."""
        problems = self.schedule_overflow(datetime.now(UTC)) if self._build_checks_now else []
        if self.backoff_criteria_set and self.constraints.requires_device_idle:
            problems.append(
                (
                    "constraints.requires_device_idle",
                    f"{V1_IDLE_BACKOFF}: JobScheduler never backs off an idle-mode job. Drop "
                    "backoff_policy and backoff_delay, or requires_device_idle",
                    True,
                )
            )
        problems += self._type_problems()
        if self.expedited:
            unsupported = self.constraints.unsupported_when_expedited()
            if unsupported:
                problems.append(
                    (
                        "constraints",
                        f"{V4_EXPEDITED_CONSTRAINTS}; drop {', '.join(unsupported)}, or "
                        "expedited=True",
                        unsupported,
                    )
                )
            if self.initial_delay > timedelta(0):
                problems.append(
                    (
                        "initial_delay",
                        f"{V5_EXPEDITED_DELAY}; set initial_delay to 0, or drop expedited=True",
                        self.initial_delay,
                    )
                )
        elif self.out_of_quota_policy is not None:
            problems.append(
                (
                    "out_of_quota_policy",
                    "applies to expedited work only (setExpedited(policy) sets both); pass "
                    "expedited=True too, or drop out_of_quota_policy",
                    self.out_of_quota_policy.value,
                )
            )
        return problems

    def schedule_overflow(self, now: datetime) -> list[tuple[str, str, Any]]:
        """V6: each delay that, counted from ``now``, would put a run past the last instant a
        date holds, as ``(field, message, value)``.

        A request checks itself against the wall clock when built (``setInitialDelay`` checks
        ``System.currentTimeMillis()``); a lifecycle checks its context against its own clock
        when the work is enqueued.
        """
        why = overflow("initial delay", micros(self.initial_delay), now)
        problems = [] if why is None else [("initial_delay", why, self.initial_delay)]
        return problems + self._retention_overflow(now)

    def _retention_overflow(self, now: datetime) -> list[tuple[str, str, Any]]:
        """V6's rule for ``keep_results_for_at_least`` (decision, §10.7): counted from
        ``now``, the end of the retention must be a date, or ``prune_work(expired_only=True)``
        could not compare it (WorkManager has no message for it; this library words one)."""
        keep = self.keep_results_for_at_least
        room = LATEST_INSTANT - now
        if keep < room:
            return []
        message = (
            f"is too large: counted from {now.isoformat()} the work would be kept past "
            f"{LATEST_INSTANT.date()} (the last date a datetime holds); keep it under {room}, "
            "or leave it at 0 for WorkManager's default"
        )
        return [("keep_results_for_at_least", message, keep)]

    def _type_problems(self) -> list[tuple[str, str, Any]]:
        """The rules only one kind of request has (periodic: V3)."""
        return []


class WorkRequest(_RequestFields):
    """A one-time work request (``OneTimeWorkRequest``); its ``id`` is fixed at construction.

    Raises:
        PayloadError: a rule of spec §7.2 is broken (V1, V4-V6), naming the fields, with
            WorkManager's message.
    """

    input_merger: Literal["overwriting", "array"] = "overwriting"
    """``OverwritingInputMerger`` (default) or ``ArrayCreatingInputMerger`` (§5.4)."""


class PeriodicWorkRequest(_RequestFields):
    """A periodic work request; interval and flex are clamped as WorkManager clamps them.

    ``clear_next_schedule_time_override=True`` (a keyword, not a field) is
    ``clearNextScheduleTimeOverride()``: with :meth:`WorkGraph.update_work` it removes the
    stored override.

    Raises:
        PayloadError: a rule of spec §7.2 is broken (V2, V3, V6, V7), naming the fields, with
            WorkManager's message.
    """

    repeat_interval: timedelta = MIN_PERIODIC_INTERVAL
    """At least 15 minutes (clamped with a warning)."""
    flex_interval: timedelta | None = None
    """Between 5 minutes and the interval (clamped); ``None`` means equal to the interval."""
    next_schedule_time_override: Annotated[
        AwareDatetime | None, BeforeValidator(override_instant)
    ] = None
    """``setNextScheduleTimeOverride``: when the next run is due, instead of what interval,
    flex, initial delay and backoff say (§3.3 branch 1, §4.3); an int is epoch milliseconds.
    Cleared when the run it scheduled ends (P2-P4) unless a newer one was written meanwhile.
    ``None``: no override (WorkManager's ``Long.MAX_VALUE``)."""
    next_schedule_time_override_generation: int = Field(default=0, ge=0)
    """WorkManager's ``nextScheduleTimeOverrideGeneration``: 1 on a request that sets or
    clears the override (an update then replaces the stored override), 0 on one that leaves it
    alone; each such update counts it up (§10.2, [upd])."""

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        given = self.model_fields_set
        if (
            self.next_schedule_time_override is not None
            and "next_schedule_time_override_generation" not in given
        ):
            object.__setattr__(self, "next_schedule_time_override_generation", 1)

    @model_validator(mode="before")
    @classmethod
    def _clearing(cls, data: Any) -> Any:
        """``clear_next_schedule_time_override=True``: no override, generation 1 ([pwr])."""
        if not isinstance(data, dict) or "clear_next_schedule_time_override" not in data:
            return data
        data = dict(data)
        clear = data.pop("clear_next_schedule_time_override")
        if not isinstance(clear, bool):
            error = _refuse("clear_next_schedule_time_override", "must be True or False", clear)
            raise error
        if clear:
            if data.get("next_schedule_time_override") is not None:
                message = (
                    "clears the override, so next_schedule_time_override cannot be given too; "
                    "pass one of them"
                )
                error = _refuse("clear_next_schedule_time_override", message, clear)
                raise error
            data["next_schedule_time_override"] = None
            data["next_schedule_time_override_generation"] = 1
        return data

    @field_validator("repeat_interval")
    @classmethod
    def _clamp_interval(cls, value: timedelta) -> timedelta:
        return _clamped("repeat_interval", value, MIN_PERIODIC_INTERVAL, None)

    @model_validator(mode="after")
    def _clamp_flex(self) -> Self:
        flex = self.flex_interval
        if flex is None:
            flex = self.repeat_interval
        else:
            flex = _clamped("flex_interval", flex, MIN_PERIODIC_FLEX, self.repeat_interval)
        object.__setattr__(self, "flex_interval", flex)
        return self

    def schedule_overflow(self, now: datetime) -> list[tuple[str, str, Any]]:
        """V6 for the first period (initial delay plus interval - flex, §3.3 branch 3), and
        the same rule for the interval itself: WorkManager has no message for an interval
        that overflows, so this library words one like V6's (decision, §10.7)."""
        interval = micros(self.repeat_interval)
        why = overflow("repeat interval", interval, now)
        if why is not None:
            return [("repeat_interval", why, self.repeat_interval), *self._retention_overflow(now)]
        flex = self.flex_interval if self.flex_interval is not None else self.repeat_interval
        flex = min(max(flex, MIN_PERIODIC_FLEX), self.repeat_interval)
        first = micros(self.initial_delay) + interval - micros(flex)
        why = overflow("initial delay", first, now)
        problems = [] if why is None else [("initial_delay", why, self.initial_delay)]
        return problems + self._retention_overflow(now)

    def _type_problems(self) -> list[tuple[str, str, Any]]:
        if not self.expedited:
            return []
        message = f"{V3_PERIODIC_EXPEDITED}; expedite a one-time WorkRequest, or drop expedited"
        return [("expedited", message, True)]

    def check_unique_policy(self, policy: ExistingPeriodicWorkPolicy | str) -> None:
        """V8: a request with a schedule override cannot replace unique work.

        WorkManager's ``WorkContinuationImpl`` refuses REPLACE (and CANCEL_AND_REENQUEUE,
        which maps to it) for such a request before anything is enqueued.

        Raises:
            PayloadError: ``policy`` is REPLACE or CANCEL_AND_REENQUEUE and this request has an
                override; or ``policy`` is not an ``ExistingPeriodicWorkPolicy``.
        """
        name = type(self).__name__
        event = "enqueue_unique_periodic_work"
        try:
            policy = ExistingPeriodicWorkPolicy(policy)
        except ValueError:
            valid = ", ".join(p.value for p in ExistingPeriodicWorkPolicy)
            raise PayloadError(
                name, event, [("policy", f"not an ExistingPeriodicWorkPolicy ({valid})", policy)]
            ) from None
        replacing = policy in (
            ExistingPeriodicWorkPolicy.REPLACE,
            ExistingPeriodicWorkPolicy.CANCEL_AND_REENQUEUE,
        )
        if replacing and self.next_schedule_time_override is not None:
            message = (
                f"{V8_OVERRIDE_POLICY}; enqueue it with UPDATE or KEEP, not {policy.value}, or "
                "drop the override"
            )
            raise PayloadError(
                name,
                event,
                [("next_schedule_time_override", message, self.next_schedule_time_override)],
            )


class _Runtime(BaseModel):
    run_attempt_count: int = Field(default=0, ge=0, le=_INT_MAX)
    """Kotlin's ``Int`` in WorkManager, so at most ``Int.MAX_VALUE`` (2**31 - 1); a start at
    the bound keeps it there (decision: WorkManager's would wrap to a negative count)."""
    generation: int = Field(default=0, ge=0)
    last_enqueue_time: AwareDatetime | None = None
    """When the work was last enqueued; ``None`` until then (a BLOCKED work)."""
    stop_reason: Annotated[StopReason | int, BeforeValidator(_stop_reason)] = (
        StopReason.NOT_STOPPED
    )
    """A :class:`StopReason`, or a JobScheduler reason WorkManager does not name (§10.1)."""
    graph: str | None = None
    """The :class:`~lifecyclekit.machines.WorkGraph` that owns the work (its name), which
    alone may drive it: ``store.send`` and ``lifecyclekit send`` refuse it, naming the graph
    method to call, so no transition skips the graph's propagation (issue 12, point 3)."""


def _updated(
    old: WorkSpec | PeriodicWorkSpec,
    request: WorkRequest | PeriodicWorkRequest,
    kind: type[WorkRequest | PeriodicWorkRequest],
    **kept: Any,
) -> dict[str, Any]:
    """The data of ``old`` updated by ``request`` (spec §10.2, [upd] ``updateWorkImpl``):
    every field of the new request, runtime fields at their defaults, then exactly the
    carried-over fields: the attempt count, the enqueue time, the generation + 1 and
    ``kept``."""
    if not isinstance(request, kind):
        olds, news = (
            ("Periodic", "OneTime") if kind is PeriodicWorkRequest else ("OneTime", "Periodic")
        )
        message = (
            f"Can't update {olds} Worker to {news} Worker. Update operation must preserve "
            "worker's type."
        )
        raise PayloadError(
            type(old).__name__, "update_work", [("request", message, type(request).__name__)]
        )
    data = {name: getattr(request, name) for name in kind.model_fields}
    data.update(
        id=old.id,
        run_attempt_count=old.run_attempt_count,
        last_enqueue_time=old.last_enqueue_time,
        generation=old.generation + 1,
        **kept,
    )
    return data


class WorkSpec(WorkRequest, _Runtime):
    """The context of a one-time or chained work: its request and what happened to it."""

    _build_checks_now: ClassVar[bool] = False

    output: WorkData = Field(default_factory=dict)
    prerequisites: dict[UUID, WorkState] = Field(default_factory=dict)
    """Chained work only: the last known state of each direct prerequisite."""

    def updated_by(self, request: WorkRequest) -> WorkSpec:
        """``updateWork`` (§10.2): the new request with the state's counters carried over.

        Kept: ``run_attempt_count``, ``last_enqueue_time``, ``generation`` (+ 1); the state is
        the lifecycle's and does not change. ``prerequisites`` are kept too: they are the
        graph's dependency rows, not a field of WorkManager's ``WorkSpec``. Everything else
        comes from ``request`` or its defaults: ``stop_reason`` is NOT_STOPPED again and
        ``output`` empty.

        Raises:
            PayloadError: ``request`` is periodic ("Update operation must preserve worker's
                type.").
        """
        return WorkSpec(**_updated(self, request, WorkRequest, prerequisites=self.prerequisites))


class PeriodicWorkSpec(PeriodicWorkRequest, _Runtime):
    """The context of a periodic work; ``period_count`` counts completed periods."""

    _build_checks_now: ClassVar[bool] = False

    period_count: int = Field(default=0, ge=0)
    override_generation_at_start: int = Field(default=0, ge=0)
    """``next_schedule_time_override_generation`` when the current (or last) run started: the
    run's end clears the override only if no update wrote a newer one since ([ww]
    ``resetWorkSpecNextScheduleTimeOverride(id, generation)``)."""

    def updated_by(self, request: PeriodicWorkRequest) -> PeriodicWorkSpec:
        """``updateWork`` (§10.2): the new request with the state's counters carried over.

        Kept: ``run_attempt_count``, ``last_enqueue_time``, ``generation`` (+ 1),
        ``period_count``, and the schedule override with its generation, unless ``request``
        sets or clears an override (its generation is 1): then its override replaces the
        stored one and the stored generation counts up ([upd]). Everything else comes from
        ``request`` or its defaults; ``stop_reason`` is NOT_STOPPED again.

        Raises:
            PayloadError: ``request`` is one-time ("Update operation must preserve worker's
                type.").
        """
        touches = (
            isinstance(request, PeriodicWorkRequest)
            and request.next_schedule_time_override_generation == 1
        )
        data = _updated(
            self,
            request,
            PeriodicWorkRequest,
            period_count=self.period_count,
            override_generation_at_start=self.override_generation_at_start,
            next_schedule_time_override=request.next_schedule_time_override
            if touches
            else self.next_schedule_time_override,
            next_schedule_time_override_generation=self.next_schedule_time_override_generation
            + (1 if touches else 0),
        )
        return PeriodicWorkSpec(**data)


# -- results and info ------------------------------------------------------------------------


class WorkResult(_Model):
    """``ListenableWorker.Result``: ``success(output)``, ``failure(output)`` or ``retry()``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Literal["success", "failure", "retry"]
    output: WorkData = Field(default_factory=dict)

    @model_validator(mode="after")
    def _retry_has_no_output(self) -> Self:
        if self.outcome == "retry" and self.output:
            msg = "retry() carries no output (Retry.getOutputData() is always empty)"
            raise ValueError(msg)
        return self

    @classmethod
    def success(cls, output: dict[str, Any] | None = None) -> WorkResult:
        """The work succeeded; ``output`` is merged into dependents' input."""
        return cls(outcome="success", output=output or {})

    @classmethod
    def failure(cls, output: dict[str, Any] | None = None) -> WorkResult:
        """The work failed for good; dependents fail too."""
        return cls(outcome="failure", output=output or {})

    @classmethod
    def retry(cls) -> WorkResult:
        """A transient failure: run again after the backoff."""
        return cls(outcome="retry")


class Periodicity(BaseModel):
    """``WorkInfo.PeriodicityInfo``."""

    model_config = ConfigDict(frozen=True)

    repeat_interval: timedelta
    flex_interval: timedelta


class WorkInfo(BaseModel):
    """``androidx.work.WorkInfo``: what an application sees of a work (§1.3)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    state: WorkState
    tags: frozenset[str]
    output: dict[str, Any]
    """Empty until the work finished with a result that carried output."""
    run_attempt_count: int
    generation: int
    next_schedule_time: datetime | None
    """When the work may run next; ``None`` unless ENQUEUED (WorkManager's Long.MAX_VALUE)."""
    stop_reason: StopReason | int
    """A :class:`StopReason`, or a JobScheduler reason WorkManager does not name (§10.1)."""
    initial_delay: timedelta
    periodicity: Periodicity | None
    constraints: Constraints
    progress: dict[str, Any] = Field(default_factory=dict)
    """What the running worker last reported (``WorkGraph.set_progress``); empty otherwise
    (§1.3: deleted when a result is handled, kept when the work is stopped)."""
    expedited: bool = False
    """The request was expedited (§10.4)."""
    out_of_quota_policy: OutOfQuotaPolicy | None = None
    """Its ``OutOfQuotaPolicy`` when expedited, else ``None``."""
