"""``SqlRepo``: a graph kept in a store, where many processes drive it.

Like WorkManager's own database, every work is a store instance (``lk_instances``, with its
history) and the graph keeps, in tables of its own, one row per work (its position, state,
due time and progress), the prerequisite edges, the unique names and the tags, each indexed
the way the rules ask: dependents by prerequisite, works by name, by tag, by state and due
time. No operation scans the graph.

An operation is one store transaction. Its reads see one snapshot; its writes are the works
it touched (compare-and-set on their rows), the structure it added or deleted, and a version
bump on every work whose state it decided on (:meth:`_SqlTx.lock`). A concurrent transaction
that changed any of those makes the database refuse one of the two (a serialization failure,
a lost compare-and-set, a duplicate key); the refused operation is run again from the start,
against a fresh snapshot, which is safe because operations change nothing else before they
commit.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from lifecyclekit import Clock, Lifecycle, StoreError
from lifecyclekit.store import MAX_ATTEMPTS, Session

from ._repo import due_time, state_of
from .continuation import JOIN_WORKER, GraphSnapshot, UnknownWork, WorkQuery

__all__ = ["SCHEMA", "SqlRepo"]

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


def _due(moment: datetime | None) -> str | None:
    """A sortable UTC text for the due-time index."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqlRepo:
    """A graph's works and structure in a store (``WorkGraph(store=open_store(url))``)."""

    def __init__(self, store: Any, *, name: str, clock: Clock | None) -> None:
        if not hasattr(store, "session"):
            msg = f"WorkGraph(store=...) takes a store from open_store(url), got {store!r}."
            raise StoreError(msg)
        self.store = store
        self.name = name
        self.clock = clock
        with store.session() as session:
            for statement in SCHEMA:
                session.execute(statement)

    # -- transactions ------------------------------------------------------------------------

    def write(self, operation: Callable[[Any], T]) -> T:
        return self._run(operation, write=True)

    def read(self, operation: Callable[[Any], T]) -> T:
        return self._run(operation, write=False)

    def _run(self, operation: Callable[[Any], T], *, write: bool) -> T:
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self.store.session(write=write) as session:
                    tx = _SqlTx(self, session, write)
                    result = operation(tx)
                    if write:
                        tx.flush()
                return result
            except Exception as exc:
                if not (self.store.is_conflict(exc) or self.store._is_duplicate(exc)):
                    raise
                # Another process won a race: re-run the whole operation on a fresh snapshot.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        msg = f"Gave up on work graph {self.name!r} after {MAX_ATTEMPTS} conflicting writes."
        raise StoreError(msg)

    def load(self, work_id: UUID) -> Lifecycle | None:
        with self.store.session(write=False) as session:
            member = session.execute(
                "SELECT 1 FROM lk_graph_works WHERE graph = ? AND work_id = ?",
                (self.name, str(work_id)),
            ).fetchone()
        if not member:
            return None
        loaded: Lifecycle = self.store.load(str(work_id), clock=self.clock)
        return loaded

    def snapshot(self) -> GraphSnapshot:
        graph = self.name
        with self.store.session(write=False) as session:
            rows = session.execute(
                "SELECT work_id, progress FROM lk_graph_works WHERE graph = ?"
                " ORDER BY seq, work_id",
                (graph,),
            ).fetchall()
            edges = session.execute(
                "SELECT work_id, prerequisite_id FROM lk_graph_edges WHERE graph = ?"
                " ORDER BY work_id, position",
                (graph,),
            ).fetchall()
            named = session.execute(
                "SELECT name, work_id FROM lk_graph_named WHERE graph = ? ORDER BY name, seq",
                (graph,),
            ).fetchall()
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
            joins=tuple(
                UUID(w.context["id"]) for w in works if w.context["worker"] == JOIN_WORKER
            ),
            progress={UUID(i): json.loads(p) for i, p in rows if p is not None},
        )


class _SqlTx:
    """One attempt of one operation, in one store transaction."""

    def __init__(self, repo: SqlRepo, session: Session, write: bool) -> None:
        self.repo = repo
        self.graph = repo.name
        self.session = session
        self.write = write
        self.cache: dict[UUID, Lifecycle | None] = {}
        self.tags: dict[UUID, frozenset[str]] = {}
        self.touched: set[UUID] = set()
        self.added: set[UUID] = set()
        self.locked: set[UUID] = set()
        self.next_seq: int | None = None
        self.seqs: dict[UUID, int] = {}

    def sql(self, query: str, *params: Any) -> Any:
        return self.session.execute(query, params)

    # -- works -------------------------------------------------------------------------------

    def get(self, work_id: UUID) -> Lifecycle | None:
        if work_id in self.cache:
            return self.cache[work_id]
        row = self.sql(
            "SELECT seq FROM lk_graph_works WHERE graph = ? AND work_id = ?",
            self.graph,
            str(work_id),
        ).fetchone()
        work = self.session.load(str(work_id), clock=self.repo.clock) if row else None
        self.cache[work_id] = work
        if work is not None:
            self.tags[work_id] = frozenset(work.context.tags)
            self.seqs[work_id] = row[0]
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
        self.sql(
            "UPDATE lk_graph_works SET version = version + 1 WHERE graph = ? AND work_id = ?",
            self.graph,
            str(work_id),
        )

    def add(self, work: Lifecycle, prerequisites: Sequence[UUID], name: str | None) -> None:
        work_id: UUID = work.context.id
        key = str(work_id)
        if self.next_seq is None:
            row = self.sql(
                "SELECT MAX(seq) FROM lk_graph_works WHERE graph = ?", self.graph
            ).fetchone()
            self.next_seq = (row[0] or 0) + 1
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        self.sql(
            "INSERT INTO lk_graph_works (graph, work_id, seq, state, due_at, progress, version)"
            " VALUES (?, ?, ?, ?, NULL, NULL, 1)",
            self.graph, key, seq, state_of(work).value,
        )  # fmt: skip
        for position, prerequisite in enumerate(prerequisites):
            self.sql(
                "INSERT INTO lk_graph_edges (graph, work_id, prerequisite_id, position, seq)"
                " VALUES (?, ?, ?, ?, ?)",
                self.graph, key, str(prerequisite), position, seq,
            )  # fmt: skip
        if name is not None:
            # Two operations inserting under one name write the same row: one is re-run.
            self.sql(
                "INSERT INTO lk_graph_unique (graph, name, version) VALUES (?, ?, 1)"
                " ON CONFLICT (graph, name) DO UPDATE SET version = lk_graph_unique.version + 1",
                self.graph, name,
            )  # fmt: skip
            self.sql(
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
                self.session.remove(key)
            for table, column in (
                ("lk_graph_works", "work_id"),
                ("lk_graph_edges", "work_id"),
                ("lk_graph_edges", "prerequisite_id"),
                ("lk_graph_named", "work_id"),
                ("lk_graph_tags", "work_id"),
            ):
                self.sql(f"DELETE FROM {table} WHERE graph = ? AND {column} = ?", self.graph, key)
            self.cache[work_id] = None
            self.touched.discard(work_id)
            self.added.discard(work_id)

    # -- structure ---------------------------------------------------------------------------

    def _ids(self, query: str, *params: Any) -> list[UUID]:
        return [UUID(row[0]) for row in self.sql(query, *params).fetchall()]

    def _oldest_first(self, query: str, *params: Any) -> list[UUID]:
        """``(work_id, seq)`` rows sorted here: with ORDER BY, a planner may walk the whole
        seq index instead of the few rows the WHERE clause finds."""
        rows = self.sql(query, *params).fetchall()
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
            return self._ids(sql, self.graph, _due(now))
        return self._ids(sql + " LIMIT ?", self.graph, _due(now), limit)

    def progress(self, work_id: UUID) -> dict[str, Any]:
        row = self.sql(
            "SELECT progress FROM lk_graph_works WHERE graph = ? AND work_id = ?",
            self.graph, str(work_id),
        ).fetchone()  # fmt: skip
        return json.loads(row[0]) if row and row[0] is not None else {}

    def set_progress(self, work_id: UUID, data: dict[str, Any] | None) -> None:
        self.sql(
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
            self.session.add(str(work_id), work)
            self._write_row(work_id, work)
        for work_id in self.touched:
            work = self.cache[work_id]
            assert work is not None
            self.session.save(str(work_id), work)
            self._write_row(work_id, work)

    def _write_row(self, work_id: UUID, work: Lifecycle) -> None:
        key = str(work_id)
        self.sql(
            "UPDATE lk_graph_works SET state = ?, due_at = ?, version = version + 1"
            " WHERE graph = ? AND work_id = ?",
            state_of(work).value, _due(due_time(work)), self.graph, key,
        )  # fmt: skip
        tags = frozenset(work.context.tags)
        old = self.tags.get(work_id, frozenset())
        for tag in sorted(old - tags):
            self.sql(
                "DELETE FROM lk_graph_tags WHERE graph = ? AND tag = ? AND work_id = ?",
                self.graph, tag, key,
            )  # fmt: skip
        new = sorted(tags - old)
        if new:
            seq = self.seqs[work_id]
            for tag in new:
                self.sql(
                    "INSERT INTO lk_graph_tags (graph, tag, work_id, seq) VALUES (?, ?, ?, ?)",
                    self.graph, tag, key, seq,
                )  # fmt: skip


_SELECT_WORKS = "SELECT d.work_id, d.seq FROM lk_graph_works d WHERE d.graph = ? AND d.{} IN ({})"
_SELECT_IN = "SELECT DISTINCT d.work_id, d.seq FROM {} d WHERE d.graph = ? AND d.{} IN ({})"
_EXISTS_IN = (
    " AND EXISTS (SELECT 1 FROM {0} m WHERE m.graph = d.graph AND m.work_id = d.work_id"
    " AND m.{1} IN ({2}))"
)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))
