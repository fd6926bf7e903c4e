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

:class:`AsyncSQLiteBackend` serves the asynchronous store with this same back-end run in
worker threads, so the event loop never waits on SQLite. Each transaction runs in one
*lane*, a thread of its own holding that thread's connection, from its BEGIN to its COMMIT;
a few lanes let readers proceed while a writer holds the lock. Worker threads rather than
``aiosqlite``: that library also runs each connection in a thread of its own, so it would add
a dependency and a second copy of what this module does (WAL, busy timeout, ``BEGIN
IMMEDIATE``, read-only files, the error kinds), not speed.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

from lifecyclekit.store._backend import CLOSED, BackendError, Kind, Rows, uninterrupted

__all__ = ["AsyncSQLiteBackend", "SQLiteBackend"]

T = TypeVar("T")

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
        self._lock = threading.RLock()  # guards _connections, _busy, _closed (and :memory:)
        self._connections: dict[int, tuple[weakref.ref[threading.Thread], Any]] = {}
        self._busy: set[int] = set()  # threads in a transaction (their connection in use)
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
        """This thread's connection (made on first use; a dead thread's is closed), marked
        busy until :meth:`_release`. Called with ``_lock`` held."""
        if self._closed:
            msg = CLOSED
            raise BackendError(Kind.OTHER, msg)
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._open(create)
            for ident, (thread, other) in list(self._connections.items()):
                if thread() is None or not thread().is_alive():  # type: ignore[union-attr]
                    other.close()
                    del self._connections[ident]
            self._connections[threading.get_ident()] = (
                weakref.ref(threading.current_thread()),
                connection,
            )
            self._local.connection = connection
        self._busy.add(threading.get_ident())
        return connection

    def _release(self) -> None:
        """This thread's transaction ended: close its connection if the store was closed
        meanwhile (:meth:`close` never closes a connection while a statement runs on it)."""
        with self._lock:
            ident = threading.get_ident()
            self._busy.discard(ident)
            if self._closed and ident in self._connections:
                self._connections.pop(ident)[1].close()

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, write: bool, schema: bool = False) -> Iterator[_Tx]:
        if self._shared is not None:
            with self._lock:
                if self._closed:
                    msg = CLOSED
                    raise BackendError(Kind.OTHER, msg)
                yield from self._run(self._shared, write, schema)
            return
        with self._lock:
            connection = self._connection(create=schema)
        try:
            yield from self._run(connection, write, schema)
        finally:
            self._release()

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
        pauses = _pauses()
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(next(pauses), left))
        return True

    def close(self) -> None:
        """Close the store: idle connections now, each busy one by its own thread when its
        transaction ends (closing a connection under a running statement can crash the
        process); every later transaction fails with the store-is-closed error."""
        with self._lock:
            self._closed = True
            for ident in [i for i in self._connections if i not in self._busy]:
                self._connections.pop(ident)[1].close()
            if self._shared is not None:
                self._shared.close()


def _pauses() -> Iterator[float]:
    """How long a reader of the feed sleeps between polls: 10 ms, doubling up to 250 ms."""
    pause = 0.01
    while True:
        yield pause
        pause = min(pause * 2, 0.25)


# -- the asynchronous back-end ---------------------------------------------------------------


class _Abort(Exception):
    """Thrown into a transaction of the synchronous back-end to roll it back."""


class _Session:
    """One transaction of :class:`SQLiteBackend`, every call made in its lane's thread."""

    __slots__ = ("_manager", "_tx", "committed", "ended")

    def __init__(self, manager: AbstractContextManager[_Tx]) -> None:
        self._manager = manager
        self._tx: _Tx | None = None
        self.committed = False
        self.ended = False

    def begin(self) -> None:
        self._tx = self._manager.__enter__()

    def execute(self, sql: str, params: Sequence[Any]) -> Rows:
        assert self._tx is not None
        return self._tx.execute(sql, params)

    def commit(self) -> None:
        self.ended = True
        self._manager.__exit__(None, None, None)
        self.committed = True

    def abort(self) -> None:
        """Roll back, unless it never began or has ended."""
        if self._tx is None or self.ended:
            return
        self.ended = True
        try:
            self._manager.__exit__(_Abort, _Abort(), None)
        except Exception:  # rolled back, or the connection is gone: nothing to keep
            pass


class _AsyncTx:
    """A transaction of :class:`AsyncSQLiteBackend`: statements run in its lane."""

    __slots__ = ("_backend", "_lane", "_session")

    def __init__(
        self, backend: AsyncSQLiteBackend, lane: ThreadPoolExecutor, session: _Session
    ) -> None:
        self._backend = backend
        self._lane = lane
        self._session = session

    @property
    def committed(self) -> bool:
        return self._session.committed

    def _call(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``function(*args)`` in the lane; refused once the store is closed (the lane stays
        alive until this transaction has rolled back, see ``AsyncSQLiteBackend``)."""
        if self._backend._closed:
            raise BackendError(Kind.OTHER, CLOSED)
        return asyncio.wrap_future(self._lane.submit(function, *args))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return await self._call(self._session.execute, sql, params)


class _Poller:
    """A listener for SQLite, which has no notifications: it sleeps between polls."""

    def __init__(self) -> None:
        self._pauses = _pauses()

    async def wait(self, timeout: float) -> None:
        await asyncio.sleep(min(next(self._pauses), max(timeout, 0.0)))


class AsyncSQLiteBackend:
    """A SQLite store for the asynchronous store: :class:`SQLiteBackend` in worker threads.

    Args:
        backend: the synchronous back-end it runs (its file, options and connections).
        lanes: worker threads, each holding one connection (one for ``:memory:``).
    """

    def __init__(self, backend: SQLiteBackend, *, lanes: int = 4) -> None:
        self._sync = backend
        self.url = backend.url
        self.dialect = backend.dialect
        self.schema = backend.schema
        self.change_position = backend.change_position
        self.change_prelude = backend.change_prelude
        self.memory = backend.memory
        self._size = 1 if backend.memory else max(1, lanes)
        self._executors: list[ThreadPoolExecutor] = []
        # Free lanes; after aclose() it holds None, which every waiter takes and puts back.
        self._free: asyncio.Queue[ThreadPoolExecutor | None] | None = None
        self._closed = False

    async def open(self) -> None:
        if self._free is not None:
            return
        free: asyncio.Queue[ThreadPoolExecutor | None] = asyncio.Queue()
        for number in range(self._size):
            lane = ThreadPoolExecutor(1, thread_name_prefix=f"lifecyclekit-sqlite-{number}")
            self._executors.append(lane)
            free.put_nowait(lane)
        self._free = free

    @asynccontextmanager
    async def transaction(self, *, write: bool, schema: bool = False) -> AsyncIterator[_AsyncTx]:
        if self._closed or self._free is None:
            msg = CLOSED if self._closed else "the store is not open"
            raise BackendError(Kind.OTHER, msg)
        free = self._free
        lane = await free.get()
        if lane is None or self._closed:  # closed while this task waited for a lane
            self._give_back(lane)
            raise BackendError(Kind.OTHER, CLOSED)
        session = _Session(self._sync.transaction(write=write, schema=schema))
        tx = _AsyncTx(self, lane, session)
        try:
            await tx._call(session.begin)
            yield tx
            await uninterrupted(tx._call(session.commit))
        finally:
            # Roll back whatever did not commit, after anything still queued in the lane;
            # the lane is free again only then (no waiting here: cancellation-proof).
            # A lane is shut down only when it is given back, so this submit cannot fail.
            loop = asyncio.get_running_loop()

            def release(_: Future[None]) -> None:
                try:
                    loop.call_soon_threadsafe(self._give_back, lane)
                except RuntimeError:  # the event loop is closed
                    lane.shutdown(wait=False)

            lane.submit(session.abort).add_done_callback(release)

    def _give_back(self, lane: ThreadPoolExecutor | None) -> None:
        """Return ``lane`` (or the closed store's ``None``) to the free lanes; once the
        store is closed, shut the lane down instead. Runs in the event loop's thread."""
        assert self._free is not None
        if lane is None:
            self._free.put_nowait(None)
        elif self._closed:
            lane.shutdown(wait=False)
        else:
            self._free.put_nowait(lane)

    context_readable = SQLiteBackend.context_readable

    def context_filter(self, field: str, value: Any) -> tuple[str, tuple[Any, ...]]:
        return self._sync.context_filter(field, value)

    async def change_fence(self, after: int) -> int | None:
        return None

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[_Poller]:
        yield _Poller()

    async def aclose(self) -> None:
        """Close the store: free lanes now; a lane in a transaction once that transaction
        has rolled back (its next statement or COMMIT is refused with the store-is-closed
        error). Tasks waiting for a lane, and every later transaction, get that error."""
        if self._closed:
            return
        self._closed = True
        idle: list[ThreadPoolExecutor] = []
        if self._free is not None:
            while not self._free.empty():
                lane = self._free.get_nowait()
                if lane is not None:
                    idle.append(lane)
            self._free.put_nowait(None)  # wakes every task waiting for a lane

        def shut() -> None:
            for lane in idle:
                lane.shutdown(wait=True)
            self._sync.close()

        await asyncio.to_thread(shut)
