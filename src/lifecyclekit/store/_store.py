"""The synchronous store: :class:`Store`, its :class:`UnitOfWork`, extensions and consumers.

This is the driver: it opens transactions on a back-end, runs the steps of
:mod:`lifecyclekit.store._core` in them, re-runs them under the one :class:`RetryPolicy`,
translates database failures into the public errors, and calls after-commit callbacks once
the commit has happened. It holds no rule of its own that an asynchronous store would have
to copy.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel

from lifecyclekit.errors import (
    AfterCommitError,
    ConnectionLost,
    NoSuchStore,
    OutcomeUnknown,
    PayloadError,
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
from lifecyclekit.store._backend import Backend, BackendError, Kind
from lifecyclekit.store._core import (
    SCHEMA_VERSION,
    Change,
    Effects,
    InstanceSummary,
    Loaded,
    Page,
    RetryPolicy,
    SendRequest,
    SendResult,
    check_id,
    drive,
    shown,
)

__all__ = ["Consumer", "Extension", "ExtensionSQL", "Store", "UnitOfWork", "public_error"]

T = TypeVar("T")
Execute = Callable[[str, Sequence[Any]], Any]
OnCommit = Callable[[Change], object]

_STORE_TABLES = frozenset(
    {"meta", "instances", "history", "keys", "changes", "consumers", "extensions"}
)
_EXTENSION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_TABLE = re.compile(r"\blk_[A-Za-z0-9_]+", re.IGNORECASE)


# -- extensions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Extension:
    """Tables of a coordinator's own, versioned, created once per database.

    An extension named ``graph`` owns the tables ``lk_graph`` and ``lk_graph_*``; its SQL may
    touch no other lifecyclekit table. Declare it with :meth:`Store.extension` (or
    ``open_store(..., extensions=[...])``): the first process to need it creates the tables,
    serialised with every other, and later versions run their ``upgrades``.

    Args:
        name: lowercase letters, digits and ``_``; not one of the store's own tables.
        version: the schema version ``statements`` create (from 1).
        statements: portable DDL (``CREATE TABLE IF NOT EXISTS ...``) creating the latest
            schema from nothing.
        upgrades: ``{n: statements}`` taking the tables from version ``n - 1`` to ``n``.

    Example::

        GRAPH = Extension("graph", 1, ("CREATE TABLE IF NOT EXISTS lk_graph (...)",))
    """

    name: str
    version: int
    statements: tuple[str, ...]
    upgrades: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _EXTENSION_NAME.match(self.name):
            msg = (
                f"Extension name {self.name!r} is not valid; use lowercase letters, digits "
                "and _ (at most 31), like 'graph'."
            )
            raise StoreError(msg)
        if self.name in _STORE_TABLES:
            msg = f"Extension name {self.name!r} is the store's own; choose another."
            raise StoreError(msg)
        if not isinstance(self.version, int) or self.version < 1:
            msg = f"Extension {self.name!r}: version must be an int >= 1, got {self.version!r}."
            raise StoreError(msg)
        for sql in (*self.statements, *(s for ss in self.upgrades.values() for s in ss)):
            _check_scope(self.name, sql)

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.statements))


@lru_cache(maxsize=1024)
def _check_scope(name: str, sql: str) -> None:
    own = f"lk_{name}"
    for table in _TABLE.findall(sql):
        table = table.lower()
        if table != own and not table.startswith(own + "_"):
            msg = (
                f"Extension {name!r} may use only its own tables ({own}, {own}_*), but its "
                f"SQL names {table}: {shown(sql)}"
            )
            raise StoreError(msg)


class ExtensionSQL:
    """An extension's tables inside one unit of work: SQL with ``?`` placeholders."""

    def __init__(self, extension: Extension, execute: Execute) -> None:
        self.extension = extension
        self._execute = execute

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a SELECT (or of ``... RETURNING``)."""
        _check_scope(self.extension.name, sql)
        return list(self._execute(sql, tuple(params)).rows)

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a write; the number of rows it changed."""
        _check_scope(self.extension.name, sql)
        return int(self._execute(sql, tuple(params)).rowcount)


# -- the unit of work ------------------------------------------------------------------------


class UnitOfWork:
    """One store transaction for a coordinator that changes many instances (and its own
    extension tables) at once: everything commits together or not at all.

    Obtained from :meth:`Store.run` (re-run on conflicts by the store's retry policy) or
    :meth:`Store.unit_of_work` (one attempt). Instances loaded here are live; :meth:`save`
    writes one back with compare-and-set on the row version it was loaded at, so a
    concurrent writer makes the whole unit of work re-run. Records committed through it go
    to the change feed and to ``after_commit`` exactly like ``send``'s.
    """

    def __init__(self, store: Store, execute: Execute, effects: Effects, write: bool) -> None:
        self.store = store
        self.write = write
        self._execute = execute
        self._effects = effects
        self._loaded: dict[str, Loaded] = {}

    def _run(self, step: core.Step[T]) -> T:
        return drive(self._execute, step)

    def _writable(self, what: str) -> None:
        if not self.write:
            msg = f"Cannot {what}: this unit of work is read-only (write=False)."
            raise StoreError(msg)

    def load(self, id: str, *, clock: Clock | None = None) -> Lifecycle:
        """The live instance (rebuilt with its last record, migrated if it is older),
        remembered with its row version for :meth:`save`.

        Raises:
            UnknownInstance: no such id.
            SnapshotError: the row cannot be restored.
        """
        loaded = self._run(core.load(check_id(id)))
        instance = core.restore(self.store.registry, loaded, clock or self.store.clock)
        self._loaded[id] = loaded
        return instance

    def version(self, id: str) -> int:
        """The row version ``id`` was loaded (or last saved) at in this unit of work."""
        return self._tracked(id).version

    def _tracked(self, id: str) -> Loaded:
        loaded = self._loaded.get(id)
        if loaded is None:
            msg = f"Instance {id!r} was neither loaded nor added in this unit of work."
            raise StoreError(msg)
        return loaded

    def add(self, id: str, instance: Lifecycle) -> None:
        """Store a new instance under ``id`` (of a registered lifecycle).

        Raises:
            StoreError: the id exists, or the instance's class is not registered.
        """
        self._writable(f"add {id!r}")
        self.store._registered(type(instance))
        snap = instance.snapshot()
        now = self.store._now()
        try:
            self._run(
                core.insert_instance(
                    check_id(id), instance, snap, now, self.store._backend, self._effects
                )
            )
        except BackendError as exc:
            if exc.kind is Kind.DUPLICATE:
                raise self.store._exists(id) from None
            raise
        self._loaded[id] = Loaded(
            id, snap.machine, snap.schema_version, snap.state, snap.context, snap.revision,
            1, list(snap.history[-1:]),
        )  # fmt: skip

    def save(self, id: str, instance: Lifecycle) -> None:
        """Write a loaded (or added) instance back: its row with compare-and-set, the records
        it took since, and their changes.

        Raises:
            WriteConflict: another writer changed the row since it was loaded (in
                :meth:`Store.run` the unit of work is then re-run).
        """
        self._writable(f"save {id!r}")
        loaded = self._tracked(id)
        records = [r for r in instance.history if r.seq > loaded.revision]
        changes = self._run(
            core.save(
                loaded, instance, records, self.store._now(), self.store._backend, self._effects
            )
        )
        if changes is None:
            msg = f"Instance {id!r} was changed by another writer since it was loaded."
            raise WriteConflict(msg)

    def remove(self, id: str) -> None:
        """Delete an instance with its history and keys (the change feed keeps its past).

        Raises:
            UnknownInstance: no such id.
        """
        self._writable(f"remove {id!r}")
        if not self._run(core.delete(check_id(id))):
            raise core.unknown(id)
        self._loaded.pop(id, None)

    def extension(self, extension: Extension) -> ExtensionSQL:
        """SQL on ``extension``'s tables in this transaction.

        Raises:
            StoreError: the extension was not declared with :meth:`Store.extension`.
        """
        if self.store._extensions.get(extension.name) != extension:
            msg = (
                f"Extension {extension.name!r} is not declared on this store; call "
                "store.extension(ext) first (or open_store(url, extensions=[ext]))."
            )
            raise StoreError(msg)
        return ExtensionSQL(extension, self._execute)

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` after this unit of work commits (never if it is rolled back
        or re-run), after the records' own after-commit callbacks."""
        self._effects.callbacks.append(callback)


# -- consumers -------------------------------------------------------------------------------


class Consumer:
    """A named reader of the change feed with a durable cursor: at-least-once processing.

    Process what :meth:`changes` (or :meth:`watch`) returns, then :meth:`ack` the last
    position handled; after a crash the consumer resumes after its last ack, so a change
    handled but not yet acknowledged is seen again.
    """

    def __init__(self, store: Store, name: str) -> None:
        if not isinstance(name, str) or not name or len(name) > 200:
            msg = f"A consumer name is a str of 1-200 characters, not {shown(name)}."
            raise StoreError(msg)
        self.store = store
        self.name = name

    @property
    def position(self) -> int:
        """The last acknowledged position (0 before the first ack)."""
        rows = self.store._read(
            f"read consumer {self.name!r}",
            lambda execute: (
                execute("SELECT position FROM lk_consumers WHERE name = ?", (self.name,)).rows
            ),
        )
        return int(rows[0][0]) if rows else 0

    def changes(self, limit: int = 100) -> Page[Change]:
        """Committed changes after the acknowledged position, in position order."""
        return self.store.changes(after=self.position, limit=limit)

    def watch(self, timeout: float | None = None, limit: int = 100) -> Page[Change]:
        """Like :meth:`changes`, waiting up to ``timeout`` seconds for one to arrive."""
        return self.store.watch(after=self.position, timeout=timeout, limit=limit)

    def ack(self, position: int | Change) -> None:
        """Record that everything up to ``position`` is handled (never moves backwards)."""
        value = position.position if isinstance(position, Change) else position
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            msg = f"ack() takes a Change or a position >= 0, not {shown(position)}."
            raise StoreError(msg)
        now = self.store._now()
        self.store._write(
            f"acknowledge {value} for consumer {self.name!r}",
            lambda execute: execute(
                "INSERT INTO lk_consumers (name, position, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
                " updated_at = excluded.updated_at"
                " WHERE lk_consumers.position < excluded.position",
                (self.name, value, now),
            ),
        )


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
        return core.now_micros(self.clock)

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
        return public_error(exc, self.url, what)

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
                retry = {Kind.CONFLICT, Kind.CONNECTION_LOST} | (
                    {Kind.OUTCOME_UNKNOWN} if key else set()
                )
                # A unique key taken by a concurrent transaction (invisible to this one's
                # snapshot) is a lost race too: a re-run sees it. A real duplicate stays one.
                if exc.kind is Kind.DUPLICATE and attempt < _DUPLICATE_RETRIES:
                    retry.add(Kind.DUPLICATE)
                if exc.kind not in retry:
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
        self._ensure()
        return self._attempt(what, True, lambda execute, _: body(execute))

    def _after_commit(self, effects: Effects, result: object, what: str) -> None:
        failures: list[BaseException] = []
        for instance, changes in effects.committed:
            for change in changes:
                if instance is not None:
                    _call(failures, instance.after_commit, change.record)
                for callback in self._callbacks:
                    _call(failures, callback, change)
        for function in effects.callbacks:
            _call(failures, function)
        if failures:
            msg = (
                f"{what} committed, but {len(failures)} after-commit callback(s) failed; "
                f"the first: {failures[0]!r}"
            )
            raise AfterCommitError(msg, result) from failures[0]

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
        self._check_version(rows)
        return bool(rows)

    def _check_version(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        raw = rows[0][0]
        try:
            version = int(raw)
        except (TypeError, ValueError):
            msg = f"The store {self.url} has unreadable metadata: schema_version = {shown(raw)}."
            raise StoreError(msg) from None
        if version > SCHEMA_VERSION:
            msg = (
                f"The store {self.url} was written by a newer lifecyclekit (store schema "
                f"{version}; this version reads schema {SCHEMA_VERSION}). Upgrade lifecyclekit."
            )
            raise StoreError(msg)
        if version < SCHEMA_VERSION:
            msg = (
                f"The store {self.url} has store schema {version}, written by a development "
                f"version of lifecyclekit; this version reads schema {SCHEMA_VERSION}. "
                "Create a new store."
            )
            raise StoreError(msg)

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
                        self._create_schema(execute)
                    for ext in todo:
                        self._create_extension(execute, ext)
            except BackendError as exc:
                raise self._public(exc, "create the store's tables") from None
            self._ready = True
            for ext in todo:
                self._extensions[ext.name] = ext

    def _create_schema(self, execute: Execute) -> None:
        execute(self._backend.schema[0], ())
        rows = execute("SELECT value FROM lk_meta WHERE key = 'schema_version'", ()).rows
        self._check_version(rows)
        if rows:
            return
        for statement in self._backend.schema[1:]:
            execute(statement, ())
        execute(
            "INSERT INTO lk_meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    def _create_extension(self, execute: Execute, ext: Extension) -> None:
        rows = execute("SELECT version FROM lk_extensions WHERE name = ?", (ext.name,)).rows
        if not rows:
            for statement in ext.statements:
                execute(statement, ())
            execute(
                "INSERT INTO lk_extensions (name, version) VALUES (?, ?)", (ext.name, ext.version)
            )
            return
        stored = rows[0][0]
        if not isinstance(stored, int) or stored > ext.version:
            msg = (
                f"Extension {ext.name!r} in {self.url} is at version {shown(stored)}, newer "
                f"than this code's {ext.version}; upgrade the code that declares it."
            )
            raise StoreError(msg)
        for version in range(stored + 1, ext.version + 1):
            if version not in ext.upgrades:
                msg = (
                    f"Extension {ext.name!r} in {self.url} is at version {stored}; this code "
                    f"is at {ext.version} but declares no upgrade to {version}."
                )
                raise StoreError(msg)
            for statement in ext.upgrades[version]:
                execute(statement, ())
        if stored != ext.version:
            execute("UPDATE lk_extensions SET version = ? WHERE name = ?", (ext.version, ext.name))

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
        instance = cls(clock=self.clock, context=_context(cls, context, fields))
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
        return core.restore(self.registry, loaded, clock or self.clock)

    def history(
        self, id: str, *, after: int = 0, limit: int | None = None
    ) -> list[TransitionRecord]:
        """Stored transitions with ``seq > after``, oldest first, at most ``limit``.

        Raises:
            UnknownInstance: no such id.
        """
        check_id(id)
        _check_count("after", after, allow_zero=True)
        if limit is not None:
            _check_count("limit", limit)

        def body(execute: Execute) -> tuple[Loaded, list[TransitionRecord]]:
            loaded = drive(execute, core.load(id))
            return loaded, drive(execute, core.read_records(id, after, limit))

        loaded, records = self._read(f"read the history of {id!r}", body)
        return core.migrated_history(self.registry, loaded, records)

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
        _check_audit(actor, reason, metadata, idempotency_key)
        request = SendRequest(
            id, name, args, _payload(data, fields), idempotency_key, actor, reason, metadata
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
        return result

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
        _check_count("limit", limit)
        step = core.find(self._backend, name, state, where, limit, after)
        return self._read("list instances", lambda execute: drive(execute, step))

    def count(
        self,
        name: str | None = None,
        state: str | None = None,
        *,
        where: Mapping[str, Any] | None = None,
    ) -> int:
        """How many stored instances match (as :meth:`find` filters)."""
        step = core.count(self._backend, name, state, where)
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
        _check_count("after", after, allow_zero=True)
        _check_count("limit", limit)
        try:
            fence = self._backend.change_fence(after)
        except BackendError as exc:
            raise self._public(exc, "read the change feed") from None
        step = core.changes(after, fence, limit)
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
        _check_count("batch", batch)
        sql = "SELECT DISTINCT machine FROM lk_instances"
        machines = self._read("list lifecycles", lambda execute: execute(sql, ()).rows)
        done: list[str] = []
        skipped: list[core.Skipped] = []
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
                        skipped.append(core.Skipped(instance_id, str(exc)))
                    else:
                        done.append(instance_id)
                if len(rows) < batch:
                    break
                last = rows[-1][0]
        return Page(done, skipped=skipped)

    def _migrate_one(self, instance_id: str) -> Callable[[Execute, Effects], Any]:
        def body(execute: Execute, effects: Effects) -> Any:
            loaded = drive(execute, core.load(instance_id, full_history=True))
            instance = core.restore(self.registry, loaded, self.clock)
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


def public_error(exc: BackendError, url: str, what: str) -> StoreError:
    """The public error for a database failure during ``what`` on the store at ``url``."""
    detail, kind = exc.detail, exc.kind
    if kind is Kind.NO_STORE:
        return NoSuchStore(f"no such store: {url} ({detail}).")
    if kind is Kind.OUTCOME_UNKNOWN:
        return OutcomeUnknown(
            f"The connection to {url} broke while committing ({what}): it may or may not "
            "have been applied. Check with get()/history(), or resend with the same "
            f"idempotency key, which is safe either way. ({detail})"
        )
    if kind in (Kind.CONNECTION_LOST, Kind.UNAVAILABLE):
        return ConnectionLost(
            f"Cannot {what}: the database at {url} cannot be reached; nothing was applied "
            f"and the next call reconnects. ({detail})"
        )
    reason = {
        Kind.DUPLICATE: f"a unique key exists ({detail})",
        Kind.READ_ONLY: f"the store {url} is read-only ({detail}); it can be read only",
        Kind.FULL: f"the disk of {url} is full ({detail}); nothing was written",
        Kind.CORRUPT: f"{url} is not a lifecyclekit store, or is damaged ({detail})",
        Kind.BUSY: f"timed out waiting for another writer's lock on {url} ({detail})",
        Kind.INVALID: f"the database refused a value ({detail})",
        Kind.CONFLICT: f"another writer kept winning ({detail})",
    }.get(kind, f"{detail} ({url})")
    return StoreError(f"Cannot {what}: {reason}.")


class _Lost(Exception):
    """Another writer won the row (a lost compare-and-set)."""


_LOST: Any = object()
_DUPLICATE_RETRIES = 3


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


def _call(failures: list[BaseException], function: Callable[..., object], *args: Any) -> None:
    try:
        function(*args)
    except Exception as exc:
        failures.append(exc)


def _check_count(what: str, value: Any, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**63:
        msg = f"{what} must be an int from {low} to 2**63 - 1, got {shown(value)}."
        raise StoreError(msg)


def _check_audit(actor: Any, reason: Any, metadata: Any, key: Any) -> None:
    for label, value in (("actor", actor), ("reason", reason), ("idempotency_key", key)):
        if value is not None and (not isinstance(value, str) or len(value) > 1000):
            msg = (
                f"send(..., {label}=) takes a str of at most 1000 characters, got "
                f"{shown(value)}. (A payload field called {label!r} goes in data={{...}}.)"
            )
            raise StoreError(msg)
    if metadata is not None and not isinstance(metadata, Mapping):
        msg = f"send(..., metadata=) takes a JSON object (a mapping), got {shown(metadata)}."
        raise StoreError(msg)


def _payload(data: BaseModel | Mapping[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
    if data is None:
        return fields
    if isinstance(data, BaseModel):
        data = {name: getattr(data, name) for name in type(data).model_fields}
    elif not isinstance(data, Mapping):
        msg = f"send(..., data=) takes a mapping or a payload model, got {shown(data)}."
        raise StoreError(msg)
    both = sorted(set(data) & set(fields))
    if both:
        msg = f"send() got payload field(s) {both} both in data= and as keywords."
        raise StoreError(msg)
    return {**data, **fields}


def _context(
    cls: type[Lifecycle], context: BaseModel | Mapping[str, Any] | None, fields: dict[str, Any]
) -> BaseModel | None:
    """The validated context from ``context=`` and keyword fields (data only)."""
    if isinstance(context, BaseModel):
        if fields:
            msg = f"create() got a {type(context).__name__} and fields {sorted(fields)}; pass one."
            raise PayloadError(cls.__name__, "context", [("context", msg, context)])
        return cls._build_context(context, {})
    if context is not None and not isinstance(context, Mapping):
        problem = "create(context=) takes a mapping or a Context instance"
        raise PayloadError(cls.__name__, "context", [("context", problem, context)])
    data = dict(context or {})
    both = sorted(set(data) & set(fields))
    if both:
        problem = "given both in context= and as a keyword"
        raise PayloadError(cls.__name__, "context", [(k, problem, fields[k]) for k in both])
    data.update(fields)
    return cls._build_context(None, data)
