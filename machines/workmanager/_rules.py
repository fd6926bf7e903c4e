"""The request rules of spec ``workmanager.md`` §7.2 that no single model holds: WorkManager's
messages (verbatim), the overflow rule (V6), schedule-override instants (V7) and the limit on
content-URI-trigger works (V13).

Private to the wing; :mod:`.model` applies these rules and re-exports what applications use.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lifecyclekit import PayloadError

from ._values import _LONG, LATEST_INSTANT, ExistingPeriodicWorkPolicy

if TYPE_CHECKING:
    from .model import PeriodicWorkRequest, WorkRequest

__all__ = [
    "CONTENT_URI_TRIGGER_WORKERS_LIMIT",
    "V1_IDLE_BACKOFF",
    "V3_PERIODIC_EXPEDITED",
    "V4_EXPEDITED_CONSTRAINTS",
    "V5_EXPEDITED_DELAY",
    "V7_OVERRIDE_MAX",
    "V8_OVERRIDE_POLICY",
    "check_content_uri_trigger_limit",
    "micros",
    "overflow",
    "override_instant",
]

CONTENT_URI_TRIGGER_WORKERS_LIMIT = 8
"""``Configuration.contentUriTriggerWorkersLimit``'s default: unfinished works with content-URI
triggers allowed at once (V13)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

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


def micros(delta: timedelta) -> int:
    return delta // _US


def overflow(what: str, delay: int, anchor: datetime) -> str | None:
    """Why ``anchor + delay`` (microseconds) is past the last instant a date holds, if it is.

    WorkManager refuses ``Long.MAX_VALUE - now <= delay`` (V6); the same rule with this
    library's bound, :data:`LATEST_INSTANT`.
    """
    room = LATEST_INSTANT - anchor
    if delay < micros(room):
        return None
    return (
        f"The given {what} is too large and will cause an overflow! It would put the run "
        f"{timedelta(microseconds=min(delay, micros(timedelta.max)))} after "
        f"{anchor.isoformat()}, past {LATEST_INSTANT.date()} (the last date a datetime "
        f"holds); keep it under {room}"
    )


_V7_HINT = f"{V7_OVERRIDE_MAX}; leave it None for no override"


def override_instant(value: Any) -> Any:
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
