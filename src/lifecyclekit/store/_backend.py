"""What the store asks of a database: connections, transactions and SQL, nothing else.

The shape of httpx's Client over a Transport: :class:`~lifecyclekit.store.Store` holds every
rule (send, idempotency, the change feed, retries), a :class:`Backend` opens transactions,
runs SQL written with ``?`` placeholders, supplies the few SQL fragments that differ between
databases, and translates its driver's errors into :class:`BackendError` kinds. An
:class:`AsyncBackend` does the same for :class:`~lifecyclekit.store.AsyncStore`, awaiting
instead of blocking. A back-end imports only this module and :mod:`lifecyclekit.errors`.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from lifecyclekit.errors import StoreError

__all__ = [
    "AsyncBackend",
    "AsyncListener",
    "CLOSED",
    "AsyncTransaction",
    "Backend",
    "BackendError",
    "Kind",
    "Rows",
    "Transaction",
    "uninterrupted",
]

T = TypeVar("T")

CLOSED = "the store is closed (open another one to go on)"
"""Why an operation on a closed store fails, on every back-end."""


class Kind(enum.Enum):
    """What went wrong in the database, as far as the store's rules care."""

    CONFLICT = "conflict"
    """Another transaction won (serialization failure, deadlock): re-run the transaction."""
    DUPLICATE = "duplicate"
    """A unique key exists already."""
    CONNECTION_LOST = "connection lost"
    """The connection broke before the commit: nothing was applied."""
    OUTCOME_UNKNOWN = "outcome unknown"
    """The connection broke during the commit: applied or not, nobody knows."""
    UNAVAILABLE = "unavailable"
    """No connection could be made (server down, pool exhausted)."""
    NO_STORE = "no store"
    """No database, or no lifecyclekit tables in it."""
    READ_ONLY = "read-only"
    """The database (file, directory, server or role) accepts no writes."""
    FULL = "full"
    """The disk (or the database's size limit) is full."""
    CORRUPT = "corrupt"
    """The file is not a database, or a damaged one."""
    BUSY = "busy"
    """Waiting for a lock timed out."""
    INVALID = "invalid"
    """The database refused a value (out of range, a NUL character)."""
    OTHER = "other"
    """Anything else the driver reported."""


class BackendError(StoreError):
    """A database failure, classified; the store turns it into a public error naming the
    operation and the instance.

    Attributes:
        kind: what went wrong.
        detail: the driver's own words (never containing a password).
    """

    def __init__(self, kind: Kind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Rows:
    """What one statement returned: its rows (empty for writes) and the affected row count."""

    rows: list[tuple[Any, ...]]
    rowcount: int


class Transaction(Protocol):
    """One open database transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement written with ``?`` placeholders.

        Raises:
            BackendError: classified driver errors.
        """
        ...


class Backend(Protocol):
    """A database the store runs on (SQLite, PostgreSQL)."""

    url: str
    """The store's URL as shown in messages (any password replaced by ``***``)."""
    dialect: str
    """``"sqlite"`` or ``"postgresql"``."""
    schema: Sequence[str]
    """The DDL of the store's own tables, idempotent (``CREATE ... IF NOT EXISTS``)."""
    change_position: str
    """The SQL expression a new change's position is inserted as."""
    change_prelude: str | None
    """SQL run once per transaction before its first change is inserted, or ``None``."""

    def transaction(
        self, *, write: bool, schema: bool = False
    ) -> AbstractContextManager[Transaction]:
        """A transaction, committed when the block ends normally, rolled back otherwise.

        Args:
            write: the transaction writes (SQLite takes its write lock at the start).
            schema: a schema change: serialised between processes, allowed to create the
                database, and seeing other transactions' commits as they happen.
        """
        ...

    context_readable: str
    """A SQL boolean that never raises: whether a row's ``context`` is a JSON object
    :meth:`context_filter` can read (unreadable rows are skipped and reported, not fatal)."""

    def context_filter(self, field: str, value: Any) -> tuple[str, tuple[Any, ...]]:
        """A WHERE condition on a top-level field of the JSON ``context`` column (evaluated
        only on rows where :attr:`context_readable` holds)."""
        ...

    def change_fence(self, after: int) -> int | None:
        """The highest change position below which every transaction has ended, or ``None``
        when positions are handed out in commit order (nothing to wait for)."""
        ...

    def wait_for_changes(self, timeout: float, ready: Callable[[], bool]) -> bool:
        """Wait until ``ready()`` is true or ``timeout`` seconds pass; returns ``ready()``."""
        ...

    def close(self) -> None:
        """Close every connection."""
        ...


# -- asynchronous ----------------------------------------------------------------------------


class AsyncTransaction(Protocol):
    """One open database transaction of an asynchronous back-end."""

    @property
    def committed(self) -> bool:
        """Whether its COMMIT succeeded (even when the awaiting task was cancelled
        meanwhile)."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement written with ``?`` placeholders.

        Raises:
            BackendError: classified driver errors.
        """
        ...


class AsyncListener(Protocol):
    """Wakes a reader of the change feed when something may have been committed."""

    async def wait(self, timeout: float) -> None:
        """Return after a commit that added changes (or may have), or after ``timeout``
        seconds."""
        ...


class AsyncBackend(Protocol):
    """A database the asynchronous store runs on (SQLite, PostgreSQL).

    A transaction that is cancelled is rolled back; one whose COMMIT has started commits or
    fails to the end before the cancellation goes on (:func:`uninterrupted`), so a cancelled
    operation never leaves half of itself behind and the store knows whether it committed.
    """

    url: str
    dialect: str
    schema: Sequence[str]
    change_position: str
    change_prelude: str | None
    memory: bool
    """A private in-memory database (its tables are created when the store opens)."""

    async def open(self) -> None:
        """Connect (a wrong host or database fails here, with its reason)."""
        ...

    def transaction(
        self, *, write: bool, schema: bool = False
    ) -> AbstractAsyncContextManager[AsyncTransaction]:
        """As :meth:`Backend.transaction`."""
        ...

    context_readable: str
    """As :attr:`Backend.context_readable`."""

    def context_filter(self, field: str, value: Any) -> tuple[str, tuple[Any, ...]]:
        """As :meth:`Backend.context_filter`."""
        ...

    async def change_fence(self, after: int) -> int | None:
        """As :meth:`Backend.change_fence`."""
        ...

    def listen(self) -> AbstractAsyncContextManager[AsyncListener]:
        """A listener for commits, ready before the block starts (so that a commit made
        between a read of the feed and the next wait still wakes the reader)."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


async def uninterrupted(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end even if the awaiting task is cancelled meanwhile (a
    COMMIT, a ROLLBACK, giving a connection back: work that must not be cut in half), then
    raise the cancellation; its own error is then dropped, as the task is being cancelled."""
    task = asyncio.ensure_future(awaitable)
    interrupted = False
    while True:
        try:
            await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():  # finished meanwhile, or itself cancelled (a loop shutting down)
                if not task.cancelled():
                    task.exception()  # retrieved: the cancellation wins
                raise
            interrupted = True
        except BaseException:
            if not interrupted:
                raise
            break
    if interrupted:
        raise asyncio.CancelledError
    return task.result()
