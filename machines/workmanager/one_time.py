"""One-time work: Android WorkManager's ``OneTimeWorkRequest`` without prerequisites.

Upstream state model: ``androidx.work.WorkInfo.State`` and ``WorkerWrapper`` at androidx commit
a9b06aaf (spec ``workmanager.md`` §2, rows W1-W11). ENQUEUED -> RUNNING when constraints are met
and the initial delay (or, after a retry, the backoff) has elapsed; RUNNING -> SUCCEEDED /
FAILED by the worker's result, or back to ENQUEUED on retry or when the system stops it;
CANCELLED from any unfinished state. ``cancel()`` on a finished work is a no-op (W11).
"""

from __future__ import annotations

from typing import Any

from lifecyclekit import Lifecycle, State, registry

from ._lifecycle import WORK_PAYLOADS, WorkBehaviour, result_transitions, row
from .model import WorkSpec

__all__ = ["ONE_TIME_PROVENANCE", "OneTimeWork", "OneTimeWorkEffects"]


class OneTimeWorkEffects(WorkBehaviour):
    """Result effects of one-time (and chained) work."""

    def _succeeded(self, output: dict[str, Any]) -> None:
        """W2: the output is stored."""
        self.context.output = output

    def _failed(self, output: dict[str, Any] | None = None) -> None:
        """W3: the output is stored (W9: nothing to store)."""
        self.context.output = output or {}

    def _finished(self, outcome: str, output: dict[str, Any]) -> None:
        """``finish(result)``: the effect of the result's outcome."""
        if outcome == "success":
            self._succeeded(output)
        elif outcome == "failure":
            self._failed(output)
        else:
            self._retried()

    def is_success(self, outcome: str) -> bool:
        return outcome == "success"

    def is_failure(self, outcome: str) -> bool:
        return outcome == "failure"

    def is_retry(self, outcome: str) -> bool:
        return outcome == "retry"


_W2 = row("W2", "Result.success(out): output = out.", "worker")
_W3 = row("W3", "Result.failure(out): output = out; dependents fail (C3).", "worker")
_W4 = row(
    "W4", "Result.retry(): lastEnqueueTime = now, runAttemptCount kept; next run by the backoff "
    "formula.", "worker"
)  # fmt: skip

ONE_TIME_PROVENANCE = {
    ("start", "enqueued", "running"): row(
        "W1", "Guard: constraints met and now >= nextScheduleTime (expedited work with "
        "DROP_WORK_REQUEST also needs quota, §10.4); runAttemptCount += 1, stopReason = "
        "NOT_STOPPED ([ww] trySetRunning).", "system"
    ),
    ("succeed", "running", "succeeded"): _W2,
    ("finish", "running", "succeeded"): _W2,
    ("fail", "running", "failed"): _W3,
    ("finish", "running", "failed"): _W3,
    ("retry", "running", "enqueued"): _W4,
    ("finish", "running", "enqueued"): _W4,
    ("stop", "running", "enqueued"): row(
        "W5", "stop(reason) by the system: ENQUEUED, stopReason = reason, runAttemptCount and "
        "lastEnqueueTime kept (W6: process death, reason UNKNOWN).", "system"
    ),
    ("cancel", "enqueued", "cancelled"): row(
        "W7", "cancel: setCancelledState, stopReason = NOT_STOPPED.", "app"
    ),
    ("cancel", "running", "cancelled"): row(
        "W8", "cancel: stopReason = STOP_REASON_CANCELLED_BY_APP (1).", "app"
    ),
    ("instantiation_failed", "enqueued", "failed"): row(
        "W9", "The worker or input merger cannot be created: FAILED before trySetRunning, "
        "runAttemptCount not incremented.", "system"
    ),
}  # fmt: skip


@registry.register("one-time-work")
class OneTimeWork(OneTimeWorkEffects, Lifecycle[WorkSpec]):
    """A one-time work request, as WorkManager runs it.

    ``registry.create("one-time-work", worker="Upload", input={...}, constraints=...,
    initial_delay=..., backoff_policy="LINEAR", backoff_delay=..., clock=...)``.
    """

    Context = WorkSpec

    enqueued = State(value="ENQUEUED", initial=True)
    running = State(value="RUNNING")
    succeeded = State(value="SUCCEEDED", final=True)
    failed = State(value="FAILED", final=True)
    cancelled = State(value="CANCELLED", final=True)

    start = enqueued.to(running, cond=["constraints_met", "is_due", "quota_allows"], on="_began")
    succeed = running.to(succeeded, on="_succeeded")
    fail = running.to(failed, on="_failed")
    retry = running.to(enqueued, on="_retried")
    finish = result_transitions(running, succeeded, failed, enqueued)
    stop = running.to(enqueued, on="_stopped")
    cancel = enqueued.to(cancelled, on="_cancelled") | running.to(cancelled, on="_cancelled")
    instantiation_failed = enqueued.to(failed, on="_failed")

    payloads = WORK_PAYLOADS
    provenance = ONE_TIME_PROVENANCE
    noop_when_finished = frozenset({"cancel"})

    def when_created(self) -> None:
        """A new work is enqueued now (spec §2.1), after V6."""
        if self.context.last_enqueue_time is None and self.state == "enqueued":
            self._enqueue_checks()
            self.context.last_enqueue_time = self.now()  # enqueue (spec §2.1)
