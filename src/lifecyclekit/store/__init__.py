"""Durable lifecycles: one ``Store`` protocol, an embedded SQLite back-end and PostgreSQL.

``open_store(url)`` picks the back-end from the URL: ``sqlite:///path/to/file.db`` (the
default is ``sqlite:///lifecyclekit.db`` in the working directory), ``sqlite:///:memory:``,
or ``postgresql://user@host/db`` (``pip install 'lifecyclekit[postgres]'``). Every back-end
runs the same code for ``send``: load -> fire -> compare-and-set save, so durable and
in-memory behaviour are one code path.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from lifecyclekit.lifecycle import Clock, Lifecycle
from lifecyclekit.registry import Registry
from lifecyclekit.snapshot import Snapshot, TransitionRecord
from lifecyclekit.store._core import (
    MAX_ATTEMPTS,
    SCHEMA_VERSION,
    BaseStore,
    InstanceSummary,
    Session,
    StoreError,
    UnknownInstance,
    WriteConflict,
)

__all__ = [
    "DEFAULT_URL",
    "MAX_ATTEMPTS",
    "SCHEMA_VERSION",
    "InstanceSummary",
    "Session",
    "Store",
    "StoreError",
    "UnknownInstance",
    "WriteConflict",
    "open_store",
]

DEFAULT_URL = "sqlite:///lifecyclekit.db"


class Store(Protocol):
    """What every back-end offers."""

    registry: Registry
    clock: Clock | None

    def create(self, name: str, id: str | None = None, **context: Any) -> Snapshot: ...
    def get(self, id: str) -> Snapshot: ...
    def load(self, id: str, *, clock: Clock | None = None) -> Lifecycle: ...
    def send(
        self, id: str, name: str, /, *args: Any, idempotency_key: str | None = None, **data: Any
    ) -> Snapshot: ...
    def history(self, id: str) -> list[TransitionRecord]: ...
    def find(
        self, name: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[InstanceSummary]: ...
    def count(self, name: str | None = None, state: str | None = None) -> int: ...
    def delete(self, id: str) -> None: ...
    def session(self, *, write: bool = True) -> AbstractContextManager[Session]: ...
    def is_conflict(self, exc: Exception) -> bool: ...
    def close(self) -> None: ...


def open_store(
    url: str = DEFAULT_URL, *, registry: Registry | None = None, clock: Clock | None = None
) -> BaseStore:
    """Open (and on first use create) the store at ``url``.

    Raises:
        StoreError: an unknown scheme, a bad option, or a store written by a newer version.
        ImportError: PostgreSQL without psycopg (the message says how to install it).
    """
    parts = urlsplit(url)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "sqlite":
        from lifecyclekit.store.sqlite import SQLiteStore

        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            msg = f"{url!r} names no file; use sqlite:///path/to/file.db or sqlite:///:memory:."
            raise StoreError(msg)
        unknown = set(options) - {"synchronous"}
        if unknown:
            msg = f"Unknown SQLite option(s) {', '.join(sorted(unknown))}; known: synchronous."
            raise StoreError(msg)
        return SQLiteStore(
            path, synchronous=options.get("synchronous", "FULL"), registry=registry, clock=clock
        )
    if parts.scheme in ("postgresql", "postgres"):
        from lifecyclekit.store.postgres import PostgresStore

        return PostgresStore(url, registry=registry, clock=clock)
    msg = f"Unknown store URL {url!r}; use sqlite:///file.db or postgresql://user@host/db."
    raise StoreError(msg)
