"""The PostgreSQL back-end (many processes, many hosts): ``pip install 'lifecyclekit[postgres]'``.

Each ``send`` is one REPEATABLE READ transaction: its reads see one snapshot (a row and its
history always agree), and a concurrent writer shows up as a serialization failure or a lost
compare-and-set on the row version, after which ``send`` re-loads and re-fires. Schema
creation is serialised by an advisory lock so several processes may open a fresh database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lifecyclekit.errors import optional_import
from lifecyclekit.lifecycle import Clock
from lifecyclekit.registry import Registry
from lifecyclekit.store._core import BaseStore, StoreError

__all__ = ["PostgresStore"]

_SCHEMA_LOCK = 7_143_901  # pg_advisory_xact_lock key for schema creation


def _psycopg() -> Any:
    return optional_import("psycopg", extra="postgres", feature="PostgreSQL stores")


class PostgresStore(BaseStore):
    """A store in a PostgreSQL database."""

    placeholder = "%s"

    def __init__(
        self, url: str, *, registry: Registry | None = None, clock: Clock | None = None
    ) -> None:
        super().__init__(registry=registry, clock=clock)
        self._psycopg = _psycopg()
        try:
            self._connection = self._psycopg.connect(url)
            self._connection.isolation_level = self._psycopg.IsolationLevel.REPEATABLE_READ
        except self._psycopg.Error as exc:
            msg = f"Cannot connect to PostgreSQL store: {exc}".strip()
            raise StoreError(msg) from None
        self._open()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Any]:
        with self._connection.transaction(), self._connection.cursor() as cursor:
            yield cursor

    def _schema_lock(self, cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))

    def _is_duplicate(self, exc: Exception) -> bool:
        return isinstance(exc, self._psycopg.errors.UniqueViolation)

    def _is_conflict(self, exc: Exception) -> bool:
        errors = self._psycopg.errors
        return isinstance(exc, errors.SerializationFailure | errors.DeadlockDetected)

    def close(self) -> None:
        self._connection.close()
