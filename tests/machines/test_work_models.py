"""Shared WorkManager models: constraints, backoff arithmetic, clamping, Data (spec §3, §7)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from lifecyclekit import PayloadError
from lifecyclekit.machines import (
    BackoffPolicy,
    Constraints,
    DeviceConditions,
    NetworkType,
    PeriodicWorkRequest,
    StopReason,
    WorkRequest,
    WorkResult,
)
from lifecyclekit.machines.workmanager.model import MAX_DATA_BYTES, backoff_delay_for

MS = timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("policy", "delay_ms", "attempts", "expected_ms"),
    [
        # §3.3 "Default policy, nth retry: 30 s, 60 s, 120 s, 240 s, ...; n = 10 -> 15 360 000;
        # n >= 11 -> capped at 18 000 000. LINEAR 30 s: 30 s, 60 s, 90 s".
        ("EXPONENTIAL", 30_000, 1, 30_000),
        ("EXPONENTIAL", 30_000, 2, 60_000),
        ("EXPONENTIAL", 30_000, 3, 120_000),
        ("EXPONENTIAL", 30_000, 4, 240_000),
        ("EXPONENTIAL", 30_000, 10, 15_360_000),
        ("EXPONENTIAL", 30_000, 11, 18_000_000),
        ("EXPONENTIAL", 30_000, 40, 18_000_000),
        ("LINEAR", 30_000, 1, 30_000),
        ("LINEAR", 30_000, 2, 60_000),
        ("LINEAR", 30_000, 3, 90_000),
        ("LINEAR", 10_000_000, 2, 18_000_000),
        # Q7: exact integers where WorkManager's float scalb would drift for n = 1.
        ("EXPONENTIAL", 17_000_001, 1, 17_000_001),
    ],
)
def test_backoff_formula(policy: str, delay_ms: int, attempts: int, expected_ms: int) -> None:
    """backoff_delay_for matches the spec's worked examples, capped at 5 hours."""
    got = backoff_delay_for(BackoffPolicy(policy), delay_ms * MS, attempts)
    assert got == expected_ms * MS


@pytest.mark.parametrize(
    ("given", "used"),
    [(timedelta(seconds=1), timedelta(seconds=10)), (timedelta(hours=6), timedelta(hours=5))],
)
def test_backoff_delay_is_clamped_with_a_warning(given: timedelta, used: timedelta) -> None:
    """§3.2: backoff outside [10 s, 5 h] is clamped, and the warning names field and values."""
    with pytest.warns(UserWarning, match=rf"backoff_delay {given} .* using {used}"):
        request = WorkRequest(backoff_delay=given)
    assert request.backoff_delay == used


def test_periodic_interval_and_flex_are_clamped() -> None:
    """§3.2: interval >= 15 min; flex within [5 min, interval]; flex defaults to interval."""
    with pytest.warns(UserWarning, match=r"repeat_interval 0:10:00 .* using 0:15:00"):
        assert PeriodicWorkRequest(repeat_interval=timedelta(minutes=10)).repeat_interval == (
            timedelta(minutes=15)
        )
    with pytest.warns(UserWarning, match=r"flex_interval 0:01:00 .* using 0:05:00"):
        assert PeriodicWorkRequest(flex_interval=timedelta(minutes=1)).flex_interval == (
            timedelta(minutes=5)
        )
    with pytest.warns(UserWarning, match=r"flex_interval 1:00:00 .* using 0:30:00"):
        request = PeriodicWorkRequest(
            repeat_interval=timedelta(minutes=30), flex_interval=timedelta(hours=1)
        )
    assert request.flex_interval == timedelta(minutes=30)
    assert PeriodicWorkRequest(repeat_interval=timedelta(hours=1)).flex_interval == timedelta(
        hours=1
    )


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        ({"backoff_delay": timedelta(seconds=-1)}, r"backoff_delay: .*must not be negative"),
        ({"initial_delay": timedelta(seconds=-1)}, r"initial_delay: .*greater than or equal"),
        ({"repeat_interval": timedelta(-1)}, r"repeat_interval: .*must not be negative"),
        ({"repeat_interval": "soon"}, r"repeat_interval: .*valid timedelta"),
        ({"constraints": {"network_type": "WIFI"}}, r"constraints.network_type: .*'NOT_REQUIRED'"),
        ({"constraints": {"requires_charging": "yes"}}, r"requires_charging: .*boolean"),
        ({"backoff_policy": "RANDOM"}, r"backoff_policy: .*'EXPONENTIAL' or 'LINEAR'"),
        ({"worker": ""}, r"worker: .*at least 1 character"),
        ({"colour": "red"}, r"colour: Extra inputs"),
    ],
)
def test_invalid_request_fields_are_payload_errors(fields: dict[str, Any], pattern: str) -> None:
    """Invalid values (negative, wrong type, unknown names) raise PayloadError naming the field."""
    with pytest.raises(PayloadError, match=pattern):
        PeriodicWorkRequest(**fields)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"a": {"nested": 1}}, r"a: \{'nested': 1\} is not a Data value"),
        ({"a": [1, "x"]}, r"a: a Data array holds one type"),
        ({"a": 2**63}, r"does not fit a 64-bit Long"),
        ({1: "x"}, r"Data keys are strings"),
        ({"big": "x" * MAX_DATA_BYTES}, r"WorkManager allows at most 10240"),
    ],
)
def test_invalid_data_is_refused(data: dict[Any, Any], pattern: str) -> None:
    """Data holds flat scalars and homogeneous arrays, within MAX_DATA_BYTES."""
    with pytest.raises(PayloadError, match=pattern):
        WorkRequest(input=data)
    with pytest.raises(PayloadError, match=pattern):
        WorkResult.success(data)


def test_valid_data_kinds() -> None:
    """Booleans, Longs, floats, strings, nulls and arrays of one of them are Data."""
    data = {
        "b": True,
        "i": -(2**63),
        "f": 1.5,
        "s": "x",
        "n": None,
        "a": [1, 2],
        "ns": [None, "x"],
    }
    assert WorkRequest(input=data).input == data


def test_constraints_unmet_lists_each_with_the_reported_value() -> None:
    """unmet() names every constraint the device does not satisfy, with what it reports."""
    constraints = Constraints(
        network_type=NetworkType.UNMETERED, requires_charging=True, requires_storage_not_low=True
    )
    assert constraints.unmet(DeviceConditions()) == []
    assert constraints.unmet(DeviceConditions(unmetered=False, charging=False)) == [
        "network_type UNMETERED needs unmetered=True, device reports unmetered=False",
        "requires_charging but device reports charging=False",
    ]
    metered = Constraints(network_type="METERED")
    assert metered.unmet(DeviceConditions()) == [
        "network_type METERED needs unmetered=False, device reports unmetered=True"
    ]


def test_worker_is_always_a_tag_and_ids_are_fixed() -> None:
    """The worker class name is among the tags; each request gets its own UUID."""
    first, second = WorkRequest(worker="Upload", tags={"x"}), WorkRequest(worker="Upload")
    assert first.tags == {"Upload", "x"}
    assert first.id != second.id


@pytest.mark.parametrize(
    "value",
    [
        StopReason.CONSTRAINT_CONNECTIVITY,
        7,
        "CONSTRAINT_CONNECTIVITY",
        "STOP_REASON_CONSTRAINT_CONNECTIVITY",
    ],
)
def test_stop_reason_spellings(value: Any) -> None:
    """A member, its number or its name (with or without the prefix) is accepted."""
    assert StopReason.parse(value) is StopReason.CONSTRAINT_CONNECTIVITY


@pytest.mark.parametrize("value", [-1, -127, -129, -255, -300, -513, 2**31, True, "BOGUS"])
def test_reserved_stop_reasons_are_refused(value: Any) -> None:
    """§10.1 (replacing Q9): the ranges WorkManager reserves are refused, naming them."""
    with pytest.raises(ValueError, match=r"\[-255, -128\].*\[-127, -1\]"):
        StopReason.parse(value)


def test_work_result_outcomes() -> None:
    """success/failure carry output; retry carries none."""
    assert WorkResult.success({"k": 1}).output == {"k": 1}
    assert WorkResult.failure().output == {}
    assert WorkResult.retry().outcome == "retry"
    with pytest.raises(ValueError, match="retry\\(\\) carries no output"):
        WorkResult(outcome="retry", output={"k": 1})


def test_backoff_value_object() -> None:
    """Backoff clamps like setBackoffCriteria and computes the spec's next run time."""
    from datetime import UTC, datetime

    from lifecyclekit.machines import Backoff

    start = datetime(2026, 1, 1, tzinfo=UTC)
    linear = Backoff(policy="LINEAR", delay=timedelta(seconds=30))
    assert linear.next_run_at(start, 3) == start + timedelta(seconds=90)
    assert Backoff().next_run_at(start, 11) == start + timedelta(hours=5)
    with pytest.warns(UserWarning, match="using 0:00:10"):
        assert Backoff(delay=timedelta(seconds=1)).delay == timedelta(seconds=10)
    assert WorkRequest(backoff_policy="LINEAR").backoff == Backoff(policy="LINEAR")
