"""The asynchronous store's unit of work, extension SQL, consumers and watches: the same
rules as :mod:`lifecyclekit.store._uow` (:class:`~lifecyclekit.store._ops.Work`, the
operations of :mod:`lifecyclekit.store._ops`), awaited."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.store import _ops as ops
from lifecyclekit.store import _queries as queries
from lifecyclekit.store import _schema as schema
from lifecyclekit.store._backend import Rows
from lifecyclekit.store._checks import check_seconds
from lifecyclekit.store._model import Change, Page, Step, adrive, check_count
from lifecyclekit.store._ops import Work
from lifecyclekit.store._schema import Extension

if TYPE_CHECKING:
    from lifecyclekit.store._astore import AsyncStore

__all__ = ["AsyncConsumer", "AsyncExtensionSQL", "AsyncUnitOfWork", "Watch"]

T = TypeVar("T")
AsyncExecute = Callable[[str, Sequence[Any]], Awaitable[Rows]]


class AsyncExtensionSQL:
    """An extension's tables inside one asynchronous unit of work: SQL with ``?``
    placeholders, awaited."""

    def __init__(self, extension: Extension, execute: AsyncExecute) -> None:
        self.extension = extension
        self._execute = execute

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a SELECT (or of ``... RETURNING``)."""
        return await adrive(self._execute, schema.query(self.extension.name, sql, params))

    async def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row, or None."""
        rows = await self.query(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a write; the number of rows it changed."""
        return await adrive(self._execute, schema.execute(self.extension.name, sql, params))


class AsyncUnitOfWork:
    """One transaction of an :class:`~lifecyclekit.store.AsyncStore` for a coordinator that
    changes many instances (and its own extension tables) at once; the asynchronous twin of
    :class:`~lifecyclekit.store.UnitOfWork`, with the same rules.

    Obtained from :meth:`AsyncStore.run` (re-run on conflicts by the retry policy) or
    ``async with store.unit_of_work() as uow`` (one attempt).
    """

    def __init__(self, execute: AsyncExecute, work: Work) -> None:
        self.store: AsyncStore = work.store  # type: ignore[assignment]
        self.write = work.write
        self._execute = execute
        self._work = work

    async def _run(self, step: Step[T]) -> T:
        return await adrive(self._execute, step)

    async def load(self, id: str, *, clock: Clock | None = None) -> Lifecycle:
        """The live instance, remembered with its row version for :meth:`save`.

        Raises:
            UnknownInstance: no such id.
            SnapshotError: the row cannot be restored.
        """
        return await self._run(self._work.load(id, clock))

    def version(self, id: str) -> int:
        """The row version ``id`` was loaded (or last saved) at in this unit of work."""
        return self._work.tracked(id).version

    async def add(self, id: str, instance: Lifecycle) -> None:
        """Store a new instance under ``id`` (of a registered lifecycle).

        Raises:
            StoreError: the id exists, or the instance's class is not registered.
        """
        await self._run(self._work.add(id, instance))

    async def save(self, id: str, instance: Lifecycle) -> None:
        """Write a loaded (or added) instance back with compare-and-set.

        Raises:
            WriteConflict: another writer changed the row since it was loaded.
        """
        await self._run(self._work.save(id, instance))

    async def remove(self, id: str) -> None:
        """Delete an instance with its history and keys.

        Raises:
            UnknownInstance: no such id.
        """
        await self._run(self._work.remove(id))

    def extension(self, extension: Extension) -> AsyncExtensionSQL:
        """SQL on ``extension``'s tables in this transaction.

        Raises:
            StoreError: the extension was not declared with :meth:`AsyncStore.extension`.
        """
        return AsyncExtensionSQL(self._work.extension(extension), self._execute)

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` (awaited if it returns an awaitable) after this unit of work
        commits, never if it is rolled back or re-run."""
        self._work.effects.callbacks.append(callback)


class Watch:
    """What :meth:`AsyncStore.watch` returns: await it for one page, as
    :meth:`Store.watch` returns (``await store.watch(after, timeout=30)``), or iterate it
    for every change as it is committed (``async for change in store.watch(after)``).

    Iterating follows the feed from ``after`` in position order for ever, or until
    ``timeout`` seconds pass without a new change. PostgreSQL wakes on ``NOTIFY`` (one
    connection held while iterating); SQLite polls.
    """

    def __init__(
        self,
        store: AsyncStore,
        after: int | Callable[[], Awaitable[int]],
        timeout: float | None,
        limit: int,
    ) -> None:
        if not callable(after):  # a consumer passes a callable reading its position
            check_count("after", after, allow_zero=True)
        check_count("limit", limit)
        self._store = store
        self._after = after
        seconds = check_seconds("watch(timeout=)", timeout, allow_none=True, allow_zero=True)
        self._timeout = float("inf") if seconds is None else seconds
        self._limit = limit

    async def _start(self) -> int:
        after = self._after
        return after if isinstance(after, int) else await after()

    def __await__(self) -> Generator[Any, None, Page[Change]]:
        return self._page().__await__()

    async def _page(self) -> Page[Change]:
        store, after = self._store, await self._start()
        found = await store.changes(after, self._limit)
        if found or self._timeout == 0:
            return found
        clock = _Deadline(self._timeout)
        async with store._listen() as listener:
            while True:
                found = await store.changes(after, self._limit)
                if found or clock.left() <= 0:
                    return found
                await listener.wait(min(clock.left(), 1.0))

    def __aiter__(self) -> AsyncIterator[Change]:
        return self._follow()

    async def _follow(self) -> AsyncIterator[Change]:
        store, after = self._store, await self._start()
        async with store._listen() as listener:
            clock = _Deadline(self._timeout)
            while True:
                page = await store.changes(after, self._limit)
                for change in page:
                    yield change
                if page.next is not None:
                    after = page.next
                    clock = _Deadline(self._timeout)
                    continue
                if clock.left() <= 0:
                    return
                await listener.wait(min(clock.left(), 1.0))


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return self._end - time.monotonic()


class AsyncConsumer:
    """A named reader of the change feed with a durable cursor (at-least-once), of an
    :class:`~lifecyclekit.store.AsyncStore`: the twin of
    :class:`~lifecyclekit.store.Consumer`.

    ``async for change in consumer.watch(): handle(change); await consumer.ack(change)``
    """

    def __init__(self, store: AsyncStore, name: str) -> None:
        self.store = store
        self.name = queries.check_consumer(name)

    async def position(self) -> int:
        """The last acknowledged position (0 before the first ack)."""
        return await self.store._perform(ops.consumer_position(self.name))

    async def changes(self, limit: int = 100) -> Page[Change]:
        """Committed changes after the acknowledged position, in position order."""
        return await self.store.changes(after=await self.position(), limit=limit)

    def watch(self, timeout: float | None = None, limit: int = 100) -> Watch:
        """:meth:`AsyncStore.watch` from the acknowledged position: await it for a page, or
        iterate it."""
        return Watch(self.store, self.position, timeout, limit)

    async def ack(self, position: int | Change) -> None:
        """Record that everything up to ``position`` is handled (never moves backwards)."""
        await self.store._perform(ops.ack(self.store, self.name, position))
