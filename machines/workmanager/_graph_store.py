"""``WorkGraph(store=...)``: a chain that survives restarts and is driven from many processes.

Like WorkManager's own database, every work is a store row (``lk_instances``) and the graph
keeps its edges, unique names and an index of enqueued works in tables of its own. Each
graph operation is one store transaction: works, edges and names are read lazily as the
in-memory algorithms reach them, written back at the end, and the graph's version is
compared-and-set, so a propagation is all there or not at all, and a concurrent writer makes
the operation re-run from the start. ``runnable`` answers from the index of enqueued works
and their due times, loading only those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from lifecyclekit import Clock, Lifecycle
from lifecyclekit.store import (
    Extension,
    ExtensionSQL,
    Store,
    StoreError,
    UnitOfWork,
    WriteConflict,
)

from .continuation import GraphSnapshot, UnknownWork, WorkContinuation
from .graph import WorkGraph
from .model import DeviceConditions, WorkInfo

__all__ = ["StoredWorkGraph"]

T = TypeVar("T")

GRAPH = Extension(
    "graph",
    1,
    (
        "CREATE TABLE IF NOT EXISTS lk_graph (graph TEXT PRIMARY KEY, version INTEGER NOT NULL)",
        """CREATE TABLE IF NOT EXISTS lk_graph_works (
        graph TEXT NOT NULL, work_id TEXT NOT NULL, position INTEGER NOT NULL,
        state TEXT NOT NULL, due_at TEXT, is_join INTEGER NOT NULL,
        PRIMARY KEY (graph, work_id))""",
        "CREATE INDEX IF NOT EXISTS lk_graph_works_due ON lk_graph_works (graph, state, due_at)",
        """CREATE TABLE IF NOT EXISTS lk_graph_edges (
        graph TEXT NOT NULL, work_id TEXT NOT NULL, prerequisite_id TEXT NOT NULL,
        position INTEGER NOT NULL, PRIMARY KEY (graph, work_id, prerequisite_id))""",
        "CREATE INDEX IF NOT EXISTS lk_graph_edges_up ON lk_graph_edges (graph, prerequisite_id)",
        """CREATE TABLE IF NOT EXISTS lk_graph_names (
        graph TEXT NOT NULL, name TEXT NOT NULL, work_id TEXT NOT NULL,
        position INTEGER NOT NULL, PRIMARY KEY (graph, name, work_id))""",
    ),
)


class _Lazy(MutableMapping[Any, Any]):
    """A mapping filled on first access by ``fetch``; remembers what was read and written."""

    def __init__(self, fetch: Callable[[Any], Any], keys: Callable[[], list[Any]]) -> None:
        self._fetch = fetch
        self._keys = keys
        self.data: dict[Any, Any] = {}
        self.original: dict[Any, Any] = {}
        self.deleted: set[Any] = set()

    def _get(self, key: Any) -> Any:
        if key in self.deleted:
            raise KeyError(key)
        if key not in self.data:
            value = self._fetch(key)
            if value is None:
                raise KeyError(key)
            self.data[key] = value
            self.original[key] = list(value) if isinstance(value, list) else value
        return self.data[key]

    def __getitem__(self, key: Any) -> Any:
        return self._get(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.deleted.discard(key)
        self.data[key] = value

    def __delitem__(self, key: Any) -> None:
        self._get(key)
        del self.data[key]
        self.deleted.add(key)

    def __iter__(self) -> Iterator[Any]:
        keys = [k for k in self._keys() if k not in self.deleted]
        keys += [k for k in self.data if k not in keys]
        return iter(keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        try:
            self._get(key)
        except KeyError:
            return False
        return True


class _LazyJoins(set[UUID]):
    """combine's join works, read from ``lk_graph_works.is_join`` on first question."""

    def __init__(self, sql: ExtensionSQL, graph: str) -> None:
        super().__init__()
        rows = sql.query(
            "SELECT work_id FROM lk_graph_works WHERE graph = ? AND is_join = 1", (graph,)
        )
        self.update(UUID(row[0]) for row in rows)


class StoredWorkGraph(WorkGraph):
    """A :class:`WorkGraph` whose works, edges and names live in a store."""

    def __init__(
        self, *, clock: Clock | None = None, store: Store | None = None, name: str = "default"
    ) -> None:
        super().__init__(clock=clock)
        if not isinstance(store, Store):
            msg = (
                f"WorkGraph(store=...) takes an open store, not {type(store).__name__}: "
                "WorkGraph(store=open_store(url)) (from lifecyclekit.store import open_store)."
            )
            raise StoreError(msg)
        self.store = store
        self.name = name
        self._session: UnitOfWork | None = None
        self._sql: ExtensionSQL | None = None
        self._added: set[UUID] = set()
        self._touched: set[UUID] = set()
        self._version = 0
        store.extension(GRAPH)

        def ensure(uow: UnitOfWork) -> None:
            uow.extension(GRAPH).execute(
                "INSERT INTO lk_graph (graph, version) VALUES (?, 0) ON CONFLICT DO NOTHING",
                (name,),
            )

        store.run(ensure)

    # -- one store transaction per operation -------------------------------------------------

    def _run(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._in_transaction(True, operation, *args, **kwargs)

    def _read(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._in_transaction(False, operation, *args, **kwargs)

    def _in_transaction(
        self, write: bool, operation: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        if self._session is not None:  # nested: already inside this graph's transaction
            return operation(*args, **kwargs)

        def attempt(uow: UnitOfWork) -> T:
            # The store re-runs this whole attempt when another writer won the graph.
            try:
                self._begin(uow)
                result = operation(*args, **kwargs)
                if write:
                    self._write_back(uow)
                return result
            finally:
                self._end()

        return self.store.run(attempt, write=write)

    def _begin(self, session: UnitOfWork) -> None:
        self._session = session
        sql = self._sql = session.extension(GRAPH)
        graph = self.name
        row = sql.query_one("SELECT version FROM lk_graph WHERE graph = ?", (graph,))
        assert row is not None
        self._version = row[0]

        def work_ids() -> list[UUID]:
            rows = sql.query(
                "SELECT work_id FROM lk_graph_works WHERE graph = ? ORDER BY position", (graph,)
            )
            return [UUID(row[0]) for row in rows]

        def exists(work_id: UUID) -> bool:
            if isinstance(self._works, _Lazy) and work_id in self._works.data:
                return True
            return bool(
                sql.query_one(
                    "SELECT 1 FROM lk_graph_works WHERE graph = ? AND work_id = ?",
                    (graph, str(work_id)),
                )
            )

        def load_work(work_id: UUID) -> Lifecycle | None:
            return session.load(str(work_id), clock=self.clock) if exists(work_id) else None

        def ids(query: str, key: Any) -> list[UUID]:
            return [UUID(r[0]) for r in sql.query(query, (graph, str(key)))]

        self._works = _Lazy(load_work, work_ids)  # type: ignore[assignment]
        self._prereqs = _Lazy(  # type: ignore[assignment]
            lambda w: ids(
                "SELECT prerequisite_id FROM lk_graph_edges WHERE graph = ? AND work_id = ?"
                " ORDER BY position", w
            ) if exists(w) else None,
            work_ids,
        )  # fmt: skip
        self._dependents = _Lazy(  # type: ignore[assignment]
            lambda p: ids(
                "SELECT work_id FROM lk_graph_edges WHERE graph = ? AND prerequisite_id = ?"
                " ORDER BY work_id", p
            ) or None,
            work_ids,
        )  # fmt: skip
        self._names = _Lazy(  # type: ignore[assignment]
            lambda n: ids(
                "SELECT work_id FROM lk_graph_names WHERE graph = ? AND name = ?"
                " ORDER BY position", n
            ) or None,
            lambda: [r[0] for r in sql.query(
                "SELECT DISTINCT name FROM lk_graph_names WHERE graph = ?", (graph,)
            )],
        )  # fmt: skip
        self._joins = _LazyJoins(sql, graph)
        self._added = set()
        self._touched = set()

    def _end(self) -> None:
        self._session = None
        self._sql = None
        self._works, self._prereqs, self._dependents, self._names = {}, {}, {}, {}
        self._joins = set()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # Inside _run the store transaction is the unit of rollback.
        yield

    def _touch(self, work_id: UUID) -> Lifecycle:
        work = self.work(work_id)
        self._touched.add(work_id)
        return work

    def _insert(
        self, request: Any, prerequisites: list[UUID], name: str | None, **kw: Any
    ) -> None:
        self._added.add(request.id)
        super()._insert(request, prerequisites, name, **kw)

    # -- write-back --------------------------------------------------------------------------

    def _write_back(self, session: UnitOfWork) -> None:
        graph, works, sql = self.name, self._works, self._sql
        assert isinstance(works, _Lazy)
        assert sql is not None
        for work_id in works.deleted:
            session.remove(str(work_id))
            for table in ("lk_graph_works", "lk_graph_edges", "lk_graph_names"):
                sql.execute(f"DELETE FROM {table} WHERE graph = ? AND work_id = ?",
                            (graph, str(work_id)))  # fmt: skip
        row = sql.query_one(
            "SELECT COALESCE(MAX(position), 0) FROM lk_graph_works WHERE graph = ?", (graph,)
        )
        assert row is not None
        position = row[0]
        for work_id in [w for w in works.data if w in self._added and w not in works.deleted]:
            position += 1
            session.add(str(work_id), works.data[work_id])
            sql.execute(
                "INSERT INTO lk_graph_works (graph, work_id, position, state, due_at, is_join)"
                " VALUES (?, ?, ?, '', NULL, ?)",
                (graph, str(work_id), position, int(work_id in self._joins)),
            )
        for work_id in (self._touched | self._added) - works.deleted:
            work = works.data[work_id]
            if work_id in self._touched and work_id not in self._added:
                session.save(str(work_id), work)
            due = work.next_run_time() if work.state == "enqueued" else None
            sql.execute(
                "UPDATE lk_graph_works SET state = ?, due_at = ? WHERE graph = ? AND work_id = ?",
                (work.state, _due(due), graph, str(work_id)),
            )
        self._write_lists(sql, "lk_graph_edges", "work_id", "prerequisite_id", self._prereqs)
        self._write_lists(sql, "lk_graph_names", "name", "work_id", self._names)
        updated = sql.execute(
            "UPDATE lk_graph SET version = version + 1 WHERE graph = ? AND version = ?",
            (graph, self._version),
        )
        if updated != 1:
            msg = f"Work graph {graph!r} was changed by another writer."
            raise WriteConflict(msg)

    def _write_lists(
        self, sql: ExtensionSQL, table: str, key_col: str, item_col: str, lists: Any
    ) -> None:
        assert isinstance(lists, _Lazy)
        for key, items in lists.data.items():
            if lists.original.get(key) == items and key in lists.original:
                continue
            sql.execute(f"DELETE FROM {table} WHERE graph = ? AND {key_col} = ?",
                        (self.name, str(key)))  # fmt: skip
            for position, item in enumerate(items):
                sql.execute(
                    f"INSERT INTO {table} (graph, {key_col}, {item_col}, position)"
                    " VALUES (?, ?, ?, ?)",
                    (self.name, str(key), str(item), position),
                )
        for key in lists.deleted:
            sql.execute(f"DELETE FROM {table} WHERE graph = ? AND {key_col} = ?",
                        (self.name, str(key)))  # fmt: skip

    # -- the public operations, each one transaction -----------------------------------------

    def _enqueue_continuation(self, continuation: WorkContinuation) -> None:
        self._run(super()._enqueue_continuation, continuation)

    def enqueue(self, *requests: Any) -> None:
        self._run(super().enqueue, *requests)

    def enqueue_unique_periodic_work(self, name: str, policy: Any, request: Any) -> None:
        self._run(super().enqueue_unique_periodic_work, name, policy, request)

    def start(self, work_id: UUID, conditions: DeviceConditions | None = None) -> None:
        self._run(super().start, work_id, conditions)

    def finish(self, work_id: UUID, result: Any) -> None:
        self._run(super().finish, work_id, result)

    def stop(self, work_id: UUID, reason: Any) -> None:
        self._run(super().stop, work_id, reason)

    def instantiation_failed(self, work_id: UUID) -> None:
        self._run(super().instantiation_failed, work_id)

    def cancel(self, work_id: UUID) -> None:
        self._run(super().cancel, work_id)

    def cancel_by_tag(self, tag: str) -> None:
        self._run(super().cancel_by_tag, tag)

    def cancel_unique_work(self, name: str) -> None:
        self._run(super().cancel_unique_work, name)

    def cancel_all_work(self) -> None:
        self._run(super().cancel_all_work)

    def update_work(self, request: Any) -> str:
        return self._run(super().update_work, request)

    def info(self, work_id: UUID) -> WorkInfo | None:
        return self._read(super().info, work_id)

    def infos_by_tag(self, tag: str) -> list[WorkInfo]:
        return self._read(super().infos_by_tag, tag)

    def infos_for_unique_work(self, name: str) -> list[WorkInfo]:
        return self._read(super().infos_for_unique_work, name)

    def prerequisites(self, work_id: UUID) -> list[UUID]:
        return self._read(super().prerequisites, work_id)

    def input_for(self, work_id: UUID) -> dict[str, Any]:
        return self._read(super().input_for, work_id)

    def work(self, work_id: UUID) -> Lifecycle:
        """The lifecycle of a work with its whole history (detached: its later event calls
        do not persist; drive it through the graph)."""
        if self._session is not None:
            return super().work(work_id)

        def member(uow: UnitOfWork) -> bool:
            return bool(
                uow.extension(GRAPH).query_one(
                    "SELECT 1 FROM lk_graph_works WHERE graph = ? AND work_id = ?",
                    (self.name, str(work_id)),
                )
            )

        if not self.store.run(member, write=False):
            raise UnknownWork(work_id)
        return self.store.load(str(work_id), clock=self.clock)

    def snapshot(self) -> GraphSnapshot:
        return self._read(super().snapshot)

    def runnable(self, conditions: DeviceConditions | None = None) -> list[UUID]:
        """From the index: enqueued works whose due time has come, then their constraints."""
        return self._read(self._runnable, conditions)

    def _runnable(self, conditions: DeviceConditions | None) -> list[UUID]:
        assert self._sql is not None
        now = _due(self._now())
        rows = self._sql.query(
            "SELECT work_id FROM lk_graph_works WHERE graph = ? AND state = 'enqueued'"
            " AND (due_at IS NULL OR due_at <= ?) ORDER BY due_at, work_id",
            (self.name, now),
        )
        ready = []
        for (raw,) in rows:
            work = self.work(UUID(raw))
            if work.explain("start", conditions=conditions).allowed:
                ready.append(UUID(raw))
        return ready

    def _now(self) -> datetime:
        return self.clock() if self.clock is not None else datetime.now(UTC)


def _due(moment: datetime | None) -> str | None:
    """A sortable UTC text for the due-time index."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
