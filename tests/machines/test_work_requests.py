"""Building work requests: every rule of spec workmanager.md §7.2 (V1-V7) with WorkManager's
message, expedited work (§10.4), and errors that are never bare (§10.7)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecyclekit import LifecycleError, PayloadError, TransitionRejected
from lifecyclekit.machines import (
    Constraints,
    DeviceConditions,
    OneTimeWork,
    PeriodicWork,
    PeriodicWorkRequest,
    WorkRequest,
)
from lifecyclekit.machines.workmanager.model import (
    LATEST_INSTANT,
    ContentUriTrigger,
    OutOfQuotaPolicy,
)
from tests.machines.conftest import ManualClock

IDLE = Constraints(requires_device_idle=True)
V1 = "Cannot set backoff criteria on an idle mode job"
V3 = "PeriodicWorkRequests cannot be expedited"
V4 = "Expedited jobs only support network and storage constraints"
V5 = "Expedited jobs cannot be delayed"
V6 = "The given initial delay is too large and will cause an overflow!"
V7 = "Cannot set Long.MAX_VALUE as the schedule override time"
LONG_MAX = 2**63 - 1

# (request class, fields, the field named, WorkManager's message)
REFUSED: list[Any] = [
    pytest.param(
        WorkRequest, {"backoff_delay": timedelta(seconds=20), "constraints": IDLE},
        "constraints.requires_device_idle", V1, id="V1-backoff-delay-on-idle",
    ),
    pytest.param(
        WorkRequest, {"backoff_policy": "EXPONENTIAL", "constraints": IDLE},
        "constraints.requires_device_idle", V1, id="V1-default-criteria-set-explicitly",
    ),
    pytest.param(
        PeriodicWorkRequest, {"backoff_policy": "LINEAR", "constraints": IDLE},
        "constraints.requires_device_idle", V1, id="V2-periodic-backoff-on-idle",
    ),
    pytest.param(PeriodicWorkRequest, {"expedited": True}, "expedited", V3, id="V3"),
    pytest.param(
        WorkRequest, {"expedited": True, "constraints": {"requires_charging": True}},
        "constraints", V4, id="V4-charging",
    ),
    pytest.param(
        WorkRequest, {"expedited": True, "constraints": {"requires_battery_not_low": True}},
        "constraints", V4, id="V4-battery-not-low",
    ),
    pytest.param(
        WorkRequest, {"expedited": True, "constraints": IDLE}, "constraints", V4,
        id="V4-device-idle",
    ),
    pytest.param(
        WorkRequest, {"expedited": True, "constraints": {"content_uri_triggers": ["content://a"]}},
        "constraints", V4, id="V4-content-uri-triggers",
    ),
    pytest.param(
        WorkRequest, {"expedited": True, "initial_delay": timedelta(milliseconds=1)},
        "initial_delay", V5, id="V5",
    ),
    pytest.param(
        WorkRequest, {"initial_delay": timedelta.max}, "initial_delay", V6, id="V6-one-time",
    ),
    pytest.param(
        PeriodicWorkRequest, {"initial_delay": timedelta(days=3_000_000)}, "initial_delay", V6,
        id="V6-periodic",
    ),
    pytest.param(
        PeriodicWorkRequest,
        {
            "initial_delay": timedelta(days=2_000_000),
            "repeat_interval": timedelta(days=1_000_000),
            "flex_interval": timedelta(minutes=5),
        },
        "initial_delay", V6, id="V6-periodic-first-period-with-flex",
    ),
    pytest.param(
        PeriodicWorkRequest, {"repeat_interval": timedelta.max}, "repeat_interval",
        "The given repeat interval is too large and will cause an overflow!",
        id="10.7-repeat-interval-overflow",
    ),
    pytest.param(
        PeriodicWorkRequest, {"next_schedule_time_override": LONG_MAX},
        "next_schedule_time_override", V7, id="V7-long-max-millis",
    ),
    pytest.param(
        PeriodicWorkRequest, {"next_schedule_time_override": LATEST_INSTANT},
        "next_schedule_time_override", V7, id="V7-last-instant",
    ),
    pytest.param(
        PeriodicWorkRequest, {"next_schedule_time_override": 10**20},
        "next_schedule_time_override", "outside the dates a datetime holds",
        id="10.7-override-millis-overflow",
    ),
    pytest.param(
        WorkRequest, {"out_of_quota_policy": "DROP_WORK_REQUEST"}, "out_of_quota_policy",
        "applies to expedited work only", id="10.4-policy-without-expedited",
    ),
    pytest.param(
        PeriodicWorkRequest,
        {"clear_next_schedule_time_override": True, "next_schedule_time_override": 1},
        "clear_next_schedule_time_override", "cannot be given too",
        id="4.3-set-and-clear-at-once",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "fields", "field", "message"), REFUSED)
def test_build_rules_refuse_with_workmanagers_message(
    kind: type[WorkRequest | PeriodicWorkRequest],
    fields: dict[str, Any],
    field: str,
    message: str,
) -> None:
    """§7.2: a PayloadError (also ValueError, WorkManager's IllegalArgumentException) naming
    the field, carrying WorkManager's exact text and saying how to fix it."""
    with pytest.raises(PayloadError) as info:
        kind(**fields)
    assert isinstance(info.value, ValueError)
    assert field in [name for name, _, _ in info.value.errors]
    text = next(m for name, m, _ in info.value.errors if name == field)
    assert message in text
    assert len(text) > len(message)  # says what to do about it


ACCEPTED: list[Any] = [
    pytest.param(WorkRequest, {"constraints": IDLE}, id="V1-idle-without-backoff"),
    pytest.param(
        WorkRequest, {"backoff_delay": timedelta(minutes=1)}, id="V1-backoff-without-idle"
    ),
    pytest.param(
        PeriodicWorkRequest, {"constraints": IDLE, "backoff_on_system_interruptions": True},
        id="V2-idle-with-backoff-on-interruptions-only",
    ),
    pytest.param(
        WorkRequest,
        {"expedited": True, "out_of_quota_policy": "DROP_WORK_REQUEST",
         "constraints": {"network_type": "UNMETERED", "requires_storage_not_low": True}},
        id="V4-network-and-storage",
    ),
    pytest.param(
        WorkRequest, {"constraints": {"content_uri_triggers": ["content://a"]}},
        id="V4-triggers-without-expedited",
    ),
    pytest.param(WorkRequest, {"initial_delay": timedelta(days=365 * 100)}, id="V6-a-century"),
    pytest.param(
        PeriodicWorkRequest, {"next_schedule_time_override": 1_767_225_600_000},
        id="V7-epoch-millis",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "fields"), ACCEPTED)
def test_what_workmanager_builds_is_built(
    kind: type[WorkRequest | PeriodicWorkRequest], fields: dict[str, Any]
) -> None:
    """The neighbours of each rule are accepted and keep their values."""
    request = kind(**fields)
    for name, value in fields.items():
        if name not in ("constraints", "next_schedule_time_override"):
            assert getattr(request, name) == value


def test_backoff_criteria_set_follows_the_arguments() -> None:
    """WorkManager's backoffCriteriaSet: true once backoff_policy or backoff_delay is given,
    kept through model_dump, so a stored idle-mode work restores."""
    assert WorkRequest().backoff_criteria_set is False
    assert WorkRequest(backoff_policy="LINEAR").backoff_criteria_set is True
    idle = WorkRequest(constraints=IDLE)
    assert WorkRequest(**idle.model_dump()).backoff_criteria_set is False
    with pytest.raises(PayloadError, match=V1):
        WorkRequest(**(idle.model_dump() | {"backoff_criteria_set": True}))


def test_a_refused_assignment_changes_nothing() -> None:
    """§10.7: assigning a field re-checks the rules; a refusal is a PayloadError (never
    pydantic's ValidationError) and leaves the request as it was."""
    request = WorkRequest(constraints=IDLE)
    before = request.model_dump()
    with pytest.raises(PayloadError, match=V1):
        request.backoff_delay = timedelta(minutes=1)  # setBackoffCriteria on an idle job
    with pytest.raises(PayloadError, match=V6):
        request.initial_delay = timedelta.max
    with pytest.raises(PayloadError, match="greater than or equal"):
        request.initial_delay = timedelta(seconds=-1)
    assert request.model_dump() == before
    with pytest.raises(PayloadError, match="frozen"):
        request.constraints.requires_charging = True  # type: ignore[misc]


def test_v6_counts_from_the_clock_of_the_lifecycle() -> None:
    """V6 when enqueued: a delay that fits from today but not from the work's clock is refused
    when the work is created, not when its WorkInfo is read."""
    late = ManualClock(datetime(9000, 1, 1, tzinfo=UTC))
    delay = timedelta(days=400_000)
    assert WorkRequest(initial_delay=delay).initial_delay == delay
    with pytest.raises(PayloadError, match=V6) as info:
        OneTimeWork(initial_delay=delay, clock=late)
    assert info.value.errors[0][0] == "initial_delay"
    with pytest.raises(PayloadError, match=V6):
        PeriodicWork(initial_delay=delay, clock=late)


def test_a_schedule_at_the_end_of_time_reads() -> None:
    """§10.7: a backoff that would run past the last date reads as the last instant, never as
    an OverflowError (reachable only with a clock in the year 9999)."""
    clock = ManualClock(LATEST_INSTANT - timedelta(seconds=10))
    work = OneTimeWork(clock=clock)
    work.start()
    work.retry()
    assert work.info().next_schedule_time == LATEST_INSTANT


# -- expedited work (§10.4) ------------------------------------------------------------------


def test_expedited_is_visible_in_work_info(clock: ManualClock) -> None:
    """§10.4: WorkInfo says whether the work is expedited and with which policy; expedited
    without a policy takes WorkSpec's default, RUN_AS_NON_EXPEDITED_WORK_REQUEST."""
    plain = OneTimeWork(clock=clock).info()
    assert (plain.expedited, plain.out_of_quota_policy) == (False, None)
    default = OneTimeWork(expedited=True, clock=clock).info()
    assert (default.expedited, default.out_of_quota_policy) == (
        True,
        OutOfQuotaPolicy.RUN_AS_NON_EXPEDITED_WORK_REQUEST,
    )
    drop = OneTimeWork(expedited=True, out_of_quota_policy="DROP_WORK_REQUEST", clock=clock)
    assert drop.info().out_of_quota_policy is OutOfQuotaPolicy.DROP_WORK_REQUEST


NO_QUOTA = DeviceConditions(expedited_quota=False)


@pytest.mark.parametrize(
    ("fields", "conditions", "runs"),
    [
        pytest.param({"expedited": True, "out_of_quota_policy": "DROP_WORK_REQUEST"}, NO_QUOTA,
                     False, id="10.4-drop-without-quota-stays-enqueued"),
        pytest.param({"expedited": True, "out_of_quota_policy": "DROP_WORK_REQUEST"},
                     DeviceConditions(), True, id="10.4-drop-with-quota-runs"),
        pytest.param({"expedited": True}, NO_QUOTA, True,
                     id="10.4-run-as-non-expedited-without-quota-runs"),
        pytest.param({}, NO_QUOTA, True, id="10.4-quota-is-no-matter-for-ordinary-work"),
    ],
)  # fmt: skip
def test_out_of_quota_policy_at_start(
    clock: ManualClock, fields: dict[str, Any], conditions: DeviceConditions, runs: bool
) -> None:
    """§10.4: DROP_WORK_REQUEST drops the run without quota (the start is refused, the work
    stays ENQUEUED, nothing changes); RUN_AS_NON_EXPEDITED_WORK_REQUEST runs as ordinary work."""
    work = OneTimeWork(clock=clock, **fields)
    before = work.snapshot()
    if runs:
        work.start(conditions=conditions)
        assert work.state == "running"
        return
    with pytest.raises(TransitionRejected, match=r"quota_allows is False \(no expedited quota"):
        work.start(conditions=conditions)
    assert work.snapshot() == before


def test_content_uri_triggers_gate_the_start(clock: ManualClock) -> None:
    """§7.1: a work with content-URI triggers runs once a watched URI changed."""
    constraints = Constraints(
        content_uri_triggers=[
            ContentUriTrigger(uri="content://media", triggered_for_descendants=True)
        ]
    )
    work = OneTimeWork(constraints=constraints, clock=clock)
    assert constraints.unmet(DeviceConditions(content_changed=False)) == [
        "content_uri_triggers but device reports content_changed=False"
    ]
    with pytest.raises(TransitionRejected, match="content_changed=False"):
        work.start(conditions=DeviceConditions(content_changed=False))
    work.start(conditions=DeviceConditions())
    assert work.state == "running"


# -- any request that builds gives a WorkInfo that reads (§10.7) -----------------------------

DURATIONS = st.one_of(
    st.timedeltas(min_value=timedelta(0)),
    st.sampled_from(
        [timedelta(0), timedelta(minutes=20), timedelta(days=2_912_000), timedelta.max]
    ),
)
COMMON = {
    "backoff_delay": DURATIONS,
    "backoff_policy": st.sampled_from(["EXPONENTIAL", "LINEAR"]),
    "backoff_on_system_interruptions": st.booleans(),
    "expedited": st.booleans(),
    "out_of_quota_policy": st.sampled_from([None, *OutOfQuotaPolicy]),
    "constraints": st.builds(
        Constraints,
        requires_charging=st.booleans(),
        requires_device_idle=st.booleans(),
        requires_storage_not_low=st.booleans(),
    ),
}
ONE_TIME = st.fixed_dictionaries({"initial_delay": DURATIONS}, optional=COMMON)
PERIODIC = st.fixed_dictionaries(
    {"initial_delay": DURATIONS},
    optional={
        **COMMON,
        "repeat_interval": DURATIONS,
        "flex_interval": DURATIONS,
        "next_schedule_time_override": st.one_of(
            st.datetimes(timezones=st.just(UTC)), st.integers(), st.just(LONG_MAX)
        ),
    },
)
EVENTS = st.lists(st.sampled_from(["start", "retry", "succeed", "stop", "cancel"]), max_size=8)


@given(st.one_of(st.tuples(st.just(False), ONE_TIME), st.tuples(st.just(True), PERIODIC)), EVENTS)
def test_any_request_that_builds_gives_a_work_info_that_reads(
    case: tuple[bool, dict[str, Any]], events: list[str]
) -> None:
    """§10.7: a request is refused when built (a PayloadError) or its work runs and its
    WorkInfo reads after every event; no KeyError, OverflowError or AttributeError."""
    periodic, fields = case
    kind, lifecycle = (
        (PeriodicWorkRequest, PeriodicWork) if periodic else (WorkRequest, OneTimeWork)
    )
    clock = ManualClock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # clamping warns (§3.2)
        try:
            request = kind(**fields)
            work = lifecycle(clock=clock, **request.model_dump())
        except PayloadError:
            return
    work.info()
    for event in events:
        due = work.info().next_schedule_time
        if due is not None and due > clock.now:
            clock.now = due
        try:
            work.send(event, **({"reason": 7} if event == "stop" else {}))
        except LifecycleError:
            pass
        info = work.info()
        assert info.state.value == work.state_value
    assert lifecycle.restore(work.snapshot(), clock=clock).info() == work.info()
