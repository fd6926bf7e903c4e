"""The embedded SQLite back-end (the default; no server): SQL and connections only.

One connection per thread (``sqlite3`` connections must not be shared), all on one file in
WAL mode with a busy timeout, so threads and processes share the store. Every write
transaction takes the write lock at its start (``BEGIN IMMEDIATE``: with 4 processes a plain
``BEGIN`` retried ~800k times and ran 3-7x slower), so transactions commit one at a time and
change positions are handed out in commit order. ``synchronous`` is ``FULL`` unless the URL
says otherwise (``sqlite:///jobs.db?synchronous=normal``): FULL loses nothing acknowledged on
power failure. ``sqlite:///:memory:`` is one connection behind a lock.

A missing file is created only by a schema transaction (the first write); a file that cannot
be written (read-only file or directory) is opened for reading.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from lifecyclekit.store._backend import BackendError, Kind, Rows

__all__ = ["SQLiteBackend"]

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS lk_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS lk_instances (
        id TEXT PRIMARY KEY, machine TEXT NOT NULL, schema_version INTEGER NOT NULL,
        state TEXT NOT NULL, context TEXT, revision INTEGER NOT NULL,
        version INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS lk_instances_updated ON lk_instances (updated_at, id)",
    """CREATE INDEX IF NOT EXISTS lk_instances_machine
        ON lk_instances (machine, updated_at, id)""",
    """CREATE INDEX IF NOT EXISTS lk_instances_machine_state
        ON lk_instances (machine, state, updated_at, id)""",
    """CREATE TABLE IF NOT EXISTS lk_history (
        instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
        source TEXT NOT NULL, target TEXT NOT NULL, payload TEXT, at INTEGER NOT NULL,
        inferred INTEGER NOT NULL, actor TEXT, reason TEXT, metadata TEXT,
        PRIMARY KEY (instance_id, seq))""",
    """CREATE TABLE IF NOT EXISTS lk_keys (
        instance_id TEXT NOT NULL, key TEXT NOT NULL, request TEXT NOT NULL,
        outcome TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (instance_id, key))""",
    "CREATE INDEX IF NOT EXISTS lk_keys_created ON lk_keys (created_at)",
    """CREATE TABLE IF NOT EXISTS lk_changes (
        position INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL,
        machine TEXT NOT NULL, seq INTEGER NOT NULL, record TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lk_consumers (
        name TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lk_extensions (
        name TEXT PRIMARY KEY, version INTEGER NOT NULL)""",
)

_MESSAGES = (
    ("no such table: lk_", Kind.NO_STORE),
    ("readonly", Kind.READ_ONLY),
    ("read-only", Kind.READ_ONLY),
    ("disk is full", Kind.FULL),
    ("database is locked", Kind.BUSY),
    ("database is busy", Kind.BUSY),
    ("not a database", Kind.CORRUPT),
    ("malformed", Kind.CORRUPT),
    ("unable to open", Kind.NO_STORE),
)


def classify(exc: Exception) -> BackendError:
    """The :class:`BackendError` for an ``sqlite3`` (or conversion) error."""
    if isinstance(exc, sqlite3.IntegrityError):
        return BackendError(Kind.DUPLICATE, str(exc))
    if isinstance(exc, OverflowError):
        return BackendError(Kind.INVALID, "a number does not fit in 64 bits")
    text = str(exc)
    for fragment, kind in _MESSAGES:
        if fragment in text:
            return BackendError(kind, text)
    return BackendError(Kind.OTHER, text or type(exc).__name__)


class _Tx:
    """One open SQLite transaction."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        try:
            cursor = self._cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description is not None else []
        except (sqlite3.Error, OverflowError) as exc:
            raise classify(exc) from None
        return Rows(rows, cursor.rowcount)


class SQLiteBackend:
    """A store in one SQLite file (or ``:memory:``).

    Args:
        url: the URL, for messages.
        path: the file (``":memory:"`` for a private in-memory store).
        synchronous: SQLite's ``synchronous`` level (``FULL`` unless told otherwise).
        busy_timeout: seconds to wait for another writer's lock.
    """

    dialect = "sqlite"
    schema: Sequence[str] = SCHEMA
    change_position = "NULL"
    change_prelude: str | None = None

    def __init__(
        self, url: str, path: str, *, synchronous: str = "FULL", busy_timeout: float = 30.0
    ) -> None:
        self.url = url
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.memory = path == ":memory:"
        self._local = threading.local()
        self._lock = threading.RLock()  # guards _connections (and the :memory: connection)
        self._connections: dict[int, tuple[weakref.ref[threading.Thread], Any]] = {}
        self._closed = False
        self._shared: sqlite3.Connection | None = None
        if self.memory:
            self._shared = self._configure(
                sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False),
                writable=True,
            )

    # -- connections -------------------------------------------------------------------------

    def _configure(self, connection: sqlite3.Connection, *, writable: bool) -> sqlite3.Connection:
        connection.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        if writable:
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
        return connection

    def _open(self, create: bool) -> sqlite3.Connection:
        """A new connection to the file: read-write, read-only when the file or its folder
        cannot be written, created only when ``create``."""
        path = os.path.abspath(self.path)
        exists = os.path.exists(path)
        if not exists and not create:
            msg = f"no file {self.path!r}"
            raise BackendError(Kind.NO_STORE, msg)
        folder = os.path.dirname(path)
        if not exists and not os.path.isdir(folder):
            msg = f"the directory {folder!r} does not exist: create it, or choose another path"
            raise BackendError(Kind.OTHER, msg)
        if not exists and not os.access(folder, os.W_OK | os.X_OK):
            msg = (
                f"the directory {folder!r} is not writable, so the store file cannot be "
                "created there: choose a directory you can write, or change its permissions"
            )
            raise BackendError(Kind.OTHER, msg)
        if exists and not os.access(path, os.W_OK):
            mode = "mode=ro" if os.access(folder, os.W_OK) else "mode=ro&immutable=1"
        elif exists and not os.access(folder, os.W_OK):
            mode = "mode=ro&immutable=1"
        else:
            mode = "mode=rwc" if create else "mode=rw"
        try:
            connection = sqlite3.connect(
                f"file:{quote(path)}?{mode}",
                uri=True,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            return self._configure(connection, writable=mode.startswith("mode=rw"))
        except sqlite3.Error as exc:
            raise classify(exc) from None

    def _connection(self, create: bool) -> sqlite3.Connection:
        """This thread's connection (made on first use; a dead thread's is closed)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        if self._closed:
            msg = "the store is closed (open another with open_store(url))"
            raise BackendError(Kind.OTHER, msg)
        connection = self._open(create)
        with self._lock:
            for ident, (thread, other) in list(self._connections.items()):
                if thread() is None or not thread().is_alive():  # type: ignore[union-attr]
                    other.close()
                    del self._connections[ident]
            self._connections[threading.get_ident()] = (
                weakref.ref(threading.current_thread()),
                connection,
            )
        self._local.connection = connection
        return connection

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, write: bool, schema: bool = False) -> Iterator[_Tx]:
        if self._shared is not None:
            with self._lock:
                yield from self._run(self._shared, write, schema)
            return
        yield from self._run(self._connection(create=schema), write, schema)

    def _run(self, connection: sqlite3.Connection, write: bool, schema: bool) -> Iterator[_Tx]:
        if schema and not self.memory:
            try:  # outside any transaction; waits for the lock like any write
                connection.execute("PRAGMA journal_mode=WAL")
            except sqlite3.Error as exc:
                raise classify(exc) from None
        cursor = connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE" if write or schema else "BEGIN")
        except sqlite3.Error as exc:
            cursor.close()
            raise classify(exc) from None
        try:
            yield _Tx(cursor)
        except BaseException:
            if connection.in_transaction:
                connection.rollback()
            cursor.close()
            raise
        try:
            cursor.execute("COMMIT")
        except sqlite3.Error as exc:
            # A failed COMMIT in SQLite leaves nothing applied: roll back what is left.
            if connection.in_transaction:
                connection.rollback()
            raise classify(exc) from None
        finally:
            cursor.close()

    # -- SQL that differs --------------------------------------------------------------------

    context_readable = (
        "(CASE WHEN context IS NULL THEN 1 WHEN json_valid(context)"
        " THEN json_type(context) = 'object' ELSE 0 END)"
    )
    """True for a row whose context :meth:`context_filter` can read (never raises)."""

    def context_filter(self, field: str, value: Any) -> tuple[str, tuple[Any, ...]]:
        path = '$."' + field + '"'
        if value is None:  # absent or null
            return "coalesce(json_type(context, ?), 'null') = 'null'", (path,)
        if isinstance(value, bool):  # JSON true/false, never the numbers 1/0
            return "json_type(context, ?) = ?", (path, "true" if value else "false")
        kinds = "'text'" if isinstance(value, str) else "'integer', 'real'"
        return (
            f"(json_type(context, ?) IN ({kinds}) AND json_extract(context, ?) = ?)",
            (path, path, value),
        )

    def change_fence(self, after: int) -> int | None:
        return None

    def wait_for_changes(self, timeout: float, ready: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + timeout
        pause = 0.01
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.25)
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _, connection in self._connections.values():
                connection.close()
            self._connections.clear()
            if self._shared is not None:
                self._shared.close()
        self._local = threading.local()
