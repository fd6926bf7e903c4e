"""After-commit callbacks of the asynchronous store run to the end even when the task is
cancelled while one of them is awaited: the transition committed, so every callback (the
store's ``on_commit`` ones and the lifecycle's ``after_commit``) runs, then the
cancellation goes on."""

from __future__ import annotations

import asyncio

from lifecyclekit import Lifecycle, Registry, State
from lifecyclekit.snapshot import TransitionRecord
from lifecyclekit.store import Change, open_async_store

LOG: list[str] = []
ALL = Registry(discover=False)


@ALL.register("logged")
class Logged(Lifecycle):
    """A lifecycle whose after_commit logs the committed seq."""

    idle = State(initial=True)
    tick = idle.to.itself()

    def after_commit(self, record: TransitionRecord) -> None:
        LOG.append(f"lifecycle-{record.seq}")


def test_cancelling_during_an_async_after_commit_runs_every_callback(store_url: str) -> None:
    """Issue: a cancellation during an awaited on_commit callback skipped every later one."""

    async def main() -> None:
        LOG.clear()
        started, finish = asyncio.Event(), asyncio.Event()
        async with open_async_store(store_url, registry=ALL, create=True) as store:
            await store.create("logged", id="c")

            async def slow(change: Change) -> None:
                LOG.append("slow-start")
                started.set()
                await finish.wait()
                LOG.append("slow-end")

            store.on_commit(slow)
            store.on_commit(lambda change: LOG.append(f"second-{change.record.seq}"))
            task = asyncio.create_task(store.send("c", "tick"))
            await started.wait()
            task.cancel()
            await asyncio.sleep(0)
            finish.set()
            try:
                await task
            except asyncio.CancelledError:
                LOG.append("cancelled")
            assert (await store.get("c")).revision == 1

    asyncio.run(main())
    expected = ["slow-start", "slow-end", "second-1", "lifecycle-1", "cancelled"]
    assert sorted(LOG) == sorted(expected)
    assert LOG[-1] == "cancelled"
