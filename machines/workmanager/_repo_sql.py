"""``SqlRepo``: a graph kept in a store, where many processes drive it.

Like WorkManager's own database, every work is a store instance (``lk_instances``, with its
history) and the graph keeps, in tables of its own, one row per work (its position, state,
due time and progress), the prerequisite edges, the unique names and the tags, each indexed
the way the rules ask: dependents by prerequisite, works by name, by tag, by state and due
time. No operation scans the graph.

An operation is one unit of work of the store (``store.run``), on the graph's versioned
extension tables. Its reads see one snapshot; its writes are the works it touched
(compare-and-set on their rows), the structure it added or deleted, and a version bump on
every work whose state it decided on (:meth:`_SqlTx.lock`). A concurrent transaction that
changed any of those makes the database refuse one of the two (a serialization failure, a
lost compare-and-set, a duplicate key); the store's retry policy runs the refused operation
again from the start, against a fresh snapshot, which is safe because operations change
nothing else before they commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from lifecyclekit import Clock, Lifecycle, StoreError, UnknownInstance
from lifecyclekit.store import Extension, Store, UnitOfWork

from ._repo import GraphTx, due_time, state_of
from .continuation import JOIN_WORKER, GraphSnapshot, UnknownWork, WorkQuery

__all__ = ["GRAPH", "SCHEMA", "SqlRepo"]

T = TypeVar("T")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS lk_graph_works (
        graph TEXT NOT NULL, work_id TEXT NOT NULL, seq INTEGER NOT NULL,
        state TEXT NOT NULL, due_at TEXT, progress TEXT, version INTEGER NOT NULL,
        PRIMARY KEY (graph, work_id))""",
    "CREATE INDEX IF NOT EXISTS lk_graph_works_seq ON lk_graph_works (graph, seq)",
    "CREATE INDEX IF NOT EXISTS lk_graph_works_due ON lk_graph_works (graph, state, due_at, seq)",
    """CREATE TABLE IF NOT EXISTS lk_graph_edges (
        graph TEXT NOT NULL, work_id TEXT NOT NULL, prerequisite_id TEXT NOT NULL,
        position INTEGER NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (graph, work_id, prerequisite_id))""",
    "CREATE INDEX IF NOT EXISTS lk_graph_edges_up ON lk_graph_edges (graph, prerequisite_id)",
    """CREATE TABLE IF NOT EXISTS lk_graph_unique (
        graph TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
        PRIMARY KEY (graph, name))""",
    """CREATE TABLE IF NOT EXISTS lk_graph_named (
        graph TEXT NOT NULL, name TEXT NOT NULL, work_id TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (graph, name, work_id))""",
    "CREATE INDEX IF NOT EXISTS lk_graph_named_work ON lk_graph_named (graph, work_id)",
    """CREATE TABLE IF NOT EXISTS lk_graph_tags (
        graph TEXT NOT NULL, tag TEXT NOT NULL, work_id TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (graph, tag, work_id))""",
    "CREATE INDEX IF NOT EXISTS lk_graph_tags_work ON lk_graph_tags (graph, work_id)",
)
"""The graph's tables. ``graph`` names the graph of the store a row belongs to; ``seq`` is
the work's position (of the dependent, in an edge), so lists come oldest first without a
join; ``lk_graph_unique`` has one row per unique name, written by every insert under it."""

GRAPH = Extension("graph", 2, SCHEMA)
"""The graph's extension. Version 1 was the development graph (one version row per graph,
rewritten by every operation); it is not migrated: a store holding it says so on open."""


def _due(moment: datetime | None) -> str | None:
    """A sortable UTC text for the due-time index."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqlRepo:
    """A graph's works and structure in a store (``WorkGraph(store=open_store(url))``)."""

    def __init__(self, store: Any, *, name: str, clock: Clock | None) -> None:
        if not isinstance(store, Store):
            given = "the URL" if isinstance(store, str) else type(store).__name__
            msg = (
                f"WorkGraph(store=...) takes an open store, got {given} {store!r}; write "
                "WorkGraph(store=open_store(url))."
            )
            raise StoreError(msg)
        self.store = store
        self.name = name
        self.clock = clock
        store.extension(GRAPH)

    # -- transactions ------------------------------------------------------------------------

    def write(self, operation: Callable[[GraphTx], T]) -> T:
        return self._run(operation, write=True)

    def read(self, operation: Callable[[GraphTx], T]) -> T:
        return self._run(operation, write=False)

    def _run(self, operation: Callable[[GraphTx], T], *, write: bool) -> T:
        def attempt(uow: UnitOfWork) -> T:
            tx = _SqlTx(self, uow)
            result = operation(tx)
            if write:
                tx.flush()
            return result

        # The store's message on giving up names this, e.g. "WorkGraph('default').finish".
        attempt.__qualname__ = getattr(operation, "__qualname__", f"WorkGraph({self.name!r})")
        result: T = self.store.run(attempt, write=write)
        return result

    def load(self, work_id: UUID) -> Lifecycle | None:
        key = str(work_id)

        def member(uow: UnitOfWork) -> bool:
            sql = uow.extension(GRAPH)
            query = "SELECT 1 FROM lk_graph_works WHERE graph = ? AND work_id = ?"
            return sql.query_one(query, (self.name, key)) is not None

        if not self.store.run(member, write=False):
            return None
        loaded: Lifecycle = self.store.load(key, clock=self.clock)
        return loaded

    def snapshot(self) -> GraphSnapshot:
        def structure(uow: UnitOfWork) -> tuple[list[Any], list[Any], list[Any]]:
            sql, graph = uow.extension(GRAPH), (self.name,)
            return (
                sql.query(
                    "SELECT work_id, progress FROM lk_graph_works WHERE graph = ?"
                    " ORDER BY seq, work_id",
                    graph,
                ),
                sql.query(
                    "SELECT work_id, prerequisite_id FROM lk_graph_edges WHERE graph = ?"
                    " ORDER BY work_id, position",
                    graph,
                ),
                sql.query(
                    "SELECT name, work_id FROM lk_graph_named WHERE graph = ? ORDER BY name, seq",
                    graph,
                ),
            )

        rows, edges, named = self.store.run(structure, write=False)
        works = [self.store.get(work_id) for work_id, _ in rows]
        prerequisites: dict[UUID, tuple[UUID, ...]] = {}
        for work_id, prerequisite in edges:
            prerequisites[UUID(work_id)] = (
                *prerequisites.get(UUID(work_id), ()),
                UUID(prerequisite),
            )
        names: dict[str, tuple[UUID, ...]] = {}
        for name, work_id in named:
            names[name] = (*names.get(name, ()), UUID(work_id))
        return GraphSnapshot(
            works=tuple(works),
            prerequisites=prerequisites,
            names=names,
            joins=tuple(UUID(row[0]) for row, w in zip(rows, works, strict=True) if _is_join(w)),
            progress={UUID(i): json.loads(p) for i, p in rows if p is not None},
        )


class _SqlTx:
    """One attempt of one operation, in one store transaction."""

    def __init__(self, repo: SqlRepo, uow: UnitOfWork) -> None:
        self.repo = repo
        self.graph = repo.name
        self.uow = uow
        self.ext = uow.extension(GRAPH)
        self.write = uow.write
        self.cache: dict[UUID, Lifecycle | None] = {}
        self.tags: dict[UUID, frozenset[str]] = {}
        self.touched: set[UUID] = set()
        self.added: set[UUID] = set()
        self.locked: set[UUID] = set()
        self.next_seq: int | None = None
        self.seqs: dict[UUID, int] = {}
        self.progresses: dict[UUID, dict[str, Any]] = {}

    def query(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.ext.query(query, params)

    def one(self, query: str, *params: Any) -> tuple[Any, ...] | None:
        return self.ext.query_one(query, params)

    def execute(self, query: str, *params: Any) -> None:
        self.ext.execute(query, params)

    # -- works -------------------------------------------------------------------------------

    def get(self, work_id: UUID) -> Lifecycle | None:
        if work_id in self.cache:
            return self.cache[work_id]
        row = self.one(
            "SELECT seq, progress FROM lk_graph_works WHERE graph = ? AND work_id = ?",
            self.graph,
            str(work_id),
        )
        if row is None:
            self.cache[work_id] = None
            return None
        try:
            work = self.uow.load(str(work_id), clock=self.repo.clock)
        except UnknownInstance:  # its row was removed behind the graph's back: gone
            self.cache[work_id] = None
            return None
        self.cache[work_id] = work
        self.tags[work_id] = frozenset(work.context.tags)
        self.seqs[work_id] = row[0]
        self.progresses[work_id] = json.loads(row[1]) if row[1] is not None else {}
        return work

    def touch(self, work_id: UUID) -> Lifecycle:
        work = self.get(work_id)
        if work is None:
            raise UnknownWork(work_id, self.graph)
        if work_id not in self.added:
            self.touched.add(work_id)
        return work

    def lock(self, work_id: UUID) -> None:
        if not self.write or work_id in self.added or work_id in self.locked:
            return
        self.locked.add(work_id)
        self.execute(
            "UPDATE lk_graph_works SET version = version + 1 WHERE graph = ? AND work_id = ?",
            self.graph,
            str(work_id),
        )

    def add(self, work: Lifecycle, prerequisites: Sequence[UUID], name: str | None) -> None:
        work_id: UUID = work.context.id
        key = str(work_id)
        if self.next_seq is None:
            row = self.one("SELECT MAX(seq) FROM lk_graph_works WHERE graph = ?", self.graph)
            self.next_seq = ((row[0] if row else None) or 0) + 1
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        self.execute(
            "INSERT INTO lk_graph_works (graph, work_id, seq, state, due_at, progress, version)"
            " VALUES (?, ?, ?, ?, NULL, NULL, 1)",
            self.graph, key, seq, state_of(work).value,
        )  # fmt: skip
        for position, prerequisite in enumerate(prerequisites):
            self.execute(
                "INSERT INTO lk_graph_edges (graph, work_id, prerequisite_id, position, seq)"
                " VALUES (?, ?, ?, ?, ?)",
                self.graph, key, str(prerequisite), position, seq,
            )  # fmt: skip
        if name is not None:
            # Two operations inserting under one name write the same row: one is re-run.
            self.execute(
                "INSERT INTO lk_graph_unique (graph, name, version) VALUES (?, ?, 1)"
                " ON CONFLICT (graph, name) DO UPDATE SET version = lk_graph_unique.version + 1",
                self.graph, name,
            )  # fmt: skip
            self.execute(
                "INSERT INTO lk_graph_named (graph, name, work_id, seq) VALUES (?, ?, ?, ?)",
                self.graph, name, key, seq,
            )  # fmt: skip
        self.cache[work_id] = work
        self.tags[work_id] = frozenset()
        self.seqs[work_id] = seq
        self.added.add(work_id)

    def delete(self, work_ids: Collection[UUID]) -> None:
        for work_id in work_ids:
            if self.get(work_id) is None:
                continue
            key = str(work_id)
            if work_id not in self.added:
                self.uow.remove(key)
            for table, column in (
                ("lk_graph_works", "work_id"),
                ("lk_graph_edges", "work_id"),
                ("lk_graph_edges", "prerequisite_id"),
                ("lk_graph_named", "work_id"),
                ("lk_graph_tags", "work_id"),
            ):
                self.execute(
                    f"DELETE FROM {table} WHERE graph = ? AND {column} = ?", self.graph, key
                )
            self.cache[work_id] = None
            self.touched.discard(work_id)
            self.added.discard(work_id)

    # -- structure ---------------------------------------------------------------------------

    def _ids(self, query: str, *params: Any) -> list[UUID]:
        return [UUID(row[0]) for row in self.query(query, *params)]

    def _oldest_first(self, query: str, *params: Any) -> list[UUID]:
        """``(work_id, seq)`` rows sorted here: with ORDER BY, a planner may walk the whole
        seq index instead of the few rows the WHERE clause finds."""
        rows = self.query(query, *params)
        return [UUID(work_id) for work_id, _ in sorted(rows, key=lambda row: (row[1], row[0]))]

    def prerequisites(self, work_id: UUID) -> list[UUID]:
        return self._ids(
            "SELECT prerequisite_id FROM lk_graph_edges WHERE graph = ? AND work_id = ?"
            " ORDER BY position",
            self.graph, str(work_id),
        )  # fmt: skip

    def dependents(self, work_id: UUID) -> list[UUID]:
        return self._oldest_first(
            "SELECT work_id, seq FROM lk_graph_edges WHERE graph = ? AND prerequisite_id = ?",
            self.graph, str(work_id),
        )  # fmt: skip

    def named(self, name: str) -> list[UUID]:
        return self._oldest_first(
            "SELECT work_id, seq FROM lk_graph_named WHERE graph = ? AND name = ?",
            self.graph, name,
        )  # fmt: skip

    def leaves(self, name: str) -> list[UUID]:
        return self._oldest_first(
            "SELECT n.work_id, n.seq FROM lk_graph_named n WHERE n.graph = ? AND n.name = ?"
            " AND NOT EXISTS (SELECT 1 FROM lk_graph_edges e"
            " WHERE e.graph = n.graph AND e.prerequisite_id = n.work_id)",
            self.graph, name,
        )  # fmt: skip

    def select(self, query: WorkQuery) -> list[UUID]:
        """Driven by the most selective component given (ids, names, tags, states); the
        others are EXISTS filters, so the driving index alone decides the rows read."""
        ids = sorted(str(i) for i in query.ids)
        names, tags = sorted(query.unique_work_names), sorted(query.tags)
        states = sorted(s.value for s in query.states)
        if ids:
            sql, params = _SELECT_WORKS.format("work_id", _marks(ids)), [self.graph, *ids]
        elif names:
            sql, params = (
                _SELECT_IN.format("lk_graph_named", "name", _marks(names)),
                [self.graph, *names],
            )
        elif tags:
            sql, params = (
                _SELECT_IN.format("lk_graph_tags", "tag", _marks(tags)),
                [self.graph, *tags],
            )
        else:
            sql, params = _SELECT_WORKS.format("state", _marks(states)), [self.graph, *states]
        if ids and names:
            sql += _EXISTS_IN.format("lk_graph_named", "name", _marks(names))
            params += names
        if (ids or names) and tags:
            sql += _EXISTS_IN.format("lk_graph_tags", "tag", _marks(tags))
            params += tags
        if (ids or names or tags) and states:
            sql += _EXISTS_IN.format("lk_graph_works", "state", _marks(states))
            params += states
        return self._oldest_first(sql, *params)

    def due(self, now: datetime, limit: int | None) -> list[UUID]:
        sql = (
            "SELECT work_id FROM lk_graph_works WHERE graph = ? AND state = 'ENQUEUED'"
            " AND due_at <= ? ORDER BY due_at, seq"
        )
        if limit is None:
            found = self._ids(sql, self.graph, _due(now))
        else:
            found = self._ids(sql + " LIMIT ?", self.graph, _due(now), limit)
        # A graph row whose work was removed behind the graph's back is not a work.
        return [work_id for work_id in found if self.get(work_id) is not None]

    def progress(self, work_id: UUID) -> dict[str, Any]:
        if work_id not in self.progresses:
            row = self.one(
                "SELECT progress FROM lk_graph_works WHERE graph = ? AND work_id = ?",
                self.graph, str(work_id),
            )  # fmt: skip
            self.progresses[work_id] = json.loads(row[0]) if row and row[0] is not None else {}
        return dict(self.progresses[work_id])

    def set_progress(self, work_id: UUID, data: dict[str, Any] | None) -> None:
        self.progresses[work_id] = dict(data or {})
        self.execute(
            "UPDATE lk_graph_works SET progress = ?, version = version + 1"
            " WHERE graph = ? AND work_id = ?",
            json.dumps(data) if data is not None else None, self.graph, str(work_id),
        )  # fmt: skip

    # -- commit ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write back every work the operation added or touched, with its index rows."""
        for work_id in self.added:
            work = self.cache[work_id]
            assert work is not None
            self.uow.add(str(work_id), work)
            self._write_row(work_id, work)
        for work_id in self.touched:
            work = self.cache[work_id]
            assert work is not None
            self.uow.save(str(work_id), work)
            self._write_row(work_id, work)

    def _write_row(self, work_id: UUID, work: Lifecycle) -> None:
        key = str(work_id)
        self.execute(
            "UPDATE lk_graph_works SET state = ?, due_at = ?, version = version + 1"
            " WHERE graph = ? AND work_id = ?",
            state_of(work).value, _due(due_time(work)), self.graph, key,
        )  # fmt: skip
        tags = frozenset(work.context.tags)
        old = self.tags.get(work_id, frozenset())
        for tag in sorted(old - tags):
            self.execute(
                "DELETE FROM lk_graph_tags WHERE graph = ? AND tag = ? AND work_id = ?",
                self.graph, tag, key,
            )  # fmt: skip
        new = sorted(tags - old)
        if new:
            seq = self.seqs[work_id]
            for tag in new:
                self.execute(
                    "INSERT INTO lk_graph_tags (graph, tag, work_id, seq) VALUES (?, ?, ?, ?)",
                    self.graph, tag, key, seq,
                )  # fmt: skip


_SELECT_WORKS = "SELECT d.work_id, d.seq FROM lk_graph_works d WHERE d.graph = ? AND d.{} IN ({})"
_SELECT_IN = "SELECT DISTINCT d.work_id, d.seq FROM {} d WHERE d.graph = ? AND d.{} IN ({})"
_EXISTS_IN = (
    " AND EXISTS (SELECT 1 FROM {0} m WHERE m.graph = d.graph AND m.work_id = d.work_id"
    " AND m.{1} IN ({2}))"
)


def _is_join(snapshot: Any) -> bool:
    return bool((snapshot.context or {}).get("worker") == JOIN_WORKER)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))
