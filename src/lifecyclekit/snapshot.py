"""Transition records and snapshots: a lifecycle as data.

A :class:`Snapshot` is a versioned, JSON-round-tripping pydantic model of one lifecycle
instance (never the live machine, never pickle). :class:`TransitionRecord` is the one
record type that history, stores and listeners share.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from lifecyclekit.errors import SnapshotError, field_errors

__all__ = ["Snapshot", "TransitionRecord", "check_history", "coerce_snapshot"]


class TransitionRecord(BaseModel):
    """One fired transition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    """Position in the instance's history, from 1, without gaps."""
    event: str
    """The event id that fired the transition."""
    source: str
    """State id before the transition."""
    target: str
    """State id after the transition."""
    payload: dict[str, Any] | None = None
    """The validated payload in JSON form, or ``None`` for events without one."""
    at: AwareDatetime
    """When it fired, on the lifecycle's clock (or as reported, see ``recording``), in UTC."""
    inferred: bool = False
    """The transition was not seen but inferred (a missed intermediate state)."""

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value if value.utcoffset() == timedelta(0) else value.astimezone(UTC)


class Snapshot(BaseModel):
    """A lifecycle instance as data: enough to rebuild it exactly.

    Rebuild one with ``Lifecycle.restore(snapshot)`` or ``registry.restore(snapshot)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    machine: str
    """The registry name of the lifecycle (or ``module:QualName`` for unregistered ones)."""
    schema_version: int = Field(ge=1)
    """The lifecycle class's ``schema_version`` when the snapshot was taken."""
    state: str
    """The current state id."""
    context: dict[str, Any] | None = None
    """The context model in JSON form, or ``None`` for lifecycles without context."""
    history: tuple[TransitionRecord, ...] = ()
    revision: int = Field(default=0, ge=0)
    """How many transitions this instance has taken; stores use it for compare-and-set."""


def coerce_snapshot(snapshot: Snapshot | Mapping[str, Any] | str | bytes) -> Snapshot:
    """A :class:`Snapshot` from itself, its ``model_dump()`` or its JSON.

    Raises:
        SnapshotError: the data is not a snapshot.
    """
    if isinstance(snapshot, Snapshot):
        return snapshot
    try:
        if isinstance(snapshot, str | bytes):
            return Snapshot.model_validate_json(snapshot)
        return Snapshot.model_validate(snapshot)
    except ValidationError as exc:
        details = "; ".join(f"{f}: {m}" for f, m, _ in field_errors(exc))
        msg = f"Not a valid lifecycle snapshot: {details}."
        raise SnapshotError(msg) from None


def check_history(snap: Snapshot) -> None:
    """A snapshot's history is contiguous and ends in its state.

    It may be a tail window (a store restores an instance with its last record only), so
    numbering may start above 1, but never passes the revision.

    Raises:
        SnapshotError: it is not.
    """
    history = snap.history
    first = history[0].seq if history else 1
    for expected, record in enumerate(history, start=first):
        if record.seq != expected:
            msg = (
                f"Snapshot of {snap.machine!r} has a gap in its history: record {record.seq} "
                f"where {expected} was expected."
            )
            raise SnapshotError(msg)
    if history and history[-1].target != snap.state:
        msg = (
            f"Snapshot of {snap.machine!r} is in state {snap.state!r}, but its last history "
            f"record ends in {history[-1].target!r}."
        )
        raise SnapshotError(msg)
    if history and snap.revision < history[-1].seq:
        msg = (
            f"Snapshot of {snap.machine!r} has revision {snap.revision}, lower than its last "
            f"history record ({history[-1].seq})."
        )
        raise SnapshotError(msg)
