"""``WorkGraph``: many works, their dependency edges and unique names, under WorkManager's rules.

One work's lifecycle cannot see its neighbours; the graph can. It builds chains
(``begin_with(a, b).then(c).enqueue()``, ``WorkContinuation.combine``), applies the unique-work
policies (spec §6), and propagates: a success unblocks dependents whose prerequisites all
succeeded (C1) and gives them their merged input (§5.4); a failure fails every descendant (C3);
a cancellation cancels every descendant (C4). Propagation is iterative, so chains of any depth
work, and every operation is all-or-nothing: if any step is refused, the whole graph is as it
was.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from uuid import UUID

from lifecyclekit import Clock, Lifecycle, registry

from .chained import ChainedWork
from .continuation import (
    JOIN_WORKER,
    GraphSnapshot,
    UnknownWork,
    WorkContinuation,
    WorkGraphError,
)
from .merge import merge_inputs
from .model import (
    DeviceConditions,
    ExistingPeriodicWorkPolicy,
    ExistingWorkPolicy,
    PeriodicWorkRequest,
    UpdateResult,
    WorkInfo,
    WorkRequest,
    WorkResult,
    WorkState,
    check_content_uri_trigger_limit,
)
from .one_time import OneTimeWork
from .periodic import PeriodicWork

__all__ = ["JOIN_WORKER", "UnknownWork", "WorkContinuation", "WorkGraph", "WorkGraphError"]

_UNFINISHED = (WorkState.ENQUEUED, WorkState.RUNNING, WorkState.BLOCKED)


class WorkGraph:
    """Many works and the chain rules between them.

    Args:
        clock: the clock every work of the graph reads (default: UTC now).
        store: keep the graph in a store (``open_store(url)``): every operation is then one
            store transaction, and the graph survives restarts and serves many processes
            (see :class:`~lifecyclekit.machines.workmanager._graph_store.StoredWorkGraph`).
        name: with ``store``, which graph of the store (several can share one).
    """

    def __new__(
        cls, *, clock: Clock | None = None, store: Any = None, name: str = "default"
    ) -> Any:
        if store is not None and cls is WorkGraph:
            from ._graph_store import StoredWorkGraph

            return super().__new__(StoredWorkGraph)
        return super().__new__(cls)

    def __init__(
        self, *, clock: Clock | None = None, store: Any = None, name: str = "default"
    ) -> None:
        self.clock = clock
        self._works: dict[UUID, Lifecycle] = {}
        self._prereqs: dict[UUID, list[UUID]] = {}
        self._dependents: dict[UUID, list[UUID]] = {}
        self._names: dict[str, list[UUID]] = {}
        self._joins: set[UUID] = set()
        self._tx: tuple[ExitStack, set[UUID]] | None = None

    # -- building ----------------------------------------------------------------------------

    def begin_with(self, *requests: WorkRequest) -> WorkContinuation:
        """The first step of a chain (V10: at least one request)."""
        if not requests:
            msg = "beginWith needs at least one OneTimeWorkRequest."
            raise WorkGraphError(msg)
        return WorkContinuation(self, requests)

    def begin_unique_work(
        self, name: str, policy: ExistingWorkPolicy | str, *requests: WorkRequest
    ) -> WorkContinuation:
        """The first step of a uniquely named chain (V11: at least one request)."""
        if not requests:
            msg = "beginUniqueWork needs at least one OneTimeWorkRequest."
            raise WorkGraphError(msg)
        return WorkContinuation(self, requests, name=name, policy=ExistingWorkPolicy(policy))

    def enqueue(self, *requests: WorkRequest | PeriodicWorkRequest) -> None:
        """Enqueue independent works (V9: at least one request)."""
        if not requests:
            msg = "enqueue needs at least one WorkRequest."
            raise WorkGraphError(msg)
        self._check_new([r.id for r in requests])
        check_content_uri_trigger_limit(self._works.values(), requests)
        with self._transaction():
            for request in requests:
                self._insert(request, [], None)

    def enqueue_unique_work(
        self, name: str, policy: ExistingWorkPolicy | str, *requests: WorkRequest
    ) -> None:
        """``enqueueUniqueWork``: apply ``policy`` if ``name`` already holds work (§6.1)."""
        self.begin_unique_work(name, policy, *requests).enqueue()

    def enqueue_unique_periodic_work(
        self, name: str, policy: ExistingPeriodicWorkPolicy | str, request: PeriodicWorkRequest
    ) -> None:
        """``enqueueUniquePeriodicWork`` (§6.2): REPLACE/CANCEL_AND_REENQUEUE replace, KEEP
        keeps running or enqueued work, UPDATE updates it in place keeping its id."""
        policy = ExistingPeriodicWorkPolicy(policy)
        if not isinstance(request, PeriodicWorkRequest):
            msg = "enqueue_unique_periodic_work takes a PeriodicWorkRequest."
            raise WorkGraphError(msg)
        self._check_new([request.id])
        request.check_unique_policy(policy)
        check_content_uri_trigger_limit(self._works.values(), [request], policy)
        with self._transaction():
            if policy is ExistingPeriodicWorkPolicy.UPDATE:
                self._update_periodic(name, request)
                return
            mapped = (
                ExistingWorkPolicy.KEEP
                if policy is ExistingPeriodicWorkPolicy.KEEP
                else ExistingWorkPolicy.REPLACE
            )
            if self._apply_policy(name, mapped) is not None:
                self._insert(request, [], name)

    def _update_periodic(self, name: str, request: PeriodicWorkRequest) -> None:
        named = self._names.get(name, [])
        if not named:
            self._insert(request, [], name)
            return
        if len(named) > 1:
            msg = "Can't apply UPDATE policy to the chains of work."
            raise WorkGraphError(msg)
        existing = self._works[named[0]]
        if not isinstance(existing, PeriodicWork):
            msg = (
                "Can't update OneTimeWorker to Periodic Worker. Update operation must preserve "
                "worker's type."
            )
            raise WorkGraphError(msg)
        if existing.state == "cancelled":
            self._delete(named)
            self._insert(request, [], name)
            return
        self._update(existing, request)

    def _enqueue_continuation(self, continuation: WorkContinuation) -> None:
        steps: list[WorkContinuation] = []
        self._collect(continuation, steps, set())
        ids = [i for step in steps for i in step.ids]
        if len(ids) != len(set(ids)):
            msg = f"WorkContinuation has cycles ({', '.join(map(str, ids))})"
            raise WorkGraphError(msg)
        self._check_new(ids)
        check_content_uri_trigger_limit(
            self._works.values(), (r for s in steps for r in s.requests)
        )
        with self._transaction():
            for step in steps:
                prerequisites = [i for parent in step.parents for i in parent.ids]
                root_named = step.name is not None and not step.parents
                if root_named and step.policy is not None:
                    applied = self._apply_policy(step.name, step.policy)  # type: ignore[arg-type]
                    if applied is None:
                        return  # KEEP: nothing of this continuation is stored.
                    prerequisites = applied
                for request in step.requests:
                    self._insert(request, prerequisites, step.name, join=step.join)
                step.enqueued = True

    def _collect(
        self, step: WorkContinuation, out: list[WorkContinuation], seen: set[int]
    ) -> None:
        """Parents first, already enqueued ones skipped (iterative: chains may be deep)."""
        stack: list[tuple[WorkContinuation, bool]] = [(step, False)]
        while stack:
            node, expanded = stack.pop()
            if node.enqueued or id(node) in seen:
                continue
            if expanded:
                seen.add(id(node))
                out.append(node)
                continue
            stack.append((node, True))
            stack.extend((parent, False) for parent in reversed(node.parents))

    def _check_new(self, ids: list[UUID]) -> None:
        taken = [str(i) for i in ids if i in self._works]
        if taken:
            msg = f"Work {', '.join(taken)} is already enqueued; build a new WorkRequest."
            raise WorkGraphError(msg)

    def _apply_policy(self, name: str, policy: ExistingWorkPolicy) -> list[UUID] | None:
        """Apply a unique-work policy; the new root's prerequisites, or None to keep (§6.1)."""
        named = list(self._names.get(name, []))
        if not named:
            return []
        states = {self._state(i) for i in named}
        if policy is ExistingWorkPolicy.KEEP and states & {WorkState.ENQUEUED, WorkState.RUNNING}:
            return None
        if policy in (ExistingWorkPolicy.APPEND, ExistingWorkPolicy.APPEND_OR_REPLACE):
            if any(isinstance(self._works[i], PeriodicWork) for i in named):
                msg = f"Unique work {name!r} holds periodic work: cannot chain onto periodic work."
                raise WorkGraphError(msg)
            leaves = [i for i in named if not self._dependents.get(i)]
            poisoned = {self._state(i) for i in leaves} & {WorkState.FAILED, WorkState.CANCELLED}
            if policy is ExistingWorkPolicy.APPEND or not poisoned:
                return leaves
            self._delete(named)
            return []
        for work_id in named:  # REPLACE, or KEEP with nothing enqueued or running
            if self._state(work_id) in _UNFINISHED:
                self._cancel(work_id)
        self._delete([i for i in named if i in self._works])
        return []

    def _insert(
        self,
        request: WorkRequest | PeriodicWorkRequest,
        prerequisites: list[UUID],
        name: str | None,
        *,
        join: bool = False,
    ) -> None:
        fields = request.model_dump()
        work: Lifecycle
        if isinstance(request, PeriodicWorkRequest):
            work = PeriodicWork(clock=self.clock, **fields)
        elif prerequisites:
            states = {p: self._state(p) for p in prerequisites}
            work = ChainedWork(clock=self.clock, prerequisites=states, **fields)
        else:
            work = OneTimeWork(clock=self.clock, **fields)
        self._works[request.id] = work
        self._prereqs[request.id] = list(prerequisites)
        for prerequisite in prerequisites:
            self._dependents.setdefault(prerequisite, []).append(request.id)
        if name is not None:
            self._names.setdefault(name, []).append(request.id)
        if join:
            self._joins.add(request.id)
            if work.state == "enqueued":
                self._complete_join(request.id)

    def _delete(self, ids: list[UUID]) -> None:
        """Remove works (a policy's deletion, spec Q12): info() is None afterwards."""
        doomed = set(ids)
        for work_id in ids:
            self._works.pop(work_id, None)
            self._joins.discard(work_id)
            for prerequisite in self._prereqs.pop(work_id, []):
                if prerequisite not in doomed and prerequisite in self._dependents:
                    self._dependents[prerequisite].remove(work_id)
            self._dependents.pop(work_id, None)
        for name, members in list(self._names.items()):
            kept = [i for i in members if i not in doomed]
            if kept:
                self._names[name] = kept
            else:
                del self._names[name]

    # -- driving -----------------------------------------------------------------------------

    def start(self, work_id: UUID, conditions: DeviceConditions | None = None) -> None:
        """Start a work; if its inputs cannot be merged it fails (§5.4, W9) with its chain."""
        work = self.work(work_id)
        with self._transaction():
            if work.state == "enqueued" and not isinstance(work, PeriodicWork):
                try:
                    self.input_for(work_id)
                except ValueError:
                    self._fire(work_id, "instantiation_failed")
                    self._propagate(work_id)
                    return
            self._fire(work_id, "start", conditions=conditions)

    def finish(self, work_id: UUID, result: WorkResult) -> None:
        """The worker's result; success unblocks, failure fails the chain (W2-W4, C1, C3)."""
        with self._transaction():
            self._fire(work_id, "finish", result)
            self._propagate(work_id)

    def stop(self, work_id: UUID, reason: Any) -> None:
        """The system stopped the worker (W5/W6): back to ENQUEUED."""
        with self._transaction():
            self._fire(work_id, "stop", reason=reason)

    def instantiation_failed(self, work_id: UUID) -> None:
        """The worker could not be created (W9; P10 for periodic work)."""
        with self._transaction():
            self._fire(work_id, "instantiation_failed")
            self._propagate(work_id)

    def cancel(self, work_id: UUID) -> None:
        """Cancel a work and every descendant (C4); a finished work itself is left (W11)."""
        self.work(work_id)
        with self._transaction():
            self._cancel(work_id)

    def cancel_by_tag(self, tag: str) -> None:
        """Cancel every unfinished work with ``tag`` (and their descendants)."""
        self._cancel_where(lambda i: tag in self._works[i].context.tags)

    def cancel_unique_work(self, name: str) -> None:
        """Cancel every unfinished work named ``name`` (and their descendants)."""
        named = set(self._names.get(name, []))
        self._cancel_where(lambda i: i in named)

    def cancel_all_work(self) -> None:
        """Cancel every unfinished work."""
        self._cancel_where(lambda i: True)

    def _cancel_where(self, predicate: Any) -> None:
        with self._transaction():
            for work_id in [i for i in self._works if predicate(i)]:
                if work_id in self._works and self._state(work_id) in _UNFINISHED:
                    self._cancel(work_id)

    def update_work(self, request: WorkRequest | PeriodicWorkRequest) -> str:
        """``updateWork`` (W10, P9, C5): replace the spec of the work with ``request.id``.

        Returns:
            WorkManager's ``UpdateResult`` name.
        """
        work = self.work(request.id)
        if isinstance(work, PeriodicWork) != isinstance(request, PeriodicWorkRequest):
            old, new = (
                ("Periodic", "OneTime")
                if isinstance(work, PeriodicWork)
                else ("OneTime", "Periodic")
            )
            msg = (
                f"Can't update {old} Worker to {new} Worker. Update operation must preserve "
                "worker's type."
            )
            raise WorkGraphError(msg)
        if work.is_finished:
            return UpdateResult.NOT_APPLIED.value
        running = work.state == "running"
        with self._transaction():
            self._update(work, request)
        return (
            UpdateResult.APPLIED_FOR_NEXT_RUN if running else UpdateResult.APPLIED_IMMEDIATELY
        ).value

    def _update(self, work: Lifecycle, request: WorkRequest | PeriodicWorkRequest) -> None:
        """The new request's fields, with state, counts and enqueue time preserved (§6.3)."""
        self._touch(work.context.id)
        work.context = work.context.updated_by(request)

    # -- propagation -------------------------------------------------------------------------

    def _propagate(self, origin: UUID) -> None:
        state = self._state(origin)
        if state is WorkState.SUCCEEDED:
            self._unblock_from(origin)
        elif state is WorkState.FAILED:
            self._cascade(origin, "prerequisite_failed")
        elif state is WorkState.CANCELLED:
            self._cascade(origin, "prerequisite_cancelled")

    def _unblock_from(self, origin: UUID) -> None:
        queue = deque([origin])
        while queue:
            done = queue.popleft()
            for dependent in self._dependents.get(done, []):
                if self._state(dependent) is not WorkState.BLOCKED:
                    continue
                self._fire(dependent, "prerequisite_succeeded", prerequisite=done)
                if dependent in self._joins and self._state(dependent) is WorkState.ENQUEUED:
                    if self._complete_join(dependent):
                        queue.append(dependent)

    def _complete_join(self, join_id: UUID) -> bool:
        """combine's hidden work completes itself with its merged input (§5.1)."""
        try:
            merged = self.input_for(join_id)
        except ValueError:
            self._fire(join_id, "instantiation_failed")
            self._cascade(join_id, "prerequisite_failed")
            return False
        self._fire(join_id, "start")
        self._fire(join_id, "succeed", output=merged)
        return True

    def _cascade(self, origin: UUID, event: str) -> None:
        """C3/C4: every unfinished descendant, walking through finished ones (iteratively)."""
        stack = list(self._dependents.get(origin, []))
        seen: set[UUID] = set()
        while stack:
            work_id = stack.pop()
            if work_id in seen:
                continue
            seen.add(work_id)
            if self._state(work_id) in _UNFINISHED:
                self._fire(work_id, event, prerequisite=origin)
            stack.extend(self._dependents.get(work_id, []))

    def _cancel(self, work_id: UUID) -> None:
        self._fire(work_id, "cancel")
        self._cascade(work_id, "prerequisite_cancelled")

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._tx is not None:
            yield
            return
        saved = (
            dict(self._works),
            {k: list(v) for k, v in self._prereqs.items()},
            {k: list(v) for k, v in self._dependents.items()},
            {k: list(v) for k, v in self._names.items()},
            set(self._joins),
        )
        stack = ExitStack()
        self._tx = (stack, set())
        try:
            with stack:  # each touched work's atomic() rolls it back on an exception
                yield
        except BaseException:
            self._works, self._prereqs, self._dependents, self._names, self._joins = saved
            raise
        finally:
            self._tx = None

    def _touch(self, work_id: UUID) -> Lifecycle:
        work = self.work(work_id)
        if self._tx is not None and work_id not in self._tx[1]:
            self._tx[1].add(work_id)
            self._tx[0].enter_context(work.atomic())
        return work

    def _fire(self, work_id: UUID, event: str, *args: Any, **data: Any) -> None:
        self._touch(work_id).send(event, *args, **data)

    # -- reading -----------------------------------------------------------------------------

    def work(self, work_id: UUID) -> Lifecycle:
        """The lifecycle instance of a work.

        Raises:
            UnknownWork: no such work (never enqueued, or removed by a policy).
        """
        try:
            return self._works[work_id]
        except KeyError:
            raise UnknownWork(work_id) from None

    def _state(self, work_id: UUID) -> WorkState:
        return WorkState(self._works[work_id].state_value)

    def info(self, work_id: UUID) -> WorkInfo | None:
        """The work's ``WorkInfo``, or ``None`` if it is not (or no longer) in the graph."""
        work = self._works.get(work_id)
        return work.info() if work is not None else None  # type: ignore[attr-defined]

    def infos_by_tag(self, tag: str) -> list[WorkInfo]:
        """``getWorkInfosByTag``."""
        return [w.info() for w in self._works.values() if tag in w.context.tags]  # type: ignore[attr-defined]

    def infos_for_unique_work(self, name: str) -> list[WorkInfo]:
        """``getWorkInfosForUniqueWork``."""
        return [self._works[i].info() for i in self._names.get(name, [])]  # type: ignore[attr-defined]

    def prerequisites(self, work_id: UUID) -> list[UUID]:
        """The direct prerequisites of a work."""
        self.work(work_id)
        return list(self._prereqs.get(work_id, []))

    def input_for(self, work_id: UUID) -> dict[str, Any]:
        """The input its worker receives: its own, then each prerequisite's output, merged
        by its input merger (§5.4). Periodic work gets its own input only.

        Raises:
            ValueError: the array merger met values of different types.
        """
        spec = self.work(work_id).context
        if isinstance(self._works[work_id], PeriodicWork):
            return dict(spec.input)
        outputs = [self._works[p].context.output for p in self._prereqs.get(work_id, [])]
        return merge_inputs(spec.input_merger, [spec.input, *outputs])

    def runnable(self, conditions: DeviceConditions | None = None) -> list[UUID]:
        """Ids that ``start`` would accept now, earliest next schedule time first."""
        ready = [
            (work.next_run_time(), work_id)  # type: ignore[attr-defined]
            for work_id, work in self._works.items()
            if work.state == "enqueued" and work.explain("start", conditions=conditions).allowed
        ]
        ready.sort(key=lambda item: (item[0] is None, item[0], str(item[1])))
        return [work_id for _, work_id in ready]

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot(self) -> GraphSnapshot:
        """The whole graph as a JSON-round-tripping pydantic model."""
        return GraphSnapshot(
            works=tuple(w.snapshot() for w in self._works.values()),
            prerequisites={k: tuple(v) for k, v in self._prereqs.items()},
            names={k: tuple(v) for k, v in self._names.items()},
            joins=tuple(sorted(self._joins, key=str)),
        )

    @classmethod
    def restore(
        cls, snapshot: GraphSnapshot | dict[str, Any] | str, *, clock: Clock | None = None
    ) -> WorkGraph:
        """Rebuild a graph from :meth:`snapshot`."""
        if isinstance(snapshot, str):
            snapshot = GraphSnapshot.model_validate_json(snapshot)
        elif isinstance(snapshot, dict):
            snapshot = GraphSnapshot.model_validate(snapshot)
        graph = cls(clock=clock)
        for snap in snapshot.works:
            work = registry.restore(snap, clock=clock)
            graph._works[work.context.id] = work
        for work_id, prerequisites in snapshot.prerequisites.items():
            graph._prereqs[work_id] = list(prerequisites)
            for prerequisite in prerequisites:
                graph._dependents.setdefault(prerequisite, []).append(work_id)
        graph._names = {k: list(v) for k, v in snapshot.names.items()}
        graph._joins = set(snapshot.joins)
        return graph
