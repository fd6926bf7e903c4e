"""What the store asks of a database: connections, transactions and SQL, nothing else.

The shape of httpx's Client over a Transport: :class:`~lifecyclekit.store.Store` holds every
rule (send, idempotency, the change feed, retries), a :class:`Backend` opens transactions,
runs SQL written with ``?`` placeholders, supplies the few SQL fragments that differ between
databases, and translates its driver's errors into :class:`BackendError` kinds. A back-end
imports only this module and :mod:`lifecyclekit.errors`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from lifecyclekit.errors import StoreError

__all__ = ["Backend", "BackendError", "Kind", "Rows", "Transaction"]


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
