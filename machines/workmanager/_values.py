"""The values WorkManager's requests are made of: states, policies, stop reasons, ``Data``,
constraints, device conditions and backoff (spec ``workmanager.md`` §1-§3, §7.1).

Private to the wing: everything here is re-exported by :mod:`.model`, where applications
import it from. Things WorkManager clamps are clamped, with a warning naming the field, the
value given and the value used (rule R3).
"""

from __future__ import annotations

import enum
import json
import math
import warnings
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)

from lifecyclekit import PayloadError

__all__ = [
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
    "StopReason",
    "UpdateResult",
    "WorkData",
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
_INT_MAX = 2**31 - 1
_MAX_EXPONENT = 62
"""Backoff's exponent cap: ``2**62`` ms is far past the 5-hour cap for any delay >= 1 ms."""
LATEST_INSTANT = datetime.max.replace(tzinfo=UTC)
"""The last instant a ``datetime`` holds; WorkManager's bound, ``Long.MAX_VALUE`` milliseconds
(year 292 278 994), lies far beyond it, so this is the bound that refuses an overflow (V6)."""


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
    if kind is float and not math.isfinite(item):
        msg = (
            f"{key}: {item!r} cannot be stored (JSON has no NaN or infinity, so it would "
            "come back as null); pass a finite float, or null"
        )
        raise ValueError(msg)
    if kind is str:
        no_nul(item, key)
    return kind


def no_nul(value: str, what: str) -> str:
    """``value``, refused if it holds a NUL character: PostgreSQL cannot store one in text
    (SQLite can), so one rule holds on every back-end."""
    if "\x00" in value:
        msg = (
            f"{what}: {value!r} holds a NUL character (\\x00), which PostgreSQL cannot store; "
            "remove it"
        )
        raise ValueError(msg)
    return value


def _check_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        msg = f"Data is a mapping of str keys to {_DATA_TYPES}; got {type(data).__name__}"
        raise ValueError(msg)  # noqa: TRY004 - pydantic wants ValueError
    for key, value in data.items():
        if not isinstance(key, str):
            msg = f"Data keys are strings; got {key!r}"
            raise ValueError(msg)  # noqa: TRY004
        no_nul(key, "a Data key")
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
    ``scalb``; they differ by at most 1 ms, only for delays above 2**24 ms (spec Q7). The
    exponent is capped at 62: any delay of at least 1 ms is past the 5-hour cap long before,
    and an attempt count near ``Int.MAX_VALUE`` must not build a billion-digit integer.
    """
    millis = delay // timedelta(milliseconds=1)
    if policy is BackoffPolicy.LINEAR:
        total = millis * run_attempt_count
    else:
        total = millis * 2 ** min(run_attempt_count - 1, _MAX_EXPONENT)
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
