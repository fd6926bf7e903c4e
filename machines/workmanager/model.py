"""What Android WorkManager's lifecycles share: constraints, backoff, data, results, specs.

Facts from the project's WorkManager specification (``shared/spec/workmanager.md``), derived
from androidx ``work-runtime`` at commit a9b06aaf (rule R1: the code wins over the docs).
Durations are ``timedelta``; instants are aware ``datetime``; WorkManager's ``Long.MAX_VALUE``
("never") is ``None``. Things WorkManager clamps are clamped here too, with a warning naming
the field, the value given and the value used (rule R3); what WorkManager refuses (spec §7.2,
V1-V8, with its messages) is refused here with a :class:`~lifecyclekit.PayloadError` naming the
field, as is anything a date cannot hold (§10.7).
"""

from __future__ import annotations

import enum
import json
import warnings
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
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

# §3.1 constants.
DEFAULT_BACKOFF_DELAY = timedelta(milliseconds=30_000)
MIN_BACKOFF_DELAY = timedelta(milliseconds=10_000)
MAX_BACKOFF_DELAY = timedelta(milliseconds=18_000_000)
MIN_PERIODIC_INTERVAL = timedelta(milliseconds=900_000)
MIN_PERIODIC_FLEX = timedelta(milliseconds=300_000)
MAX_DATA_BYTES = 10 * 1024
"""``androidx.work.Data.MAX_DATA_BYTES``; measured here on the JSON encoding of the data."""

CONTENT_URI_TRIGGER_WORKERS_LIMIT = 8
"""``Configuration.contentUriTriggerWorkersLimit``'s default: unfinished works with content-URI
triggers allowed at once (V13)."""

_LONG = 2**63
_INT_MAX = 2**31 - 1
LATEST_INSTANT = datetime.max.replace(tzinfo=UTC)
"""The last instant a ``datetime`` holds; WorkManager's bound, ``Long.MAX_VALUE`` milliseconds
(year 292 278 994), lies far beyond it, so this is the bound that refuses an overflow (V6)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


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


class OutOfQuotaPolicy(enum.StrEnum):
    """``androidx.work.OutOfQuotaPolicy``: what expedited work does once the app's expedited
    quota is spent (§7.2, §10.4)."""

    RUN_AS_NON_EXPEDITED_WORK_REQUEST = "RUN_AS_NON_EXPEDITED_WORK_REQUEST"
    """Run it as ordinary (non-expedited) work."""
    DROP_WORK_REQUEST = "DROP_WORK_REQUEST"
    """Drop the run (see ``WorkBehaviour.quota_allows`` for what this library records)."""


class StopReason(enum.IntEnum):
    """``WorkInfo.STOP_REASON_*`` with WorkManager's numbers (§2.4).

    A work's stop reason is one of these members or, for a JobScheduler reason WorkManager
    does not name, a plain ``int`` >= 0 (§10.1).
    """

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
    def parse(cls, value: Any) -> StopReason | int:
        """A stop reason WorkManager can store (spec §10.1, which replaces decision Q9).

        ``interrupt(stopReason)`` stores whatever reason it is given, so every JobScheduler
        reason counts: a named reason comes back as its member (given as the member, its
        number, or its name with or without ``STOP_REASON_``); any other int in
        ``[0, 2**31 - 1]`` (``0`` is JobScheduler's ``STOP_REASON_UNDEFINED``, which androidx's
        own tests pass to ``interrupt``) comes back as that int. The upper bound is Kotlin's
        ``Int.MAX_VALUE``, the type of ``WorkInfo.stopReason``.

        Raises:
            ValueError: a value in a range WorkManager reserves and never stores
                (``[-255, -128]`` except ``-128``, ``[-127, -1]``), any other negative, a
                number beyond ``Int.MAX_VALUE``, or an unknown name.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            if value in cls._value2member_map_:
                return cls(value)
            if 0 <= value <= _INT_MAX:
                return value
        elif isinstance(value, str):
            name = value.removeprefix("STOP_REASON_")
            if name in cls.__members__:
                return cls[name]
        known = ", ".join(f"{m.name} ({m.value})" for m in cls)
        msg = (
            f"{value!r} is not a stop reason WorkManager stores. Valid: a named reason "
            f"({known}) or any JobScheduler reason, an int in [0, {_INT_MAX}]. WorkManager "
            "keeps -512 (UNKNOWN) and -256 (NOT_STOPPED) as specials, reserves [-255, -128] for "
            "its own reasons (only -128 is assigned) and leaves [-127, -1] unused on purpose; "
            "pass a StopReason member, its name, or its number"
        )
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
    """Constructing or assigning with bad data raises PayloadError (naming each field), not
    pydantic's ValidationError, like every other refusal in lifecyclekit; a refused
    assignment changes nothing."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise PayloadError.from_validation_error(type(self).__name__, "context", exc) from None

    def __setattr__(self, name: str, value: Any) -> None:
        saved = dict(self.__dict__)
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            # pydantic has already written the value when a model validator refuses it.
            self.__dict__.update(saved)
            raise PayloadError.from_validation_error(type(self).__name__, "context", exc) from None


def _refuse(field: str, message: str, value: Any) -> PayloadError:
    """A refusal naming its field, raised from a model validator: pydantic wraps it and
    ``PayloadError.from_validation_error`` unwraps the field names again."""
    return PayloadError("", "", [(field, message, value)])


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
    content_changed: StrictBool = True
    """A content URI the work watches (``Constraints.content_uri_triggers``) has changed."""
    expedited_quota: StrictBool = True
    """The app has expedited-job quota left (spec §10.4): the quota is the device's."""


_NETWORK_NEEDS: dict[NetworkType, tuple[tuple[str, bool], ...]] = {
    NetworkType.NOT_REQUIRED: (),
    NetworkType.CONNECTED: (("connected", True),),
    NetworkType.UNMETERED: (("connected", True), ("unmetered", True)),
    NetworkType.NOT_ROAMING: (("connected", True), ("not_roaming", True)),
    NetworkType.METERED: (("connected", True), ("unmetered", False)),
    NetworkType.TEMPORARILY_UNMETERED: (("connected", True), ("unmetered", True)),
}


class ContentUriTrigger(_Model):
    """``Constraints.ContentUriTrigger``: a content URI whose change lets the work run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: StrictStr = Field(min_length=1)
    triggered_for_descendants: StrictBool = False
    """Changes below the URI count too."""


def _triggers(value: Any) -> Any:
    """A bare URI string stands for ``ContentUriTrigger(uri=...)``."""
    if isinstance(value, list | tuple | set | frozenset):
        return [{"uri": item} if isinstance(item, str) else item for item in value]
    return value


def _distinct(value: tuple[ContentUriTrigger, ...]) -> tuple[ContentUriTrigger, ...]:
    return tuple(dict.fromkeys(value))


class Constraints(_Model):
    """``androidx.work.Constraints`` (the fields that gate a start, §7.1).

    Constraints are not validated against each other (§7.1); expedited work accepts only the
    network and storage ones (V4).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    network_type: NetworkType = NetworkType.NOT_REQUIRED
    requires_charging: StrictBool = False
    requires_battery_not_low: StrictBool = False
    requires_device_idle: StrictBool = False
    requires_storage_not_low: StrictBool = False
    content_uri_triggers: Annotated[
        tuple[ContentUriTrigger, ...], BeforeValidator(_triggers), AfterValidator(_distinct)
    ] = ()
    """The work runs once one of these content URIs changed (``addContentUriTrigger``); a set
    in WorkManager, so repeats are dropped (first one kept)."""

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
        if self.content_uri_triggers and not conditions.content_changed:
            problems.append("content_uri_triggers but device reports content_changed=False")
        return problems

    def unsupported_when_expedited(self) -> list[str]:
        """The constraints expedited work cannot have (V4: all but network and storage)."""
        return [
            name
            for name in (
                "content_uri_triggers",
                "requires_battery_not_low",
                "requires_charging",
                "requires_device_idle",
            )
            if getattr(self, name)
        ]


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


class Backoff(_Model):
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


def _stop_reason(value: Any) -> StopReason | int:
    return StopReason.parse(value)


_Duration = Annotated[timedelta, Field(ge=timedelta(0))]
_BACKOFF_FIELDS = frozenset({"backoff_policy", "backoff_delay"})

# WorkManager's messages (§7.2), verbatim.
V1_IDLE_BACKOFF = "Cannot set backoff criteria on an idle mode job"
V3_PERIODIC_EXPEDITED = "PeriodicWorkRequests cannot be expedited"
V4_EXPEDITED_CONSTRAINTS = "Expedited jobs only support network and storage constraints"
V5_EXPEDITED_DELAY = "Expedited jobs cannot be delayed"
V7_OVERRIDE_MAX = "Cannot set Long.MAX_VALUE as the schedule override time"
V8_OVERRIDE_POLICY = (
    "Next Schedule Time Override must be used with ExistingPeriodicWorkPolicyUPDATE "
    "(preferably) or KEEP"
)


def _micros(delta: timedelta) -> int:
    return delta // _US


def _overflow(what: str, delay: int, anchor: datetime) -> str | None:
    """Why ``anchor + delay`` (microseconds) is past the last instant a date holds, if it is.

    WorkManager refuses ``Long.MAX_VALUE - now <= delay`` (V6); the same rule with this
    library's bound, :data:`LATEST_INSTANT`.
    """
    room = LATEST_INSTANT - anchor
    if delay < _micros(room):
        return None
    return (
        f"The given {what} is too large and will cause an overflow! It would put the run "
        f"{timedelta(microseconds=min(delay, _micros(timedelta.max)))} after "
        f"{anchor.isoformat()}, past {LATEST_INSTANT.date()} (the last date a datetime "
        f"holds); keep it under {room}"
    )


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
        why = _overflow("initial delay", _micros(self.initial_delay), now)
        return [] if why is None else [("initial_delay", why, self.initial_delay)]

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


_V7_HINT = f"{V7_OVERRIDE_MAX}; leave it None for no override"


def _override_instant(value: Any) -> Any:
    """An int is epoch milliseconds, WorkManager's unit; ``Long.MAX_VALUE`` (or the last
    instant a date holds, its counterpart here) is refused (V7)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value == _LONG - 1:
            raise ValueError(_V7_HINT)
        try:
            return _EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            msg = (
                f"{value} epoch milliseconds is outside the dates a datetime holds (years 1 to "
                "9999); give an aware datetime"
            )
            raise ValueError(msg) from None
    if isinstance(value, datetime) and value.replace(tzinfo=None) == datetime.max:
        raise ValueError(_V7_HINT)
    return value


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
        AwareDatetime | None, BeforeValidator(_override_instant)
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
        interval = _micros(self.repeat_interval)
        why = _overflow("repeat interval", interval, now)
        if why is not None:
            return [("repeat_interval", why, self.repeat_interval)]
        flex = self.flex_interval if self.flex_interval is not None else self.repeat_interval
        flex = min(max(flex, MIN_PERIODIC_FLEX), self.repeat_interval)
        first = _micros(self.initial_delay) + interval - _micros(flex)
        why = _overflow("initial delay", first, now)
        return [] if why is None else [("initial_delay", why, self.initial_delay)]

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
    run_attempt_count: int = Field(default=0, ge=0)
    generation: int = Field(default=0, ge=0)
    last_enqueue_time: AwareDatetime | None = None
    """When the work was last enqueued; ``None`` until then (a BLOCKED work)."""
    stop_reason: Annotated[StopReason | int, BeforeValidator(_stop_reason)] = (
        StopReason.NOT_STOPPED
    )
    """A :class:`StopReason`, or a JobScheduler reason WorkManager does not name (§10.1)."""


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


def check_content_uri_trigger_limit(
    works: Iterable[Any],
    requests: Iterable[WorkRequest | PeriodicWorkRequest],
    policy: ExistingPeriodicWorkPolicy | str | None = None,
    limit: int = CONTENT_URI_TRIGGER_WORKERS_LIMIT,
) -> None:
    """V13 ([eu] ``checkContentUriTriggerWorkerLimits``): an enqueue may not bring the
    unfinished works with content-URI triggers past ``limit``.

    Args:
        works: the graph's works (lifecycles), read only when ``requests`` has a triggered
            one, as WorkManager counts only then.
        requests: every request of the enqueue operation, parents included.
        policy: for ``enqueue_unique_periodic_work``: UPDATE is not counted, because
            WorkManager's in-place update does not check the limit (its rare fallback to a
            fresh enqueue, when the name holds nothing or a cancelled work, would; decision).
        limit: ``Configuration.contentUriTriggerWorkersLimit`` (default 8).

    Raises:
        PayloadError: the limit would be exceeded, with WorkManager's message and counts.
    """
    if policy is not None and policy == ExistingPeriodicWorkPolicy.UPDATE:
        return
    new = sum(1 for r in requests if r.constraints.content_uri_triggers)
    if new == 0:
        return
    already = sum(
        1 for w in works if not w.is_finished and w.context.constraints.content_uri_triggers
    )
    if already + new <= limit:
        return
    message = (
        "Too many workers with contentUriTriggers are enqueued:\n"
        f"contentUriTrigger workers limit: {limit};\n"
        f"already enqueued count: {already};\n"
        f"current enqueue operation count: {new}.\n"
        "To address this issue you can: \n"
        "1. enqueue less workers or batch some of workers with content uri triggers together;\n"
        "2. increase limit via Configuration.Builder.setContentUriTriggerWorkersLimit;\n"
        "Please beware that workers with content uri triggers immediately occupy slots in "
        "JobScheduler so no updates to content uris are missed."
    )
    error = PayloadError(
        "WorkRequest", "enqueue", [("constraints.content_uri_triggers", message, new)]
    )
    raise error


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
    expedited: bool = False
    """The request was expedited (§10.4)."""
    out_of_quota_policy: OutOfQuotaPolicy | None = None
    """Its ``OutOfQuotaPolicy`` when expedited, else ``None``."""
