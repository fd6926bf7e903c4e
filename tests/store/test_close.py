"""Closing a store while other threads or tasks still use it: each of them gets the
store-is-closed :class:`StoreError`, never a crash or a foreign exception; and argument
checks the two stores must share."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap

import pytest

from lifecyclekit.errors import StoreError
from lifecyclekit.store import Store, open_async_store, open_store
from tests.store_machines import REGISTRY

SYNC_CLOSE = textwrap.dedent(
    """
    import sys, threading
    from lifecyclekit.errors import StoreError
    from lifecyclekit.store import open_store
    from tests.store_machines import REGISTRY

    url = sys.argv[1]
    store = open_store(url, registry=REGISTRY, create=True)
    store.create("toggle", id="t")
    warmed = threading.Barrier(5)
    outcomes = []

    def use(write):
        done = 0
        try:
            while True:
                store.send("t", "flip", text="x") if write else store.get("t")
                done += 1
                if done == 20:
                    warmed.wait()
        except StoreError as exc:
            outcomes.append("closed" if "the store is closed" in str(exc) else repr(exc))
        except BaseException as exc:
            outcomes.append("FOREIGN " + repr(exc))

    threads = [threading.Thread(target=use, args=(n == 0,)) for n in range(4)]
    for thread in threads:
        thread.start()
    warmed.wait()
    store.close()
    for thread in threads:
        thread.join()
    print(sorted(outcomes))
    """
)


@pytest.mark.parametrize("round", range(3))
def test_sync_close_while_threads_use_the_store(store_url: str, round: int) -> None:
    """Issue: SQLite's close() closed other threads' connections under a running
    statement (segfault, or sqlite3.ProgrammingError)."""
    done = subprocess.run(
        [sys.executable, "-c", SYNC_CLOSE, store_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(["closed"] * 4), done.stderr[-2000:]


HOLDERS = 4
"""Tasks holding every connection: the async SQLite store's lanes, the PostgreSQL pool size."""
CLOSED = re.compile(r"the store is closed|The store \S+ is closed")


def test_async_close_while_tasks_use_the_store(store_url: str) -> None:
    """Issue: aclose() while tasks ran leaked RuntimeError('cannot schedule new futures after
    shutdown') on SQLite and psycopg_pool.PoolClosed on PostgreSQL. Every task that had not
    committed gets the store-is-closed StoreError: one in a transaction at its next
    statement or at its COMMIT, one waiting for a connection at once; none writes."""

    async def main() -> list[str]:
        store = await open_async_store(
            store_url, registry=REGISTRY, create=True, pool_size=HOLDERS
        )
        await store.create("toggle", id="t")
        inside: list[bool] = []
        all_inside, release = asyncio.Event(), asyncio.Event()

        async def hold(writer: bool) -> None:
            async with store.unit_of_work(write=writer) as uow:
                toggle = await uow.load("t")
                if writer:
                    toggle.flip(text="never committed")  # type: ignore[attr-defined]
                    await uow.save("t", toggle)
                inside.append(writer)
                if len(inside) == HOLDERS:
                    all_inside.set()
                await release.wait()
                if not writer:
                    await uow.load("t")  # a statement after aclose()

        async def outcome(task: asyncio.Task[object]) -> str:
            try:
                await task
            except StoreError as exc:
                return "closed" if CLOSED.search(str(exc)) else repr(exc)
            except BaseException as exc:
                return f"FOREIGN {exc!r}"
            return "not refused"

        holders = [asyncio.create_task(hold(n == 0)) for n in range(HOLDERS)]
        await all_inside.wait()
        waiters = [
            asyncio.create_task(store.send("t", "flip", text="never sent")) for _ in range(3)
        ]
        for _ in range(100):  # no I/O on the way: the waiters now queue for a connection
            await asyncio.sleep(0)
        await store.aclose()
        release.set()
        return [await outcome(task) for task in [*holders, *waiters]]

    assert asyncio.run(main()) == ["closed"] * (HOLDERS + 3)
    with open_store(store_url, registry=REGISTRY) as store:
        snapshot = store.get("t")
        assert (snapshot.revision, list(snapshot.history)) == (0, [])


@pytest.mark.parametrize("after", [None, "3", -1, 1.5, True])
def test_watch_refuses_an_after_that_is_not_a_position(store: Store, after: object) -> None:
    """Issue: the async store's watch(after=None) raised TypeError ('NoneType' object is not
    callable); both stores now give the same StoreError."""
    with pytest.raises(StoreError, match=r"after must be an int from 0 to 2\*\*63 - 1, got"):
        store.watch(after, timeout=0)  # type: ignore[arg-type]
