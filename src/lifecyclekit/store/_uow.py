"""The unit of work coordinators use, extension SQL, and named consumers of the feed
(synchronous; their rules are :class:`~lifecyclekit.store._ops.Work` and the operations of
:mod:`lifecyclekit.store._ops`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.store import _ops as ops
from lifecyclekit.store import _queries as queries
from lifecyclekit.store import _schema as schema
from lifecyclekit.store._model import Change, Page, Step, drive
from lifecyclekit.store._ops import Work
from lifecyclekit.store._schema import Extension

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
        return drive(self._execute, schema.query(self.extension.name, sql, params))

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a write; the number of rows it changed."""
        return drive(self._execute, schema.execute(self.extension.name, sql, params))


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

    def __init__(self, execute: Execute, work: Work) -> None:
        self.store: Store = work.store  # type: ignore[assignment]
        self.write = work.write
        self._execute = execute
        self._work = work

    def _run(self, step: Step[T]) -> T:
        return drive(self._execute, step)

    def load(self, id: str, *, clock: Clock | None = None) -> Lifecycle:
        """The live instance (rebuilt with its last record, migrated if it is older),
        remembered with its row version for :meth:`save`.

        Raises:
            UnknownInstance: no such id.
            SnapshotError: the row cannot be restored.
        """
        return self._run(self._work.load(id, clock))

    def version(self, id: str) -> int:
        """The row version ``id`` was loaded (or last saved) at in this unit of work."""
        return self._work.tracked(id).version

    def add(self, id: str, instance: Lifecycle) -> None:
        """Store a new instance under ``id`` (of a registered lifecycle).

        Raises:
            StoreError: the id exists, or the instance's class is not registered.
        """
        self._run(self._work.add(id, instance))

    def save(self, id: str, instance: Lifecycle) -> None:
        """Write a loaded (or added) instance back: its row with compare-and-set, the records
        it took since, and their changes.

        Raises:
            WriteConflict: another writer changed the row since it was loaded (in
                :meth:`Store.run` the unit of work is then re-run).
        """
        self._run(self._work.save(id, instance))

    def remove(self, id: str) -> None:
        """Delete an instance with its history and keys (the change feed keeps its past).

        Raises:
            UnknownInstance: no such id.
        """
        self._run(self._work.remove(id))

    def extension(self, extension: Extension) -> ExtensionSQL:
        """SQL on ``extension``'s tables in this transaction.

        Raises:
            StoreError: the extension was not declared with :meth:`Store.extension`.
        """
        return ExtensionSQL(self._work.extension(extension), self._execute)

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` after this unit of work commits (never if it is rolled back
        or re-run), after the records' own after-commit callbacks."""
        self._work.effects.callbacks.append(callback)


# -- consumers -------------------------------------------------------------------------------


class Consumer:
    """A named reader of the change feed with a durable cursor: at-least-once processing.

    Process what :meth:`changes` (or :meth:`watch`) returns, then :meth:`ack` the last
    position handled; after a crash the consumer resumes after its last ack, so a change
    handled but not yet acknowledged is seen again.
    """

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = queries.check_consumer(name)

    @property
    def position(self) -> int:
        """The last acknowledged position (0 before the first ack)."""
        return self.store._perform(ops.consumer_position(self.name))

    def changes(self, limit: int = 100) -> Page[Change]:
        """Committed changes after the acknowledged position, in position order."""
        return self.store.changes(after=self.position, limit=limit)

    def watch(self, timeout: float | None = None, limit: int = 100) -> Page[Change]:
        """Like :meth:`changes`, waiting up to ``timeout`` seconds for one to arrive."""
        return self.store.watch(after=self.position, timeout=timeout, limit=limit)

    def ack(self, position: int | Change) -> None:
        """Record that everything up to ``position`` is handled (never moves backwards)."""
        self.store._perform(ops.ack(self.store, self.name, position))
