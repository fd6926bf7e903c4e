"""Small lifecycles the framework tests drive (the shipped ones arrive with their issues)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lifecyclekit import Lifecycle, State


class FinishPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Literal["success", "failure"]
    exit_code: int = Field(default=0, ge=0, le=255)


class FailPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(min_length=1)


class TicketContext(BaseModel):
    ticket_id: str
    capacity: int = Field(default=1, ge=0)
    attempts: int = 0
    not_before: datetime | None = None
    outcome: str | None = None


class Ticket(Lifecycle):
    """queued -> running -> done | failed, retry back to queued, cancel while unfinished."""

    Context = TicketContext
    payloads = {"finish": FinishPayload, "fail": FailPayload}

    queued = State(initial=True, value="QUEUED")
    running = State(value="RUNNING")
    done = State(final=True, value="DONE")
    failed = State(final=True, value="FAILED")
    cancelled = State(final=True, value="CANCELLED")

    start = queued.to(running, cond=["has_capacity", "is_due"])
    finish = running.to(done)
    fail = running.to(failed)
    retry = running.to(queued)
    cancel = queued.to(cancelled) | running.to(cancelled)

    def has_capacity(self) -> bool:
        return bool(self.context.capacity > 0)

    def is_due(self) -> bool:
        not_before = self.context.not_before
        return not_before is None or self.now() >= not_before

    def on_enter_running(self) -> None:
        self.context.attempts += 1

    def on_finish(self, outcome: str) -> None:
        self.context.outcome = outcome

    def on_retry(self) -> None:
        self.context.not_before = self.now() + timedelta(seconds=30)


class Door(Lifecycle):
    """Two candidate transitions for one event, one cond and one unless guard."""

    closed = State(initial=True)
    open = State()
    locked = State()
    gone = State(final=True)

    push = closed.to(open, cond="is_unlatched") | closed.to(locked, unless="is_unlatched")
    pull = open.to(closed)
    unlock = locked.to(closed)
    remove = closed.to(gone) | open.to(gone) | locked.to(gone)

    latched = True

    def is_unlatched(self) -> bool:
        return not self.latched


class FixedClock:
    """A deterministic clock: starts at ``start`` and advances ``step`` per reading."""

    def __init__(
        self,
        start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
        step: timedelta = timedelta(seconds=1),
    ) -> None:
        self.current = start
        self.step = step

    def __call__(self) -> datetime:
        value = self.current
        self.current += self.step
        return value


class PluginDoor(Door):
    """Loaded through an entry point in the registry tests (registration names it)."""
