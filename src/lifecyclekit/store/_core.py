"""What every back-end shares: the schema, rows <-> snapshots, and ``send``'s CAS loop.

A back-end supplies a DB-API connection and a transaction context; all SQL here is written
with ``?`` placeholders and rewritten for back-ends that use ``%s``.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from lifecyclekit.errors import SnapshotError, StoreError, UnknownInstance, WriteConflict
from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.registry import Registry
from lifecyclekit.registry import registry as default_registry
from lifecyclekit.snapshot import Snapshot, TransitionRecord

__all__ = [
    "MAX_ATTEMPTS",
    "Session",
    "SCHEMA_VERSION",
    "BaseStore",
    "InstanceSummary",
    "StoreError",
    "UnknownInstance",
    "WriteConflict",
]

SCHEMA_VERSION = 1
MAX_ATTEMPTS = 50
"""How often ``send`` re-loads and re-fires after losing a compare-and-set race."""

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS lk_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS lk_instances (
        id TEXT PRIMARY KEY, machine TEXT NOT NULL, schema_version INTEGER NOT NULL,
        state TEXT NOT NULL, context TEXT, revision INTEGER NOT NULL,
        version INTEGER NOT NULL, updated_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS lk_instances_machine_state ON lk_instances (machine, state)",
    """CREATE TABLE IF NOT EXISTS lk_history (
        instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
        source TEXT NOT NULL, target TEXT NOT NULL, payload TEXT, at TEXT NOT NULL,
        inferred INTEGER NOT NULL, PRIMARY KEY (instance_id, seq))""",
    """CREATE TABLE IF NOT EXISTS lk_keys (
        instance_id TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (instance_id, key))""",
)


class InstanceSummary(BaseModel):
    """One stored instance, as ``find`` lists it."""

    model_config = ConfigDict(frozen=True)

    id: str
    machine: str
    state: str
    revision: int
    updated_at: datetime


class Session:
    """One store transaction, for coordinators that change many instances at once.

    Everything done through a session commits together or not at all. Obtained from
    :meth:`BaseStore.session`; instances it loads are live until the session ends.
    """

    def __init__(self, store: BaseStore, cursor: Any) -> None:
        self.store = store
        self.cursor = cursor
        self._versions: dict[str, tuple[int, int]] = {}

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        """Run SQL written with ``?`` placeholders (rewritten for the back-end)."""
        return self.store._exec(self.cursor, query, params)

    def load(self, id: str, *, clock: Clock | None = None) -> Lifecycle:
        """The live instance (with its last history record); remembered for :meth:`save`.

        Args:
            id: the instance id.
            clock: the clock the instance reads (default: the store's).
        """
        instance, version = self.store._load(self.cursor, id, last_only=True, clock=clock)
        self._versions[id] = (version, instance.revision)
        return instance

    def add(self, id: str, instance: Lifecycle) -> None:
        """Store a new instance under ``id``."""
        self.store._insert(self.cursor, id, instance.snapshot())
        self._versions[id] = (1, instance.revision)

    def save(self, id: str, instance: Lifecycle) -> None:
        """Write a loaded (or added) instance back, with compare-and-set on its row.

        Raises:
            StoreError: another writer changed the row since it was loaded.
        """
        version, stored = self._versions[id]
        if not self.store._save(self.cursor, id, instance, version, stored, None):
            msg = f"Instance {id!r} was changed by another writer; retry the operation."
            raise WriteConflict(msg)
        self._versions[id] = (version + 1, instance.revision)

    def remove(self, id: str) -> None:
        """Delete an instance with its history and keys."""
        self.store._delete(self.cursor, id)
        self._versions.pop(id, None)


class BaseStore(ABC):
    """The store operations, on top of a back-end's connection and transactions."""

    placeholder = "?"

    def __init__(self, *, registry: Registry | None = None, clock: Clock | None = None) -> None:
        self.registry = registry or default_registry
        self.clock = clock

    # -- back-end hooks ----------------------------------------------------------------------

    @abstractmethod
    def _transaction(self, write: bool) -> AbstractContextManager[Any]:
        """A transaction yielding a cursor; ``write`` takes the write lock at its start."""

    @abstractmethod
    def _is_duplicate(self, exc: Exception) -> bool:
        """Whether ``exc`` is the back-end's unique-constraint violation."""

    def _is_conflict(self, exc: Exception) -> bool:
        """Whether ``exc`` means another writer won (the transaction may be retried)."""
        return False

    def is_conflict(self, exc: Exception) -> bool:
        """Whether ``exc``, raised inside a :meth:`session`, means another writer won and
        the whole operation should be retried (a serialization failure, a lost CAS)."""
        return isinstance(exc, WriteConflict) or self._is_conflict(exc)

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def _sql(self, query: str) -> str:
        return query if self.placeholder == "?" else query.replace("?", self.placeholder)

    def _exec(self, cursor: Any, query: str, params: tuple[Any, ...] = ()) -> Any:
        cursor.execute(self._sql(query), params)
        return cursor

    def _schema_lock(self, cursor: Any) -> None:  # noqa: B027 - optional hook
        """Serialise schema creation between processes (SQLite's write lock already does)."""

    def _open(self) -> None:
        """Create or check the schema; on failure the connection is closed, not leaked."""
        try:
            self._init_schema()
        except BaseException:
            self.close()
            raise

    def _init_schema(self) -> None:
        with self._transaction(write=True) as cursor:
            self._schema_lock(cursor)
            for statement in SCHEMA:
                self._exec(cursor, statement)
            row = self._exec(
                cursor, "SELECT value FROM lk_meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is None:
                self._exec(
                    cursor,
                    "INSERT INTO lk_meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                msg = (
                    f"This store was written by a newer lifecyclekit (store schema {row[0]}; "
                    f"this version reads schema {SCHEMA_VERSION}). Upgrade lifecyclekit."
                )
                raise StoreError(msg)

    # -- rows and snapshots ------------------------------------------------------------------

    def _now(self) -> str:
        return (self.clock() if self.clock else datetime.now(UTC)).isoformat()

    def _insert_history(self, cursor: Any, instance_id: str, records: Any) -> None:
        for r in records:
            self._exec(
                cursor,
                "INSERT INTO lk_history (instance_id, seq, event, source, target, payload, at,"
                " inferred) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    instance_id, r.seq, r.event, r.source, r.target,
                    json.dumps(r.payload) if r.payload is not None else None,
                    r.at.isoformat(), int(r.inferred),
                ),
            )  # fmt: skip

    def _row(self, cursor: Any, instance_id: str) -> tuple[Any, ...]:
        row = self._exec(
            cursor,
            "SELECT machine, schema_version, state, context, revision, version"
            " FROM lk_instances WHERE id = ?",
            (instance_id,),
        ).fetchone()
        if row is None:
            msg = f"No stored instance {instance_id!r}; list ids with find() or `lifecyclekit ls`."
            raise UnknownInstance(msg)
        return tuple(row)

    def _records(self, cursor: Any, instance_id: str, last_only: bool) -> list[TransitionRecord]:
        query = (
            "SELECT seq, event, source, target, payload, at, inferred FROM lk_history"
            " WHERE instance_id = ? ORDER BY seq" + (" DESC LIMIT 1" if last_only else "")
        )
        return [
            TransitionRecord(
                seq=seq, event=event, source=source, target=target,
                payload=json.loads(payload) if payload is not None else None,
                at=datetime.fromisoformat(at), inferred=bool(inferred),
            )
            for seq, event, source, target, payload, at, inferred in self._exec(
                cursor, query, (instance_id,)
            ).fetchall()
        ]  # fmt: skip

    def _load(
        self, cursor: Any, instance_id: str, *, last_only: bool, clock: Clock | None = None
    ) -> tuple[Lifecycle, int]:
        """The live instance and its row version; a corrupt row is a SnapshotError."""
        machine, schema_version, state, context, revision, version = self._row(cursor, instance_id)
        try:
            snapshot = Snapshot(
                machine=machine,
                schema_version=schema_version,
                state=state,
                context=json.loads(context) if context is not None else None,
                history=tuple(self._records(cursor, instance_id, last_only)),
                revision=revision,
            )
            instance = self.registry.restore(snapshot, clock=clock or self.clock)
        except (SnapshotError, ValidationError, ValueError) as exc:
            msg = f"Stored instance {instance_id!r} is corrupt: {exc}"
            raise SnapshotError(msg) from None
        return instance, version

    # -- operations --------------------------------------------------------------------------

    def create(self, name: str, id: str | None = None, **context: Any) -> Snapshot:
        """Store a new instance of lifecycle ``name`` (``id`` generated when absent).

        Raises:
            StoreError: an instance with that id exists.
        """
        instance = self.registry.create(name, clock=self.clock, **context)
        instance_id = id or uuid.uuid4().hex
        snap = instance.snapshot()
        try:
            with self._transaction(write=True) as cursor:
                self._insert(cursor, instance_id, snap)
        except Exception as exc:
            if self._is_duplicate(exc):
                msg = f"A stored instance with id {instance_id!r} already exists."
                raise StoreError(msg) from None
            raise
        return snap

    def _insert(self, cursor: Any, instance_id: str, snap: Snapshot) -> None:
        self._exec(
            cursor,
            "INSERT INTO lk_instances (id, machine, schema_version, state, context,"
            " revision, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
            (
                instance_id, snap.machine, snap.schema_version, snap.state,
                json.dumps(snap.context) if snap.context is not None else None,
                snap.revision, self._now(),
            ),
        )  # fmt: skip
        self._insert_history(cursor, instance_id, snap.history)

    def session(self, *, write: bool = True) -> AbstractContextManager[Session]:
        """A transaction as a :class:`Session` (commits when the block ends); ``write=False``
        for reads only (SQLite then does not take its write lock)."""
        return _session(self, write)

    def get(self, id: str) -> Snapshot:
        """The stored snapshot, with its whole history.

        Raises:
            UnknownInstance: no such id.
            SnapshotError: the row is corrupt (other rows stay readable).
        """
        with self._transaction(write=False) as cursor:
            instance, _ = self._load(cursor, id, last_only=False)
        return instance.snapshot()

    def load(self, id: str, *, clock: Clock | None = None) -> Lifecycle:
        """A live instance with its whole history; its later event calls do not persist by
        themselves.

        Args:
            id: the instance id.
            clock: the clock the instance reads (default: the store's).
        """
        with self._transaction(write=False) as cursor:
            instance, _ = self._load(cursor, id, last_only=False, clock=clock)
        return instance

    def history(self, id: str) -> list[TransitionRecord]:
        """The stored transitions of an instance, oldest first."""
        with self._transaction(write=False) as cursor:
            self._row(cursor, id)
            return self._records(cursor, id, last_only=False)

    def send(
        self, id: str, name: str, /, *args: Any, idempotency_key: str | None = None, **data: Any
    ) -> Snapshot:
        """Load, fire the event or command ``name``, and save with compare-and-set, atomically.

        On a lost race it re-loads and re-fires (up to :data:`MAX_ATTEMPTS`); an event no
        longer allowed then raises as it would have without the race. With
        ``idempotency_key``, a key already applied to this instance returns the stored
        snapshot without firing again.

        Raises:
            UnknownInstance, TransitionNotAllowed, PayloadError: nothing is written.
            StoreError: the compare-and-set kept failing.
        """
        for _ in range(MAX_ATTEMPTS):
            try:
                result = self._send_once(id, name, args, data, idempotency_key)
            except Exception as exc:
                if not self._is_conflict(exc):
                    raise
                continue
            if result is not None:
                return result
        msg = f"Gave up on {id!r} after {MAX_ATTEMPTS} conflicting writes."
        raise StoreError(msg)

    def _send_once(
        self, id: str, name: str, args: Any, data: Any, key: str | None
    ) -> Snapshot | None:
        """One attempt in one transaction: the new snapshot, or None when another writer won
        the row. The returned snapshot's history is read in the same transaction."""
        with self._transaction(write=True) as cursor:
            if (
                key is not None
                and self._exec(
                    cursor, "SELECT 1 FROM lk_keys WHERE instance_id = ? AND key = ?", (id, key)
                ).fetchone()
            ):
                instance, _ = self._load(cursor, id, last_only=False)
                return instance.snapshot()
            instance, version = self._load(cursor, id, last_only=True)
            stored = instance.revision
            instance.call(name, *args, **data)
            if not self._save(cursor, id, instance, version, stored, key):
                return None
            history = tuple(self._records(cursor, id, last_only=False))
            return instance.snapshot().model_copy(update={"history": history})

    def _save(
        self,
        cursor: Any,
        instance_id: str,
        instance: Lifecycle,
        version: int,
        stored_revision: int,
        key: str | None,
    ) -> bool:
        snap = instance.snapshot()
        updated = self._exec(
            cursor,
            "UPDATE lk_instances SET state = ?, context = ?, revision = ?, version = ?,"
            " updated_at = ? WHERE id = ? AND version = ?",
            (
                snap.state, json.dumps(snap.context) if snap.context is not None else None,
                snap.revision, version + 1, self._now(), instance_id, version,
            ),
        ).rowcount  # fmt: skip
        if updated != 1:
            return False
        self._insert_history(
            cursor, instance_id, [r for r in snap.history if r.seq > stored_revision]
        )
        if key is not None:
            self._exec(
                cursor, "INSERT INTO lk_keys (instance_id, key) VALUES (?, ?)", (instance_id, key)
            )
        return True

    def find(
        self, name: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[InstanceSummary]:
        """Stored instances, newest first, optionally of one lifecycle and in one state."""
        where, params = self._filters(name, state)
        with self._transaction(write=False) as cursor:
            rows = self._exec(
                cursor,
                "SELECT id, machine, state, revision, updated_at FROM lk_instances"
                f"{where} ORDER BY updated_at DESC, id LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [
            InstanceSummary(id=i, machine=m, state=s, revision=r, updated_at=u)
            for i, m, s, r, u in rows
        ]

    def count(self, name: str | None = None, state: str | None = None) -> int:
        """How many stored instances match."""
        where, params = self._filters(name, state)
        with self._transaction(write=False) as cursor:
            row = self._exec(
                cursor, f"SELECT COUNT(*) FROM lk_instances{where}", params
            ).fetchone()
        return int(row[0])

    @staticmethod
    def _filters(name: str | None, state: str | None) -> tuple[str, tuple[Any, ...]]:
        clauses, params = [], []
        for column, value in (("machine", name), ("state", state)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses) if clauses else "", tuple(params))

    def delete(self, id: str) -> None:
        """Remove an instance, its history and its idempotency keys.

        Raises:
            UnknownInstance: no such id.
        """
        with self._transaction(write=True) as cursor:
            self._row(cursor, id)
            self._delete(cursor, id)

    def _delete(self, cursor: Any, id: str) -> None:
        for table in ("lk_history", "lk_keys"):
            self._exec(cursor, f"DELETE FROM {table} WHERE instance_id = ?", (id,))
        self._exec(cursor, "DELETE FROM lk_instances WHERE id = ?", (id,))

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _session(store: BaseStore, write: bool) -> Iterator[Session]:
    with store._transaction(write=write) as cursor:
        yield Session(store, cursor)
