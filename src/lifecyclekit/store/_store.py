"""The synchronous store: :class:`Store`, a driver of the store's operations.

It fulfils the requests of the operations in :mod:`lifecyclekit.store._ops` with blocking
calls: it opens transactions on a back-end, runs their steps, re-runs them under the one
:class:`RetryPolicy` (pausing with ``time.sleep``), and calls after-commit callbacks once the
commit has happened. The rules live in the I/O-free modules, which the asynchronous store
drives too.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
from lifecyclekit.store._backend import Backend, BackendError, Kind
from lifecyclekit.store._checks import check_seconds
from lifecyclekit.store._core import LOST, Effects, RetryPolicy
from lifecyclekit.store._model import Change, InstanceSummary, Page, SendResult, drive
from lifecyclekit.store._ops import Fence, Operation, StoreBase, Transact, Work
from lifecyclekit.store._schema import Extension
from lifecyclekit.store._uow import Consumer, ExtensionSQL, UnitOfWork

__all__ = ["Consumer", "Extension", "ExtensionSQL", "Store", "UnitOfWork"]

T = TypeVar("T")
Execute = Callable[[str, Sequence[Any]], Any]


class Store(StoreBase):
    """Durable lifecycles on a back-end: create, send, read, list, feed, coordinate.

    Safe to share between threads. Obtain one with :func:`lifecyclekit.store.open_store`.

    Args:
        backend: the database.
        registry: resolves lifecycle names (default: the process-wide registry).
        clock: the store's clock (``updated_at``) and the default clock of instances.
        retry: the retry policy of every operation and unit of work.
        key_retention: how long idempotency keys are remembered (``None``: forever).
        extensions: extension tables to create with the store.
    """

    _backend: Backend

    def __init__(
        self,
        backend: Backend,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        key_retention: timedelta | None = timedelta(days=7),
        extensions: Sequence[Extension] = (),
    ) -> None:
        super().__init__(
            backend, registry=registry, clock=clock, retry=retry, key_retention=key_retention
        )
        self._local = threading.local()
        self._setup_lock = threading.Lock()
        memory = getattr(backend, "memory", False)
        try:
            self._ready = self._check() if not memory else False
            if extensions or memory:
                self._setup(tuple(extensions))
        except BaseException:
            backend.close()  # a store that failed to open leaks no connection
            raise

    # -- the driver --------------------------------------------------------------------------

    def on_commit(self, callback: ops.OnCommit) -> ops.OnCommit:
        """Call ``callback(change)`` for every record this store object commits, after the
        commit (whatever the lifecycle). Usable as a decorator; returns ``callback``.

        Raises:
            StoreError: ``callback`` is not callable, or is an ``async def`` function (this
                store could not await it; use ``open_async_store()``); nothing is
                registered.
        """
        if inspect.iscoroutinefunction(callback) or (
            callable(callback)
            and not inspect.isroutine(callback)
            and inspect.iscoroutinefunction(type(callback).__call__)  # an async callable object
        ):
            name = getattr(callback, "__qualname__", repr(callback))
            msg = (
                f"on_commit({name}): it is asynchronous, and a synchronous store cannot "
                "await it (it would fail after every commit). Use open_async_store(), or "
                "register a plain function."
            )
            raise StoreError(msg)
        return super().on_commit(callback)

    def _perform(self, operation: Operation[T]) -> T:
        """Run ``operation``, fulfilling each of its requests."""
        try:
            request = next(operation)
            while True:
                try:
                    if isinstance(request, Transact):
                        value = self._attempt(
                            request.what, request.write, _driving(request.step),
                            keyed=request.keyed,
                        )  # fmt: skip
                    elif isinstance(request, Fence):
                        value = self._fence(request.after)
                    else:
                        self._setup(request.extensions)
                        value = None
                except Exception as exc:
                    request = operation.throw(exc)
                else:
                    request = operation.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    @contextmanager
    def _transaction(self, *, write: bool, schema: bool = False) -> Iterator[Execute]:
        if getattr(self._local, "active", False):
            raise StoreError(ops.INSIDE.format(where="thread"))
        self._local.active = True
        try:
            with self._backend.transaction(write=write, schema=schema) as tx:
                yield tx.execute
        finally:
            self._local.active = False

    def _attempt(
        self, what: str, write: bool, body: Callable[[Execute, Effects], T], *, keyed: bool = False
    ) -> T:
        """``body(execute, effects)`` in a transaction under the retry policy, then the
        after-commit callbacks of the attempt that committed. ``body`` returning LOST, or
        raising WriteConflict, means another writer won."""
        tries = core.Attempts(self.retry, what, self.url, keyed=keyed)
        for attempt in tries:
            effects = Effects()
            try:
                with self._transaction(write=write) as execute:
                    result = body(execute, effects)
                    if result is LOST:
                        raise _Lost
            except (_Lost, WriteConflict):
                tries.lost()
            except BackendError as exc:
                tries.failed(exc, attempt)
            else:
                core.after_commit(effects, self._callbacks, result, what)
                return result
            time.sleep(tries.pause(attempt))
        raise tries.exhausted()

    def _fence(self, after: int) -> int | None:
        try:
            return self._backend.change_fence(after)
        except BackendError as exc:
            raise self._public(exc, "read the change feed") from None

    def _check(self) -> bool:
        """Whether the store's tables exist (a newer or unreadable schema is an error)."""
        try:
            with self._transaction(write=False) as execute:
                exists = drive(execute, schema.probe(self.url))
            if exists:  # a store from before statecharts gains their table
                with self._transaction(write=True, schema=True) as execute:
                    drive(execute, schema.add_configurations())
            return exists
        except BackendError as exc:
            if exc.kind is Kind.NO_STORE:
                return False
            raise self._public(exc, "open the store") from None

    def _setup(self, extensions: Sequence[Extension]) -> None:
        """Create the store's tables (once) and ``extensions``' (each once), serialised with
        every other process doing the same."""
        todo = self._to_set_up(extensions)
        if todo is None:
            return
        with self._setup_lock:
            try:
                with self._transaction(write=True, schema=True) as execute:
                    drive(execute, schema.setup(self._backend.schema, self._ready, todo, self.url))
            except BackendError as exc:
                raise self._public(exc, ops.SETUP) from None
            self._set_up(todo)

    def _ensure(self) -> None:
        self._perform(ops.ensure())

    # -- instances ---------------------------------------------------------------------------

    def extension(self, extension: Extension) -> Extension:
        """Declare (and on first use create or upgrade) an extension's tables.

        Idempotent and safe when many processes do it at once. Returns ``extension``.

        Raises:
            StoreError: the stored tables are newer, or an upgrade step is missing.
        """
        return self._perform(ops.extension(extension))

    def create(
        self,
        lifecycle: str | type[Lifecycle],
        /,
        *,
        id: str | None = None,
        context: BaseModel | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Snapshot:
        """Store a new instance of a registered lifecycle (by name or class).

        The context is ``context`` (a mapping, or the lifecycle's ``Context`` instance) and/or
        ``fields``: context data only, so a field may be called ``id`` or ``name``, and no
        data can choose the starting state or the constructor's internals.

        Args:
            lifecycle: a registered name (``"dataflow-job"``) or a registered class.
            id: the instance id (a UUID hex when absent).
            context: context data, whatever its field names.
            **fields: more context fields.

        Raises:
            UnknownLifecycle: an unknown name, or a class that is not registered.
            PayloadError: the context does not validate.
            StoreError: the id is invalid or exists.
        """
        return self._perform(ops.create(self, lifecycle, id, context, fields))

    def get(self, id: str, *, history: bool = True) -> Snapshot:
        """The stored snapshot; with ``history=False`` only its last record (enough to
        restore it and keep numbering), whatever the history's length.

        Raises:
            UnknownInstance: no such id.
            SnapshotError: the row cannot be restored (other rows stay readable).
        """
        return self._perform(ops.get(self, id, history))

    def load(self, id: str, *, clock: Clock | None = None, history: bool = True) -> Lifecycle:
        """A live instance (of the exact class that created it); its later event calls do
        not persist by themselves: use :meth:`send`, or a unit of work."""
        return self._perform(ops.load(self, id, clock, history))

    def history(
        self, id: str, *, after: int = 0, limit: int | None = None
    ) -> list[TransitionRecord]:
        """Stored transitions with ``seq > after``, oldest first, at most ``limit``.

        Raises:
            UnknownInstance: no such id.
        """
        return self._perform(ops.history(self, id, after, limit))

    def send(
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
        """Fire the event (or run the command) ``name`` on a stored instance, atomically:
        load, fire, compare-and-set save; re-run (under the retry policy) when another writer
        won the row. Cost does not grow with the instance's history.

        Callbacks that run inside the event may run again on a re-run: put effects in the
        lifecycle's ``after_commit`` (called once per committed record), ``on_commit``, or
        the change feed.

        Args:
            id: the instance id.
            name: an event or a declared command.
            *args: positional payload (``send(id, "observe", "JOB_STATE_RUNNING")``).
            data: the payload as a mapping or model, whatever its field names.
            idempotency_key: applied at most once on this instance: a repeat with the same
                request returns the original outcome with ``replayed=True``.
            actor: who causes it, kept on the records.
            reason: why, kept on the records.
            metadata: free JSON data kept on the records.
            **fields: payload fields.

        Raises:
            UnknownInstance: no such id.
            TransitionRejected, PayloadError: refused; nothing is written.
            IdempotencyConflict: the key was used for another request.
            WriteConflict: the retry policy was exhausted (the message says how often).
            ConnectionLost: the database cannot be reached; OutcomeUnknown when the
                connection broke during the commit.
            StoreError: ``name`` is an asynchronous command (use the asynchronous store).
        """
        return self._perform(
            ops.send(self, id, name, args, data, fields, idempotency_key, actor, reason,
                     metadata)
        )  # fmt: skip

    def expire_keys(self) -> int:
        """Forget idempotency keys older than the retention (the store does it by itself
        every 1,000 keyed sends); returns how many were removed."""
        return self._perform(ops.expire_keys(self))

    def delete(self, id: str) -> None:
        """Remove an instance, its history and its idempotency keys.

        Raises:
            UnknownInstance: no such id.
        """
        self._perform(ops.delete(self, id))

    def find(
        self,
        name: str | None = None,
        state: str | None = None,
        *,
        where: Mapping[str, Any] | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> Page[InstanceSummary]:
        """Stored instances, most recently changed first, by keyset pages.

        Args:
            name: only this lifecycle.
            state: only this state id.
            where: context fields equal to these values (``{"job_name": "clickstream"}``).
            limit: at most this many.
            after: ``page.next`` (or a summary's ``cursor``) of the previous page.

        Returns:
            A list with ``.next`` (the next page's cursor) and ``.skipped`` (rows that could
            not be read: reported, not fatal).
        """
        return self._perform(ops.find(self, name, state, where, limit, after))

    def count(
        self,
        name: str | None = None,
        state: str | None = None,
        *,
        where: Mapping[str, Any] | None = None,
    ) -> int:
        """How many stored instances match (as :meth:`find` filters)."""
        return self._perform(ops.count(self, name, state, where))

    # -- coordinators ------------------------------------------------------------------------

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[UnitOfWork]:
        """One transaction as a :class:`UnitOfWork`, committed when the block ends (one
        attempt: a conflict raises :class:`WriteConflict`; prefer :meth:`run`).

        Args:
            write: ``False`` for reads only (SQLite then takes no write lock).
        """
        if write:
            self._ensure()
        effects = Effects()
        try:
            with self._transaction(write=write) as execute:
                yield UnitOfWork(execute, Work(self, effects, write))
        except BackendError as exc:
            raise core.unit_of_work_error(exc, self.url) from None
        core.after_commit(effects, self._callbacks, None, "a unit of work")

    def run(self, operation: Callable[[UnitOfWork], T], *, write: bool = True) -> T:
        """``operation(uow)`` in one transaction, re-run from the start under the store's
        retry policy when another writer wins (or the connection broke before commit);
        after-commit callbacks run once, for the attempt that committed.

        ``operation`` may run more than once: keep its effects on the outside world in
        ``uow.after_commit``.

        Returns:
            What ``operation`` returned in the attempt that committed.
        """
        if write:
            self._ensure()

        def body(execute: Execute, effects: Effects) -> T:
            return operation(UnitOfWork(execute, Work(self, effects, write)))

        name = getattr(operation, "__qualname__", "a unit of work")
        return self._attempt(f"run {name}", write, body)

    # -- the change feed ---------------------------------------------------------------------

    def changes(self, after: int = 0, limit: int = 100) -> Page[Change]:
        """Committed changes with a position above ``after``, in position order.

        A reader that processes them in order and continues from the last position never
        misses one, even when writers commit out of position order. ``page.next`` is the
        position to continue after.
        """
        return self._perform(ops.changes(after, limit))

    def watch(
        self, after: int = 0, *, timeout: float | None = None, limit: int = 100
    ) -> Page[Change]:
        """:meth:`changes`, waiting up to ``timeout`` seconds (``None``: for ever) until
        there is one. PostgreSQL wakes on ``NOTIFY``; SQLite polls. Empty on timeout.

        Raises:
            StoreError: ``timeout`` is not a finite number >= 0 or None.
        """
        timeout = check_seconds("watch(timeout=)", timeout, allow_none=True, allow_zero=True)
        found = self.changes(after, limit)
        if found or timeout == 0:
            return found
        box: list[Page[Change]] = [found]

        def ready() -> bool:
            box[0] = self.changes(after, limit)
            return bool(box[0])

        wait = float("inf") if timeout is None else float(timeout)
        try:
            self._backend.wait_for_changes(wait, ready)
        except BackendError as exc:
            raise self._public(exc, "watch the change feed") from None
        return box[0]

    def consumer(self, name: str) -> Consumer:
        """The named consumer ``name`` (created on its first ack)."""
        return Consumer(self, name)

    # -- migrations --------------------------------------------------------------------------

    def migrate(self, name: str | None = None, *, batch: int = 100) -> Page[str]:
        """Rewrite rows (and their history) stored at an older ``schema_version`` of their
        lifecycle, through the lifecycle's ``migrations``.

        Each row is one transaction with compare-and-set, so it is safe while others write.
        Rows of lifecycles this process does not know are left alone; a row that cannot be
        migrated is reported in ``.skipped`` and the others go on.

        Returns:
            The ids rewritten, with ``.skipped``.
        """
        return self._perform(ops.migrate(self, name, batch))

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection (of every thread, or the pool)."""
        self._backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- helpers ---------------------------------------------------------------------------------


class _Lost(Exception):
    """Another writer won the row (a lost compare-and-set)."""


def _driving(step: Callable[[Effects], Any]) -> Callable[[Execute, Effects], Any]:
    """The body of a transaction that drives ``step(effects)``."""
    return lambda execute, effects: drive(execute, step(effects))
