"""The store's rules, written once and free of I/O: what to read, what to write, and how to
turn rows into instances and results.

Each operation is a *step*: a generator that yields :class:`Statement` objects and receives
their :class:`~lifecyclekit.store._backend.Rows`, then returns its result. A driver runs it
inside a transaction: :func:`drive` for the synchronous store, an ``await`` loop for an
asynchronous one, so neither copies the logic of ``send``, idempotency, history or the change
feed. Everything else here is a pure function (rows <-> snapshots, fingerprints, cursors,
the retry policy's delays).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import to_jsonable_python

from lifecyclekit.errors import (
    IdempotencyConflict,
    SnapshotError,
    StoreError,
    UnknownInstance,
    UnknownLifecycle,
)
from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.registry import Registry
from lifecyclekit.snapshot import Snapshot, TransitionRecord, migrate
from lifecyclekit.store._backend import Rows

__all__ = [
    "SCHEMA_VERSION",
    "Change",
    "InstanceSummary",
    "Page",
    "RetryPolicy",
    "SendResult",
    "Skipped",
    "Statement",
    "drive",
]

SCHEMA_VERSION = 2
"""The version of the store's own tables (``lk_meta.schema_version``)."""

T = TypeVar("T")
Step = Generator["Statement", Rows, T]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ID_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement with ``?`` placeholders, for a driver to run."""

    sql: str
    params: tuple[Any, ...] = ()


def drive(execute: Callable[[str, Sequence[Any]], Rows], step: Step[T]) -> T:
    """Run ``step`` to the end with a synchronous ``execute``; its return value."""
    try:
        statement = next(step)
        while True:
            statement = step.send(execute(statement.sql, statement.params))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


# -- the retry policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How the store (and every coordinator on it) re-runs a transaction that lost a race or
    lost its connection before committing: at most ``attempts`` tries, with a random pause
    ("full jitter") of up to ``base * 2**n`` seconds, capped at ``cap``, before try ``n+1``.

    What re-runs is the whole operation: loading, the lifecycle's callbacks (which may
    therefore run more than once), the writes. ``after_commit`` and the change feed see
    only the attempt that committed.
    """

    attempts: int = 50
    base: float = 0.001
    cap: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            msg = f"RetryPolicy.attempts must be a positive int, got {self.attempts!r}."
            raise ValueError(msg)
        if self.base < 0 or self.cap < 0:
            msg = f"RetryPolicy delays must be >= 0, got base={self.base!r}, cap={self.cap!r}."
            raise ValueError(msg)

    def delay(self, attempt: int) -> float:
        """Seconds to pause after failed try number ``attempt`` (from 1)."""
        return random.uniform(0, min(self.cap, self.base * 2 ** min(attempt, 30)))


# -- results ---------------------------------------------------------------------------------


class SendResult(BaseModel):
    """What a ``send`` did: the instance's state after it, and the records it added.

    The whole history is not returned (its length would make every send slower); read it
    with ``store.history(id, after=..., limit=...)``.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    machine: str
    state: str
    revision: int
    context: dict[str, Any] | None = None
    records: tuple[TransitionRecord, ...] = ()
    """The transitions this send committed (none for a command that changed nothing)."""
    replayed: bool = False
    """``True`` when an idempotency key had already been applied: this is the outcome of the
    original send, and nothing was fired or written now."""


class InstanceSummary(BaseModel):
    """One stored instance, as ``find`` lists it."""

    model_config = ConfigDict(frozen=True)

    id: str
    machine: str
    state: str
    revision: int
    updated_at: datetime
    """When it last changed, in UTC."""

    @property
    def cursor(self) -> str:
        """Pass as ``find(after=...)`` to list what comes after this instance."""
        return encode_cursor(to_micros(self.updated_at), self.id)


class Change(BaseModel):
    """One committed transition in the change feed."""

    model_config = ConfigDict(frozen=True)

    position: int
    """Increasing in commit order (not necessarily consecutive); the feed's cursor."""
    id: str
    """The instance id."""
    machine: str
    """The lifecycle's registry name."""
    record: TransitionRecord


@dataclass(frozen=True, slots=True)
class Skipped:
    """A row a listing could not read, and why."""

    id: str
    reason: str


class Page(list[T], Generic[T]):
    """A list of results with what was skipped and where the next page starts.

    Attributes:
        next: the cursor of the next page (``find(after=page.next)``), ``None`` at the end.
        skipped: rows that could not be read (reported, never fatal to the others).
    """

    def __init__(
        self, items: Iterable[T] = (), *, next: Any = None, skipped: Sequence[Skipped] = ()
    ) -> None:
        super().__init__(items)
        self.next = next
        self.skipped = list(skipped)


# -- values ----------------------------------------------------------------------------------


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, UTC, of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of :func:`to_micros`."""
    if not isinstance(micros, int) or isinstance(micros, bool):
        msg = f"not a timestamp: {micros!r}"
        raise ValueError(msg)
    return _EPOCH + timedelta(microseconds=micros)


def now_micros(clock: Clock | None) -> int:
    """The store clock's time (UTC now by default), whatever its zone."""
    moment = clock() if clock is not None else datetime.now(UTC)
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        msg = f"The store's clock returned {moment!r}; it must return an aware datetime."
        raise StoreError(msg)
    return to_micros(moment)


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, or its type and size when that would be long."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value):,} characters" if isinstance(value, str | bytes) else f"{len(text):,}"
    if not isinstance(value, str | bytes):
        size = f"{size} characters when printed"
    return f"<a {type(value).__name__} of {size}>"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_id(value: Any) -> str:
    """A valid instance id, or a StoreError saying what ids may be."""
    if not isinstance(value, str):
        problem = f"is a {type(value).__name__} ({shown(value)}), not a str"
    elif not value:
        problem = "is empty"
    elif len(value) > MAX_ID_LENGTH:
        problem = f"has {len(value):,} characters"
    elif _CONTROL.search(value):
        problem = f"contains a control character: {shown(value)}"
    else:
        return value
    msg = (
        f"Invalid instance id: it {problem}. Ids are 1-{MAX_ID_LENGTH} printable characters "
        "(a UUID or a name like 'orders-2024')."
    )
    raise StoreError(msg)


def dumps(value: Any) -> str | None:
    """Compact JSON, or None for None."""
    return None if value is None else json.dumps(value, separators=(",", ":"))


def fingerprint(name: str, args: Sequence[Any], data: Mapping[str, Any]) -> str:
    """What an idempotency key is bound to: the command and its payload, canonically."""
    canonical = json.dumps(
        to_jsonable_python([name, list(args), dict(data)], fallback=repr),
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_cursor(micros: int, instance_id: str) -> str:
    return f"{micros}:{instance_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The (updated_at, id) of a cursor from :attr:`InstanceSummary.cursor`."""
    stamp, sep, instance_id = str(cursor).partition(":")
    try:
        if not sep:
            raise ValueError(cursor)
        return int(stamp), instance_id
    except ValueError:
        msg = f"Not a find() cursor: {shown(cursor)}; pass page.next or summary.cursor."
        raise StoreError(msg) from None


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


def insert_history(instance_id: str, records: Sequence[TransitionRecord]) -> Statement:
    """One statement inserting every record."""
    marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(records))
    params = tuple(v for r in records for v in record_row(instance_id, r))
    return Statement(_HISTORY_INSERT + marks, params)


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


def corrupt(instance_id: str, problem: object) -> SnapshotError:
    msg = f"Stored instance {instance_id!r} is corrupt: {problem}"
    return SnapshotError(msg)


def parse_loaded(instance_id: str, row: Sequence[Any], history: list[TransitionRecord]) -> Loaded:
    """:class:`Loaded` from ``machine, schema_version, state, context, revision, version``."""
    machine, schema_version, state, context, revision, version = row[:6]
    try:
        data = json.loads(context) if context is not None else None
        if data is not None and not isinstance(data, dict):
            msg = f"context is not a JSON object: {shown(context)}"
            raise ValueError(msg)
        ints = (schema_version, revision, version)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
            msg = f"schema_version, revision, version are {ints!r}"
            raise ValueError(msg)
        if not isinstance(machine, str) or not isinstance(state, str):
            msg = f"machine {shown(machine)}, state {shown(state)}"
            raise ValueError(msg)
    except ValueError as exc:
        raise corrupt(instance_id, exc) from None
    return Loaded(instance_id, machine, schema_version, state, data, revision, version, history)


def lifecycle_class(registry: Registry, loaded: Loaded) -> type[Lifecycle]:
    try:
        return registry.get(loaded.machine)
    except UnknownLifecycle as exc:
        msg = (
            f"Stored instance {loaded.id!r} is of lifecycle {loaded.machine!r}, which this "
            f"process does not know: {exc} Import or register the module that defines it "
            "(lifecyclekit --app MODULE, or LIFECYCLEKIT_APP)."
        )
        raise SnapshotError(msg) from None


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
    }
    what = f"Stored instance {loaded.id!r}"
    if loaded.schema_version != cls.schema_version:
        data = migrate(data, cls.migrations, cls.schema_version, what=what)
    try:
        return cls, Snapshot.model_validate(data)
    except ValidationError as exc:
        raise corrupt(loaded.id, exc) from None


def restore(registry: Registry, loaded: Loaded, clock: Clock | None) -> Lifecycle:
    """The live instance, always of the exact class that created it.

    Raises:
        SnapshotError: naming the instance: unknown lifecycle, corrupt row, failed migration.
    """
    cls, snap = snapshot_of(registry, loaded)
    try:
        return cls.restore(snap, clock=clock)
    except SnapshotError as exc:
        raise corrupt(loaded.id, exc) from None


def migrated_history(
    registry: Registry, loaded: Loaded, records: list[TransitionRecord]
) -> list[TransitionRecord]:
    """``records`` of an instance whose row is at an older schema_version, migrated."""
    cls = lifecycle_class(registry, loaded)
    if loaded.schema_version == cls.schema_version or not records:
        return records
    _, snap = snapshot_of(registry, replace(loaded, history=records))
    return list(snap.history)


# -- reading ---------------------------------------------------------------------------------

_ROW = "i.machine, i.schema_version, i.state, i.context, i.revision, i.version"
_LAST = ", ".join(f"h.{c.strip()}" for c in RECORD_COLUMNS.split(","))
LOAD_SQL = (
    f"SELECT {_ROW}, {_LAST} FROM lk_instances i LEFT JOIN lk_history h"
    " ON h.instance_id = i.id AND h.seq = i.revision WHERE i.id = ?"
)
LOAD_WITH_KEY_SQL = (
    f"SELECT {_ROW}, {_LAST}, k.request, k.outcome, k.created_at FROM lk_instances i"
    " LEFT JOIN lk_history h ON h.instance_id = i.id AND h.seq = i.revision"
    " LEFT JOIN lk_keys k ON k.instance_id = i.id AND k.key = ? WHERE i.id = ?"
)
HISTORY_SQL = (
    f"SELECT {RECORD_COLUMNS} FROM lk_history WHERE instance_id = ? AND seq > ? ORDER BY seq"
)


def unknown(instance_id: str) -> UnknownInstance:
    msg = f"No stored instance {instance_id!r}; list ids with find() or `lifecyclekit ls`."
    return UnknownInstance(msg)


def _last_record(instance_id: str, row: Sequence[Any]) -> list[TransitionRecord]:
    if row[6] is None:
        return []
    try:
        return [parse_record(row[6:16])]
    except (ValueError, TypeError, ValidationError) as exc:
        raise corrupt(instance_id, exc) from None


def read_records(
    instance_id: str, after: int = 0, limit: int | None = None
) -> Step[list[TransitionRecord]]:
    """Records with ``seq > after``, oldest first, at most ``limit`` (all when None)."""
    if limit is None:
        rows = yield Statement(HISTORY_SQL, (instance_id, after))
    else:
        rows = yield Statement(HISTORY_SQL + " LIMIT ?", (instance_id, after, limit))
    try:
        return [parse_record(row) for row in rows.rows]
    except (ValueError, TypeError, ValidationError) as exc:
        raise corrupt(instance_id, exc) from None


def load(instance_id: str, *, full_history: bool = False) -> Step[Loaded]:
    """The row with its last record (or its whole history), in one round trip.

    Raises:
        UnknownInstance: no such id.
        SnapshotError: the row is garbage.
    """
    rows = yield Statement(LOAD_SQL, (instance_id,))
    if not rows.rows:
        raise unknown(instance_id)
    row = rows.rows[0]
    history = _last_record(instance_id, row)
    if full_history:
        history = yield from read_records(instance_id)
    return parse_loaded(instance_id, row, history)


# -- writing ---------------------------------------------------------------------------------


@dataclass
class Effects:
    """What one transaction committed, for after-commit callbacks (filled while it runs)."""

    prelude_done: bool = False
    committed: list[tuple[Lifecycle | None, list[Change]]] = field(default_factory=list)
    callbacks: list[Callable[[], object]] = field(default_factory=list)


def insert_instance(
    instance_id: str,
    instance: Lifecycle,
    snap: Snapshot,
    now: int,
    dialect: Any,
    effects: Effects,
) -> Step[None]:
    """Insert a new row (and any records it starts with); a duplicate id raises the
    back-end's DUPLICATE error."""
    yield Statement(
        "INSERT INTO lk_instances (id, machine, schema_version, state, context, revision,"
        " version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
        (
            instance_id, snap.machine, snap.schema_version, snap.state, dumps(snap.context),
            snap.revision, now, now,
        ),
    )  # fmt: skip
    if snap.history:
        yield insert_history(instance_id, snap.history)
        yield from add_changes(
            instance_id, snap.machine, list(snap.history), dialect, effects, instance
        )


def add_changes(
    instance_id: str,
    machine: str,
    records: Sequence[TransitionRecord],
    dialect: Any,
    effects: Effects,
    instance: Lifecycle | None = None,
) -> Step[list[Change]]:
    """Give each record a position in the change feed, in this transaction."""
    if not records:
        return []
    if dialect.change_prelude and not effects.prelude_done:
        yield Statement(dialect.change_prelude)
        effects.prelude_done = True
    values = ", ".join([f"({dialect.change_position}, ?, ?, ?, ?)"] * len(records))
    params = tuple(
        v
        for r in records
        for v in (instance_id, machine, r.seq, r.model_dump_json(exclude_defaults=True))
    )
    rows = yield Statement(
        "INSERT INTO lk_changes (position, instance_id, machine, seq, record)"
        f" VALUES {values} RETURNING position, seq",
        params,
    )
    position = {seq: pos for pos, seq in rows.rows}
    changes = [
        Change(position=position[r.seq], id=instance_id, machine=machine, record=r)
        for r in records
    ]
    effects.committed.append((instance, changes))
    return changes


def annotate(
    records: Sequence[TransitionRecord],
    actor: str | None,
    reason: str | None,
    metadata: Mapping[str, Any] | None,
) -> list[TransitionRecord]:
    """The records with who and why attached."""
    if actor is None and reason is None and metadata is None:
        return list(records)
    note = {"actor": actor, "reason": reason, "metadata": dict(metadata) if metadata else None}
    return [r.model_copy(update=note) for r in records]


def save(
    loaded: Loaded,
    instance: Lifecycle,
    records: Sequence[TransitionRecord],
    now: int,
    dialect: Any,
    effects: Effects,
    *,
    rewrite_history: bool = False,
) -> Step[list[Change] | None]:
    """Compare-and-set the row at ``loaded.version``; insert ``records`` and their changes.

    Returns the changes, or None when another writer changed the row since it was loaded.
    """
    snap = instance.snapshot()
    updated = yield Statement(
        "UPDATE lk_instances SET state = ?, context = ?, revision = ?, version = ?,"
        " updated_at = ?, schema_version = ? WHERE id = ? AND version = ?",
        (
            snap.state, dumps(snap.context), snap.revision, loaded.version + 1, now,
            snap.schema_version, loaded.id, loaded.version,
        ),
    )  # fmt: skip
    if updated.rowcount != 1:
        return None
    loaded.version += 1
    if rewrite_history:
        yield Statement("DELETE FROM lk_history WHERE instance_id = ?", (loaded.id,))
        older = [r for r in snap.history if r.seq <= loaded.revision]
        if older:
            yield insert_history(loaded.id, older)
    if records:
        yield insert_history(loaded.id, records)
    changes = yield from add_changes(loaded.id, snap.machine, records, dialect, effects, instance)
    loaded.revision = snap.revision
    return changes


def delete(instance_id: str) -> Step[bool]:
    """Remove a row, its history and its keys; False when there was no such row."""
    yield Statement("DELETE FROM lk_history WHERE instance_id = ?", (instance_id,))
    yield Statement("DELETE FROM lk_keys WHERE instance_id = ?", (instance_id,))
    rows = yield Statement("DELETE FROM lk_instances WHERE id = ?", (instance_id,))
    return rows.rowcount == 1


# -- send ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendRequest:
    """One ``send``: the command, its payload, who and why, and the idempotency key."""

    id: str
    name: str
    args: tuple[Any, ...]
    data: dict[str, Any]
    key: str | None = None
    actor: str | None = None
    reason: str | None = None
    metadata: Mapping[str, Any] | None = None


def replay_of(request: SendRequest, row: Sequence[Any], now: int, retention: int) -> Any:
    """The original outcome when the key was applied (and is not expired), else None.

    Raises:
        IdempotencyConflict: the key was applied to a different request.
    """
    bound, outcome, created_at = row[16:19]
    if bound is None or (retention >= 0 and now - int(created_at) > retention):
        return None
    if bound != fingerprint(request.name, request.args, request.data):
        msg = (
            f"Idempotency key {request.key!r} was already used on {request.id!r} for a "
            f"different request; {request.name!r} with this payload was not applied. Use a "
            "new key for a new request."
        )
        raise IdempotencyConflict(msg)
    try:
        result = SendResult.model_validate_json(outcome)
    except ValidationError as exc:
        raise corrupt(request.id, f"idempotency key {request.key!r}: {exc}") from None
    return result.model_copy(update={"replayed": True})


def send(
    request: SendRequest,
    registry: Registry,
    clock: Clock | None,
    now: int,
    retention: int,
    dialect: Any,
    effects: Effects,
) -> Step[SendResult | None]:
    """One attempt of ``send``: the result, or None when another writer won the row.

    Reads the row, its last record and the key in one round trip; fires the event on an
    instance rebuilt without its history; writes the row, the new records, their changes and
    the key. A refusal raises before anything is written.
    """
    if request.key is None:
        rows = yield Statement(LOAD_SQL, (request.id,))
    else:
        rows = yield Statement(LOAD_WITH_KEY_SQL, (request.key, request.id))
    if not rows.rows:
        raise unknown(request.id)
    row = rows.rows[0]
    if request.key is not None:
        replay = replay_of(request, row, now, retention)
        if replay is not None:
            return replay  # type: ignore[no-any-return]
    loaded = parse_loaded(request.id, row, _last_record(request.id, row))
    cls = lifecycle_class(registry, loaded)
    outdated = loaded.schema_version != cls.schema_version
    if outdated:  # upgrade the whole row once, in this transaction
        loaded.history = yield from read_records(request.id)
    instance = restore(registry, loaded, clock)
    instance.call(request.name, *request.args, **request.data)
    added = [r for r in instance.history if r.seq > loaded.revision]
    records = annotate(added, request.actor, request.reason, request.metadata)
    changes = yield from save(
        loaded, instance, records, now, dialect, effects, rewrite_history=outdated
    )
    if changes is None:
        return None
    snap = instance.snapshot()
    result = SendResult(
        id=request.id, machine=snap.machine, state=snap.state, revision=snap.revision,
        context=snap.context, records=tuple(records),
    )  # fmt: skip
    if request.key is not None:
        yield Statement(
            "INSERT INTO lk_keys (instance_id, key, request, outcome, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (instance_id, key) DO UPDATE SET"
            " request = excluded.request, outcome = excluded.outcome,"
            " created_at = excluded.created_at",
            (
                request.id, request.key, fingerprint(request.name, request.args, request.data),
                result.model_dump_json(), now,
            ),
        )  # fmt: skip
    return result


# -- listings --------------------------------------------------------------------------------


def filters(
    dialect: Any,
    name: str | None,
    state: str | None,
    where: Mapping[str, Any] | None,
) -> tuple[list[str], list[Any]]:
    """WHERE clauses and parameters for find/count."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("machine", name), ("state", state)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    for key, value in (where or {}).items():
        if not isinstance(key, str) or not key or '"' in key or "\\" in key:
            msg = f"find(where=...) keys are context field names, got {shown(key)}."
            raise StoreError(msg)
        if value is not None and not isinstance(value, str | int | float | bool):
            msg = (
                f"find(where={{{key!r}: ...}}) compares with a str, int, float, bool or None,"
                f" not {shown(value)}."
            )
            raise StoreError(msg)
        clause, values = dialect.context_filter(key, value)
        clauses.append(clause)
        params.extend(values)
    return clauses, params


def find(
    dialect: Any,
    name: str | None,
    state: str | None,
    where: Mapping[str, Any] | None,
    limit: int,
    after: str | None,
) -> Step[Page[InstanceSummary]]:
    """Newest first, by keyset: an index walk, never a sort of the whole table."""
    clauses, params = filters(dialect, name, state, where)
    if after is not None:
        stamp, last_id = decode_cursor(after)
        clauses.append("(updated_at < ? OR (updated_at = ? AND id < ?))")
        params += [stamp, stamp, last_id]
    sql = (
        "SELECT id, machine, state, revision, updated_at FROM lk_instances"
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + " ORDER BY updated_at DESC, id DESC LIMIT ?"
    )
    rows = yield Statement(sql, (*params, limit))
    found: list[InstanceSummary] = []
    skipped: list[Skipped] = []
    for instance_id, machine, st, revision, updated_at in rows.rows:
        try:
            found.append(
                InstanceSummary(
                    id=instance_id, machine=machine, state=st, revision=revision,
                    updated_at=from_micros(updated_at),
                )
            )  # fmt: skip
        except (ValueError, TypeError, ValidationError) as exc:
            skipped.append(Skipped(str(instance_id), f"unreadable row: {exc}"))
    following = None
    if rows.rows and len(rows.rows) == limit:
        last = rows.rows[-1]
        following = encode_cursor(last[4], str(last[0])) if isinstance(last[4], int) else None
    return Page(found, next=following, skipped=skipped)


def count(
    dialect: Any, name: str | None, state: str | None, where: Mapping[str, Any] | None
) -> Step[int]:
    clauses, params = filters(dialect, name, state, where)
    sql = "SELECT COUNT(*) FROM lk_instances" + (
        " WHERE " + " AND ".join(clauses) if clauses else ""
    )
    rows = yield Statement(sql, tuple(params))
    return int(rows.rows[0][0])


def changes(after: int, fence: int | None, limit: int) -> Step[Page[Change]]:
    """Committed changes after ``after`` (and at most ``fence``), in position order."""
    bound = "" if fence is None else " AND position <= ?"
    params = (after,) if fence is None else (after, fence)
    rows = yield Statement(
        "SELECT position, instance_id, machine, record FROM lk_changes"
        f" WHERE position > ?{bound} ORDER BY position LIMIT ?",
        (*params, limit),
    )
    found: list[Change] = []
    skipped: list[Skipped] = []
    for position, instance_id, machine, record in rows.rows:
        try:
            found.append(
                Change(
                    position=position, id=instance_id, machine=machine,
                    record=TransitionRecord.model_validate_json(record),
                )
            )  # fmt: skip
        except (ValueError, TypeError, ValidationError) as exc:
            skipped.append(Skipped(str(instance_id), f"unreadable change {position}: {exc}"))
    last = rows.rows[-1][0] if rows.rows else None
    return Page(found, next=last, skipped=skipped)
