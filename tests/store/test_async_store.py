"""What only the asynchronous store does, awaited natively (the shared suite runs it through
blocking calls): many tasks sharing one store, ``async for`` over the change feed,
asynchronous commands and callbacks awaited, cancellation leaving nothing half-written."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from lifecyclekit import (
    Lifecycle,
    LifecycleError,
    MissingDependency,
    Registry,
    State,
    StoreError,
    TransitionRejected,
)
from lifecyclekit.store import AsyncStore, AsyncUnitOfWork, Change, open_async_store, open_store
from tests.helpers import postgres_url
from tests.store.conftest import Opener
from tests.store.test_threads import assert_legal_chains
from tests.store_machines import REGISTRY, CounterContext, Note

TASKS = 24
SENDS = 25
SHARED = [f"shared-{n}" for n in range(3)]


def test_many_tasks_share_one_async_store(store_url: str) -> None:
    """24 tasks x 25 sends through one asynchronous store, each task alternating between 3
    shared instances and one of its own, every fourth send also retried under the same
    idempotency key by a second task: every acknowledged send is in the store exactly once
    (read back by the synchronous store), replays included, and nothing else is."""
    own = [f"own-{t}" for t in range(TASKS)]
    acknowledged: list[tuple[str, int, str]] = []
    replays: list[tuple[str, int, str]] = []
    failures: list[BaseException] = []

    async def send(store: AsyncStore, instance_id: str, text: str, key: str | None) -> None:
        try:
            result = await store.send(instance_id, "flip", text=text, idempotency_key=key)
        except LifecycleError as exc:  # pragma: no cover - reported below
            failures.append(exc)
            return
        (record,) = result.records
        (replays if result.replayed else acknowledged).append((instance_id, record.seq, text))

    async def worker(store: AsyncStore, number: int) -> None:
        for n in range(SENDS):
            instance_id = SHARED[n % len(SHARED)] if n % 2 else own[number]
            text = f"{number}-{n}"
            if n % 4 == 0:  # the same request twice at once: applied once, replayed once
                key = f"key-{number}-{n}"
                await asyncio.gather(*(send(store, instance_id, text, key) for _ in range(2)))
            else:
                await send(store, instance_id, text, None)

    async def main() -> None:
        async with open_async_store(store_url, registry=REGISTRY, create=True) as store:
            for instance_id in SHARED + own:
                await store.create("toggle", id=instance_id)
            await asyncio.gather(*(worker(store, t) for t in range(TASKS)))

    asyncio.run(main())
    assert failures == []
    keyed = TASKS * len(range(0, SENDS, 4))
    assert len(replays) == keyed
    assert set(replays) <= set(acknowledged)
    with open_store(store_url, registry=REGISTRY) as store:
        lengths = assert_legal_chains(store, SHARED + own)
        assert sum(lengths.values()) == len(acknowledged) == TASKS * SENDS
        stored = {
            (i, r.seq, r.payload["text"])  # type: ignore[index]
            for i in SHARED + own
            for r in store.history(i)
        }
    assert stored == set(acknowledged)


def test_async_for_follows_the_feed_as_it_is_committed(store_url: str) -> None:
    """``async for change in store.watch()`` yields changes committed after it started, in
    position order, each once, while another task writes; awaiting ``watch()`` is a page."""
    count = 12

    async def main() -> list[Change]:
        async with open_async_store(store_url, registry=REGISTRY, create=True) as store:
            await store.create("toggle", id="a")
            await store.create("toggle", id="b")
            seen: list[Change] = []
            following = asyncio.Event()

            async def reader() -> None:
                watch = store.watch(timeout=60)
                following.set()
                async for change in watch:
                    seen.append(change)
                    if len(seen) == count:
                        return

            async def writer() -> None:
                await following.wait()
                for n in range(count):
                    await store.send("ab"[n % 2], "flip", text=str(n))

            await asyncio.gather(reader(), writer())
            assert await store.watch(seen[-1].position, timeout=0) == []
            assert list(await store.watch(timeout=0)) == seen
            return seen

    seen = asyncio.run(main())
    assert [c.record.payload["text"] for c in seen] == [str(n) for n in range(count)]  # type: ignore[index]
    assert [c.position for c in seen] == sorted({c.position for c in seen})


class Gate:
    """Per-test asyncio objects a lifecycle's asynchronous command awaits."""

    entered: ClassVar[asyncio.Event | None] = None
    release: ClassVar[asyncio.Event | None] = None


GATED = Registry(discover=False)


@GATED.register("gated-toggle")
class GatedToggle(Lifecycle):
    """A toggle whose asynchronous command waits for the test to open the gate."""

    Context = CounterContext
    payloads = {"flip": Note}
    commands = frozenset({"flip_when_open"})

    off = State(initial=True)
    on = State()

    flip = off.to(on, on="_count") | on.to(off, on="_count")

    def _count(self) -> None:
        self.context.flips += 1

    async def flip_when_open(self, text: str) -> None:
        assert Gate.entered is not None
        assert Gate.release is not None
        Gate.entered.set()
        await Gate.release.wait()
        self.flip(text=text)


def test_an_async_command_and_async_callbacks_are_awaited(store_url: str) -> None:
    """The asynchronous store awaits a command returning an awaitable inside the transaction
    before the save, then awaits asynchronous on_commit and after_commit
    callbacks once; what it stored is the synchronous store's to read, and back."""
    committed: list[str] = []

    async def main() -> None:
        Gate.entered, Gate.release = asyncio.Event(), asyncio.Event()
        Gate.release.set()
        async with open_async_store(store_url, registry=GATED, create=True) as store:

            @store.on_commit
            async def notify(change: Change) -> None:
                await asyncio.sleep(0)
                committed.append(f"change {change.record.seq}")

            await store.create("gated-toggle", id="g")
            result = await store.send("g", "flip_when_open", text="x")
            assert (result.state, result.revision) == ("on", 1)

            async def operation(uow: AsyncUnitOfWork) -> None:
                instance = await uow.load("g")
                instance.flip(text="y")
                await uow.save("g", instance)

                async def later() -> None:
                    committed.append("after_commit")

                uow.after_commit(later)

            await store.run(operation)

    asyncio.run(main())
    assert committed == ["change 1", "change 2", "after_commit"]
    with open_store(store_url, registry=GATED) as store:
        assert store.get("g").revision == 2
        store.send("g", "flip", text="z")

    async def read_back() -> int:
        async with open_async_store(store_url, registry=GATED) as store:
            return (await store.get("g")).revision

    assert asyncio.run(read_back()) == 3


def test_a_cancelled_send_writes_nothing_and_frees_its_connection(store_url: str) -> None:
    """A task cancelled while its command is awaited inside the transaction rolls it back:
    no revision, no history, no change, the idempotency key unused; the store goes on, with
    more sends afterwards than it has connections (so none was leaked)."""

    async def main() -> None:
        Gate.entered, Gate.release = asyncio.Event(), asyncio.Event()
        async with open_async_store(store_url, registry=GATED, create=True, pool_size=2) as store:
            await store.create("gated-toggle", id="g")
            for _ in range(3):
                Gate.entered.clear()
                task = asyncio.create_task(
                    store.send("g", "flip_when_open", text="x", idempotency_key="k")
                )
                await Gate.entered.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            snap = await store.get("g")
            assert (snap.revision, list(snap.history), await store.changes()) == (0, [], [])
            Gate.release.set()
            for n in range(6):
                result = await store.send("g", "flip", text=str(n))
                assert result.revision == n + 1
            result = await store.send("g", "flip_when_open", text="x", idempotency_key="k")
            assert (result.replayed, result.revision) == (False, 7)

    asyncio.run(main())


def test_operations_on_a_closed_async_store_are_refused(store_url: str) -> None:
    """After ``aclose()`` a call is a StoreError saying how to open a new store; nothing
    is written."""

    async def main() -> None:
        store = await open_async_store(store_url, registry=REGISTRY, create=True)
        await store.create("toggle", id="t")
        await store.aclose()
        with pytest.raises(StoreError, match=r"is closed; open a new one with open_async_store"):
            await store.send("t", "flip", text="x")

    asyncio.run(main())
    with open_store(store_url, registry=REGISTRY) as store:
        assert store.get("t").revision == 0


@pytest.mark.postgres
def test_postgres_without_psycopg_pool_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """The asynchronous pool lives in the postgres extra: without psycopg_pool the error is a
    MissingDependency saying what to install."""
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(MissingDependency, match=r"pip install 'lifecyclekit\[postgres\]'"):
        asyncio.run(open_async_store(postgres_url(), registry=REGISTRY)._open())


class WaitingToggle(Lifecycle):
    """A toggle with an ``async def`` callback: an async lifecycle."""

    off = State(initial=True)
    on = State()
    done = State(final=True)
    flip = off.to(on) | on.to(off)
    stop = on.to(done, cond="may_stop")

    async def on_flip(self) -> None:
        await asyncio.sleep(0)

    async def may_stop(self) -> bool:
        await asyncio.sleep(0)
        return False


def test_async_lifecycles_are_stored_and_driven_by_both_stores(
    opener: Opener, store_url: str
) -> None:
    """An async lifecycle (async def callbacks) is created, added, driven and restored by
    the synchronous store (from sync code) and the asynchronous one (which awaits it); a
    refusal is TransitionRejected as for a sync lifecycle. (Until h/dsl, both refused it.)"""
    waiting = Registry(discover=False)
    waiting.register("waiting-toggle")(WaitingToggle)
    with opener(store_url, registry=waiting, create=True) as store:
        assert store.create("waiting-toggle", id="t").state == "off"
        store.run(lambda uow: uow.add("u", WaitingToggle()))
        store.send("t", "flip")
        store.send("u", "flip")
        with pytest.raises(TransitionRejected, match="Can't stop WaitingToggle in on: may_stop"):
            store.send("t", "stop")
        store.send("t", "flip")
        loaded = store.load("t")
        assert (type(loaded), loaded.state, loaded.revision) == (WaitingToggle, "off", 2)
        assert [(r.source, r.target) for r in loaded.history] == [("off", "on"), ("on", "off")]
        assert store.load("u").state == "on"


def test_a_task_started_inside_a_unit_of_work_uses_the_store_after_it(store_url: str) -> None:
    """A task started inside a unit of work inherits its context; while the unit of work is
    open it is inside it (refused, as any nested call), once it has ended it is not."""

    async def main() -> tuple[int, str]:
        async with open_async_store(store_url, registry=REGISTRY, create=True) as store:
            await store.create("toggle", id="t")
            opened = asyncio.Event()

            async def later() -> int:
                await opened.wait()
                return (await store.get("t")).revision

            async def during() -> str:
                try:
                    await store.get("t")
                except StoreError as exc:
                    return str(exc)
                return "not refused"

            async with store.unit_of_work() as uow:
                instance = await uow.load("t")
                instance.flip(text="x")
                await uow.save("t", instance)
                inside = await asyncio.create_task(during())
                after = asyncio.create_task(later())
            opened.set()
            return await after, inside

    revision, inside = asyncio.run(main())
    assert revision == 1
    assert "inside a unit of work of the same store" in inside


def test_async_store_messages_name_the_async_api(tmp_path: Path) -> None:
    """A bad option of open_async_store names open_async_store, not the sync opener."""
    url = f"sqlite:///{tmp_path / 'a.db'}"

    async def main() -> None:
        with pytest.raises(StoreError, match=r"^open_async_store\(\): pool_size= takes an int"):
            await open_async_store(url, registry=REGISTRY, create=True, pool_size=0)

    asyncio.run(main())
    with pytest.raises(StoreError, match=r"^open_store\(\): pool_size= takes an int"):
        open_store(url, registry=REGISTRY, create=True, pool_size=0)
    assert not (tmp_path / "a.db").exists()  # refused before anything was created
