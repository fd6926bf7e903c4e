"""The asynchronous store: :class:`AsyncStore`, the second driver of the store's operations.

It fulfils the requests of the operations in :mod:`lifecyclekit.store._ops` by awaiting an
:class:`~lifecyclekit.store._backend.AsyncBackend`: the same steps, retry decisions,
messages and after-commit rules as :class:`~lifecyclekit.store.Store`, so the two cannot
drift apart. What differs is only waiting: statements, pauses between retries and the
change feed are awaited, and an asynchronous command of a lifecycle (a method returning an
awaitable) is awaited inside the transaction, before the instance is saved.

Cancellation: a task cancelled during an operation leaves nothing half-written. Before the
COMMIT the transaction is rolled back; once the COMMIT has started it runs to its end, the
after-commit callbacks of what it committed run (once, as always), and then the
cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from lifecyclekit.errors import StoreError, WriteConflict
from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.registry import Registry
from lifecyclekit.snapshot import Snapshot, TransitionRecord
from lifecyclekit.store import _core as core
from lifecyclekit.store import _ops as ops
from lifecyclekit.store import _schema as schema
from lifecyclekit.store._auow import AsyncConsumer, AsyncUnitOfWork, Watch
from lifecyclekit.store._backend import (
    AsyncBackend,
    AsyncListener,
    AsyncTransaction,
    BackendError,
    Kind,
    Rows,
    uninterrupted,
)
from lifecyclekit.store._core import LOST, Effects, RetryPolicy
from lifecyclekit.store._model import Change, InstanceSummary, Page, SendResult, adrive
from lifecyclekit.store._ops import Fence, Operation, StoreBase, Transact, Work
from lifecyclekit.store._schema import Extension

__all__ = ["AsyncStore"]

T = TypeVar("T")
AsyncExecute = Callable[[str, Sequence[Any]], Awaitable[Rows]]
UnitOfWorkFunction = Callable[[AsyncUnitOfWork], Awaitable[T] | T]


class _Scope:
    """A unit of work's transaction while it is open (see ``AsyncStore._active``)."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = True


class AsyncStore(StoreBase):
    """Durable lifecycles for asyncio applications: :class:`~lifecyclekit.store.Store`'s
    operations and semantics, awaited.

    Obtain one with :func:`lifecyclekit.store.open_async_store`, then ``await`` it (or use
    ``async with``) to connect; operations connect on first use otherwise. Safe to share
    between the tasks of one event loop.

    Args:
        backend: the database.
        registry: resolves lifecycle names (default: the process-wide registry).
        clock: the store's clock (``updated_at``) and the default clock of instances.
        retry: the retry policy of every operation and unit of work.
        key_retention: how long idempotency keys are remembered (``None``: forever).
        extensions: extension tables to create when the store opens.
        create: create the store's tables when it opens.
    """

    _backend: AsyncBackend

    def __init__(
        self,
        backend: AsyncBackend,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        key_retention: timedelta | None = timedelta(days=7),
        extensions: Sequence[Extension] = (),
        create: bool = False,
    ) -> None:
        super().__init__(
            backend, registry=registry, clock=clock, retry=retry, key_retention=key_retention
        )
        self._initial = tuple(extensions)
        self._create = create
        # The open unit of work of this task, and of tasks it starts while it is open (they
        # inherit the context): a mutable scope, closed when the unit of work ends, so a task
        # started inside and still running afterwards may use the store again.
        self._active: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
            f"lifecyclekit-store-{id(self)}", default=None
        )
        self._opening = asyncio.Lock()
        self._setup_lock = asyncio.Lock()
        self._opened = False
        self._closed = False

    # -- opening and closing -----------------------------------------------------------------

    async def _open(self) -> AsyncStore:
        """Connect, check the schema, create what was asked for; once."""
        if self._closed:
            msg = f"The store {self.url} is closed; open a new one with open_async_store()."
            raise StoreError(msg)
        if self._opened:
            return self
        async with self._opening:
            if self._opened:
                return self
            try:
                try:
                    await self._backend.open()
                except BackendError as exc:
                    raise self._public(exc, "open the store") from None
                memory = self._backend.memory
                self._ready = await self._check() if not memory else False
                self._opened = True
                if self._initial or memory or self._create:
                    await self._setup(self._initial)
            except BaseException:
                self._opened, self._closed = False, True
                await self._backend.aclose()  # a store that failed to open leaks nothing
                raise
        return self

    def __await__(self) -> Generator[Any, None, AsyncStore]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncStore:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection (the pool, or SQLite's worker threads)."""
        if not self._closed:
            self._closed = True
            await self._backend.aclose()

    # -- the driver --------------------------------------------------------------------------

    async def _perform(self, operation: Operation[T]) -> T:
        """Run ``operation``, fulfilling each of its requests."""
        try:
            request = next(operation)
            await self._open()
            while True:
                try:
                    if isinstance(request, Transact):
                        value = await self._attempt(
                            request.what, request.write, _driving(request.step),
                            keyed=request.keyed,
                        )  # fmt: skip
                    elif isinstance(request, Fence):
                        value = await self._fence(request.after)
                    else:
                        await self._setup(request.extensions)
                        value = None
                except Exception as exc:
                    request = operation.throw(exc)
                else:
                    request = operation.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    @asynccontextmanager
    async def _transaction(
        self, *, write: bool, schema: bool = False
    ) -> AsyncIterator[AsyncTransaction]:
        outer = self._active.get()
        if outer is not None and outer.open:
            raise StoreError(ops.INSIDE.format(where="task"))
        scope = _Scope()
        token = self._active.set(scope)
        try:
            async with self._backend.transaction(write=write, schema=schema) as tx:
                yield tx
        finally:
            scope.open = False
            self._active.reset(token)

    async def _attempt(
        self,
        what: str,
        write: bool,
        body: Callable[[AsyncExecute, Effects], Awaitable[T]],
        *,
        keyed: bool = False,
    ) -> T:
        """``body(execute, effects)`` in a transaction under the retry policy, then the
        after-commit callbacks of the attempt that committed (also when the task was
        cancelled during its COMMIT, before the cancellation goes on)."""
        tries = core.Attempts(self.retry, what, self.url, keyed=keyed)
        for attempt in tries:
            effects = Effects()
            tx: AsyncTransaction | None = None
            result: Any = None
            try:
                async with self._transaction(write=write) as tx:
                    result = await body(tx.execute, effects)
                    if result is LOST:
                        raise _Lost
            except (_Lost, WriteConflict):
                tries.lost()
            except BackendError as exc:
                tries.failed(exc, attempt)
            except asyncio.CancelledError:
                if tx is not None and tx.committed:
                    await self._after_commit(effects, result, what)
                raise
            else:
                await self._after_commit(effects, result, what)
                return result  # type: ignore[no-any-return]
            await asyncio.sleep(tries.pause(attempt))
        raise tries.exhausted()

    async def _after_commit(self, effects: Effects, result: object, what: str) -> None:
        """Every call of :func:`~lifecyclekit.store._core.commit_calls`, awaiting those that
        return an awaitable; all of them even when one raises, and even when the task is
        cancelled meanwhile (the transition committed): the cancellation goes on after."""
        await uninterrupted(self._commit_calls(effects, result, what))

    async def _commit_calls(self, effects: Effects, result: object, what: str) -> None:
        failures: list[BaseException] = []
        for function, args in core.commit_calls(effects, self._callbacks):
            try:
                outcome = function(*args)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as exc:
                failures.append(exc)
        error = core.after_commit_failure(failures, result, what)
        if error is not None:
            raise error

    async def _fence(self, after: int) -> int | None:
        try:
            return await self._backend.change_fence(after)
        except BackendError as exc:
            raise self._public(exc, "read the change feed") from None

    async def _check(self) -> bool:
        """Whether the store's tables exist (a newer or unreadable schema is an error)."""
        try:
            async with self._transaction(write=False) as tx:
                exists = await adrive(tx.execute, schema.probe(self.url))
            if exists:  # a store from before statecharts gains their table
                async with self._transaction(write=True, schema=True) as tx:
                    await adrive(tx.execute, schema.add_configurations())
            return exists
        except BackendError as exc:
            if exc.kind is Kind.NO_STORE:
                return False
            raise self._public(exc, "open the store") from None

    async def _setup(self, extensions: Sequence[Extension]) -> None:
        """Create the store's tables (once) and ``extensions``' (each once), serialised with
        every other process doing the same."""
        if self._to_set_up(extensions) is None:
            return
        async with self._setup_lock:
            todo = self._to_set_up(extensions)
            if todo is None:
                return
            try:
                async with self._transaction(write=True, schema=True) as tx:
                    await adrive(
                        tx.execute, schema.setup(self._backend.schema, self._ready, todo, self.url)
                    )
            except BackendError as exc:
                raise self._public(exc, ops.SETUP) from None
            self._set_up(todo)

    async def _ensure(self) -> None:
        await self._perform(ops.ensure())

    @asynccontextmanager
    async def _listen(self) -> AsyncIterator[AsyncListener]:
        try:
            async with self._backend.listen() as listener:
                yield listener
        except BackendError as exc:
            raise self._public(exc, "watch the change feed") from None

    # -- instances ---------------------------------------------------------------------------

    async def extension(self, extension: Extension) -> Extension:
        """Declare (and on first use create or upgrade) an extension's tables; as
        :meth:`Store.extension`."""
        return await self._perform(ops.extension(extension))

    async def create(
        self,
        lifecycle: str | type[Lifecycle],
        /,
        *,
        id: str | None = None,
        context: BaseModel | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Snapshot:
        """Store a new instance of a registered lifecycle (by name or class); as
        :meth:`Store.create`.

        Raises:
            UnknownLifecycle: an unknown name, or a class that is not registered.
            PayloadError: the context does not validate.
            StoreError: the id is invalid or exists.
        """
        return await self._perform(ops.create(self, lifecycle, id, context, fields))

    async def get(self, id: str, *, history: bool = True) -> Snapshot:
        """The stored snapshot (``history=False``: with its last record only).

        Raises:
            UnknownInstance: no such id.
            SnapshotError: the row cannot be restored (other rows stay readable).
        """
        return await self._perform(ops.get(self, id, history))

    async def load(
        self, id: str, *, clock: Clock | None = None, history: bool = True
    ) -> Lifecycle:
        """A live instance (of the exact class that created it); its later event calls do
        not persist by themselves: use :meth:`send`, or a unit of work."""
        return await self._perform(ops.load(self, id, clock, history))

    async def history(
        self, id: str, *, after: int = 0, limit: int | None = None
    ) -> list[TransitionRecord]:
        """Stored transitions with ``seq > after``, oldest first, at most ``limit``.

        Raises:
            UnknownInstance: no such id.
        """
        return await self._perform(ops.history(self, id, after, limit))

    async def send(
        self,
        id: str,
        name: str,
        /,
        *args: Any,
        data: BaseModel | Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> SendResult:
        """Fire the event (or run the command) ``name`` on a stored instance, atomically,
        as :meth:`Store.send` does: load, fire, compare-and-set save, re-run when another
        writer won. A command that returns an awaitable is awaited before the save.

        Raises:
            UnknownInstance: no such id.
            TransitionRejected, PayloadError: refused; nothing is written.
            IdempotencyConflict: the key was used for another request.
            WriteConflict: the retry policy was exhausted (the message says how often).
            ConnectionLost: the database cannot be reached; OutcomeUnknown when the
                connection broke during the commit.
        """
        return await self._perform(
            ops.send(self, id, name, args, data, fields, idempotency_key, actor, reason,
                     metadata)
        )  # fmt: skip

    async def expire_keys(self) -> int:
        """Forget idempotency keys older than the retention; how many were removed."""
        return await self._perform(ops.expire_keys(self))

    async def delete(self, id: str) -> None:
        """Remove an instance, its history and its idempotency keys.

        Raises:
            UnknownInstance: no such id.
        """
        await self._perform(ops.delete(self, id))

    async def find(
        self,
        name: str | None = None,
        state: str | None = None,
        *,
        where: Mapping[str, Any] | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> Page[InstanceSummary]:
        """Stored instances, most recently changed first, by keyset pages; as
        :meth:`Store.find`."""
        return await self._perform(ops.find(self, name, state, where, limit, after))

    async def count(
        self,
        name: str | None = None,
        state: str | None = None,
        *,
        where: Mapping[str, Any] | None = None,
    ) -> int:
        """How many stored instances match (as :meth:`find` filters)."""
        return await self._perform(ops.count(self, name, state, where))

    # -- coordinators ------------------------------------------------------------------------

    @asynccontextmanager
    async def unit_of_work(self, *, write: bool = True) -> AsyncIterator[AsyncUnitOfWork]:
        """One transaction as an :class:`AsyncUnitOfWork`, committed when the ``async
        with`` block ends (one attempt: a conflict raises :class:`WriteConflict`; prefer
        :meth:`run`).

        Args:
            write: ``False`` for reads only (SQLite then takes no write lock).
        """
        if write:
            await self._ensure()
        else:
            await self._open()
        effects = Effects()
        try:
            async with self._transaction(write=write) as tx:
                yield AsyncUnitOfWork(tx.execute, Work(self, effects, write))
        except BackendError as exc:
            raise core.unit_of_work_error(exc, self.url) from None
        await self._after_commit(effects, None, "a unit of work")

    async def run(self, operation: UnitOfWorkFunction[T], *, write: bool = True) -> T:
        """``await operation(uow)`` in one transaction, re-run from the start under the
        store's retry policy when another writer wins (or the connection broke before
        commit); after-commit callbacks run once, for the attempt that committed.

        ``operation`` is usually an ``async def`` function; it may run more than once: keep
        its effects on the outside world in ``uow.after_commit``.

        Returns:
            What ``operation`` returned in the attempt that committed.
        """
        if write:
            await self._ensure()
        else:
            await self._open()

        async def body(execute: AsyncExecute, effects: Effects) -> T:
            outcome = operation(AsyncUnitOfWork(execute, Work(self, effects, write)))
            if inspect.isawaitable(outcome):
                return await outcome
            return outcome

        name = getattr(operation, "__qualname__", "a unit of work")
        return await self._attempt(f"run {name}", write, body)

    # -- the change feed ---------------------------------------------------------------------

    async def changes(self, after: int = 0, limit: int = 100) -> Page[Change]:
        """Committed changes with a position above ``after``, in position order; as
        :meth:`Store.changes` (a reader continuing from the last position never misses
        one)."""
        return await self._perform(ops.changes(after, limit))

    def watch(self, after: int = 0, *, timeout: float | None = None, limit: int = 100) -> Watch:
        """The change feed after ``after`` as it grows.

        ``await store.watch(after, timeout=30)`` is :meth:`Store.watch`: the next page,
        waiting up to ``timeout`` seconds (``None``: for ever) until there is one.
        ``async for change in store.watch(after)`` yields every change as it is committed,
        in position order, until ``timeout`` seconds pass without one (``None``: for ever).
        PostgreSQL wakes on ``NOTIFY``; SQLite polls.
        """
        return Watch(self, after, timeout, limit)

    def consumer(self, name: str) -> AsyncConsumer:
        """The named consumer ``name`` (created on its first ack)."""
        return AsyncConsumer(self, name)

    # -- migrations --------------------------------------------------------------------------

    async def migrate(self, name: str | None = None, *, batch: int = 100) -> Page[str]:
        """Rewrite rows stored at an older ``schema_version`` of their lifecycle; as
        :meth:`Store.migrate`."""
        return await self._perform(ops.migrate(self, name, batch))


class _Lost(Exception):
    """Another writer won the row (a lost compare-and-set)."""


def _driving(
    step: Callable[[Effects], Any],
) -> Callable[[AsyncExecute, Effects], Awaitable[Any]]:
    """The body of a transaction that drives ``step(effects)``."""
    return lambda execute, effects: adrive(execute, step(effects))
