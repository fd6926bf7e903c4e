"""Chained work: a one-time work that waits on prerequisites (spec ``workmanager.md`` §5).

It starts BLOCKED while a prerequisite is unfinished; ENQUEUED when all already succeeded;
FAILED or CANCELLED at once when one already failed or was cancelled (rule E, [er]
``enqueueWorkWithPrerequisites``). It leaves BLOCKED for ENQUEUED only when every prerequisite
SUCCEEDED (C1) and becomes FAILED / CANCELLED when a prerequisite fails / is cancelled (C3,
C4). One work cannot see its neighbours: :class:`~lifecyclekit.machines.WorkGraph` tells it.
"""

from __future__ import annotations

from uuid import UUID

from lifecyclekit import Because, Lifecycle, State, registry

from ._lifecycle import WORK_PAYLOADS, PrerequisitePayload, result_transitions, row
from .model import WorkSpec, WorkState
from .one_time import ONE_TIME_PROVENANCE, OneTimeWorkEffects

__all__ = ["ChainedWork", "initial_state_for"]


def initial_state_for(prerequisites: dict[UUID, WorkState]) -> WorkState:
    """Rule E (spec §5.2) over the direct prerequisites' states."""
    states = set(prerequisites.values())
    if states <= {WorkState.SUCCEEDED}:
        return WorkState.ENQUEUED
    if WorkState.FAILED in states:
        return WorkState.FAILED
    if WorkState.CANCELLED in states:
        return WorkState.CANCELLED
    return WorkState.BLOCKED


_C3_UNFINISHED = row("C3", "Any non-CANCELLED unfinished dependent fails.", "graph")


@registry.register("chained-work")
class ChainedWork(OneTimeWorkEffects, Lifecycle[WorkSpec]):
    """A one-time work with prerequisites: ``prerequisites={id: state, ...}`` at creation."""

    Context = WorkSpec

    blocked = State(value="BLOCKED", initial=True)
    enqueued = State(value="ENQUEUED")
    running = State(value="RUNNING")
    succeeded = State(value="SUCCEEDED", final=True)
    failed = State(value="FAILED", final=True)
    cancelled = State(value="CANCELLED", final=True)

    prerequisite_succeeded = blocked.to(
        enqueued, cond="others_succeeded", on="_unblocked"
    ) | blocked.to.itself(on="_note_success")  # type: ignore[no-untyped-call]
    prerequisite_failed = (
        blocked.to(failed, on="_note_failure")
        | enqueued.to(failed, on="_note_failure")
        | running.to(failed, on="_note_failure")
    )
    prerequisite_cancelled = (
        blocked.to(cancelled, on="_note_cancel")
        | enqueued.to(cancelled, on="_note_cancel")
        | running.to(cancelled, on="_note_cancel")
    )
    start = enqueued.to(running, cond=["constraints_met", "is_due", "quota_allows"], on="_began")
    succeed = running.to(succeeded, on="_succeeded")
    fail = running.to(failed, on="_failed")
    retry = running.to(enqueued, on="_retried")
    finish = result_transitions(running, succeeded, failed, enqueued)
    stop = running.to(enqueued, on="_stopped")
    cancel = (
        blocked.to(cancelled, on="_cancelled")
        | enqueued.to(cancelled, on="_cancelled")
        | running.to(cancelled, on="_cancelled")
    )
    instantiation_failed = enqueued.to(failed, on="_failed")

    payloads = WORK_PAYLOADS | dict.fromkeys(
        ("prerequisite_succeeded", "prerequisite_failed", "prerequisite_cancelled"),
        PrerequisitePayload,
    )
    provenance = {
        **ONE_TIME_PROVENANCE,
        ("prerequisite_succeeded", "blocked", "enqueued"): row(
            "C1", "A prerequisite SUCCEEDED and now all are: ENQUEUED, lastEnqueueTime = now "
            "([ww] setSucceeded, hasCompletedAllPrerequisites).", "graph"
        ),
        ("prerequisite_succeeded", "blocked", "blocked"): row(
            "C2", "A prerequisite SUCCEEDED but others are not: no change.", "graph"
        ),
        ("prerequisite_failed", "blocked", "failed"): row(
            "C3", "A transitive prerequisite FAILED ([ww] iterativelyFailWorkAndDependents).",
            "graph"
        ),
        ("prerequisite_failed", "enqueued", "failed"): _C3_UNFINISHED,
        ("prerequisite_failed", "running", "failed"): _C3_UNFINISHED,
        ("prerequisite_cancelled", "blocked", "cancelled"): row(
            "C4", "A transitive prerequisite was cancelled ([cwr] "
            "iterativelyCancelWorkAndDependents).", "graph"
        ),
        ("prerequisite_cancelled", "enqueued", "cancelled"): row(
            "C4", "Unfinished dependents are cancelled.", "graph"
        ),
        ("prerequisite_cancelled", "running", "cancelled"): row(
            "C4", "A RUNNING dependent becomes CANCELLED; its later result is ignored.", "graph"
        ),
        ("cancel", "blocked", "cancelled"): row("C4", "The work itself is cancelled.", "app"),
    }  # fmt: skip
    noop_when_finished = frozenset({"cancel", "prerequisite_failed", "prerequisite_cancelled"})

    @classmethod
    def initial_state_for(cls, context: WorkSpec) -> State:
        """Rule E (spec §5.2): a new work starts in the state its prerequisites imply."""
        return cls.states_map[initial_state_for(context.prerequisites)]

    def when_created(self) -> None:
        """V6 at enqueue, even when blocked (its delays count from unblocking, later
        still); an ENQUEUED work is enqueued now (spec §2.1)."""
        self._enqueue_checks()
        if self.state == "enqueued" and self.context.last_enqueue_time is None:
            self.context.last_enqueue_time = self.now()

    # -- guards and effects ------------------------------------------------------------------

    def others_succeeded(self, prerequisite: UUID) -> Because:
        """C1: every other direct prerequisite has SUCCEEDED."""
        waiting = sorted(
            str(pid)
            for pid, state in self.context.prerequisites.items()
            if pid != prerequisite and state != WorkState.SUCCEEDED
        )
        return Because(not waiting, f"still waiting for {', '.join(waiting)}" if waiting else "")

    def _set_prerequisite(self, prerequisite: UUID, state: WorkState) -> None:
        if prerequisite in self.context.prerequisites:
            self.context.prerequisites = {**self.context.prerequisites, prerequisite: state}

    def _note_success(self, prerequisite: UUID) -> None:
        self._set_prerequisite(prerequisite, WorkState.SUCCEEDED)

    def _unblocked(self, prerequisite: UUID) -> None:
        self._note_success(prerequisite)
        self.context.last_enqueue_time = self.now()

    def _note_failure(self, prerequisite: UUID) -> None:
        self._set_prerequisite(prerequisite, WorkState.FAILED)

    def _note_cancel(self, prerequisite: UUID) -> None:
        self._set_prerequisite(prerequisite, WorkState.CANCELLED)
