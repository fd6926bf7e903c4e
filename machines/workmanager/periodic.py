"""Periodic work: Android WorkManager's ``PeriodicWorkRequest``.

Upstream state model: "The normal lifecycle of a PeriodicWorkRequest is ENQUEUED -> RUNNING ->
ENQUEUED ... It can only terminate if explicitly cancelled" (``PeriodicWorkRequest.kt`` at
androidx commit a9b06aaf; spec ``workmanager.md`` §4, rows P1-P10). After every run, whatever
its result, the work goes back to ENQUEUED for the next period; a retry goes back with backoff.
SUCCEEDED and FAILED are not states of this lifecycle; CANCELLED is its only final state.

A schedule override (``next_schedule_time_override``, §4.3) sets the next run time outright
(§3.3 branch 1); the end of the run it scheduled clears it (P2-P4, and a stop that backs off),
unless an update wrote a newer override while the work ran.
"""

from __future__ import annotations

from lifecyclekit import Lifecycle, State, registry

from ._lifecycle import WORK_PAYLOADS, WorkBehaviour, row
from .model import PeriodicWorkSpec, StopReason, WorkState

__all__ = ["PeriodicWork"]

_RESET = (
    "[ww] resetPeriodic: lastEnqueueTime = now, runAttemptCount = 0, periodCount += 1, "
    "override cleared unless newer; "
)


@registry.register("periodic-work")
class PeriodicWork(WorkBehaviour, Lifecycle[PeriodicWorkSpec]):
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
            "unchanged, override cleared unless newer; next run by backoff.", "worker"
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

    def when_created(self) -> None:
        """A new work is enqueued now (spec §4.1), after V6."""
        if self.context.last_enqueue_time is None:
            self._enqueue_checks()
            self.context.last_enqueue_time = self.now()  # enqueue (spec §4.1)

    def _began(self) -> None:
        """P1: also notes the override's generation, which the run's end compares."""
        super()._began()
        self.context.override_generation_at_start = (
            self.context.next_schedule_time_override_generation
        )

    def _period_done(self, source: State) -> None:
        """P2/P3/P10: the period is over, whatever the result; output is never stored."""
        spec = self.context
        # P10 fails before any run starts: WorkerWrapper's generation is the current one.
        ran = source.value == WorkState.RUNNING
        self._clear_override(spec.override_generation_at_start if ran else None)
        spec.last_enqueue_time = self.now()
        spec.run_attempt_count = 0
        spec.period_count += 1
        spec.stop_reason = StopReason.NOT_STOPPED

    def _retried(self) -> None:
        """P4: as W4, and the override is cleared unless an update wrote a newer one."""
        self._clear_override(self.context.override_generation_at_start)
        super()._retried()

    def _stopped(self, reason: StopReason | int) -> None:
        """P5: the override stays ("don't change any override time", [ww]
        ``resetWorkerStatus``), unless backoff applies to interruptions: that path is
        ``reschedule``, which clears it like a retry."""
        if self.context.backoff_on_system_interruptions:
            self._clear_override(self.context.override_generation_at_start)
        super()._stopped(reason)

    def _clear_override(self, generation: int | None) -> None:
        """[ww] ``resetWorkSpecNextScheduleTimeOverride(id, generation)``: clear the override
        only if its generation is still the one the run started with (``None``: any)."""
        spec = self.context
        if generation is None or spec.next_schedule_time_override_generation == generation:
            spec.next_schedule_time_override = None

    def _finished(self, outcome: str, source: State) -> None:
        if outcome == "retry":
            self._retried()
        else:
            self._period_done(source)
