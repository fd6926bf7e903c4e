"""What a graph is asked and answers: ``WorkContinuation``, ``WorkQuery``, ``EnqueueResult``,
the graph's errors and its snapshot.

A continuation is a chain under construction; nothing is stored until ``enqueue()``, which
hands the whole continuation to its :class:`~lifecyclekit.machines.WorkGraph` and marks it
enqueued only once the graph's transaction has committed (a re-run attempt sees exactly
what the first one saw).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lifecyclekit import LifecycleError, PayloadError, Snapshot

from .model import ExistingWorkPolicy, PeriodicWorkRequest, WorkInfo, WorkRequest, WorkState

if TYPE_CHECKING:
    from .graph import WorkGraph

__all__ = [
    "JOIN_WORKER",
    "EnqueueResult",
    "GraphSnapshot",
    "UnknownWork",
    "WorkContinuation",
    "WorkGraphError",
    "WorkQuery",
    "owned_by_graph",
    "work_id_of",
]

JOIN_WORKER = "androidx.work.impl.workers.CombineContinuationsWorker"
"""The worker of ``combine``'s hidden work: a work with it completes itself with its merged
input once its prerequisites succeeded (§5.1)."""


class WorkGraphError(LifecycleError, ValueError):
    """A graph operation WorkManager refuses: a cycle, periodic work in a chain, ..."""


class UnknownWork(LifecycleError, LookupError):
    """No work with that id is in the graph."""

    def __init__(self, work_id: object, graph: str = "") -> None:
        where = f"graph {graph!r}" if graph else "this graph"
        super().__init__(
            f"No work {work_id} in {where}. Ids are the WorkRequest ids you enqueued; find "
            "them with infos_by_tag(tag), infos_for_unique_work(name) or work_infos(query)."
        )

    def __str__(self) -> str:
        return str(self.args[0])


def work_id_of(value: object) -> UUID:
    """A work id from a ``UUID`` or its string form (``str(request.id)``).

    Raises:
        WorkGraphError: ``value`` is neither (the message shows the type and the value).
    """
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    msg = (
        f"Work ids are the UUIDs of WorkRequests (request.id) or their string form, got "
        f"{type(value).__name__} {value!r}."
    )
    raise WorkGraphError(msg)


class WorkContinuation:
    """A chain under construction (``WorkContinuation``): ``then(...)``, ``enqueue()``."""

    def __init__(
        self,
        graph: WorkGraph,
        requests: Sequence[WorkRequest],
        parents: Sequence[WorkContinuation] = (),
        *,
        name: str | None = None,
        policy: ExistingWorkPolicy | None = None,
    ) -> None:
        for request in requests:
            if isinstance(request, PeriodicWorkRequest) or not isinstance(request, WorkRequest):
                msg = (
                    f"Only one-time WorkRequests can be chained, got {type(request).__name__}: "
                    "periodic work cannot be part of a chain or graph of work."
                )
                raise WorkGraphError(msg)
        self.graph = graph
        self.requests = tuple(requests)
        self.parents = tuple(parents)
        self.name = name
        self.policy = policy
        self.enqueued = False
        """Set once ``enqueue()`` (of this or a later step) has committed."""

    @property
    def ids(self) -> tuple[UUID, ...]:
        """The ids of this step's works."""
        return tuple(r.id for r in self.requests)

    def then(self, *requests: WorkRequest) -> WorkContinuation:
        """Works that run after every work of this step succeeded (``then([])`` is a no-op)."""
        if not requests:
            return self
        return WorkContinuation(self.graph, requests, (self,), name=self.name)

    def enqueue(self) -> EnqueueResult:
        """Enqueue this continuation and every parent not enqueued yet, in one transaction.

        Returns:
            What was stored, and why anything was not (KEEP, or a prerequisite deleted
            meanwhile, §10.3).
        """
        return self.graph._enqueue_continuation(self)

    def lineage(self) -> list[WorkContinuation]:
        """This step and every ancestor, parents first, each once (iterative)."""
        out: list[WorkContinuation] = []
        seen: set[int] = set()
        stack: list[tuple[WorkContinuation, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in seen:
                continue
            if expanded:
                seen.add(id(node))
                out.append(node)
                continue
            stack.append((node, True))
            stack.extend((parent, False) for parent in reversed(node.parents))
        return out

    def work_infos(self) -> list[WorkInfo]:
        """``getWorkInfos()``: the works of this continuation and of its parents, combine's
        hidden works included, parents first (§10.5); works not (or no longer) stored are
        left out."""
        ids = [i for step in self.lineage() for i in step.ids]
        return self.graph.work_infos(WorkQuery(ids=ids)) if ids else []

    @staticmethod
    def combine(*continuations: WorkContinuation) -> WorkContinuation:
        """Join continuations: a hidden work (ArrayCreatingInputMerger) after all of them."""
        if not continuations:
            msg = "combine needs at least one WorkContinuation."
            raise WorkGraphError(msg)
        if not all(isinstance(c, WorkContinuation) for c in continuations):
            kinds = sorted({type(c).__name__ for c in continuations})
            msg = f"combine takes WorkContinuations, got {', '.join(kinds)}."
            raise WorkGraphError(msg)
        graph = continuations[0].graph
        if any(c.graph is not graph for c in continuations):
            msg = "combine needs continuations of the same WorkGraph."
            raise WorkGraphError(msg)
        join = WorkRequest(worker=JOIN_WORKER, input_merger="array")
        return WorkContinuation(graph, [join], continuations)


_GRAPH_CALLS = {
    "start": "start({id})",
    "finish": "finish({id}, WorkResult.success(...))  # or .failure(...), .retry()",
    "succeed": "finish({id}, WorkResult.success(...))",
    "fail": "finish({id}, WorkResult.failure(...))",
    "retry": "finish({id}, WorkResult.retry())",
    "stop": "stop({id}, reason)",
    "cancel": "cancel({id})",
    "instantiation_failed": "instantiation_failed({id})",
}


def owned_by_graph(graph: str, work_id: UUID, event: str) -> str:
    """Why a work of ``graph`` refuses ``event`` from outside it, and what to call instead."""
    where = f"work {work_id} belongs to WorkGraph {graph!r}, which propagates its results"
    call = _GRAPH_CALLS.get(event)
    if call is not None:
        target = f"UUID('{work_id}')"
        graph_call = f"WorkGraph(store=open_store(url), name={graph!r})"
        return f"{where}; call {graph_call}.{call.format(id=target)}"
    if event.startswith("prerequisite_"):
        return f"{where}; the graph sends {event} itself when a prerequisite finishes"
    return f"{where}; drive it with the graph's {', '.join(sorted(_GRAPH_CALLS))}"


class EnqueueResult(BaseModel):
    """What an enqueue stored (WorkManager's ``Operation``, with its reasons).

    A continuation step whose prerequisite no longer exists stores nothing and says so
    (§10.3: "Prerequisite $id doesn't exist; not enqueuing"); neither is an error.
    """

    model_config = ConfigDict(frozen=True)

    enqueued: tuple[UUID, ...] = ()
    """The ids stored, in order."""
    not_enqueued: tuple[UUID, ...] = ()
    """The ids of requests not stored."""
    reasons: tuple[str, ...] = ()
    """Why each skipped step was skipped."""


_STATES = ", ".join(s.value for s in WorkState)
_QUERY = "WorkQuery"


class WorkQuery(BaseModel):
    """``WorkQuery`` (§10.5): ids, unique work names, tags and states.

    "Each component in a WorkQuery is AND-ed with the others. Each value in a component is
    OR-ed." At least one component must be given.

    Raises:
        PayloadError: no component, or a value of the wrong kind (states must be
            ``WorkState`` names).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ids: frozenset[UUID] = frozenset()
    unique_work_names: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    states: frozenset[WorkState] = frozenset()

    def __init__(
        self,
        *,
        ids: Iterable[UUID | str] = (),
        unique_work_names: Iterable[str] = (),
        tags: Iterable[str] = (),
        states: Iterable[WorkState | str] = (),
    ) -> None:
        data: dict[str, Any] = {
            "ids": _items(ids),
            "unique_work_names": _items(unique_work_names),
            "tags": _items(tags),
            "states": _items(states),
        }
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise PayloadError.from_validation_error(
                _QUERY, "context", exc, hint=f"States are {_STATES}."
            ) from None
        if not (self.ids or self.unique_work_names or self.tags or self.states):
            msg = "Must specify ids, uniqueNames, tags or states when building a WorkQuery"
            raise PayloadError(_QUERY, "context", [("", msg, data)])

    @field_validator("states", mode="before")
    @classmethod
    def _state_names(cls, value: Any) -> Any:
        return {WorkState(v.upper()) if isinstance(v, str) else v for v in value}

    def matches(self, info: WorkInfo, name: str | None) -> bool:
        """Whether a work (its info and unique name) is selected by this query."""
        return (
            (not self.ids or info.id in self.ids)
            and (not self.unique_work_names or name in self.unique_work_names)
            and (not self.tags or bool(self.tags & info.tags))
            and (not self.states or info.state in self.states)
        )


def _items(values: Any) -> Any:
    """A set of the values; a bare string is one value, not its characters."""
    if isinstance(values, str | bytes | UUID):
        return {values}
    try:
        return set(values)
    except TypeError:
        return values  # let pydantic say what is wrong with it


class GraphSnapshot(BaseModel):
    """A whole graph as data: every work's snapshot, the edges, unique names, join works and
    the progress of running works."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    works: tuple[Snapshot, ...]
    prerequisites: dict[UUID, tuple[UUID, ...]]
    names: dict[str, tuple[UUID, ...]]
    joins: tuple[UUID, ...]
    """Derived: the works whose worker is :data:`JOIN_WORKER` (kept for readers)."""
    progress: dict[UUID, dict[str, Any]] = Field(default_factory=dict)
