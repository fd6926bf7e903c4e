"""``WorkGraph``: many works, their dependency edges and unique names, under WorkManager's rules.

One work's lifecycle cannot see its neighbours; the graph can. It builds chains
(``begin_with(a, b).then(c).enqueue()``, ``WorkContinuation.combine``), applies the unique-work
policies (spec §6), and propagates: a success unblocks dependents whose prerequisites all
succeeded (C1) and gives them their merged input (§5.4); a failure fails every descendant (C3);
a cancellation cancels every descendant (C4). Propagation is iterative, so chains of any depth
work.

The rules are written once, in :class:`_Rules`, against a :class:`~._repo.GraphTx`: every
operation is one transaction of the graph's repository (:class:`~._repo.MemoryRepo` by
default, :class:`~._repo_sql.SqlRepo` with ``store=``), all there or not at all. An operation
is a function of what it reads in its transaction and touches nothing else until the
transaction has committed, so a stored graph may re-run it after losing a race to another
process and get exactly what a first attempt would have.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from lifecyclekit import Clock, Lifecycle, PayloadError, SnapshotError

from ._repo import GraphRepo, GraphTx, MemoryRepo, state_of
from .chained import ChainedWork
from .continuation import (
    JOIN_WORKER,
    EnqueueResult,
    GraphSnapshot,
    UnknownWork,
    WorkContinuation,
    WorkGraphError,
    WorkQuery,
    work_id_of,
)
from .merge import merge_inputs
from .model import (
    DeviceConditions,
    ExistingPeriodicWorkPolicy,
    ExistingWorkPolicy,
    PeriodicWorkRequest,
    UpdateResult,
    WorkData,
    WorkInfo,
    WorkRequest,
    WorkResult,
    WorkState,
    check_content_uri_trigger_limit,
)
from .one_time import OneTimeWork
from .periodic import PeriodicWork

__all__ = [
    "JOIN_WORKER",
    "PRUNE_THRESHOLD",
    "EnqueueResult",
    "UnknownWork",
    "WorkContinuation",
    "WorkGraph",
    "WorkGraphError",
    "WorkQuery",
]

P = ParamSpec("P")
T = TypeVar("T")

UNFINISHED = frozenset({WorkState.ENQUEUED, WorkState.RUNNING, WorkState.BLOCKED})
FINISHED = frozenset({WorkState.SUCCEEDED, WorkState.FAILED, WorkState.CANCELLED})
PRUNE_THRESHOLD = timedelta(days=1)
"""androidx ``PRUNE_THRESHOLD_MILLIS``: automatic pruning keeps a finished work until
``last_enqueue_time + keep_results_for_at_least`` is this far in the past (§10.6)."""

_DATA: TypeAdapter[dict[str, Any]] = TypeAdapter(WorkData)
_POLICIES = ", ".join(p.value for p in ExistingWorkPolicy)
_PERIODIC_POLICIES = ", ".join(p.value for p in ExistingPeriodicWorkPolicy)


class WorkGraph:
    """Many works and the chain rules between them.

    Args:
        clock: the clock every work of the graph reads (default: UTC now).
        store: keep the graph in a store (``open_store(url)``): the works are store
            instances, every operation is one store transaction (re-run from the start when
            another process won a race), and the graph survives restarts and serves many
            processes.
        name: which graph of the store (several can share one store).
    """

    def __init__(
        self, *, clock: Clock | None = None, store: Any = None, name: str = "default"
    ) -> None:
        self.clock = clock
        self.name = name
        self._repo: GraphRepo
        if store is None:
            self._repo = MemoryRepo(name)
        else:
            from ._repo_sql import SqlRepo

            self._repo = SqlRepo(store, name=name, clock=clock)

    def _operation(
        self, rule: Callable[Concatenate[_Rules, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> Callable[[GraphTx], T]:
        """``rule`` as a function of one transaction, named for messages."""

        def operation(tx: GraphTx) -> T:
            return rule(_Rules(tx, self), *args, **kwargs)

        operation.__qualname__ = f"WorkGraph({self.name!r}).{rule.__name__}"
        return operation

    def _write(
        self, rule: Callable[Concatenate[_Rules, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return self._repo.write(self._operation(rule, *args, **kwargs))

    def _read(
        self, rule: Callable[Concatenate[_Rules, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return self._repo.read(self._operation(rule, *args, **kwargs))

    def now(self) -> datetime:
        """The graph's clock, as an aware UTC datetime."""
        return (self.clock() if self.clock is not None else datetime.now(UTC)).astimezone(UTC)

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
        return WorkContinuation(
            self, requests, name=_name(name), policy=_policy(ExistingWorkPolicy, policy)
        )

    def enqueue(self, *requests: WorkRequest | PeriodicWorkRequest) -> EnqueueResult:
        """Enqueue independent works (V9: at least one request), in one transaction."""
        if not requests:
            msg = "enqueue needs at least one WorkRequest."
            raise WorkGraphError(msg)
        _check_requests(requests)
        return self._write(_Rules.enqueue, requests)

    def enqueue_unique_work(
        self, name: str, policy: ExistingWorkPolicy | str, *requests: WorkRequest
    ) -> EnqueueResult:
        """``enqueueUniqueWork``: apply ``policy`` if ``name`` already holds work (§6.1)."""
        return self.begin_unique_work(name, policy, *requests).enqueue()

    def enqueue_unique_periodic_work(
        self, name: str, policy: ExistingPeriodicWorkPolicy | str, request: PeriodicWorkRequest
    ) -> EnqueueResult:
        """``enqueueUniquePeriodicWork`` (§6.2): REPLACE/CANCEL_AND_REENQUEUE replace, KEEP
        keeps running or enqueued work, UPDATE updates it in place keeping its id."""
        chosen = _policy(ExistingPeriodicWorkPolicy, policy)
        if not isinstance(request, PeriodicWorkRequest):
            msg = (
                f"enqueue_unique_periodic_work takes a PeriodicWorkRequest, got "
                f"{type(request).__name__}; use enqueue_unique_work for one-time work."
            )
            raise WorkGraphError(msg)
        request.check_unique_policy(chosen)
        return self._write(_Rules.enqueue_unique_periodic, _name(name), chosen, request)

    def _enqueue_continuation(self, continuation: WorkContinuation) -> EnqueueResult:
        steps = [step for step in continuation.lineage() if not step.enqueued]
        ids = [i for step in steps for i in step.ids]
        if len(ids) != len(set(ids)):
            msg = f"WorkContinuation has cycles ({', '.join(map(str, ids))})"
            raise WorkGraphError(msg)
        result = self._write(_Rules.enqueue_steps, steps)
        for step in steps:  # only now: a re-run attempt must see the steps as the first did
            step.enqueued = True
        return result

    # -- driving -----------------------------------------------------------------------------

    def start(self, work_id: UUID | str, conditions: DeviceConditions | None = None) -> None:
        """Start a work; if its inputs cannot be merged it fails (§5.4, W9) with its chain."""
        self._write(_Rules.start, work_id_of(work_id), conditions)

    def finish(self, work_id: UUID | str, result: WorkResult) -> None:
        """The worker's result; success unblocks, failure fails the chain (W2-W4, C1, C3).
        The work's progress is deleted (§1.3)."""
        self._write(_Rules.finish, work_id_of(work_id), result)

    def stop(self, work_id: UUID | str, reason: Any) -> None:
        """The system stopped the worker (W5/W6): back to ENQUEUED, progress kept."""
        self._write(_Rules.stop, work_id_of(work_id), reason)

    def instantiation_failed(self, work_id: UUID | str) -> None:
        """The worker could not be created (W9; P10 for periodic work)."""
        self._write(_Rules.instantiation_failed, work_id_of(work_id))

    def cancel(self, work_id: UUID | str) -> None:
        """Cancel a work and every descendant (C4); a finished work itself is left (W11)."""
        self._write(_Rules.cancel, work_id_of(work_id))

    def cancel_by_tag(self, tag: str) -> None:
        """Cancel every unfinished work with ``tag`` (and their descendants)."""
        self._write(_Rules.cancel_where, WorkQuery(tags=[tag], states=UNFINISHED))

    def cancel_unique_work(self, name: str) -> None:
        """Cancel every unfinished work named ``name`` (and their descendants)."""
        query = WorkQuery(unique_work_names=[_name(name)], states=UNFINISHED)
        self._write(_Rules.cancel_where, query)

    def cancel_all_work(self) -> None:
        """Cancel every unfinished work."""
        self._write(_Rules.cancel_where, WorkQuery(states=UNFINISHED))

    def update_work(self, request: WorkRequest | PeriodicWorkRequest) -> str:
        """``updateWork`` (W10, P9, C5): replace the spec of the work with ``request.id``.

        Returns:
            WorkManager's ``UpdateResult`` name.
        """
        _check_requests([request])
        return self._write(_Rules.update, request)

    def set_progress(self, work_id: UUID | str, data: dict[str, Any]) -> bool:
        """``setProgressAsync``: the running worker's progress, shown as ``WorkInfo.progress``
        until a result is handled (§1.3).

        WorkManager ignores progress for a work that is not RUNNING, with a warning
        (``WorkProgressUpdater``: "Ignoring setProgressAsync(...). WorkSpec (...) is not in a
        RUNNING state."); so does this method.

        Returns:
            Whether the progress was stored.

        Raises:
            PayloadError: ``data`` is not WorkManager ``Data``.
            UnknownWork: no such work.
        """
        try:
            checked = _DATA.validate_python(data)
        except ValidationError as exc:
            machine = "WorkGraph"
            raise PayloadError.from_validation_error(machine, "set_progress", exc) from None
        stored, state = self._write(_Rules.set_progress, work_id_of(work_id), checked)
        if not stored:
            warnings.warn(
                f"Ignoring set_progress for work {work_id}: it is {state.value}, not RUNNING "
                "(progress belongs to a running worker).",
                UserWarning,
                stacklevel=2,
            )
        return stored

    def prune_work(self, *, expired_only: bool = False) -> list[UUID]:
        """``pruneWork()`` (§10.6): delete every finished work that has no unfinished
        dependent; its ``WorkInfo`` is gone afterwards and a unique name left without works
        starts a new sequence.

        Args:
            expired_only: delete only works WorkManager would prune by itself (androidx
                ``CleanupCallback``): ``last_enqueue_time + keep_results_for_at_least`` more
                than :data:`PRUNE_THRESHOLD` before now. ``pruneWork()`` ignores the retention.

        Returns:
            The ids deleted, oldest first.
        """
        cutoff = self.now() - PRUNE_THRESHOLD if expired_only else None
        return self._write(_Rules.prune, cutoff)

    # -- reading -----------------------------------------------------------------------------

    def work(self, work_id: UUID | str) -> Lifecycle:
        """The lifecycle instance of a work, with its whole history (in a stored graph a
        detached copy: drive the work through the graph).

        Raises:
            UnknownWork: no such work (never enqueued, or removed by a policy or pruning).
        """
        work = self._repo.load(work_id_of(work_id))
        if work is None:
            raise UnknownWork(work_id, self.name)
        return work

    def info(self, work_id: UUID | str) -> WorkInfo | None:
        """The work's ``WorkInfo``, or ``None`` if it is not (or no longer) in the graph."""
        return self._read(_Rules.info, work_id_of(work_id))

    def work_infos(self, query: WorkQuery) -> list[WorkInfo]:
        """``getWorkInfos(WorkQuery)`` (§10.5), oldest first."""
        if not isinstance(query, WorkQuery):
            msg = f"work_infos takes a WorkQuery, got {type(query).__name__}."
            raise WorkGraphError(msg)
        return self._read(_Rules.infos, query)

    def infos_by_tag(self, tag: str) -> list[WorkInfo]:
        """``getWorkInfosByTag``."""
        return self._read(_Rules.infos, WorkQuery(tags=[tag]))

    def infos_for_unique_work(self, name: str) -> list[WorkInfo]:
        """``getWorkInfosForUniqueWork``."""
        return self._read(_Rules.infos, WorkQuery(unique_work_names=[_name(name)]))

    def prerequisites(self, work_id: UUID | str) -> list[UUID]:
        """The direct prerequisites of a work."""
        return self._read(_Rules.prerequisites, work_id_of(work_id))

    def input_for(self, work_id: UUID | str) -> dict[str, Any]:
        """The input its worker receives: its own, then each prerequisite's output, merged
        by its input merger (§5.4). Periodic work gets its own input only.

        Raises:
            ValueError: the array merger met values of different types.
        """
        return self._read(_Rules.input_for, work_id_of(work_id))

    def due(self, now: datetime | None = None, *, limit: int | None = None) -> list[UUID]:
        """The ENQUEUED works whose ``next_schedule_time`` has come at ``now`` (default: the
        graph's clock), earliest first, constraints not considered: what a runner polls.
        Answered from an index, so its cost does not grow with the graph."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            msg = f"limit must be a non-negative int or None, got {limit!r}."
            raise WorkGraphError(msg)
        moment = self.now() if now is None else _aware(now)
        return self._read(_Rules.due, moment, limit)

    def runnable(self, conditions: DeviceConditions | None = None) -> list[UUID]:
        """Ids that ``start`` would accept now (due, constraints met), earliest first."""
        return self._read(_Rules.runnable, self.now(), conditions)

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot(self) -> GraphSnapshot:
        """The whole graph as a JSON-round-tripping pydantic model."""
        return self._repo.snapshot()

    @classmethod
    def restore(
        cls, snapshot: GraphSnapshot | dict[str, Any] | str, *, clock: Clock | None = None
    ) -> WorkGraph:
        """Rebuild an in-memory graph from :meth:`snapshot`.

        Raises:
            SnapshotError: the snapshot is malformed or names an unknown work.
        """
        try:
            if isinstance(snapshot, str):
                snapshot = GraphSnapshot.model_validate_json(snapshot)
            elif not isinstance(snapshot, GraphSnapshot):
                snapshot = GraphSnapshot.model_validate(snapshot)
        except ValidationError as exc:
            msg = f"Not a WorkGraph snapshot: {exc.error_count()} error(s): {exc.errors()[0]}"
            raise SnapshotError(msg) from None
        known = {s.context["id"] for s in snapshot.works if s.context}
        named = [i for ids in snapshot.names.values() for i in ids]
        edges = [i for k, v in snapshot.prerequisites.items() for i in (k, *v)]
        unknown = sorted({str(i) for i in [*named, *edges]} - {str(k) for k in known})
        if unknown:
            msg = f"Graph snapshot names works it does not hold: {', '.join(unknown)}."
            raise SnapshotError(msg)
        graph = cls(clock=clock)
        graph._repo = MemoryRepo.restore(snapshot, clock)
        return graph


class _Rules:
    """WorkManager's graph rules, applied to one transaction's view of a graph."""

    def __init__(self, tx: GraphTx, graph: WorkGraph) -> None:
        self.tx = tx
        self.clock = graph.clock
        self.graph = graph.name

    # -- reading -----------------------------------------------------------------------------

    def get(self, work_id: UUID) -> Lifecycle:
        work = self.tx.get(work_id)
        if work is None:
            raise UnknownWork(work_id, self.graph)
        return work

    def state(self, work_id: UUID) -> WorkState:
        return state_of(self.get(work_id))

    def info(self, work_id: UUID) -> WorkInfo | None:
        work = self.tx.get(work_id)
        if work is None:
            return None
        info: WorkInfo = work.info()  # type: ignore[attr-defined]
        progress = self.tx.progress(work_id)
        return info.model_copy(update={"progress": progress}) if progress else info

    def infos(self, query: WorkQuery) -> list[WorkInfo]:
        return [info for i in self.tx.select(query) if (info := self.info(i)) is not None]

    def prerequisites(self, work_id: UUID) -> list[UUID]:
        self.get(work_id)
        return self.tx.prerequisites(work_id)

    def input_for(self, work_id: UUID) -> dict[str, Any]:
        work = self.get(work_id)
        spec = work.context
        if isinstance(work, PeriodicWork):
            return dict(spec.input)
        outputs = [self.get(p).context.output for p in self.tx.prerequisites(work_id)]
        return merge_inputs(spec.input_merger, [spec.input, *outputs])

    def due(self, now: datetime, limit: int | None) -> list[UUID]:
        return self.tx.due(now, limit)

    def runnable(self, now: datetime, conditions: DeviceConditions | None) -> list[UUID]:
        return [
            work_id
            for work_id in self.tx.due(now, None)
            if self.get(work_id).explain("start", conditions=conditions).allowed
        ]

    # -- enqueuing ---------------------------------------------------------------------------

    def check_new(self, ids: Iterable[UUID]) -> None:
        taken = [str(i) for i in ids if self.tx.get(i) is not None]
        if taken:
            msg = f"Work {', '.join(taken)} is already enqueued; build a new WorkRequest."
            raise WorkGraphError(msg)

    def unfinished_works(self) -> Iterator[Lifecycle]:
        """Every unfinished work, loaded one by one as the caller iterates (V13 reads them
        only when the enqueue holds a work with content-URI triggers)."""
        for work_id in self.tx.select(WorkQuery(states=UNFINISHED)):
            work = self.tx.get(work_id)
            if work is not None:
                yield work

    def enqueue(self, requests: Iterable[WorkRequest | PeriodicWorkRequest]) -> EnqueueResult:
        requests = list(requests)
        self.check_new(r.id for r in requests)
        check_content_uri_trigger_limit(self.unfinished_works(), requests)
        for request in requests:
            self.insert(request, [], None)
        return EnqueueResult(enqueued=tuple(r.id for r in requests))

    def enqueue_steps(self, steps: list[WorkContinuation]) -> EnqueueResult:
        self.check_new(i for step in steps for i in step.ids)
        requests = [r for step in steps for r in step.requests]
        check_content_uri_trigger_limit(self.unfinished_works(), requests)
        stored: list[UUID] = []
        skipped: list[UUID] = []
        reasons: list[str] = []
        for step in steps:
            prerequisites = list(dict.fromkeys(i for parent in step.parents for i in parent.ids))
            reason = None
            if step.name is not None and not step.parents and step.policy is not None:
                applied = self.apply_policy(step.name, step.policy)
                if applied is None:
                    reason = (
                        f"Unique work {step.name!r} has ENQUEUED or RUNNING work; KEEP stores "
                        "nothing"
                    )
                prerequisites = applied or []
            else:
                missing = [p for p in prerequisites if self.tx.get(p) is None]
                if missing:  # §10.3: deleted meanwhile (REPLACE, pruning): not an error
                    reason = f"Prerequisite {missing[0]} doesn't exist; not enqueuing"
            if reason is not None:
                skipped.extend(step.ids)
                reasons.append(reason)
                continue
            for request in step.requests:
                self.insert(request, prerequisites, step.name)
            stored.extend(step.ids)
        return EnqueueResult(
            enqueued=tuple(stored), not_enqueued=tuple(skipped), reasons=tuple(reasons)
        )

    def enqueue_unique_periodic(
        self, name: str, policy: ExistingPeriodicWorkPolicy, request: PeriodicWorkRequest
    ) -> EnqueueResult:
        self.check_new([request.id])
        check_content_uri_trigger_limit(self.unfinished_works(), [request], policy)
        if policy is ExistingPeriodicWorkPolicy.UPDATE:
            return self.update_periodic(name, request)
        mapped = (
            ExistingWorkPolicy.KEEP
            if policy is ExistingPeriodicWorkPolicy.KEEP
            else ExistingWorkPolicy.REPLACE
        )
        if self.apply_policy(name, mapped) is None:
            reason = f"Unique work {name!r} has ENQUEUED or RUNNING work; KEEP stores nothing"
            return EnqueueResult(not_enqueued=(request.id,), reasons=(reason,))
        self.insert(request, [], name)
        return EnqueueResult(enqueued=(request.id,))

    def update_periodic(self, name: str, request: PeriodicWorkRequest) -> EnqueueResult:
        named = self.tx.named(name)
        if not named:
            self.insert(request, [], name)
            return EnqueueResult(enqueued=(request.id,))
        if len(named) > 1:
            msg = "Can't apply UPDATE policy to the chains of work."
            raise WorkGraphError(msg)
        existing = self.get(named[0])
        if not isinstance(existing, PeriodicWork):
            msg = (
                "Can't update OneTimeWorker to Periodic Worker. Update operation must preserve "
                "worker's type."
            )
            raise WorkGraphError(msg)
        if existing.state == "cancelled":
            self.tx.delete(named)
            self.insert(request, [], name)
            return EnqueueResult(enqueued=(request.id,))
        self.apply_update(named[0], request)
        reason = f"Unique work {name!r} updated in place (work {named[0]}, UPDATE)"
        return EnqueueResult(not_enqueued=(request.id,), reasons=(reason,))

    def apply_policy(self, name: str, policy: ExistingWorkPolicy) -> list[UUID] | None:
        """Apply a unique-work policy; the new root's prerequisites, or None to keep (§6.1)."""
        named = self.tx.named(name)
        if not named:
            return []
        states = {self.state(i) for i in named}
        if policy is ExistingWorkPolicy.KEEP and states & {WorkState.ENQUEUED, WorkState.RUNNING}:
            return None
        if policy in (ExistingWorkPolicy.APPEND, ExistingWorkPolicy.APPEND_OR_REPLACE):
            if any(isinstance(self.get(i), PeriodicWork) for i in named):
                msg = f"Unique work {name!r} holds periodic work: cannot chain onto periodic work."
                raise WorkGraphError(msg)
            leaves = self.tx.leaves(name)
            poisoned = {self.state(i) for i in leaves} & {WorkState.FAILED, WorkState.CANCELLED}
            if policy is ExistingWorkPolicy.APPEND or not poisoned:
                return leaves
            self.tx.delete(named)
            return []
        for work_id in named:  # REPLACE, or KEEP with nothing enqueued or running
            if self.state(work_id) in UNFINISHED:
                self.cancel(work_id)
        self.tx.delete(named)
        return []

    def insert(
        self,
        request: WorkRequest | PeriodicWorkRequest,
        prerequisites: list[UUID],
        name: str | None,
    ) -> None:
        fields = request.model_dump()
        work: Lifecycle
        if isinstance(request, PeriodicWorkRequest):
            work = PeriodicWork(clock=self.clock, **fields)
        elif prerequisites:
            states = {}
            for prerequisite in prerequisites:  # rule E reads them: a change must conflict
                self.tx.lock(prerequisite)
                states[prerequisite] = self.state(prerequisite)
            work = ChainedWork(clock=self.clock, prerequisites=states, **fields)
        else:
            work = OneTimeWork(clock=self.clock, **fields)
        work.context.graph = self.graph  # only the graph sets it (callers' data may not)
        self.tx.add(work, prerequisites, name)
        if request.worker == JOIN_WORKER and work.state == "enqueued":
            self.complete_join(request.id)

    # -- driving -----------------------------------------------------------------------------

    def fire(self, work_id: UUID, event: str, *args: Any, **data: Any) -> None:
        self.tx.touch(work_id).send(event, *args, **data)

    def start(self, work_id: UUID, conditions: DeviceConditions | None) -> None:
        work = self.get(work_id)
        if work.state == "enqueued" and not isinstance(work, PeriodicWork):
            try:
                self.input_for(work_id)
            except ValueError:
                self.instantiation_failed(work_id)
                return
        self.fire(work_id, "start", conditions=conditions)

    def finish(self, work_id: UUID, result: WorkResult) -> None:
        self.fire(work_id, "finish", result)
        self.propagate(work_id)
        self.drop_progress(work_id)

    def stop(self, work_id: UUID, reason: Any) -> None:
        self.fire(work_id, "stop", reason=reason)

    def instantiation_failed(self, work_id: UUID) -> None:
        self.fire(work_id, "instantiation_failed")
        self.propagate(work_id)
        self.drop_progress(work_id)

    def drop_progress(self, work_id: UUID) -> None:
        """A handled result deletes the progress ([ww] ``onWorkFinished``)."""
        if self.tx.progress(work_id):
            self.tx.set_progress(work_id, None)

    def set_progress(self, work_id: UUID, data: dict[str, Any]) -> tuple[bool, WorkState]:
        state = self.state(work_id)
        if state is not WorkState.RUNNING:
            return False, state
        self.tx.set_progress(work_id, data)
        return True, state

    def cancel(self, work_id: UUID) -> None:
        if self.state(work_id) in UNFINISHED:
            self.fire(work_id, "cancel")
        self.cascade(work_id, "prerequisite_cancelled")

    def cancel_where(self, query: WorkQuery) -> None:
        for work_id in self.tx.select(query):
            work = self.tx.get(work_id)
            if work is not None and state_of(work) in UNFINISHED:
                self.cancel(work_id)

    def update(self, request: WorkRequest | PeriodicWorkRequest) -> str:
        work = self.get(request.id)
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
        self.apply_update(request.id, request)
        return (
            UpdateResult.APPLIED_FOR_NEXT_RUN if running else UpdateResult.APPLIED_IMMEDIATELY
        ).value

    def apply_update(self, work_id: UUID, request: WorkRequest | PeriodicWorkRequest) -> None:
        """The new request with the state's counters carried over (§10.2, the spec's own
        ``updated_by``); progress cleared unless the work is running."""
        work = self.tx.touch(work_id)
        owner = work.context.graph
        work.context = work.context.updated_by(request).model_copy(update={"graph": owner})
        if work.state != "running":
            self.drop_progress(work_id)

    def prune(self, cutoff: datetime | None) -> list[UUID]:
        doomed = []
        for work_id in self.tx.select(WorkQuery(states=FINISHED)):
            if any(self.state(d) in UNFINISHED for d in self.tx.dependents(work_id)):
                continue
            if cutoff is not None and not self.expired(work_id, cutoff):
                continue
            doomed.append(work_id)
        self.tx.delete(doomed)
        return doomed

    def expired(self, work_id: UUID, cutoff: datetime) -> bool:
        spec = self.get(work_id).context
        keep: timedelta = getattr(spec, "keep_results_for_at_least", timedelta(0))
        enqueued: datetime | None = spec.last_enqueue_time
        return enqueued is None or enqueued + keep < cutoff

    # -- propagation -------------------------------------------------------------------------

    def propagate(self, origin: UUID) -> None:
        state = self.state(origin)
        if state is WorkState.SUCCEEDED:
            self.unblock_from(origin)
        elif state is WorkState.FAILED:
            self.cascade(origin, "prerequisite_failed")
        elif state is WorkState.CANCELLED:
            self.cascade(origin, "prerequisite_cancelled")

    def unblock_from(self, origin: UUID) -> None:
        queue = deque([origin])
        while queue:
            done = queue.popleft()
            for dependent in self.tx.dependents(done):
                if self.state(dependent) is not WorkState.BLOCKED:
                    continue
                self.fire(dependent, "prerequisite_succeeded", prerequisite=done)
                work = self.get(dependent)
                if work.context.worker == JOIN_WORKER and work.state == "enqueued":
                    if self.complete_join(dependent):
                        queue.append(dependent)

    def complete_join(self, join_id: UUID) -> bool:
        """combine's hidden work completes itself with its merged input (§5.1)."""
        try:
            merged = self.input_for(join_id)
        except ValueError:
            self.fire(join_id, "instantiation_failed")
            self.cascade(join_id, "prerequisite_failed")
            return False
        self.fire(join_id, "start")
        self.fire(join_id, "succeed", output=merged)
        return True

    def cascade(self, origin: UUID, event: str) -> None:
        """C3/C4: every unfinished descendant, walking through finished ones (iteratively)."""
        stack = list(self.tx.dependents(origin))
        seen: set[UUID] = set()
        while stack:
            work_id = stack.pop()
            if work_id in seen:
                continue
            seen.add(work_id)
            if self.state(work_id) in UNFINISHED:
                self.fire(work_id, event, prerequisite=origin)
            stack.extend(self.tx.dependents(work_id))


# -- argument checks -------------------------------------------------------------------------


def _check_requests(requests: Iterable[object]) -> None:
    for request in requests:
        if not isinstance(request, WorkRequest | PeriodicWorkRequest):
            msg = (
                f"Expected a WorkRequest or PeriodicWorkRequest, got {request!r}; build one "
                "with WorkRequest(worker=...)."
            )
            raise WorkGraphError(msg)


def _name(name: object) -> str:
    if not isinstance(name, str):
        msg = f"A unique work name is a str, got {name!r}."
        raise WorkGraphError(msg)
    return name


E = TypeVar("E", ExistingWorkPolicy, ExistingPeriodicWorkPolicy)


def _policy(kind: type[E], value: object) -> E:
    try:
        return kind(value if isinstance(value, str) else repr(value))
    except ValueError:
        known = _POLICIES if kind is ExistingWorkPolicy else _PERIODIC_POLICIES
        msg = f"Unknown {kind.__name__} {value!r}; use one of {known}."
        raise WorkGraphError(msg) from None


def _aware(moment: object) -> datetime:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        msg = f"now must be an aware datetime, e.g. datetime.now(UTC); got {moment!r}."
        raise WorkGraphError(msg)
    return moment.astimezone(UTC)
