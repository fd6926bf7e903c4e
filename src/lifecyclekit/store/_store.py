"""The synchronous store: :class:`Store`, the driver of the store's steps.

It opens transactions on a back-end, runs the steps of :mod:`lifecyclekit.store._core` in
them, re-runs them under the one :class:`RetryPolicy`, translates database failures into the
public errors, and calls after-commit callbacks once the commit has happened. The rules
themselves live in the I/O-free modules, so an asynchronous store reuses them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from lifecyclekit.errors import (
    SnapshotError,
    StoreError,
    UnknownInstance,
    UnknownLifecycle,
    WriteConflict,
)
from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.registry import Registry
from lifecyclekit.registry import registry as default_registry
from lifecyclekit.snapshot import Snapshot, TransitionRecord
from lifecyclekit.store import _core as core
from lifecyclekit.store import _queries as queries
from lifecyclekit.store import _schema as schema
from lifecyclekit.store._backend import Backend, BackendError, Kind
from lifecyclekit.store._core import Effects, RetryPolicy, SendRequest
from lifecyclekit.store._model import (
    Change,
    InstanceSummary,
    Page,
    SendResult,
    Skipped,
    check_audit,
    check_count,
    check_id,
    context_of,
    drive,
    now_micros,
    payload_of,
    shown,
)
from lifecyclekit.store._rows import CONFIGURATIONS_DDL, Loaded, migrated_history, restore
from lifecyclekit.store._schema import Extension
from lifecyclekit.store._uow import Consumer, ExtensionSQL, UnitOfWork

__all__ = ["Consumer", "Extension", "ExtensionSQL", "Store", "UnitOfWork"]

T = TypeVar("T")
Execute = Callable[[str, Sequence[Any]], Any]
OnCommit = Callable[[Change], object]


# -- the store -------------------------------------------------------------------------------


class Store:
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
        self._backend = backend
        self.url = backend.url
        self.registry = registry if registry is not None else default_registry
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.key_retention = key_retention
        self._retention = -1 if key_retention is None else int(key_retention.total_seconds() * 1e6)
        self._callbacks: list[OnCommit] = []
        self._keyed = 0
        self._extensions: dict[str, Extension] = {}
        self._local = threading.local()
        self._setup_lock = threading.Lock()
        try:
            self._ready = self._check() if not getattr(backend, "memory", False) else False
            if extensions or getattr(backend, "memory", False):
                self._setup(extensions)
        except BaseException:
            backend.close()  # a store that failed to open leaks no connection
            raise

    # -- transactions and errors -------------------------------------------------------------

    def _now(self) -> int:
        return now_micros(self.clock)

    @contextmanager
    def _transaction(self, *, write: bool, schema: bool = False) -> Iterator[Execute]:
        if getattr(self._local, "active", False):
            msg = (
                "A store operation was called inside a unit of work of the same store (in "
                "the same thread); use the unit of work's own load/save/add/remove."
            )
            raise StoreError(msg)
        self._local.active = True
        try:
            with self._backend.transaction(write=write, schema=schema) as tx:
                yield tx.execute
        finally:
            self._local.active = False

    def _public(self, exc: BackendError, what: str) -> StoreError:
        """The public error for a database failure during ``what``."""
        return core.public_error(exc, self.url, what)

    def _attempt(
        self, what: str, write: bool, body: Callable[[Execute, Effects], T], *, key: bool = False
    ) -> T:
        """Run ``body`` in a transaction under the retry policy, then the after-commit
        callbacks of the attempt that committed. ``body`` returns ``_LOST`` (or raises
        WriteConflict) when another writer won. With ``key`` (an idempotency key) an unknown
        commit outcome is retried too: the replay says what happened."""
        policy = self.retry
        reason = "another writer changed it each time"
        for attempt in range(1, policy.attempts + 1):
            effects = Effects()
            try:
                with self._transaction(write=write) as execute:
                    result = body(execute, effects)
                    if result is _LOST:
                        raise _Lost
            except (_Lost, WriteConflict):
                reason = "another writer changed it each time"
            except BackendError as exc:
                if not core.retryable(exc.kind, attempt, keyed=key):
                    raise self._public(exc, what) from None
                if exc.kind in (Kind.CONNECTION_LOST, Kind.OUTCOME_UNKNOWN):
                    reason = f"the connection kept failing ({exc.detail})"
            else:
                self._after_commit(effects, result, what)
                return result
            if attempt < policy.attempts:
                time.sleep(policy.delay(attempt))
        msg = f"Gave up trying to {what} after {policy.attempts} attempts: {reason}."
        raise WriteConflict(msg)

    def _read(self, what: str, body: Callable[[Execute], T]) -> T:
        """One read-only transaction (retried only on conflicts and lost connections)."""
        return self._attempt(what, False, lambda execute, _: body(execute))

    def _write(self, what: str, body: Callable[[Execute], T]) -> T:
        """One write transaction on the existing tables (it never creates the store)."""
        return self._attempt(what, True, lambda execute, _: body(execute))

    def _after_commit(self, effects: Effects, result: object, what: str) -> None:
        core.after_commit(effects, self._callbacks, result, what)

    # -- schema ------------------------------------------------------------------------------

    def _check(self) -> bool:
        """Whether the store's tables exist (a newer or unreadable schema is an error)."""
        try:
            with self._transaction(write=False) as execute:
                rows = execute("SELECT value FROM lk_meta WHERE key = 'schema_version'", ()).rows
        except BackendError as exc:
            if exc.kind is Kind.NO_STORE:
                return False
            raise self._public(exc, "open the store") from None
        schema.check_version(rows, self.url)
        if rows:  # a store from before statecharts gains their table (created if absent)
            try:
                with self._transaction(write=True, schema=True) as execute:
                    execute(CONFIGURATIONS_DDL, ())
            except BackendError as exc:
                raise self._public(exc, "open the store") from None
        return bool(rows)

    def _ensure(self) -> None:
        if not self._ready:
            self._setup(())

    def _setup(self, extensions: Sequence[Extension]) -> None:
        """Create the store's tables (once) and ``extensions``' (each once), serialised with
        every other process doing the same."""
        todo = [e for e in extensions if self._extensions.get(e.name) != e]
        for ext in todo:
            other = self._extensions.get(ext.name)
            if other is not None:
                msg = (
                    f"Extension {ext.name!r} is declared twice, at versions {other.version} "
                    f"and {ext.version}."
                )
                raise StoreError(msg)
        if self._ready and not todo:
            return
        with self._setup_lock:
            try:
                with self._transaction(write=True, schema=True) as execute:
                    if not self._ready:
                        drive(execute, schema.create_store(self._backend.schema, self.url))
                    for ext in todo:
                        drive(execute, schema.create_extension(ext, self.url))
            except BackendError as exc:
                raise self._public(exc, "create the store's tables") from None
            self._ready = True
            for ext in todo:
                self._extensions[ext.name] = ext

    def extension(self, extension: Extension) -> Extension:
        """Declare (and on first use create or upgrade) an extension's tables.

        Idempotent and safe when many processes do it at once. Returns ``extension``.

        Raises:
            StoreError: the stored tables are newer, or an upgrade step is missing.
        """
        self._setup((extension,))
        return extension

    # -- instances ---------------------------------------------------------------------------

    def _registered(self, cls: type[Lifecycle]) -> str:
        """The registry name of ``cls``, which must resolve to exactly ``cls``."""
        key = cls.machine_key()
        try:
            found = self.registry.get(key)
        except UnknownLifecycle:
            found = None
        if found is cls:
            return key
        base = f" ({key!r} is {found.__qualname__})" if found is not None else ""
        hint = (
            f"{cls.__qualname__} is not registered{base}: decorate it with "
            f"@registry.register('your-name') so the store can reload it as "
            f"{cls.__qualname__}, never as another class."
        )
        raise UnknownLifecycle(cls.__qualname__, self.registry.names(), hint=hint)

    def _lifecycle(self, lifecycle: str | type[Lifecycle]) -> type[Lifecycle]:
        if isinstance(lifecycle, str):
            return self.registry.get(lifecycle)
        if isinstance(lifecycle, type) and issubclass(lifecycle, Lifecycle):
            self._registered(lifecycle)
            return lifecycle
        msg = f"create() takes a registered lifecycle name or class, not {shown(lifecycle)}."
        raise StoreError(msg)

    def _exists(self, id: str) -> StoreError:
        return StoreError(f"A stored instance with id {id!r} already exists in {self.url}.")

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
        cls = self._lifecycle(lifecycle)
        instance_id = check_id(id) if id is not None else uuid.uuid4().hex
        instance = cls(clock=self.clock, context=context_of(cls, context, fields))
        snap = instance.snapshot()

        def body(execute: Execute, effects: Effects) -> Snapshot:
            drive(
                execute,
                core.insert_instance(
                    instance_id, instance, snap, self._now(), self._backend, effects
                ),
            )
            return snap

        self._ensure()
        try:
            return self._attempt(f"create {instance_id!r}", True, _duplicates(body))
        except _Duplicate:
            raise self._exists(instance_id) from None

    def get(self, id: str, *, history: bool = True) -> Snapshot:
        """The stored snapshot; with ``history=False`` only its last record (enough to
        restore it and keep numbering), whatever the history's length.

        Raises:
            UnknownInstance: no such id.
            SnapshotError: the row cannot be restored (other rows stay readable).
        """
        return self.load(id, history=history).snapshot()

    def load(self, id: str, *, clock: Clock | None = None, history: bool = True) -> Lifecycle:
        """A live instance (of the exact class that created it); its later event calls do
        not persist by themselves: use :meth:`send`, or a unit of work."""
        check_id(id)
        loaded = self._read(
            f"read {id!r}", lambda execute: drive(execute, core.load(id, full_history=history))
        )
        return restore(self.registry, loaded, clock or self.clock)

    def history(
        self, id: str, *, after: int = 0, limit: int | None = None
    ) -> list[TransitionRecord]:
        """Stored transitions with ``seq > after``, oldest first, at most ``limit``.

        Raises:
            UnknownInstance: no such id.
        """
        check_id(id)
        check_count("after", after, allow_zero=True)
        if limit is not None:
            check_count("limit", limit)

        def body(execute: Execute) -> tuple[Loaded, list[TransitionRecord]]:
            loaded = drive(execute, core.load(id))
            return loaded, drive(execute, core.read_records(id, after, limit))

        loaded, records = self._read(f"read the history of {id!r}", body)
        return migrated_history(self.registry, loaded, records)

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
        """
        check_id(id)
        check_audit(actor, reason, metadata, idempotency_key)
        request = SendRequest(
            id, name, args, payload_of(data, fields), idempotency_key, actor, reason, metadata
        )

        def body(execute: Execute, effects: Effects) -> Any:
            result = drive(
                execute,
                core.send(
                    request, self.registry, self.clock, self._now(), self._retention,
                    self._backend, effects,
                ),
            )  # fmt: skip
            return _LOST if result is None else result

        result: SendResult = self._attempt(
            f"send {name!r} to {id!r}", True, body, key=idempotency_key is not None
        )
        if idempotency_key is not None:
            self._keyed += 1
            if self._keyed % _EXPIRE_EVERY == 0:
                self.expire_keys()
        return result

    def expire_keys(self) -> int:
        """Forget idempotency keys older than the retention (the store does it by itself
        every 1,000 keyed sends); returns how many were removed."""
        if self._retention < 0:
            return 0
        cutoff = self._now() - self._retention
        return int(
            self._write(
                "expire idempotency keys",
                lambda execute: (
                    execute("DELETE FROM lk_keys WHERE created_at < ?", (cutoff,)).rowcount
                ),
            )
        )

    def delete(self, id: str) -> None:
        """Remove an instance, its history and its idempotency keys.

        Raises:
            UnknownInstance: no such id.
        """
        check_id(id)
        if not self._write(f"delete {id!r}", lambda execute: drive(execute, core.delete(id))):
            raise core.unknown(id)

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
        check_count("limit", limit)
        step = queries.find(self._backend, name, state, where, limit, after)
        return self._read("list instances", lambda execute: drive(execute, step))

    def count(
        self,
        name: str | None = None,
        state: str | None = None,
        *,
        where: Mapping[str, Any] | None = None,
    ) -> int:
        """How many stored instances match (as :meth:`find` filters)."""
        step = queries.count(self._backend, name, state, where)
        return self._read("count instances", lambda execute: drive(execute, step))

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
                yield UnitOfWork(self, execute, effects, write)
        except BackendError as exc:
            if exc.kind is Kind.CONFLICT:
                msg = f"A unit of work on {self.url} lost to another writer: {exc.detail}"
                raise WriteConflict(msg) from None
            raise self._public(exc, "run a unit of work") from None
        self._after_commit(effects, None, "a unit of work")

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
            return operation(UnitOfWork(self, execute, effects, write))

        name = getattr(operation, "__qualname__", "a unit of work")
        return self._attempt(f"run {name}", write, body)

    # -- effects and the change feed ---------------------------------------------------------

    def on_commit(self, callback: OnCommit) -> OnCommit:
        """Call ``callback(change)`` for every record this store object commits, after the
        commit (whatever the lifecycle). Usable as a decorator; returns ``callback``."""
        self._callbacks.append(callback)
        return callback

    def changes(self, after: int = 0, limit: int = 100) -> Page[Change]:
        """Committed changes with a position above ``after``, in position order.

        A reader that processes them in order and continues from the last position never
        misses one, even when writers commit out of position order. ``page.next`` is the
        position to continue after.
        """
        check_count("after", after, allow_zero=True)
        check_count("limit", limit)
        try:
            fence = self._backend.change_fence(after)
        except BackendError as exc:
            raise self._public(exc, "read the change feed") from None
        step = queries.changes(after, fence, limit)
        return self._read("read the change feed", lambda execute: drive(execute, step))

    def watch(
        self, after: int = 0, *, timeout: float | None = None, limit: int = 100
    ) -> Page[Change]:
        """:meth:`changes`, waiting up to ``timeout`` seconds (``None``: for ever) until
        there is one. PostgreSQL wakes on ``NOTIFY``; SQLite polls. Empty on timeout."""
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
        check_count("batch", batch)
        sql = "SELECT DISTINCT machine FROM lk_instances"
        machines = self._read("list lifecycles", lambda execute: execute(sql, ()).rows)
        done: list[str] = []
        skipped: list[Skipped] = []
        for machine in sorted(m for (m,) in machines if name is None or m == name):
            try:
                cls = self.registry.get(machine)
            except UnknownLifecycle:
                continue
            last = ""
            while True:
                rows = self._read(
                    f"list {machine} rows to migrate",
                    lambda execute, m=machine, v=cls.schema_version, a=last: (
                        execute(  # type: ignore[misc]
                            "SELECT id FROM lk_instances WHERE machine = ? AND schema_version < ?"
                            " AND id > ? ORDER BY id LIMIT ?",
                            (m, v, a, batch),
                        ).rows
                    ),
                )
                for (instance_id,) in rows:
                    try:
                        self._attempt(
                            f"migrate {instance_id!r}", True, self._migrate_one(instance_id)
                        )
                    except (SnapshotError, UnknownInstance) as exc:
                        skipped.append(Skipped(instance_id, str(exc)))
                    else:
                        done.append(instance_id)
                if len(rows) < batch:
                    break
                last = rows[-1][0]
        return Page(done, skipped=skipped)

    def _migrate_one(self, instance_id: str) -> Callable[[Execute, Effects], Any]:
        def body(execute: Execute, effects: Effects) -> Any:
            loaded = drive(execute, core.load(instance_id, full_history=True))
            instance = restore(self.registry, loaded, self.clock)
            saved = drive(
                execute,
                core.save(loaded, instance, [], self._now(), self._backend, effects,
                          rewrite_history=True),
            )  # fmt: skip
            return _LOST if saved is None else True

        return body

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection (of every thread, or the pool)."""
        self._backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.url}>"


# -- helpers ---------------------------------------------------------------------------------


class _Lost(Exception):
    """Another writer won the row (a lost compare-and-set)."""


_LOST: Any = object()
_EXPIRE_EVERY = 1000


class _Duplicate(Exception):
    pass


def _duplicates(body: Callable[[Execute, Effects], T]) -> Callable[[Execute, Effects], T]:
    def wrapped(execute: Execute, effects: Effects) -> T:
        try:
            return body(execute, effects)
        except BackendError as exc:
            if exc.kind is Kind.DUPLICATE:
                raise _Duplicate from None
            raise

    return wrapped
