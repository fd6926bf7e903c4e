"""The store's public operations as plans free of I/O, shared by both drivers.

An *operation* is a generator that yields *requests* and receives what each produced; its
return value is the operation's result. A request is :class:`Transact` (one transaction
running one step, re-run under the retry policy), :class:`Fence` (the change feed's read
bound) or :class:`Setup` (the store's tables, extensions). :class:`~lifecyclekit.store.Store`
fulfils requests with blocking calls, :class:`~lifecyclekit.store.AsyncStore` awaits them;
the checks, messages and sequencing of every operation exist once, here. An error a request
ends with is thrown into the operation where it was yielded.

:class:`StoreBase` is what both stores hold and decide without I/O; :class:`Work` is a unit
of work's bookkeeping and steps, driven by both kinds of unit of work.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel

from lifecyclekit.errors import (
    SnapshotError,
    StoreError,
    UnknownInstance,
    UnknownLifecycle,
    WriteConflict,
)
from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.registry import Registry
from lifecyclekit.registry import registry as default_registry
from lifecyclekit.snapshot import Snapshot, TransitionRecord
from lifecyclekit.store import _core as core
from lifecyclekit.store import _queries as queries
from lifecyclekit.store import _schema as schema
from lifecyclekit.store._backend import BackendError
from lifecyclekit.store._checks import check_callback
from lifecyclekit.store._core import Effects, RetryPolicy, SendRequest
from lifecyclekit.store._model import (
    Change,
    InstanceSummary,
    Page,
    SendResult,
    Skipped,
    Step,
    check_audit,
    check_count,
    check_id,
    context_of,
    now_micros,
    payload_of,
    shown,
)
from lifecyclekit.store._rows import Loaded, drivable, migrated_history, restore
from lifecyclekit.store._schema import Extension

__all__ = ["Fence", "Operation", "Setup", "StoreBase", "Transact", "Work"]

T = TypeVar("T")
OnCommit = Callable[[Change], object]
SETUP = "create the store's tables"
"""The operation named in the error of a failed :class:`Setup`."""
INSIDE = (
    "A store operation was called inside a unit of work of the same store (in the same "
    "{where}); use the unit of work's own load/save/add/remove."
)
"""The refusal of a store call made from inside one of its units of work."""


# -- requests --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transact:
    """One transaction: ``step(effects)`` is made afresh for each attempt; a step returning
    :data:`~lifecyclekit.store._core.LOST` lost a race and is re-run."""

    what: str
    """The operation, for messages (``"send 'flip' to 't'"``)."""
    write: bool
    step: Callable[[Effects], Step[Any]]
    keyed: bool = False
    """An idempotency key makes a commit of unknown outcome safe to re-run."""


@dataclass(frozen=True, slots=True)
class Fence:
    """The highest change position a reader after ``after`` may read up to (or None)."""

    after: int


@dataclass(frozen=True, slots=True)
class Setup:
    """The store's tables, then ``extensions``' (each created or upgraded once)."""

    extensions: tuple[Extension, ...] = ()


Request = Transact | Fence | Setup
Operation = Generator[Request, Any, T]
"""A store operation without I/O: yields requests, receives their results, returns T."""


# -- the store's state -----------------------------------------------------------------------


class StoreBase:
    """What both stores hold and decide without I/O: their options, the lifecycles they
    store, their after-commit callbacks and which tables they have set up.

    Args:
        backend: the database (what its steps need: ``url``, ``schema``, the dialect's
            SQL fragments).
        registry: resolves lifecycle names (default: the process-wide registry).
        clock: the store's clock (``updated_at``) and the default clock of instances.
        retry: the retry policy of every operation and unit of work.
        key_retention: how long idempotency keys are remembered (``None``: forever).
    """

    def __init__(
        self,
        backend: Any,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        key_retention: timedelta | None = timedelta(days=7),
    ) -> None:
        self._backend = backend
        self.url: str = backend.url
        self.registry = registry if registry is not None else default_registry
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.key_retention = key_retention
        self._retention = -1 if key_retention is None else int(key_retention.total_seconds() * 1e6)
        self._callbacks: list[OnCommit] = []
        self._keyed = 0
        self._extensions: dict[str, Extension] = {}
        self._ready = False

    def _now(self) -> int:
        return now_micros(self.clock)

    def _public(self, exc: BackendError, what: str) -> StoreError:
        """The public error for a database failure during ``what``."""
        return core.public_error(exc, self.url, what)

    def _registered(self, cls: type[Lifecycle]) -> str:
        """The registry name of ``cls``, which must resolve to exactly ``cls``."""
        key = cls.machine_key()
        try:
            found = self.registry.get(key)
        except UnknownLifecycle:
            found = None
        if found is cls:
            return key
        base = f" ({key!r} is {found.__qualname__})" if found is not None else ""
        hint = (
            f"{cls.__qualname__} is not registered{base}: decorate it with "
            f"@registry.register('your-name') so the store can reload it as "
            f"{cls.__qualname__}, never as another class."
        )
        raise UnknownLifecycle(cls.__qualname__, self.registry.names(), hint=hint)

    def _lifecycle(self, lifecycle: str | type[Lifecycle]) -> type[Lifecycle]:
        if isinstance(lifecycle, str):
            return self.registry.get(lifecycle)
        if isinstance(lifecycle, type) and issubclass(lifecycle, Lifecycle):
            self._registered(lifecycle)
            return lifecycle
        msg = f"create() takes a registered lifecycle name or class, not {shown(lifecycle)}."
        raise StoreError(msg)

    def _to_set_up(self, extensions: Sequence[Extension]) -> list[Extension] | None:
        """The extensions a :class:`Setup` still has to create, or None when nothing is to
        be done (the tables exist, the extensions are set up)."""
        todo = schema.pending(extensions, self._extensions)
        return None if self._ready and not todo else todo

    def _set_up(self, extensions: Sequence[Extension]) -> None:
        """Remember that the tables and ``extensions`` exist."""
        self._ready = True
        for ext in extensions:
            self._extensions[ext.name] = ext

    def on_commit(self, callback: OnCommit) -> OnCommit:
        """Call ``callback(change)`` for every record this store object commits, after the
        commit (whatever the lifecycle). Usable as a decorator; returns ``callback``.

        Raises:
            StoreError: ``callback`` is not callable (nothing is registered).
        """
        self._callbacks.append(check_callback(callback))
        return callback

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


# -- operations ------------------------------------------------------------------------------


def ensure() -> Operation[None]:
    """The store's tables exist (created now if they do not)."""
    yield Setup()


def extension(ext: Extension) -> Operation[Extension]:
    yield Setup((ext,))
    return ext


def create(
    store: StoreBase,
    lifecycle: str | type[Lifecycle],
    id: str | None,
    context: BaseModel | Mapping[str, Any] | None,
    fields: dict[str, Any],
) -> Operation[Snapshot]:
    cls = store._lifecycle(lifecycle)
    instance_id = check_id(id) if id is not None else uuid.uuid4().hex
    instance = drivable(cls(clock=store.clock, context=context_of(cls, context, fields)))
    snap = instance.snapshot()
    yield Setup()

    def step(effects: Effects) -> Step[Snapshot]:
        return core.create(
            instance_id, instance, snap, store._now(), store._backend, store.url, effects
        )

    created: Snapshot = yield Transact(f"create {instance_id!r}", True, step)
    return created


def load(store: StoreBase, id: str, clock: Clock | None, history: bool) -> Operation[Lifecycle]:
    check_id(id)
    loaded = yield Transact(f"read {id!r}", False, lambda _: core.load(id, full_history=history))
    return restore(store.registry, loaded, clock or store.clock)


def get(store: StoreBase, id: str, history: bool) -> Operation[Snapshot]:
    instance = yield from load(store, id, None, history)
    return instance.snapshot()


def history(
    store: StoreBase, id: str, after: int, limit: int | None
) -> Operation[list[TransitionRecord]]:
    check_id(id)
    check_count("after", after, allow_zero=True)
    if limit is not None:
        check_count("limit", limit)
    found: tuple[Loaded, list[TransitionRecord]] = yield Transact(
        f"read the history of {id!r}", False, lambda _: core.history(id, after, limit)
    )
    return migrated_history(store.registry, *found)


def send(
    store: StoreBase,
    id: str,
    name: str,
    args: tuple[Any, ...],
    data: BaseModel | Mapping[str, Any] | None,
    fields: dict[str, Any],
    key: str | None,
    actor: str | None,
    reason: str | None,
    metadata: Mapping[str, Any] | None,
) -> Operation[SendResult]:
    check_id(id)
    check_audit(actor, reason, metadata, key)
    request = SendRequest(id, name, args, payload_of(data, fields), key, actor, reason, metadata)

    def step(effects: Effects) -> Step[Any]:
        return core.send(
            request, store.registry, store.clock, store._now(), store._retention,
            store._backend, effects,
        )  # fmt: skip

    result: SendResult = yield Transact(
        f"send {name!r} to {id!r}", True, step, keyed=key is not None
    )
    if key is not None:
        store._keyed += 1
        if store._keyed % core.EXPIRE_EVERY == 0:
            yield from expire_keys(store)
    return result


def expire_keys(store: StoreBase) -> Operation[int]:
    if store._retention < 0:
        return 0
    cutoff = store._now() - store._retention
    removed: int = yield Transact(
        "expire idempotency keys", True, lambda _: core.expire_keys(cutoff)
    )
    return removed


def delete(store: StoreBase, id: str) -> Operation[None]:
    check_id(id)
    yield Transact(f"delete {id!r}", True, lambda _: _checked_remove(store, id))


def _checked_remove(store: StoreBase, id: str) -> Step[None]:
    """Remove the row unless its instance's ``check_delete`` refuses (a row that cannot be
    restored is removed all the same: deleting is how it goes)."""
    try:
        loaded = yield from core.load(id)
        instance: Lifecycle | None = restore(store.registry, loaded, store.clock)
    except (SnapshotError, UnknownLifecycle):
        instance = None
    if instance is not None:
        instance.check_delete()
    yield from core.remove(id)


def find(
    store: StoreBase,
    name: str | None,
    state: str | None,
    where: Mapping[str, Any] | None,
    limit: int,
    after: str | None,
) -> Operation[Page[InstanceSummary]]:
    check_count("limit", limit)
    found: Page[InstanceSummary] = yield Transact(
        "list instances",
        False,
        lambda _: queries.find(store._backend, name, state, where, limit, after),
    )
    return found


def count(
    store: StoreBase, name: str | None, state: str | None, where: Mapping[str, Any] | None
) -> Operation[int]:
    found: int = yield Transact(
        "count instances", False, lambda _: queries.count(store._backend, name, state, where)
    )
    return found


def changes(after: int, limit: int) -> Operation[Page[Change]]:
    check_count("after", after, allow_zero=True)
    check_count("limit", limit)
    fence: int | None = yield Fence(after)
    found: Page[Change] = yield Transact(
        "read the change feed", False, lambda _: queries.changes(after, fence, limit)
    )
    return found


def consumer_position(name: str) -> Operation[int]:
    position: int = yield Transact(
        f"read consumer {name!r}", False, lambda _: queries.consumer_position(name)
    )
    return position


def ack(store: StoreBase, name: str, position: int | Change) -> Operation[None]:
    """Move the cursor to ``position``, which the feed must have delivered: at most its last
    committed change and (where commits land out of position order) the fence; a position
    beyond would skip the changes committed next."""
    value = queries.check_ack(position)
    if value > 0:
        fence: int | None = yield Fence(value - 1)
        head: int = yield Transact(
            "read the change feed's head", False, lambda _: queries.feed_head()
        )
        queries.check_delivered(name, value, head if fence is None else min(head, fence))
    now = store._now()
    yield Transact(
        f"acknowledge {value} for consumer {name!r}", True, lambda _: queries.ack(name, value, now)
    )


def migrate(store: StoreBase, name: str | None, batch: int) -> Operation[Page[str]]:
    """Rewrite the rows of older schema versions, one transaction per row."""
    check_count("batch", batch)
    names: list[str] = yield Transact("list lifecycles", False, lambda _: queries.machines())
    done: list[str] = []
    skipped: list[Skipped] = []
    for machine in names:
        if name is not None and machine != name:
            continue
        try:
            cls = store.registry.get(machine)
        except UnknownLifecycle:
            continue  # rows of lifecycles this process does not know are left alone
        last = ""
        while True:
            ids: list[str] = yield Transact(
                f"list {machine} rows to migrate",
                False,
                partial(_outdated, machine, cls.schema_version, last, batch),
            )
            for instance_id in ids:
                try:
                    yield Transact(
                        f"migrate {instance_id!r}", True, partial(_migrate_one, store, instance_id)
                    )
                except (SnapshotError, UnknownInstance) as exc:
                    skipped.append(Skipped(instance_id, str(exc)))
                else:
                    done.append(instance_id)
            if len(ids) < batch:
                break
            last = ids[-1]
    return Page(done, skipped=skipped)


def _outdated(machine: str, version: int, after: str, batch: int, _: Effects) -> Step[list[str]]:
    return queries.outdated(machine, version, after, batch)


def _migrate_one(store: StoreBase, instance_id: str, effects: Effects) -> Step[Any]:
    return core.migrate_one(
        instance_id, store.registry, store.clock, store._now(), store._backend, effects
    )


# -- units of work ---------------------------------------------------------------------------


class Work:
    """A unit of work's bookkeeping and steps: the instances it loaded or added, with the
    row versions its saves compare against. Its drivers run the steps in one transaction.

    Args:
        store: the store it belongs to.
        effects: what its transaction commits, for after-commit callbacks.
        write: whether it may write.
    """

    def __init__(self, store: StoreBase, effects: Effects, write: bool) -> None:
        self.store = store
        self.effects = effects
        self.write = write
        self.loaded: dict[str, Loaded] = {}

    def _writable(self, what: str) -> None:
        if not self.write:
            msg = f"Cannot {what}: this unit of work is read-only (write=False)."
            raise StoreError(msg)

    def tracked(self, id: str) -> Loaded:
        loaded = self.loaded.get(id)
        if loaded is None:
            msg = f"Instance {id!r} was neither loaded nor added in this unit of work."
            raise StoreError(msg)
        return loaded

    def load(self, id: str, clock: Clock | None) -> Step[Lifecycle]:
        loaded = yield from core.load(check_id(id))
        instance = restore(self.store.registry, loaded, clock or self.store.clock)
        self.loaded[id] = loaded
        return instance

    def add(self, id: str, instance: Lifecycle) -> Step[None]:
        self._writable(f"add {id!r}")
        self.store._registered(type(instance))
        snap = drivable(instance).snapshot()
        now = self.store._now()
        yield from core.create(
            check_id(id), instance, snap, now, self.store._backend, self.store.url, self.effects
        )
        self.loaded[id] = Loaded(
            id, snap.machine, snap.schema_version, snap.state, snap.context, snap.revision,
            1, list(snap.history[-1:]),
        )  # fmt: skip

    def save(self, id: str, instance: Lifecycle) -> Step[None]:
        self._writable(f"save {id!r}")
        loaded = self.tracked(id)
        records = [r for r in instance.history if r.seq > loaded.revision]
        changes = yield from core.save(
            loaded, instance, records, self.store._now(), self.store._backend, self.effects
        )
        if changes is None:
            msg = f"Instance {id!r} was changed by another writer since it was loaded."
            raise WriteConflict(msg)

    def remove(self, id: str) -> Step[None]:
        self._writable(f"remove {id!r}")
        yield from core.remove(check_id(id))
        self.loaded.pop(id, None)

    def extension(self, extension: Extension) -> Extension:
        """``extension``, which must be declared on the store."""
        if self.store._extensions.get(extension.name) != extension:
            msg = (
                f"Extension {extension.name!r} is not declared on this store; call "
                "store.extension(ext) first (or open_store(url, extensions=[ext]))."
            )
            raise StoreError(msg)
        return extension
