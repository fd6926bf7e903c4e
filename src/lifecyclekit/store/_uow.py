"""The unit of work coordinators use, extension SQL, and named consumers of the feed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from lifecyclekit.errors import StoreError, WriteConflict
from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.store import _core as core
from lifecyclekit.store._backend import BackendError, Kind
from lifecyclekit.store._core import Effects
from lifecyclekit.store._model import Change, Page, Step, check_id, drive, shown
from lifecyclekit.store._rows import Loaded, restore
from lifecyclekit.store._schema import Extension, check_scope

if TYPE_CHECKING:
    from lifecyclekit.store._store import Store

__all__ = ["Consumer", "ExtensionSQL", "UnitOfWork"]

T = TypeVar("T")
Execute = Callable[[str, Sequence[Any]], Any]


class ExtensionSQL:
    """An extension's tables inside one unit of work: SQL with ``?`` placeholders."""

    def __init__(self, extension: Extension, execute: Execute) -> None:
        self.extension = extension
        self._execute = execute

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a SELECT (or of ``... RETURNING``)."""
        check_scope(self.extension.name, sql)
        return list(self._execute(sql, tuple(params)).rows)

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a write; the number of rows it changed."""
        check_scope(self.extension.name, sql)
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

    def _run(self, step: Step[T]) -> T:
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
        instance = restore(self.store.registry, loaded, clock or self.store.clock)
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
        if not isinstance(name, str) or not name or len(name) > 200 or "\x00" in name:
            msg = f"A consumer name is a str of 1-200 characters without NUL, not {shown(name)}."
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
        """Record that everything up to ``position`` is handled (never moves backwards).

        Raises:
            StoreError: ``position`` is not a position, or is beyond what the feed has
                delivered (acknowledging it would skip changes not yet committed).
        """
        value = position.position if isinstance(position, Change) else position
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
            msg = f"ack() takes a Change or a position >= 0, not {shown(position)}."
            raise StoreError(msg)
        head = self._head(value)
        if value > head:
            msg = (
                f"ack({value}) for consumer {self.name!r} is beyond the change feed's head "
                f"({head}): nothing above {head} has been delivered, and acknowledging it "
                f"would skip the changes committed next. Acknowledge a position from 0 to "
                f"{head}: a change's .position or a page's .next."
            )
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

    def _head(self, value: int) -> int:
        """The highest position the feed can have delivered: its last committed change, and
        (where commits land out of position order) no higher than the fence."""
        if value == 0:
            return 0
        store = self.store
        try:
            fence = store._backend.change_fence(value - 1)
        except BackendError as exc:
            raise store._public(exc, f"acknowledge {value} for consumer {self.name!r}") from None
        rows = store._read(
            "read the change feed's head",
            lambda execute: execute("SELECT MAX(position) FROM lk_changes", ()).rows,
        )
        last = int(rows[0][0]) if rows and rows[0][0] is not None else 0
        return last if fence is None else min(last, fence)
