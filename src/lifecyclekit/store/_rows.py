"""Rows <-> transition records and snapshots; rebuilding instances as their exact class,
through their migrations. No I/O."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from lifecyclekit.errors import SnapshotError, UnknownLifecycle
from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.registry import Registry
from lifecyclekit.snapshot import Snapshot, TransitionRecord, migrate
from lifecyclekit.store._model import Statement, Step, dumps, from_micros, shown, to_micros

__all__ = ["Loaded", "parse_loaded", "parse_record", "restore"]


# -- rows <-> records and snapshots ----------------------------------------------------------

RECORD_COLUMNS = "seq, event, source, target, payload, at, inferred, actor, reason, metadata"
_HISTORY_INSERT = f"INSERT INTO lk_history (instance_id, {RECORD_COLUMNS}) VALUES "


def record_row(instance_id: str, record: TransitionRecord) -> tuple[Any, ...]:
    return (
        instance_id, record.seq, record.event, record.source, record.target,
        dumps(record.payload), to_micros(record.at), int(record.inferred),
        record.actor, record.reason, dumps(record.metadata),
    )  # fmt: skip


def parse_record(row: Sequence[Any]) -> TransitionRecord:
    """A record from the columns :data:`RECORD_COLUMNS`.

    Raises:
        ValueError, TypeError, ValidationError: garbage in the row.
    """
    seq, event, source, target, payload, at, inferred, actor, reason, metadata = row
    return TransitionRecord(
        seq=seq, event=event, source=source, target=target,
        payload=json.loads(payload) if payload is not None else None,
        at=from_micros(at), inferred=bool(inferred), actor=actor, reason=reason,
        metadata=json.loads(metadata) if metadata is not None else None,
    )  # fmt: skip


CHUNK = 500
"""Rows per multi-row INSERT (SQLite and PostgreSQL cap the parameters of one statement)."""


def insert_history(instance_id: str, records: Sequence[TransitionRecord]) -> Step[None]:
    """Insert every record, a few hundred per statement."""
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        params = tuple(v for r in chunk for v in record_row(instance_id, r))
        yield Statement(_HISTORY_INSERT + marks, params)


@dataclass(slots=True)
class Loaded:
    """An instance row as read, before it becomes a live instance."""

    id: str
    machine: str
    schema_version: int
    state: str
    context: dict[str, Any] | None
    revision: int
    version: int
    history: list[TransitionRecord]
    text: str | None = None
    """The context as stored (JSON), when it was left undecoded for :func:`from_row`."""
    chart: dict[str, Any] | None = None
    """A statechart's ``configuration`` and ``history_states`` (lk_configurations)."""


CONFIGURATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS lk_configurations"
    " (instance_id TEXT PRIMARY KEY, configuration TEXT NOT NULL)"
)
"""Statecharts' configurations, one row per stored statechart instance (flat lifecycles
have none). Created when a store opens, old stores included; older code ignores it."""


def save_configuration(instance_id: str, instance: Lifecycle) -> Step[None]:
    """Write a statechart's configuration and history memory beside its row (nothing for a
    flat lifecycle, whose row's state is its whole configuration)."""
    if not type(instance)._is_chart:
        return
    snap = instance.snapshot()
    assert snap.configuration is not None
    chart = {"configuration": list(snap.configuration), "history_states": snap.history_states}
    yield Statement(
        "INSERT INTO lk_configurations (instance_id, configuration) VALUES (?, ?)"
        " ON CONFLICT (instance_id) DO UPDATE SET configuration = excluded.configuration",
        (instance_id, dumps(chart)),
    )


def corrupt(instance_id: str, problem: object) -> SnapshotError:
    msg = f"Stored instance {instance_id!r} is corrupt: {problem}"
    return SnapshotError(msg)


def parse_loaded(
    instance_id: str,
    row: Sequence[Any],
    history: list[TransitionRecord],
    *,
    decode: bool = True,
) -> Loaded:
    """:class:`Loaded` from ``machine, schema_version, state, context, revision, version``;
    ``decode=False`` keeps the context as its JSON text (``text``) for :func:`from_row`,
    which validates it in one step. A statechart's configuration JSON comes last in
    ``row``."""
    machine, schema_version, state, context, revision, version = row[:6]
    chart_json = row[-1]  # both load statements end with lk_configurations.configuration
    try:
        chart = json.loads(chart_json) if chart_json is not None else None
        if chart is not None and not isinstance(chart, dict):
            msg = f"configuration is not a JSON object: {shown(chart_json)}"
            raise ValueError(msg)
        if not decode:
            context, text = None, context
            if text is not None and not (isinstance(text, str) and text.lstrip()[:1] == "{"):
                msg = f"context is not a JSON object: {shown(text)}"
                raise ValueError(msg)
        else:
            text = None
        data = json.loads(context) if context is not None else None
        if data is not None and not isinstance(data, dict):
            msg = f"context is not a JSON object: {shown(context)}"
            raise ValueError(msg)
        ints = (schema_version, revision, version)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
            msg = f"schema_version, revision, version are {ints!r}"
            raise ValueError(msg)
        if revision < 0:
            msg = f"revision is {revision!r}, below 0"
            raise ValueError(msg)
        if not isinstance(machine, str) or not isinstance(state, str):
            msg = f"machine {shown(machine)}, state {shown(state)}"
            raise ValueError(msg)
    except ValueError as exc:
        raise corrupt(instance_id, exc) from None
    return Loaded(
        instance_id,
        machine,
        schema_version,
        state,
        data,
        revision,
        version,
        history,
        text,
        chart,
    )


def lifecycle_class(registry: Registry, loaded: Loaded) -> type[Lifecycle]:
    try:
        return registry.get(loaded.machine)
    except UnknownLifecycle as exc:
        hint = (
            f"Stored instance {loaded.id!r} is of this lifecycle: import the module that "
            "registers it (on the command line: lifecyclekit --app MODULE, or "
            "LIFECYCLEKIT_APP=MODULE)."
        )
        raise UnknownLifecycle(exc.name, exc.known, hint=hint) from None


def snapshot_of(registry: Registry, loaded: Loaded) -> tuple[type[Lifecycle], Snapshot]:
    """The exact class that created the row and the row as a (migrated) snapshot."""
    cls = lifecycle_class(registry, loaded)
    data: dict[str, Any] = {
        "machine": loaded.machine,
        "schema_version": loaded.schema_version,
        "state": loaded.state,
        "context": loaded.context,
        "history": [r.model_dump(mode="json") for r in loaded.history],
        "revision": loaded.revision,
        **(loaded.chart or {}),
    }
    what = f"Stored instance {loaded.id!r}"
    if loaded.schema_version != cls.schema_version:
        data = migrate(data, cls.migrations, cls.schema_version, what=what)
    try:
        return cls, Snapshot.model_validate(data)
    except ValidationError as exc:
        raise corrupt(loaded.id, exc) from None


def drivable(instance: Lifecycle) -> Lifecycle:
    """``instance``: the one check every instance the store builds or is given passes
    (create, add, and every row it restores).

    Every lifecycle is drivable: an async lifecycle (``async def`` guards or callbacks)
    runs to completion in the synchronous store called from sync code, and the
    asynchronous store awaits its events (see ``Lifecycle.is_async``). Created inside a
    running event loop, its initial state's entry actions have not run when it is stored,
    and a restored row never runs them.
    """
    return instance


def restore(registry: Registry, loaded: Loaded, clock: Clock | None) -> Lifecycle:
    """The live instance, always of the exact class that created it.

    Raises:
        SnapshotError: naming the instance: unknown lifecycle, corrupt row, failed migration.
    """
    cls, snap = snapshot_of(registry, loaded)
    try:
        instance = cls.restore(snap, clock=clock)
    except SnapshotError as exc:
        raise corrupt(loaded.id, exc) from None
    return drivable(instance)


def from_row(cls: type[Lifecycle], loaded: Loaded, clock: Clock | None) -> Lifecycle:
    """The live instance of a row at its class's schema version, read with
    ``decode=False`` and at most its last record: rebuilt by :meth:`Lifecycle.from_stored`
    (the context validated once, from its JSON; no :class:`Snapshot` round trip).

    Raises:
        SnapshotError: naming the instance, as :func:`restore`.
    """
    last = loaded.history[-1] if loaded.history else None
    try:
        chart = loaded.chart or {}
        instance = cls.from_stored(
            loaded.state,
            loaded.text,
            revision=loaded.revision,
            last=last,
            clock=clock,
            configuration=chart.get("configuration"),
            history_states=chart.get("history_states"),
        )
    except SnapshotError as exc:
        raise corrupt(loaded.id, exc) from None
    return drivable(instance)


def migrated_history(
    registry: Registry, loaded: Loaded, records: list[TransitionRecord]
) -> list[TransitionRecord]:
    """``records`` of an instance whose row is at an older schema_version, migrated."""
    cls = lifecycle_class(registry, loaded)
    if loaded.schema_version == cls.schema_version or not records:
        return records
    _, snap = snapshot_of(registry, replace(loaded, history=records))
    return list(snap.history)
