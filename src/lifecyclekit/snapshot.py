"""Transition records and snapshots: a lifecycle as data.

A :class:`Snapshot` is a versioned, JSON-round-tripping pydantic model of one lifecycle
instance (never the live machine, never pickle). :class:`TransitionRecord` is the one
record type that history, stores and listeners share.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from lifecyclekit.errors import SnapshotError, field_errors

__all__ = [
    "Migration",
    "Snapshot",
    "TransitionRecord",
    "check_history",
    "coerce_snapshot",
    "migrate",
]


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
    actor: str | None = None
    """Who caused it, as given to the store's ``send(..., actor=)``.

    .. versionadded:: 0.2
    """
    reason: str | None = None
    """Why, as given to the store's ``send(..., reason=)``.

    .. versionadded:: 0.2
    """
    metadata: dict[str, Any] | None = None
    """Free JSON data given to the store's ``send(..., metadata=)`` (a ticket, a request id).

    .. versionadded:: 0.2
    """

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
    """The current state id (for a statechart, the innermost active state containing the
    whole configuration, see ``Lifecycle.state``)."""
    context: dict[str, Any] | None = None
    """The context model in JSON form, or ``None`` for lifecycles without context."""
    history: tuple[TransitionRecord, ...] = ()
    revision: int = Field(default=0, ge=0)
    """How many transitions this instance has taken; stores use it for compare-and-set."""
    configuration: tuple[str, ...] | None = None
    """A statechart's active state ids, ancestors included, in declaration order; ``None``
    for a flat lifecycle (its ``state`` is the whole configuration).

    .. versionadded:: 0.2
    """
    history_states: dict[str, tuple[str, ...]] | None = None
    """What a statechart's history states remember: the state ids a transition to the
    history state re-enters, by history state id; ``None`` when none remembers anything.

    .. versionadded:: 0.2
    """


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

    A statechart's last record may end in any state of its configuration (or a history
    state): ``Lifecycle.restore`` checks it against the class.

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
    if history and snap.configuration is None and history[-1].target != snap.state:
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


Migration = Callable[[dict[str, Any]], dict[str, Any]]
"""Upgrades a snapshot in JSON form (``Snapshot.model_dump(mode="json")``) by one
``schema_version``: ``migrations = {1: upgrade_v1}`` on a lifecycle takes version 1 to 2.

It receives ``machine``, ``schema_version``, ``state``, ``context``, ``revision`` and
``history`` (which may be only a window of the records: treat each record on its own) and
returns the upgraded dict; the version number is advanced for it."""


def migrate(
    data: Mapping[str, Any], migrations: Mapping[int, Migration], target: int, *, what: str
) -> dict[str, Any]:
    """Apply ``migrations`` to a snapshot in JSON form until it is at ``target``.

    Args:
        data: the snapshot's ``model_dump(mode="json")`` (not modified).
        migrations: the lifecycle's ``migrations``.
        target: the lifecycle's ``schema_version``.
        what: names the snapshot in messages (``"Stored instance 'j1'"``).

    Raises:
        SnapshotError: a step is missing or fails, or the data is newer than ``target``.

    .. versionadded:: 0.2
    """
    current = copy.deepcopy(dict(data))
    version = current.get("schema_version")
    if not isinstance(version, int):
        msg = f"{what} has no valid schema_version (got {version!r})."
        raise SnapshotError(msg)
    if version > target:
        msg = (
            f"{what} is at schema_version {version}, newer than its lifecycle "
            f"({target}); it was written by a newer version of the code."
        )
        raise SnapshotError(msg)
    while version < target:
        step = migrations.get(version)
        if step is None:
            msg = (
                f"{what} is at schema_version {version}, its lifecycle at {target}, and "
                f"the lifecycle's migrations have no step from {version} "
                f"(have: {sorted(migrations) or 'none'}); add migrations = {{{version}: ...}}."
            )
            raise SnapshotError(msg)
        try:
            upgraded = step(current)
        except Exception as exc:
            msg = f"{what}: migration from schema_version {version} failed: {exc!r}"
            raise SnapshotError(msg) from exc
        if not isinstance(upgraded, dict):
            msg = f"{what}: migration from schema_version {version} returned {upgraded!r}."
            raise SnapshotError(msg)
        version += 1
        current = {**upgraded, "schema_version": version}
    return current
