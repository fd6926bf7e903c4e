"""Every wrong argument of the store's Python API is a StoreError (a LifecycleError) saying
what was given and what is valid, on every back-end, and the refusal changes nothing."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from lifecyclekit import Lifecycle, LifecycleError, Registry, State
from lifecyclekit.store import RetryPolicy, Store, StoreError, open_async_store, open_store
from tests.store.conftest import Opener
from tests.store_machines import REGISTRY

# -- find / count ----------------------------------------------------------------------------

FIND_CALLS = [
    pytest.param({"where": [("label", "lamp")]}, r"where= takes a mapping .* not \[", id="list"),
    pytest.param({"where": "label=lamp"}, r"where= takes a mapping", id="str-where"),
    pytest.param({"name": 5}, r"name= takes a lifecycle name .* 5 is not a str", id="int-name"),
    pytest.param({"state": 1.5}, r"state= takes a state id", id="float-state"),
    pytest.param({"name": "to\x00ggle"}, r"NUL character", id="nul-name"),
    pytest.param({"where": {"flips": math.nan}}, r"not a finite number", id="nan"),
    pytest.param({"where": {"flips": math.inf}}, r"not a finite number", id="inf"),
    pytest.param({"where": {"flips": 2**70}}, r"outside 64 bits", id="huge-int"),
    pytest.param({"where": {"a\x00": 1}}, r"context field names", id="nul-key"),
    pytest.param({"where": {"flips": object()}}, r"a object", id="object"),
]


@pytest.mark.parametrize(("kwargs", "message"), FIND_CALLS)
def test_find_and_count_refuse_bad_arguments_alike(
    store: Store, kwargs: dict[str, Any], message: str
) -> None:
    """The same StoreError on SQLite and PostgreSQL (never a driver's error, never [])."""
    store.create("toggle", id="t", label="lamp")
    with pytest.raises(StoreError, match=message):
        store.find(**kwargs)
    with pytest.raises(StoreError, match=message):
        store.count(**kwargs)


# -- send's audit arguments ------------------------------------------------------------------

SEND_CALLS = [
    pytest.param({"metadata": {"x": object()}}, r"metadata\['x'\] is <object", id="object"),
    pytest.param({"metadata": {"x": [1, {2: 3}]}}, r"has the key 2", id="int-key"),
    pytest.param({"metadata": {"x": math.nan}}, r"nan, not a finite number", id="nan"),
    pytest.param({"metadata": {"x": "a\x00b"}}, r"metadata\['x'\] contains a NUL", id="nul"),
    pytest.param({"actor": "ro\x00bot"}, r"actor=\) takes a str .* without NUL", id="actor"),
    pytest.param({"reason": "\x00"}, r"reason=\) takes a str", id="reason"),
    pytest.param({"idempotency_key": "k\x00"}, r"idempotency_key=\)", id="key"),
]


@pytest.mark.parametrize(("kwargs", "message"), SEND_CALLS)
def test_send_refuses_audit_data_no_back_end_stores_alike(
    store: Store, kwargs: dict[str, Any], message: str
) -> None:
    store.create("toggle", id="t")
    with pytest.raises(StoreError, match=message):
        store.send("t", "flip", text="x", **kwargs)
    assert store.get("t").revision == 0
    assert store.changes() == []


def test_consumer_names_with_nul_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="without NUL"):
        store.consumer("mail\x00er")


def test_on_commit_refuses_what_it_cannot_call(store: Store) -> None:
    """A non-callable is refused at once; later sends are unaffected (before: every send
    after on_commit(5) failed with AfterCommitError)."""
    store.create("toggle", id="t")
    with pytest.raises(StoreError, match=r"on_commit\(\) takes a callable .* not 5"):
        store.on_commit(5)  # type: ignore[arg-type]
    assert store.send("t", "flip", text="x").revision == 1


# -- acknowledging the change feed -----------------------------------------------------------


def test_ack_beyond_the_head_is_refused_and_loses_nothing(store: Store) -> None:
    """ack(head + 2) is refused (it would silently skip the next two commits); the consumer
    stays where it was and still receives every later change."""
    store.create("toggle", id="a")
    store.send("a", "flip", text="1")
    reader = store.consumer("mailer")
    (first,) = reader.changes()
    head = first.position
    with pytest.raises(StoreError, match=rf"ack\({head + 2}\) .* beyond .* head \({head}\)"):
        reader.ack(head + 2)
    assert reader.position == 0
    reader.ack(first)
    store.send("a", "flip", text="2")
    store.send("a", "flip", text="3")
    assert [c.record.seq for c in reader.changes()] == [2, 3]


def test_ack_on_an_empty_feed_takes_only_zero(store: Store) -> None:
    reader = store.consumer("c")
    reader.ack(0)
    with pytest.raises(StoreError, match=r"beyond the change feed's head \(0\)"):
        reader.ack(1)
    assert reader.position == 0


# -- watch -----------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [math.nan, -1, -0.5, math.inf, "5", True])
def test_watch_refuses_a_timeout_that_is_not_seconds(store: Store, timeout: Any) -> None:
    """nan used to wait for ever, a negative number was accepted."""
    with pytest.raises(StoreError, match=r"watch\(timeout=\) takes a finite number"):
        store.watch(timeout=timeout)
    with pytest.raises(StoreError, match=r"watch\(timeout=\)"):
        store.consumer("c").watch(timeout=timeout)


# -- open_store and RetryPolicy --------------------------------------------------------------

OPEN_OPTIONS = [
    pytest.param({"pool_size": "3"}, r"pool_size= takes an int >= 1, not '3'", id="pool-str"),
    pytest.param({"pool_size": 0}, r"pool_size= takes an int >= 1, not 0", id="pool-0"),
    pytest.param({"pool_size": -1}, r"pool_size= takes an int >= 1", id="pool-negative"),
    pytest.param({"timeout": math.nan}, r"timeout= takes a finite number .* > 0", id="nan"),
    pytest.param({"timeout": 0}, r"timeout= takes .* > 0, got 0", id="timeout-0"),
    pytest.param({"timeout": -3}, r"timeout= takes", id="timeout-negative"),
    pytest.param({"key_retention": 5}, r"key_retention= takes a timedelta", id="retention-int"),
    pytest.param(
        {"key_retention": timedelta(days=-1)}, r"key_retention= takes", id="retention-negative"
    ),
    pytest.param({"registry": 5}, r"registry= takes a lifecyclekit.Registry", id="registry"),
    pytest.param({"retry": 3}, r"retry= takes a RetryPolicy", id="retry"),
    pytest.param({"clock": "now"}, r"clock= takes a callable", id="clock"),
    pytest.param({"extensions": [5]}, r"extensions= takes a sequence of Extension", id="ext"),
]


@pytest.mark.parametrize(("options", "message"), OPEN_OPTIONS)
def test_open_store_refuses_bad_options(
    store_url: str, opener: Opener, options: dict[str, Any], message: str
) -> None:
    """Refused before connecting, on both back-ends (the options are checked for SQLite too,
    so a program moving to PostgreSQL does not find out then)."""
    with pytest.raises(StoreError, match=message):
        opener(store_url, **{"registry": REGISTRY, "create": True, **options})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attempts": 0}, r"attempts=\.\.\.\) takes an int >= 1 .* got 0"),
        ({"attempts": 2.5}, r"attempts=.* got 2.5"),
        ({"attempts": True}, r"attempts=.* got True"),
        ({"base": math.nan}, r"base=\.\.\.\) takes a finite number of seconds >= 0, got nan"),
        ({"cap": -1}, r"cap=\.\.\.\) .* got -1"),
        ({"cap": "1"}, r"cap=\.\.\.\) .* got '1'"),
    ],
)
def test_retry_policy_refuses_with_a_lifecycle_error(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(LifecycleError, match=message):
        RetryPolicy(**options)


def test_a_closed_store_says_so_on_every_back_end(store_url: str, opener: Opener) -> None:
    """After close(), calls raise the same StoreError on SQLite and PostgreSQL (not
    psycopg_pool's PoolClosed)."""
    store = opener(store_url, registry=REGISTRY, create=True)
    store.create("toggle", id="t")
    store.close()
    for call in (store.find, lambda: store.get("t"), lambda: store.send("t", "flip", text="x")):
        with pytest.raises(StoreError, match=r"store.* is closed.*open"):
            call()


def test_sync_store_refuses_an_async_on_commit_before_any_commit(store_url: str) -> None:
    """An ``async def`` on_commit callback (or async callable object) is refused when it is
    registered on the synchronous store, which could not await it (before: every later send
    committed, then failed with AfterCommitError); the asynchronous store accepts it."""

    async def notify(change: object) -> None:
        return None

    class Notifier:
        async def __call__(self, change: object) -> None:
            return None

    with open_store(store_url, registry=REGISTRY, create=True) as sync_store:
        sync_store.create("toggle", id="t")
        for callback in (notify, Notifier()):
            with pytest.raises(StoreError, match=r"asynchronous.*open_async_store\(\)"):
                sync_store.on_commit(callback)
        result = sync_store.send("t", "flip", text="x")  # nothing was registered
        assert result.revision == 1

    async def main() -> int:
        async with open_async_store(store_url, registry=REGISTRY) as async_store:
            calls: list[object] = []

            async def record(change: object) -> None:
                calls.append(change)

            async_store.on_commit(record)
            await async_store.send("t", "flip", text="y")
            return len(calls)

    assert asyncio.run(main()) == 1


class Reading(BaseModel):
    value: float = 0.0


class Measurement(BaseModel):
    value: float


NAN_REGISTRY = Registry(discover=False)


@NAN_REGISTRY.register("gauge")
class Gauge(Lifecycle[Reading]):
    """idle -measure-> measured; ``measure`` stores whatever value it is given."""

    payloads = {"measure": Measurement}
    idle = State(initial=True)
    measured = State()
    measure = idle.to(measured) | measured.to.itself()

    def on_measure(self, value: float) -> None:
        self.context.value = value


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_context_holding_nan_or_infinity_is_never_written(
    store_url: str, opener: Opener, bad: float
) -> None:
    """JSON cannot hold NaN or infinities: a create or a send that would write one is a
    StoreError and writes nothing (before: the row was written as ``NaN`` and then dropped
    out of every filtered query and count)."""
    with opener(store_url, registry=NAN_REGISTRY, create=True) as store:
        with pytest.raises(StoreError, match="NaN or an infinity"):
            store.create("gauge", id="bad", value=bad)
        assert store.count("gauge") == 0
        store.create("gauge", id="g", value=1.5)
        with pytest.raises(StoreError, match="NaN or an infinity"):
            store.send("g", "measure", value=bad)
        snap = store.get("g")
        assert (snap.state, snap.revision, snap.context) == ("idle", 0, {"value": 1.5})
        assert store.count("gauge", where={"value": 1.5}) == 1
        assert len(store.changes()) == 0
