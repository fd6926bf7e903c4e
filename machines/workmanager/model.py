"""What Android WorkManager's lifecycles share: constraints, backoff, data, results, specs.

Facts from the project's WorkManager specification (``shared/spec/workmanager.md``), derived
from androidx ``work-runtime`` at commit a9b06aaf (rule R1: the code wins over the docs).
Durations are ``timedelta``; instants are aware ``datetime``; WorkManager's ``Long.MAX_VALUE``
("never") is ``None``. Things WorkManager clamps are clamped here too, with a warning naming
the field, the value given and the value used (rule R3); only invalid values are refused.
"""

from __future__ import annotations

import enum
import json
import warnings
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from lifecyclekit import PayloadError

__all__ = [
    "DEFAULT_BACKOFF_DELAY",
    "MAX_BACKOFF_DELAY",
    "MAX_DATA_BYTES",
    "MIN_BACKOFF_DELAY",
    "MIN_PERIODIC_FLEX",
    "MIN_PERIODIC_INTERVAL",
    "Backoff",
    "BackoffPolicy",
    "Constraints",
    "DeviceConditions",
    "ExistingPeriodicWorkPolicy",
    "ExistingWorkPolicy",
    "NetworkType",
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
]

# §3.1 constants.
DEFAULT_BACKOFF_DELAY = timedelta(milliseconds=30_000)
MIN_BACKOFF_DELAY = timedelta(milliseconds=10_000)
MAX_BACKOFF_DELAY = timedelta(milliseconds=18_000_000)
MIN_PERIODIC_INTERVAL = timedelta(milliseconds=900_000)
MIN_PERIODIC_FLEX = timedelta(milliseconds=300_000)
MAX_DATA_BYTES = 10 * 1024
"""``androidx.work.Data.MAX_DATA_BYTES``; measured here on the JSON encoding of the data."""

_LONG = 2**63


class WorkState(enum.StrEnum):
    """``WorkInfo.State``, in ordinal order (§1.1)."""

    ENQUEUED = "ENQUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    BLOCKED = "BLOCKED"
    CANCELLED = "CANCELLED"

    @property
    def is_finished(self) -> bool:
        """``WorkInfo.State.isFinished()``: SUCCEEDED, FAILED or CANCELLED."""
        return self in (WorkState.SUCCEEDED, WorkState.FAILED, WorkState.CANCELLED)


class NetworkType(enum.StrEnum):
    """``androidx.work.NetworkType`` (§7.1)."""

    NOT_REQUIRED = "NOT_REQUIRED"
    CONNECTED = "CONNECTED"
    UNMETERED = "UNMETERED"
    NOT_ROAMING = "NOT_ROAMING"
    METERED = "METERED"
    TEMPORARILY_UNMETERED = "TEMPORARILY_UNMETERED"


class BackoffPolicy(enum.StrEnum):
    """``androidx.work.BackoffPolicy``; EXPONENTIAL is the default (§3.1)."""

    EXPONENTIAL = "EXPONENTIAL"
    LINEAR = "LINEAR"


class ExistingWorkPolicy(enum.StrEnum):
    """What ``enqueue_unique_work`` does when the name already holds work (§6.1)."""

    REPLACE = "REPLACE"
    KEEP = "KEEP"
    APPEND = "APPEND"
    APPEND_OR_REPLACE = "APPEND_OR_REPLACE"


class ExistingPeriodicWorkPolicy(enum.StrEnum):
    """What ``enqueue_unique_periodic_work`` does when the name already holds work (§6.2)."""

    REPLACE = "REPLACE"
    KEEP = "KEEP"
    UPDATE = "UPDATE"
    CANCEL_AND_REENQUEUE = "CANCEL_AND_REENQUEUE"


class UpdateResult(enum.StrEnum):
    """``WorkManager.UpdateResult`` (§6.3)."""

    NOT_APPLIED = "NOT_APPLIED"
    APPLIED_IMMEDIATELY = "APPLIED_IMMEDIATELY"
    APPLIED_FOR_NEXT_RUN = "APPLIED_FOR_NEXT_RUN"


class StopReason(enum.IntEnum):
    """``WorkInfo.STOP_REASON_*`` with WorkManager's numbers (§2.4)."""

    UNKNOWN = -512
    NOT_STOPPED = -256
    FOREGROUND_SERVICE_TIMEOUT = -128
    CANCELLED_BY_APP = 1
    PREEMPT = 2
    TIMEOUT = 3
    DEVICE_STATE = 4
    CONSTRAINT_BATTERY_NOT_LOW = 5
    CONSTRAINT_CHARGING = 6
    CONSTRAINT_CONNECTIVITY = 7
    CONSTRAINT_DEVICE_IDLE = 8
    CONSTRAINT_STORAGE_NOT_LOW = 9
    QUOTA = 10
    BACKGROUND_RESTRICTION = 11
    APP_STANDBY = 12
    USER = 13
    SYSTEM_PROCESSING = 14
    ESTIMATED_APP_LAUNCH_TIME_CHANGED = 15

    @classmethod
    def parse(cls, value: Any) -> StopReason:
        """A member from itself, its number, or its name (with or without ``STOP_REASON_``).

        Raises:
            ValueError: not one of WorkManager's stop reasons.
        """
        if isinstance(value, cls):
            return value
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value in cls._value2member_map_
        ):
            return cls(value)
        if isinstance(value, str):
            name = value.removeprefix("STOP_REASON_")
            if name in cls.__members__:
                return cls[name]
        known = ", ".join(f"{m.name} ({m.value})" for m in cls)
        msg = f"not a WorkManager stop reason; known: {known}"
        raise ValueError(msg)


# -- Data ------------------------------------------------------------------------------------

_SCALARS = (bool, int, float, str)
_DATA_TYPES = "booleans, 64-bit integers, floats, strings, null, or a list of one of those"


def _scalar_type(key: str, item: Any) -> type:
    if item is None:
        return str  # "If a value by a key is null, it is considered to have type String".
    kind = next((t for t in _SCALARS if type(item) is t), None)
    if kind is None:
        msg = f"{key}: {item!r} is not a Data value; Data holds {_DATA_TYPES}"
        raise ValueError(msg)
    if kind is int and not -_LONG <= item < _LONG:
        msg = f"{key}: {item} does not fit a 64-bit Long"
        raise ValueError(msg)
    return kind


def _check_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        msg = f"Data is a mapping of str keys to {_DATA_TYPES}; got {type(data).__name__}"
        raise ValueError(msg)  # noqa: TRY004 - pydantic wants ValueError
    for key, value in data.items():
        if not isinstance(key, str):
            msg = f"Data keys are strings; got {key!r}"
            raise ValueError(msg)  # noqa: TRY004
        if isinstance(value, list | tuple):
            kinds = {_scalar_type(key, item) for item in value}
            if len(kinds) > 1:
                msg = (
                    f"{key}: a Data array holds one type; got {sorted(k.__name__ for k in kinds)}"
                )
                raise ValueError(msg)
        else:
            _scalar_type(key, value)
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
    size = len(json.dumps(plain, separators=(",", ":")).encode())
    if size > MAX_DATA_BYTES:
        msg = f"Data is {size} bytes; WorkManager allows at most {MAX_DATA_BYTES} (MAX_DATA_BYTES)"
        raise ValueError(msg)
    return plain


WorkData = Annotated[dict[str, Any], BeforeValidator(_check_data)]
"""WorkManager ``Data``: a flat mapping of str keys to booleans, 64-bit integers, floats,
strings (or null) and homogeneous lists of them, at most :data:`MAX_DATA_BYTES`."""


class _Model(BaseModel):
    """Constructing one with bad data raises PayloadError (naming each field), not pydantic's
    ValidationError, like every other refusal in lifecyclekit."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise PayloadError.from_validation_error(type(self).__name__, "context", exc) from None


# -- constraints -----------------------------------------------------------------------------


class DeviceConditions(_Model):
    """What the device reports now; every field defaults to satisfied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connected: StrictBool = True
    unmetered: StrictBool = True
    not_roaming: StrictBool = True
    charging: StrictBool = True
    battery_not_low: StrictBool = True
    device_idle: StrictBool = True
    storage_not_low: StrictBool = True


_NETWORK_NEEDS: dict[NetworkType, tuple[tuple[str, bool], ...]] = {
    NetworkType.NOT_REQUIRED: (),
    NetworkType.CONNECTED: (("connected", True),),
    NetworkType.UNMETERED: (("connected", True), ("unmetered", True)),
    NetworkType.NOT_ROAMING: (("connected", True), ("not_roaming", True)),
    NetworkType.METERED: (("connected", True), ("unmetered", False)),
    NetworkType.TEMPORARILY_UNMETERED: (("connected", True), ("unmetered", True)),
}


class Constraints(_Model):
    """``androidx.work.Constraints`` (the fields that gate a start, §7.1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    network_type: NetworkType = NetworkType.NOT_REQUIRED
    requires_charging: StrictBool = False
    requires_battery_not_low: StrictBool = False
    requires_device_idle: StrictBool = False
    requires_storage_not_low: StrictBool = False

    def unmet(self, conditions: DeviceConditions) -> list[str]:
        """Each constraint the conditions do not satisfy, with the value reported."""
        problems = [
            f"network_type {self.network_type.value} needs {field}={wanted}, device reports "
            f"{field}={getattr(conditions, field)}"
            for field, wanted in _NETWORK_NEEDS[self.network_type]
            if getattr(conditions, field) != wanted
        ]
        for required, field in (
            ("requires_charging", "charging"),
            ("requires_battery_not_low", "battery_not_low"),
            ("requires_device_idle", "device_idle"),
            ("requires_storage_not_low", "storage_not_low"),
        ):
            if getattr(self, required) and not getattr(conditions, field):
                problems.append(f"{required} but device reports {field}=False")
        return problems


# -- backoff ---------------------------------------------------------------------------------


def backoff_delay_for(
    policy: BackoffPolicy, delay: timedelta, run_attempt_count: int
) -> timedelta:
    """The delay after the ``run_attempt_count``-th attempt (§3.3 branch 2), capped at 5 hours.

    Exponential uses exact integers (``delay * 2**(n-1)``) where WorkManager uses a float
    ``scalb``; they differ by at most 1 ms, only for delays above 2**24 ms (spec Q7).
    """
    millis = delay // timedelta(milliseconds=1)
    if policy is BackoffPolicy.LINEAR:
        total = millis * run_attempt_count
    else:
        total = millis * 2 ** (run_attempt_count - 1)
    return timedelta(milliseconds=min(total, MAX_BACKOFF_DELAY // timedelta(milliseconds=1)))


class Backoff(BaseModel):
    """A work's backoff criteria (``setBackoffCriteria``): policy and delay, clamped to
    [10 s, 5 h] with a warning (§3.2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: BackoffPolicy = BackoffPolicy.EXPONENTIAL
    delay: timedelta = DEFAULT_BACKOFF_DELAY

    @field_validator("delay")
    @classmethod
    def _clamp(cls, value: timedelta) -> timedelta:
        return _clamped("backoff_delay", value, MIN_BACKOFF_DELAY, MAX_BACKOFF_DELAY)

    def delay_for(self, run_attempt_count: int) -> timedelta:
        """The wait after the ``run_attempt_count``-th attempt (see :func:`backoff_delay_for`)."""
        return backoff_delay_for(self.policy, self.delay, run_attempt_count)

    def next_run_at(self, last_enqueue_time: datetime, run_attempt_count: int) -> datetime:
        """§3.3 branch 2: ``lastEnqueueTime + min(delay(n), 5 h)`` for a backed-off work."""
        return last_enqueue_time + self.delay_for(run_attempt_count)


def _clamped(field: str, value: timedelta, low: timedelta, high: timedelta | None) -> timedelta:
    if value < timedelta(0):
        msg = f"must not be negative (got {value}); allowed: {low} to {high or 'no limit'}"
        raise ValueError(msg)
    used = max(value, low) if high is None else min(max(value, low), high)
    if used != value:
        warnings.warn(
            f"{field} {value} is outside WorkManager's range {low} to {high or 'no limit'}; "
            f"using {used}, as WorkManager does.",
            UserWarning,
            stacklevel=2,
        )
    return used


def _stop_reason(value: Any) -> StopReason:
    return StopReason.parse(value)


_Duration = Annotated[timedelta, Field(ge=timedelta(0))]


# -- requests and specs ----------------------------------------------------------------------


class _RequestFields(_Model):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: UUID = Field(default_factory=uuid4)
    worker: StrictStr = Field(default="Worker", min_length=1)
    """The worker class name; always one of the tags."""
    input: WorkData = Field(default_factory=dict)
    tags: frozenset[StrictStr] = frozenset()
    constraints: Constraints = Field(default_factory=Constraints)
    initial_delay: _Duration = timedelta(0)
    backoff_policy: BackoffPolicy = BackoffPolicy.EXPONENTIAL
    backoff_delay: timedelta = DEFAULT_BACKOFF_DELAY
    """Clamped to [10 s, 5 h] with a warning (§3.2)."""
    backoff_on_system_interruptions: StrictBool = False
    keep_results_for_at_least: _Duration = timedelta(0)
    """``keepResultsForAtLeast``: how long a finished work is kept before WorkManager may
    prune it by itself (§10.6; ``WorkGraph.prune_work(expired_only=True)``)."""

    @field_validator("backoff_delay")
    @classmethod
    def _clamp_backoff(cls, value: timedelta) -> timedelta:
        return _clamped("backoff_delay", value, MIN_BACKOFF_DELAY, MAX_BACKOFF_DELAY)

    @property
    def backoff(self) -> Backoff:
        """The backoff criteria as one value."""
        return Backoff.model_construct(policy=self.backoff_policy, delay=self.backoff_delay)

    @model_validator(mode="after")
    def _worker_is_a_tag(self) -> Self:
        if self.worker not in self.tags:
            object.__setattr__(self, "tags", self.tags | {self.worker})
        return self


class WorkRequest(_RequestFields):
    """A one-time work request (``OneTimeWorkRequest``); its ``id`` is fixed at construction."""

    input_merger: Literal["overwriting", "array"] = "overwriting"
    """``OverwritingInputMerger`` (default) or ``ArrayCreatingInputMerger`` (§5.4)."""


class PeriodicWorkRequest(_RequestFields):
    """A periodic work request; interval and flex are clamped as WorkManager clamps them."""

    repeat_interval: timedelta = MIN_PERIODIC_INTERVAL
    """At least 15 minutes (clamped with a warning)."""
    flex_interval: timedelta | None = None
    """Between 5 minutes and the interval (clamped); ``None`` means equal to the interval."""

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


class _Runtime(BaseModel):
    run_attempt_count: int = Field(default=0, ge=0)
    generation: int = Field(default=0, ge=0)
    last_enqueue_time: AwareDatetime | None = None
    """When the work was last enqueued; ``None`` until then (a BLOCKED work)."""
    stop_reason: Annotated[StopReason, BeforeValidator(_stop_reason)] = StopReason.NOT_STOPPED


class WorkSpec(WorkRequest, _Runtime):
    """The context of a one-time or chained work: its request and what happened to it."""

    output: WorkData = Field(default_factory=dict)
    prerequisites: dict[UUID, WorkState] = Field(default_factory=dict)
    """Chained work only: the last known state of each direct prerequisite."""


class PeriodicWorkSpec(PeriodicWorkRequest, _Runtime):
    """The context of a periodic work; ``period_count`` counts completed periods."""

    period_count: int = Field(default=0, ge=0)


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
    stop_reason: StopReason
    initial_delay: timedelta
    periodicity: Periodicity | None
    constraints: Constraints
    progress: dict[str, Any] = Field(default_factory=dict)
    """What the running worker last reported (``WorkGraph.set_progress``); empty otherwise
    (§1.3: deleted when a result is handled, kept when the work is stopped)."""
