"""Building chains: ``WorkContinuation`` (``then``, ``combine``), the graph's errors and snapshot.

A continuation is a chain under construction; nothing is stored until ``enqueue()``, which
hands the whole continuation to its :class:`~lifecyclekit.machines.WorkGraph`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from lifecyclekit import LifecycleError, Snapshot

from .model import ExistingWorkPolicy, PeriodicWorkRequest, WorkRequest

if TYPE_CHECKING:
    from .graph import WorkGraph

__all__ = ["JOIN_WORKER", "GraphSnapshot", "UnknownWork", "WorkContinuation", "WorkGraphError"]

JOIN_WORKER = "androidx.work.impl.workers.CombineContinuationsWorker"


class WorkGraphError(LifecycleError, ValueError):
    """A graph operation WorkManager refuses: a cycle, periodic work in a chain, ..."""


class UnknownWork(LifecycleError, LookupError):
    """No work with that id is in the graph."""

    def __init__(self, work_id: object) -> None:
        super().__init__(
            f"No work {work_id} in this graph. Ids are the WorkRequest ids you enqueued; find "
            "them with infos_by_tag(tag) or infos_for_unique_work(name)."
        )

    def __str__(self) -> str:
        return str(self.args[0])


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
        join: bool = False,
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
        self.join = join
        self.enqueued = False

    @property
    def ids(self) -> tuple[UUID, ...]:
        """The ids of this step's works."""
        return tuple(r.id for r in self.requests)

    def then(self, *requests: WorkRequest) -> WorkContinuation:
        """Works that run after every work of this step succeeded (``then([])`` is a no-op)."""
        if not requests:
            return self
        return WorkContinuation(self.graph, requests, (self,), name=self.name)

    def enqueue(self) -> WorkContinuation:
        """Enqueue this continuation and every parent not enqueued yet."""
        self.graph._enqueue_continuation(self)
        return self

    @staticmethod
    def combine(*continuations: WorkContinuation) -> WorkContinuation:
        """Join continuations: a hidden work (ArrayCreatingInputMerger) after all of them."""
        if not continuations:
            msg = "combine needs at least one WorkContinuation."
            raise WorkGraphError(msg)
        graph = continuations[0].graph
        if any(c.graph is not graph for c in continuations):
            msg = "combine needs continuations of the same WorkGraph."
            raise WorkGraphError(msg)
        join = WorkRequest(worker=JOIN_WORKER, input_merger="array")
        return WorkContinuation(graph, [join], continuations, join=True)


class GraphSnapshot(BaseModel):
    """A whole graph as data: every work's snapshot, the edges, unique names, join works."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    works: tuple[Snapshot, ...]
    prerequisites: dict[UUID, tuple[UUID, ...]]
    names: dict[str, tuple[UUID, ...]]
    joins: tuple[UUID, ...]
