"""Where a graph's works live: the ``GraphRepo`` protocol and ``MemoryRepo``.

The rules (:mod:`.graph`) read and change a graph only through a :class:`GraphTx`, one
transaction's view of it, handed to them by :meth:`GraphRepo.write` or :meth:`GraphRepo.read`.
An operation is a function of what it reads through its ``GraphTx``; it either completes (the
repository commits) or raises (the repository undoes everything it did). The SQL repository
(:mod:`._repo_sql`) may run an operation more than once after losing a race, so an operation
changes nothing outside its ``GraphTx`` until ``write`` has returned.

``MemoryRepo`` keeps the graph in dicts with indexes by unique name, tag, state and due time,
and undoes a failed operation from a log of what it touched (each touched work's ``atomic()``,
and one closure per structural change), never by copying the graph.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from lifecyclekit import Clock, Lifecycle, registry

from .continuation import JOIN_WORKER, GraphSnapshot, UnknownWork, WorkQuery
from .model import WorkState

__all__ = ["GraphRepo", "GraphTx", "MemoryRepo", "due_time", "state_of"]

T = TypeVar("T")
_LAST = UUID(int=2**128 - 1)


def state_of(work: Lifecycle) -> WorkState:
    """The work's ``WorkInfo.State``."""
    return WorkState(work.state_value)


def due_time(work: Lifecycle) -> datetime | None:
    """When an ENQUEUED work may run (``nextScheduleTimeMillis``); ``None`` otherwise."""
    if work.state_value != WorkState.ENQUEUED:
        return None
    due: datetime | None = work.next_run_time()  # type: ignore[attr-defined]
    return due


class GraphTx(Protocol):
    """One transaction's view of a graph: what the rules may read and change."""

    def get(self, work_id: UUID) -> Lifecycle | None:
        """The work as this transaction sees it (``None``: not in the graph). Change it only
        after :meth:`touch`."""

    def touch(self, work_id: UUID) -> Lifecycle:
        """The work, about to be changed: written back at commit, restored on failure.

        Raises:
            UnknownWork: no such work in the graph.
        """

    def lock(self, work_id: UUID) -> None:
        """The operation's outcome depends on this work's current state: a concurrent change
        to it makes one of the two transactions re-run."""

    def add(self, work: Lifecycle, prerequisites: Sequence[UUID], name: str | None) -> None:
        """Insert a new work with its prerequisite edges and unique name."""

    def delete(self, work_ids: Collection[UUID]) -> None:
        """Remove works with their edges, names, tags and progress (spec Q12)."""

    def prerequisites(self, work_id: UUID) -> list[UUID]:
        """The work's direct prerequisites, in the order they were given."""

    def dependents(self, work_id: UUID) -> list[UUID]:
        """The works that have this one as a direct prerequisite, oldest first."""

    def named(self, name: str) -> list[UUID]:
        """Every work with the unique name, oldest first."""

    def leaves(self, name: str) -> list[UUID]:
        """The works with the unique name that have no dependents, oldest first."""

    def select(self, query: WorkQuery) -> list[UUID]:
        """The works matching ``query`` as of the transaction's start, oldest first."""

    def due(self, now: datetime, limit: int | None) -> list[UUID]:
        """ENQUEUED works due at ``now``, earliest first."""

    def progress(self, work_id: UUID) -> dict[str, Any]:
        """The work's progress data (empty when none)."""

    def set_progress(self, work_id: UUID, data: dict[str, Any] | None) -> None:
        """Store the work's progress (``None``: delete it)."""


class GraphRepo(Protocol):
    """A graph's storage: runs operations as transactions."""

    name: str

    def write(self, operation: Callable[[GraphTx], T]) -> T:
        """Run ``operation`` as one all-or-nothing transaction and return its result."""

    def read(self, operation: Callable[[GraphTx], T]) -> T:
        """Run ``operation``, which changes nothing, against one consistent view."""

    def load(self, work_id: UUID) -> Lifecycle | None:
        """The work with its whole history (``None``: not in the graph)."""

    def snapshot(self) -> GraphSnapshot:
        """The whole graph as data."""


class MemoryRepo:
    """A graph in this process's memory, with the indexes the rules query."""

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self.works: dict[UUID, Lifecycle] = {}
        self.seq: dict[UUID, int] = {}
        self._next = 0
        self.prereqs: dict[UUID, tuple[UUID, ...]] = {}
        self.children: dict[UUID, set[UUID]] = {}
        self.names: dict[str, set[UUID]] = {}
        self.name_of: dict[UUID, str] = {}
        self.tags: dict[str, set[UUID]] = {}
        self.tags_of: dict[UUID, frozenset[str]] = {}
        self.states: dict[WorkState, set[UUID]] = {state: set() for state in WorkState}
        self.state_index: dict[UUID, WorkState] = {}
        self.due_list: list[tuple[datetime, int, UUID]] = []
        self.due_of: dict[UUID, tuple[datetime, int, UUID]] = {}
        self.progress: dict[UUID, dict[str, Any]] = {}
        self._tx: _MemoryTx | None = None

    # -- transactions ------------------------------------------------------------------------

    def write(self, operation: Callable[[GraphTx], T]) -> T:
        if self._tx is not None:  # an operation run from inside another: one transaction
            return operation(self._tx)
        tx = self._tx = _MemoryTx(self)
        try:
            result = operation(tx)
        except BaseException as exc:
            tx.rollback(exc)
            raise
        else:
            tx.commit()
        finally:
            self._tx = None
        return result

    def read(self, operation: Callable[[GraphTx], T]) -> T:
        return self.write(operation)

    def load(self, work_id: UUID) -> Lifecycle | None:
        return self.works.get(work_id)

    # -- ordering and indexes ----------------------------------------------------------------

    def ordered(self, ids: Collection[UUID]) -> list[UUID]:
        """``ids`` oldest first."""
        return sorted(ids, key=self.seq.__getitem__)

    def index(self, work_id: UUID) -> None:
        """Bring the work's tag, state and due-time entries up to date with the work (only
        what changed is touched)."""
        work = self.works[work_id]
        tags = frozenset(work.context.tags)
        old_tags = self.tags_of.get(work_id, frozenset())
        if tags != old_tags:
            self._retag(work_id, old_tags - tags, tags - old_tags)
            self.tags_of[work_id] = tags
        state = state_of(work)
        old_state = self.state_index.get(work_id)
        if state is not old_state:
            if old_state is not None:
                self.states[old_state].discard(work_id)
            self.states[state].add(work_id)
            self.state_index[work_id] = state
        due = due_time(work)
        entry = (due, self.seq[work_id], work_id) if due is not None else None
        if entry != self.due_of.get(work_id):
            self._undue(work_id)
            if entry is not None:
                self.due_of[work_id] = entry
                bisect.insort(self.due_list, entry)

    def unindex(self, work_id: UUID) -> None:
        self._retag(work_id, self.tags_of.pop(work_id, frozenset()), frozenset())
        state = self.state_index.pop(work_id, None)
        if state is not None:
            self.states[state].discard(work_id)
        self._undue(work_id)

    def _retag(self, work_id: UUID, gone: frozenset[str], new: frozenset[str]) -> None:
        for tag in gone:
            members = self.tags[tag]
            members.discard(work_id)
            if not members:
                del self.tags[tag]
        for tag in new:
            self.tags.setdefault(tag, set()).add(work_id)

    def _undue(self, work_id: UUID) -> None:
        entry = self.due_of.pop(work_id, None)
        if entry is not None:
            del self.due_list[bisect.bisect_left(self.due_list, entry)]

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot(self) -> GraphSnapshot:
        ids = self.ordered(self.works)
        return GraphSnapshot(
            works=tuple(self.works[i].snapshot() for i in ids),
            prerequisites={i: self.prereqs[i] for i in ids if i in self.prereqs},
            names={n: tuple(self.ordered(m)) for n, m in self.names.items()},
            joins=tuple(i for i in ids if self.works[i].context.worker == JOIN_WORKER),
            progress={i: dict(self.progress[i]) for i in ids if i in self.progress},
        )

    @classmethod
    def restore(cls, snapshot: GraphSnapshot, clock: Clock | None) -> MemoryRepo:
        """A repository holding the graph of ``snapshot``."""
        repo = cls()
        for snap in snapshot.works:
            work = registry.restore(snap, clock=clock)
            repo._insert(work, ())
        for work_id, prerequisites in snapshot.prerequisites.items():
            repo._link(work_id, prerequisites)
        for name, members in snapshot.names.items():
            for work_id in members:
                repo._name(work_id, name)
        repo.progress = {k: dict(v) for k, v in snapshot.progress.items()}
        for work_id in repo.works:
            repo.index(work_id)
        return repo

    # -- structure (each step undone by the transaction's log) -------------------------------

    def _insert(self, work: Lifecycle, prerequisites: Sequence[UUID]) -> UUID:
        work_id: UUID = work.context.id
        self.works[work_id] = work
        self._next += 1
        self.seq[work_id] = self._next
        self._link(work_id, prerequisites)
        return work_id

    def _name(self, work_id: UUID, name: str) -> None:
        self.names.setdefault(name, set()).add(work_id)
        self.name_of[work_id] = name

    def _remove(self, work_id: UUID) -> Callable[[], None]:
        """Remove one work's structure; returns the closure that puts it back."""
        work, seq = self.works.pop(work_id), self.seq.pop(work_id)
        prerequisites = self.prereqs.pop(work_id, ())
        for prerequisite in prerequisites:
            self.children[prerequisite].discard(work_id)
        children = self.children.pop(work_id, set())
        edges = {child: self.prereqs[child] for child in children}
        for child in children:
            kept = tuple(p for p in edges[child] if p != work_id)
            if kept:
                self.prereqs[child] = kept
            else:
                del self.prereqs[child]
        name = self._unname(work_id)
        progress = self.progress.pop(work_id, None)
        was_indexed = work_id in self.state_index
        self.unindex(work_id)

        def undo() -> None:
            self.works[work_id], self.seq[work_id] = work, seq
            self._link(work_id, prerequisites)
            if children:
                self.children[work_id] = children
            self.prereqs.update(edges)
            if name is not None:
                self._name(work_id, name)
            if progress is not None:
                self.progress[work_id] = progress
            if was_indexed:
                self.index(work_id)

        return undo

    def _unname(self, work_id: UUID) -> str | None:
        name = self.name_of.pop(work_id, None)
        if name is not None:
            self.names[name].discard(work_id)
            if not self.names[name]:
                del self.names[name]
        return name

    def _link(self, work_id: UUID, prerequisites: Sequence[UUID]) -> None:
        if prerequisites:
            self.prereqs[work_id] = tuple(prerequisites)
            for prerequisite in prerequisites:
                self.children.setdefault(prerequisite, set()).add(work_id)


def _union(index: Mapping[Any, set[UUID]], keys: Iterable[Any]) -> set[UUID]:
    found: set[UUID] = set()
    for key in keys:
        found |= index.get(key, set())
    return found


class _MemoryTx:
    """One operation on a :class:`MemoryRepo`, with its undo log."""

    def __init__(self, repo: MemoryRepo) -> None:
        self.repo = repo
        self.touched: dict[UUID, Lifecycle] = {}
        self.added: set[UUID] = set()
        self.undo: list[Callable[[], None]] = []
        self.stack = ExitStack()

    def get(self, work_id: UUID) -> Lifecycle | None:
        return self.repo.works.get(work_id)

    def touch(self, work_id: UUID) -> Lifecycle:
        work = self.repo.works.get(work_id)
        if work is None:
            raise UnknownWork(work_id, self.repo.name)
        if work_id not in self.touched and work_id not in self.added:
            self.touched[work_id] = work
            self.stack.enter_context(work.atomic())
        return work

    def lock(self, work_id: UUID) -> None:
        """Nothing runs concurrently in memory."""

    def add(self, work: Lifecycle, prerequisites: Sequence[UUID], name: str | None) -> None:
        repo = self.repo
        work_id = repo._insert(work, prerequisites)
        if name is not None:
            repo._name(work_id, name)
        self.added.add(work_id)
        self.undo.append(lambda: self._unadd(work_id))

    def _unadd(self, work_id: UUID) -> None:
        self.repo._remove(work_id)
        self.added.discard(work_id)

    def delete(self, work_ids: Collection[UUID]) -> None:
        for work_id in work_ids:
            if work_id in self.repo.works:
                self.undo.append(self.repo._remove(work_id))
                self.touched.pop(work_id, None)
                self.added.discard(work_id)

    def prerequisites(self, work_id: UUID) -> list[UUID]:
        return list(self.repo.prereqs.get(work_id, ()))

    def dependents(self, work_id: UUID) -> list[UUID]:
        return self.repo.ordered(self.repo.children.get(work_id, ()))

    def named(self, name: str) -> list[UUID]:
        return self.repo.ordered(self.repo.names.get(name, ()))

    def leaves(self, name: str) -> list[UUID]:
        children = self.repo.children
        return [i for i in self.named(name) if not children.get(i)]

    def select(self, query: WorkQuery) -> list[UUID]:
        """Driven by the most selective component given (ids, names, tags, states); the
        others are checked per candidate, so the cost is the driving index's entries."""
        repo = self.repo
        if query.ids:
            found: set[UUID] = {i for i in query.ids if i in repo.works}
        elif query.unique_work_names:
            found = _union(repo.names, query.unique_work_names)
        elif query.tags:
            found = _union(repo.tags, query.tags)
        else:
            found = _union(repo.states, query.states)
        if query.unique_work_names:
            found = {i for i in found if repo.name_of.get(i) in query.unique_work_names}
        if query.tags:
            found = {i for i in found if repo.tags_of.get(i, frozenset()) & query.tags}
        if query.states:
            found = {i for i in found if repo.state_index.get(i) in query.states}
        return repo.ordered(found)

    def due(self, now: datetime, limit: int | None) -> list[UUID]:
        entries = self.repo.due_list
        end = bisect.bisect_right(entries, (now, sys.maxsize, _LAST))
        if limit is not None:
            end = min(end, limit)
        return [work_id for _, _, work_id in entries[:end]]

    def progress(self, work_id: UUID) -> dict[str, Any]:
        return dict(self.repo.progress.get(work_id, {}))

    def set_progress(self, work_id: UUID, data: dict[str, Any] | None) -> None:
        store = self.repo.progress
        old = store.get(work_id)
        if data is None:
            store.pop(work_id, None)
        else:
            store[work_id] = dict(data)

        def undo() -> None:
            if old is None:
                store.pop(work_id, None)
            else:
                store[work_id] = old

        self.undo.append(undo)

    # -- the end of the operation ------------------------------------------------------------

    def commit(self) -> None:
        for work_id in [*self.touched, *self.added]:
            if work_id in self.repo.works:
                self.repo.index(work_id)
        self.stack.close()

    def rollback(self, exc: BaseException) -> None:
        for undo in reversed(self.undo):
            undo()
        self.stack.__exit__(type(exc), exc, exc.__traceback__)
