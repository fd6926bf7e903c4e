"""Bounds on what a work's data may hold: values WorkManager's types cannot hold are refused
with a PayloadError naming the field, so no later step runs out of memory or overflows."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lifecyclekit import PayloadError, registry
from lifecyclekit.machines import (
    BackoffPolicy,
    OneTimeWork,
    PeriodicWorkRequest,
    WorkGraph,
    WorkRequest,
    WorkResult,
)
from lifecyclekit.machines.workmanager.model import (
    LATEST_INSTANT,
    MAX_BACKOFF_DELAY,
    backoff_delay_for,
)
from lifecyclekit.store import open_store
from tests.helpers import BACKENDS, backend_url
from tests.machines.conftest import ManualClock

INT_MAX = 2**31 - 1


@pytest.mark.parametrize(
    "count", [pytest.param(INT_MAX + 1, id="int-max-plus-1"), pytest.param(10**29, id="1e29")]
)
def test_run_attempt_count_beyond_int_max_is_refused(count: int) -> None:
    """WorkManager's runAttemptCount is an Int: past Int.MAX_VALUE it is refused, naming the
    field, the value and the bound."""
    with pytest.raises(PayloadError, match=rf"run_attempt_count: .*{INT_MAX} \(got {count}\)"):
        registry.create("one-time-work", worker="W", run_attempt_count=count)


def test_a_start_at_int_max_keeps_the_count_and_backs_off_five_hours(
    clock: ManualClock,
) -> None:
    """At Int.MAX_VALUE a start keeps the count there (it never wraps or overflows the field),
    and the next run is the 5-hour cap after the retry."""
    work = OneTimeWork(worker="W", clock=clock, run_attempt_count=INT_MAX - 1)
    clock.advance(hours=5)
    work.start()
    assert work.context.run_attempt_count == INT_MAX
    work.finish(WorkResult.retry())
    clock.advance(hours=5)
    work.start()
    assert work.context.run_attempt_count == INT_MAX
    work.finish(WorkResult.retry())
    assert work.info().next_schedule_time == clock.now + MAX_BACKOFF_DELAY


@pytest.mark.parametrize("count", [11, 63, 64, 600, 1000])
def test_exponential_backoff_of_a_huge_attempt_count_is_the_cap(count: int) -> None:
    """Any attempt count from the 11th on backs off the 5-hour cap (§3.3). Counts that would
    need gigabytes unbounded are tested in a memory-limited process below."""
    delay = backoff_delay_for(BackoffPolicy.EXPONENTIAL, timedelta(seconds=30), count)
    assert delay == MAX_BACKOFF_DELAY
    linear = backoff_delay_for(BackoffPolicy.LINEAR, timedelta(seconds=30), count)
    assert linear == min(count * timedelta(seconds=30), MAX_BACKOFF_DELAY)


def test_huge_attempt_counts_need_no_memory() -> None:
    """The backoff of an attempt count at Int.MAX_VALUE (and of 2**40 given to the public
    function) is computed within 1 GB of address space: the exponent is capped, no
    billion-digit integer is built (it took 23 GB before)."""
    script = textwrap.dedent(
        """
        import resource
        from datetime import timedelta
        from lifecyclekit.machines import BackoffPolicy, OneTimeWork, WorkResult
        from lifecyclekit.machines.workmanager.model import backoff_delay_for
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
        print(backoff_delay_for(BackoffPolicy.EXPONENTIAL, timedelta(seconds=30), 2**40))
        work = OneTimeWork(worker="W", run_attempt_count=2**31 - 2)
        work.context.last_enqueue_time -= timedelta(hours=5)
        work.start()
        work.finish(WorkResult.retry())
        print(work.info().next_schedule_time - work.context.last_enqueue_time)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["5:00:00", "5:00:00"]


HUGE_KEEP = timedelta(days=999_999_999)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda keep: WorkRequest(keep_results_for_at_least=keep), id="one-time"),
        pytest.param(
            lambda keep: PeriodicWorkRequest(keep_results_for_at_least=keep), id="periodic"
        ),
        pytest.param(
            lambda keep: registry.create(
                "one-time-work", worker="W", keep_results_for_at_least=keep
            ),
            id="one-time-work-lifecycle",
        ),
        pytest.param(
            lambda keep: registry.create(
                "periodic-work", worker="W", keep_results_for_at_least=keep
            ),
            id="periodic-work-lifecycle",
        ),
    ],
)
@pytest.mark.parametrize(
    "keep", [pytest.param(HUGE_KEEP, id="999999999-days"), pytest.param(None, id="at-the-bound")]
)
def test_a_retention_past_the_last_date_is_refused_when_built(
    build: Any, keep: timedelta | None
) -> None:
    """V6's rule for keep_results_for_at_least: a retention that, counted from now, ends past
    the last date a datetime holds is refused naming the field and the bound (it made
    prune_work(expired_only=True) raise OverflowError)."""
    if keep is None:
        keep = LATEST_INSTANT - datetime.now(UTC)
    with pytest.raises(PayloadError, match=r"keep_results_for_at_least: is too large: .* keep it"):
        build(keep)


def test_a_retention_under_the_bound_prunes_without_overflow(
    graph: WorkGraph, clock: ManualClock
) -> None:
    """A retention just under the bound is accepted, and prune_work(expired_only=True) keeps
    the work (it is not expired) while prune_work() removes it; on every back-end."""
    keep = LATEST_INSTANT - datetime.now(UTC) - timedelta(days=1)
    request = WorkRequest(worker="K", keep_results_for_at_least=keep)
    graph.enqueue(request)
    graph.start(request.id)
    graph.finish(request.id, WorkResult.success())
    clock.advance(days=400)
    assert graph.prune_work(expired_only=True) == []
    assert graph.prune_work() == [request.id]


# (context data, what the message says)
UNSTORABLE: list[Any] = [
    pytest.param({"input": {"x": float("nan")}}, r"input: x: nan cannot be stored", id="nan"),
    pytest.param({"input": {"x": float("inf")}}, r"input: x: inf cannot be stored", id="inf"),
    pytest.param(
        {"input": {"x": [1.5, float("-inf")]}}, r"input: x: -inf cannot be stored",
        id="-inf-in-an-array",
    ),
    pytest.param({"input": {"x": "a\x00b"}}, r"input: x: 'a\\x00b' holds a NUL", id="nul-value"),
    pytest.param({"input": {"k\x00": 1}}, r"input: a Data key: 'k\\x00' holds a NUL",
                 id="nul-key"),
    pytest.param({"input": {"x": ["ok", "\x00"]}}, r"input: x: '\\x00' holds a NUL",
                 id="nul-in-an-array"),
    pytest.param({"worker": "W\x00"}, r"worker: the worker name: 'W\\x00' holds a NUL",
                 id="nul-worker"),
    pytest.param({"worker": "W", "tags": ["t\x00"]}, r"tags: a tag: 't\\x00' holds a NUL",
                 id="nul-tag"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "pattern"), UNSTORABLE)
def test_unstorable_values_are_refused_in_memory(data: dict[str, Any], pattern: str) -> None:
    """NaN and infinities (JSON has none: they came back as null) and NUL characters
    (PostgreSQL cannot store them) are refused by requests, results and progress alike."""
    with pytest.raises(PayloadError, match=pattern):
        WorkRequest(**data)
    if "input" in data:
        with pytest.raises(PayloadError, match=pattern.replace("input", "output")):
            WorkResult.success(data["input"])


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request.param, tmp_path, "bounds.db")


@pytest.mark.parametrize(("data", "pattern"), UNSTORABLE)
def test_unstorable_values_are_refused_on_every_backend(
    store_url: str, data: dict[str, Any], pattern: str
) -> None:
    """One rule on SQLite and PostgreSQL: the value is refused before anything is stored,
    where SQLite used to keep a NUL that PostgreSQL refused, and NaN came back as null."""
    with open_store(store_url, create=True) as store:
        with pytest.raises(PayloadError, match=pattern):
            store.create("one-time-work", id="w", **({"worker": "W"} | data))
        assert store.count() == 0
