"""The store's rules, written once and free of I/O: ``send`` (load, fire, compare-and-set,
history, idempotency), saving a unit of work's instances, the retry decisions, the public
errors and after-commit callbacks.

Each transaction's work is a step (see :mod:`lifecyclekit.store._model`): a generator
yielding the statements to run and receiving their rows. The synchronous store drives them
with :func:`~lifecyclekit.store._model.drive`, the asynchronous store awaits the same
statements, so neither copies the logic.
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lifecyclekit.errors import (
    AfterCommitError,
    ConnectionLost,
    IdempotencyConflict,
    NoSuchStore,
    OutcomeUnknown,
    StoreError,
    UnknownInstance,
    WriteConflict,
)
from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.registry import Registry
from lifecyclekit.snapshot import Snapshot, TransitionRecord
from lifecyclekit.store._backend import BackendError, Kind
from lifecyclekit.store._model import (
    Await,
    Change,
    SendResult,
    Statement,
    Step,
    dumps,
    fingerprint,
)
from lifecyclekit.store._rows import (
    CHUNK,
    RECORD_COLUMNS,
    Loaded,
    corrupt,
    from_row,
    insert_history,
    lifecycle_class,
    parse_loaded,
    parse_record,
    restore,
    save_configuration,
)

__all__ = ["LOST", "SCHEMA_VERSION", "Attempts", "Effects", "RetryPolicy", "send"]

SCHEMA_VERSION = 2
"""The version of the store's own tables (``lk_meta.schema_version``)."""


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
        attempts = self.attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            msg = f"RetryPolicy(attempts=...) takes an int >= 1 (1: no retry), got {attempts!r}."
            raise StoreError(msg)
        for name in ("base", "cap"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                msg = (
                    f"RetryPolicy({name}=...) takes a finite number of seconds >= 0, got "
                    f"{value!r} (defaults: base=0.001, cap=0.1)."
                )
                raise StoreError(msg)

    def delay(self, attempt: int) -> float:
        """Seconds to pause after failed try number ``attempt`` (from 1)."""
        return random.uniform(0, min(self.cap, self.base * 2 ** min(attempt, 30)))


LOST: Any = object()
"""What a transaction's work returns when another writer won the row (a lost
compare-and-set): the driver rolls back and re-runs it."""

_LOST_RACE = "another writer changed it each time"


class Attempts:
    """The retry loop's decisions, for a driver that runs the transactions and pauses.

    Iterate for the try numbers; report each failed try with :meth:`lost` or
    :meth:`failed` (which raises the public error when a re-run would not be safe); pause
    :meth:`pause` seconds; raise :meth:`exhausted` after the last try.

    Args:
        policy: the store's retry policy.
        what: the operation, for messages (``"send 'flip' to 't'"``).
        url: the store's URL as shown in messages.
        keyed: an idempotency key makes a commit of unknown outcome safe to re-run.
    """

    def __init__(self, policy: RetryPolicy, what: str, url: str, *, keyed: bool = False) -> None:
        self.policy = policy
        self.what = what
        self.url = url
        self.keyed = keyed
        self.reason = _LOST_RACE

    def __iter__(self) -> Iterator[int]:
        return iter(range(1, self.policy.attempts + 1))

    def lost(self) -> None:
        """Try ``attempt`` lost a race (a compare-and-set, or a WriteConflict)."""
        self.reason = _LOST_RACE

    def failed(self, exc: BackendError, attempt: int) -> None:
        """Try ``attempt`` failed in the database: raises the public error unless a re-run
        is safe."""
        if not retryable(exc.kind, attempt, keyed=self.keyed):
            raise public_error(exc, self.url, self.what) from None
        if exc.kind in (Kind.CONNECTION_LOST, Kind.OUTCOME_UNKNOWN):
            self.reason = f"the connection kept failing ({exc.detail})"

    def pause(self, attempt: int) -> float:
        """Seconds to wait before the try after ``attempt`` (0 after the last)."""
        return self.policy.delay(attempt) if attempt < self.policy.attempts else 0.0

    def exhausted(self) -> WriteConflict:
        tries = self.policy.attempts
        msg = f"Gave up trying to {self.what} after {tries} attempts: {self.reason}."
        return WriteConflict(msg)


# -- reading ---------------------------------------------------------------------------------

_ROW = "i.machine, i.schema_version, i.state, i.context, i.revision, i.version"
_LAST = ", ".join(f"h.{c.strip()}" for c in RECORD_COLUMNS.split(","))
# A statechart's configuration (lk_configurations) comes last in both row shapes.
_CHART = " LEFT JOIN lk_configurations c ON c.instance_id = i.id"
LOAD_SQL = (
    f"SELECT {_ROW}, {_LAST}, c.configuration FROM lk_instances i LEFT JOIN lk_history h"
    f" ON h.instance_id = i.id AND h.seq = i.revision{_CHART} WHERE i.id = ?"
)
LOAD_WITH_KEY_SQL = (
    f"SELECT {_ROW}, {_LAST}, k.request, k.outcome, k.created_at, c.configuration"
    " FROM lk_instances i LEFT JOIN lk_history h ON h.instance_id = i.id AND h.seq = i.revision"
    f" LEFT JOIN lk_keys k ON k.instance_id = i.id AND k.key = ?{_CHART} WHERE i.id = ?"
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


def history(
    instance_id: str, after: int, limit: int | None
) -> Step[tuple[Loaded, list[TransitionRecord]]]:
    """The row (for its lifecycle and schema version) and a window of its history, in one
    transaction so that they agree."""
    loaded = yield from load(instance_id)
    records = yield from read_records(instance_id, after, limit)
    return loaded, records


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
    yield from save_configuration(instance_id, instance)
    if snap.history:
        yield from insert_history(instance_id, snap.history)
        yield from add_changes(
            instance_id, snap.machine, list(snap.history), dialect, effects, instance
        )


def exists(url: str, instance_id: str) -> StoreError:
    return StoreError(f"A stored instance with id {instance_id!r} already exists in {url}.")


def create(
    instance_id: str,
    instance: Lifecycle,
    snap: Snapshot,
    now: int,
    dialect: Any,
    url: str,
    effects: Effects,
) -> Step[Snapshot]:
    """Insert a new instance; an existing id is a StoreError saying so (never re-run)."""
    try:
        yield from insert_instance(instance_id, instance, snap, now, dialect, effects)
    except BackendError as exc:
        if exc.kind is Kind.DUPLICATE:
            raise exists(url, instance_id) from None
        raise
    return snap


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
    position: dict[int, int] = {}
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        values = ", ".join([f"({dialect.change_position}, ?, ?, ?, ?)"] * len(chunk))
        params = tuple(
            v
            for r in chunk
            for v in (instance_id, machine, r.seq, r.model_dump_json(exclude_defaults=True))
        )
        rows = yield Statement(
            "INSERT INTO lk_changes (position, instance_id, machine, seq, record)"
            f" VALUES {values} RETURNING position, seq",
            params,
        )
        position.update((seq, pos) for pos, seq in rows.rows)
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
    cls = type(instance)
    context = context_data(instance)
    revision = instance.revision
    updated = yield Statement(
        "UPDATE lk_instances SET state = ?, context = ?, revision = ?, version = ?,"
        " updated_at = ?, schema_version = ? WHERE id = ? AND version = ?",
        (
            instance.state, dumps(context), revision, loaded.version + 1, now,
            cls.schema_version, loaded.id, loaded.version,
        ),
    )  # fmt: skip
    if updated.rowcount != 1:
        return None
    loaded.version += 1
    yield from save_configuration(loaded.id, instance)
    if rewrite_history:
        yield Statement("DELETE FROM lk_history WHERE instance_id = ?", (loaded.id,))
        older = [r for r in instance.history if r.seq <= loaded.revision]
        if older:
            yield from insert_history(loaded.id, older)
    if records:
        yield from insert_history(loaded.id, records)
    machine = cls.machine_key()
    changes = yield from add_changes(loaded.id, machine, records, dialect, effects, instance)
    loaded.revision = revision
    loaded.context = context
    return changes


def context_data(instance: Lifecycle) -> dict[str, Any] | None:
    """The instance's context as JSON-ready data (what :meth:`Lifecycle.snapshot` holds),
    without building a snapshot."""
    context = instance.context
    return context.model_dump(mode="json") if context is not None else None


def delete(instance_id: str) -> Step[bool]:
    """Remove a row, its history and its keys; False when there was no such row."""
    yield Statement("DELETE FROM lk_history WHERE instance_id = ?", (instance_id,))
    yield Statement("DELETE FROM lk_keys WHERE instance_id = ?", (instance_id,))
    yield Statement("DELETE FROM lk_configurations WHERE instance_id = ?", (instance_id,))
    rows = yield Statement("DELETE FROM lk_instances WHERE id = ?", (instance_id,))
    return bool(rows.rowcount == 1)


def remove(instance_id: str) -> Step[None]:
    """:func:`delete`, with an unknown id an error."""
    if not (yield from delete(instance_id)):
        raise unknown(instance_id)


def expire_keys(cutoff: int) -> Step[int]:
    """Forget idempotency keys created before ``cutoff``; how many."""
    rows = yield Statement("DELETE FROM lk_keys WHERE created_at < ?", (cutoff,))
    return int(rows.rowcount)


def migrate_one(
    instance_id: str,
    registry: Registry,
    clock: Clock | None,
    now: int,
    dialect: Any,
    effects: Effects,
) -> Step[Any]:
    """Rewrite one row and its history at its lifecycle's current schema version (True), or
    :data:`LOST` when another writer changed it meanwhile."""
    loaded = yield from load(instance_id, full_history=True)
    instance = restore(registry, loaded, clock)
    saved = yield from save(loaded, instance, [], now, dialect, effects, rewrite_history=True)
    return LOST if saved is None else True


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


def fire(
    instance: Lifecycle, name: str, args: tuple[Any, ...], data: dict[str, Any], where: str
) -> Step[Any]:
    """Fire the event (or run the command) ``name``; when it returns an awaitable (an
    asynchronous command), the driver awaits it before the instance is saved."""
    outcome = instance.call(name, *args, **data)
    if inspect.isawaitable(outcome):
        outcome = yield Await(outcome, f"{name!r} on {where!r}")
    return outcome


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
) -> Step[Any]:
    """One attempt of ``send``: its :class:`SendResult`, or :data:`LOST` when another
    writer won the row.

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
            return replay
    last = _last_record(request.id, row)
    loaded = parse_loaded(request.id, row, last, decode=False)
    cls = lifecycle_class(registry, loaded)
    outdated = loaded.schema_version != cls.schema_version
    if outdated:  # upgrade the whole row once, in this transaction
        loaded = parse_loaded(request.id, row, (yield from read_records(request.id)))
        instance = restore(registry, loaded, clock)
    else:  # the compiled path: no Snapshot round trip, the context validated once
        instance = from_row(cls, loaded, clock)
    returned = yield from fire(instance, request.name, request.args, request.data, request.id)
    plain = request.name in instance.commands and isinstance(returned, bool | int | float | str)
    added = [r for r in instance.history if r.seq > loaded.revision]
    records = annotate(added, request.actor, request.reason, request.metadata)
    changes = yield from save(
        loaded, instance, records, now, dialect, effects, rewrite_history=outdated
    )
    if changes is None:
        return LOST
    result = SendResult(
        id=request.id, machine=loaded.machine, state=instance.state, revision=loaded.revision,
        context=loaded.context, records=tuple(records), returned=returned if plain else None,
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


# -- failures, retries and after-commit callbacks --------------------------------------------

EXPIRE_EVERY = 1000
"""A store forgets expired idempotency keys by itself once every so many keyed sends."""

DUPLICATE_RETRIES = 3
"""Attempts that treat a unique-key violation as a lost race before reporting it."""


def retryable(kind: Kind, attempt: int, *, keyed: bool) -> bool:
    """Whether a transaction that failed with ``kind`` on try ``attempt`` may be re-run:
    a lost race, or a connection lost before the commit (nothing was applied); a commit of
    unknown outcome only with an idempotency key (the replay tells). A unique key taken by a
    concurrent transaction, invisible to this one's snapshot, is a lost race too for a few
    tries; after that it is a real duplicate."""
    if kind in (Kind.CONFLICT, Kind.CONNECTION_LOST):
        return True
    if kind is Kind.OUTCOME_UNKNOWN:
        return keyed
    return kind is Kind.DUPLICATE and attempt < DUPLICATE_RETRIES


def public_error(exc: BackendError, url: str, what: str) -> StoreError:
    """The public error for a database failure during ``what`` on the store at ``url``."""
    # Drivers' messages span lines (psycopg adds "Is the server running..."); one line here.
    detail, kind = " ".join(str(exc.detail).split()), exc.kind
    if kind is Kind.NO_STORE:
        return NoSuchStore(f"no such store: {url} ({detail}).")
    if kind is Kind.OUTCOME_UNKNOWN:
        return OutcomeUnknown(
            f"The connection to {url} broke while committing ({what}): it may or may not "
            "have been applied. Check with get()/history(), or resend with the same "
            f"idempotency key, which is safe either way. ({detail})"
        )
    if kind in (Kind.CONNECTION_LOST, Kind.UNAVAILABLE):
        return ConnectionLost(
            f"Cannot {what}: the database at {url} cannot be reached; nothing was applied "
            f"and the next call reconnects. ({detail})"
        )
    reason = {
        Kind.DUPLICATE: f"a unique key exists ({detail})",
        Kind.READ_ONLY: f"the store {url} is read-only ({detail}); it can be read only",
        Kind.FULL: f"the disk of {url} is full ({detail}); nothing was written",
        Kind.CORRUPT: f"{url} is not a lifecyclekit store, or is damaged ({detail})",
        Kind.BUSY: f"timed out waiting for another writer's lock on {url} ({detail})",
        Kind.INVALID: f"the database refused a value ({detail})",
        Kind.CONFLICT: f"another writer kept winning ({detail})",
    }.get(kind, f"{detail} ({url})")
    return StoreError(f"Cannot {what}: {reason}.")


def unit_of_work_error(exc: BackendError, url: str) -> StoreError:
    """The public error of a database failure in a one-attempt unit of work."""
    if exc.kind is Kind.CONFLICT:
        msg = f"A unit of work on {url} lost to another writer: {exc.detail}"
        return WriteConflict(msg)
    return public_error(exc, url, "run a unit of work")


def commit_calls(
    effects: Effects, callbacks: Sequence[Callable[[Change], object]]
) -> Iterator[tuple[Callable[..., object], tuple[Any, ...]]]:
    """The after-commit calls of a committed transaction, in order: for each committed
    record its instance's ``after_commit`` then ``callbacks``; then the unit of work's own
    callbacks."""
    for instance, committed in effects.committed:
        for change in committed:
            if instance is not None:
                yield instance.after_commit, (change.record,)
            for callback in callbacks:
                yield callback, (change,)
    for function in effects.callbacks:
        yield function, ()


def not_awaited(function: Callable[..., object], outcome: object) -> StoreError:
    """The failure of an asynchronous after-commit callback in a synchronous store (its
    awaitable is closed)."""
    close = getattr(outcome, "close", None)
    if callable(close):
        close()
    name = getattr(function, "__qualname__", repr(function))
    msg = (
        f"after-commit callback {name} is asynchronous; a synchronous store cannot await it. "
        "Use open_async_store(), or make the callback a plain function."
    )
    return StoreError(msg)


def after_commit_failure(
    failures: Sequence[BaseException], result: object, what: str
) -> AfterCommitError | None:
    """The error reporting failed after-commit callbacks (the first is its cause), or None."""
    if not failures:
        return None
    msg = (
        f"{what} committed, but {len(failures)} after-commit callback(s) failed; "
        f"the first: {failures[0]!r}"
    )
    error = AfterCommitError(msg, result)
    error.__cause__ = failures[0]
    return error


def after_commit(
    effects: Effects,
    callbacks: Sequence[Callable[[Change], object]],
    result: object,
    what: str,
) -> None:
    """Make every call of :func:`commit_calls`, all of them even when one raises.

    Raises:
        AfterCommitError: some raised (the first is its cause); it carries ``result``.
    """
    failures: list[BaseException] = []
    for function, args in commit_calls(effects, callbacks):
        try:
            outcome = function(*args)
        except Exception as exc:
            failures.append(exc)
        else:
            if inspect.isawaitable(outcome):
                failures.append(not_awaited(function, outcome))
    error = after_commit_failure(failures, result, what)
    if error is not None:
        raise error
