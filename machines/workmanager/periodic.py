"""Periodic work: Android WorkManager's ``PeriodicWorkRequest``.

Upstream state model: "The normal lifecycle of a PeriodicWorkRequest is ENQUEUED -> RUNNING ->
ENQUEUED ... It can only terminate if explicitly cancelled" (``PeriodicWorkRequest.kt`` at
androidx commit a9b06aaf; spec ``workmanager.md`` §4, rows P1-P10). After every run, whatever
its result, the work goes back to ENQUEUED for the next period; a retry goes back with backoff.
SUCCEEDED and FAILED are not states of this lifecycle; CANCELLED is its only final state.
"""

from __future__ import annotations

from typing import Any

from lifecyclekit import Lifecycle, State, registry

from ._lifecycle import WORK_PAYLOADS, WorkBehaviour, row
from .model import PeriodicWorkSpec, StopReason

__all__ = ["PeriodicWork"]

_RESET = "[ww] resetPeriodic: lastEnqueueTime = now, runAttemptCount = 0, periodCount += 1; "


@registry.register("periodic-work")
class PeriodicWork(WorkBehaviour, Lifecycle):
    """A periodic work request: ``repeat_interval`` (>= 15 min) and ``flex_interval``."""

    Context = PeriodicWorkSpec
    periodic = True

    enqueued = State(value="ENQUEUED", initial=True)
    running = State(value="RUNNING")
    cancelled = State(value="CANCELLED", final=True)

    start = enqueued.to(running, cond=["constraints_met", "is_due"], on="_began")
    succeed = running.to(enqueued, on="_period_done")
    fail = running.to(enqueued, on="_period_done")
    retry = running.to(enqueued, on="_retried")
    finish = running.to(enqueued, on="_finished")
    stop = running.to(enqueued, on="_stopped")
    cancel = enqueued.to(cancelled, on="_cancelled") | running.to(cancelled, on="_cancelled")
    instantiation_failed = enqueued.to.itself(on="_period_done")  # type: ignore[no-untyped-call]

    payloads = WORK_PAYLOADS
    provenance = {
        ("start", "enqueued", "running"): row(
            "P1", "Guard: now >= calculateNextRunTime() and constraints; runAttemptCount += 1.",
            "system",
        ),
        ("succeed", "running", "enqueued"): row(
            "P2", _RESET + "output not stored.", "worker"
        ),
        ("fail", "running", "enqueued"): row("P3", _RESET + "identical to P2.", "worker"),
        ("finish", "running", "enqueued"): row(
            "P2", _RESET + "P3 for failure; P4 (backoff) for retry.", "worker"
        ),
        ("retry", "running", "enqueued"): row(
            "P4", "[ww] reschedule: lastEnqueueTime = now, runAttemptCount kept, periodCount "
            "unchanged; next run by backoff.", "worker"
        ),
        ("stop", "running", "enqueued"): row(
            "P5", "As W5: periodCount, runAttemptCount, lastEnqueueTime kept; stopReason = "
            "reason (P6: process death, UNKNOWN).", "system"
        ),
        ("cancel", "enqueued", "cancelled"): row("P7", "cancel: stopReason = -256.", "app"),
        ("cancel", "running", "cancelled"): row("P8", "cancel: stopReason = 1.", "app"),
        ("instantiation_failed", "enqueued", "enqueued"): row(
            "P10", "[ww] onWorkFailed -> resetPeriodic (periodCount += 1): never FAILED.",
            "system",
        ),
    }  # fmt: skip
    noop_when_finished = frozenset({"cancel"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.context.last_enqueue_time is None:
            self.context.last_enqueue_time = self.now()  # enqueue (spec §4.1)

    def _period_done(self) -> None:
        """P2/P3/P10: the period is over, whatever the result; output is never stored."""
        spec = self.context
        spec.last_enqueue_time = self.now()
        spec.run_attempt_count = 0
        spec.period_count += 1
        spec.stop_reason = StopReason.NOT_STOPPED

    def _finished(self, outcome: str) -> None:
        if outcome == "retry":
            self._retried()
        else:
            self._period_done()
